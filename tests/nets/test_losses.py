"""The SCL loss terms, the refit loss, and that a few steps of SCL training learn."""

import math

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.nets import (
    NetConfig,
    SCLLossWeights,
    SCLNet,
    cdf_w1_times_ce,
    contrastive_term,
    cross_entropy,
    feature_jitter,
    random_dihedral,
    scl_loss,
    scl_loss_published,
    symmetric_cross_entropy,
)

KEYS = {"cross_entropy", "reconstruction", "contrastive", "consistency", "total"}


def test_contrastive_term_on_a_hand_computed_example():
    # Galaxy 0: views 5 apart; galaxy 1: identical views. Across galaxies: 1, 1, √20, √20.
    view1 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    view2 = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    d_neg = (1.0 + math.sqrt(20.0)) / 2.0
    expected = 0.5 * (F.softplus(torch.tensor(5.0 - d_neg)) + F.softplus(torch.tensor(-d_neg)))
    assert float(contrastive_term([view1, view2])) == pytest.approx(float(expected), abs=1e-5)


def test_contrastive_term_prefers_views_of_the_same_galaxy():
    torch.manual_seed(0)
    z = torch.randn(32, 16)
    close = [z, z + 0.01 * torch.randn_like(z), z + 0.01 * torch.randn_like(z)]
    shuffled = [z, z[torch.randperm(32)], z[torch.randperm(32)]]
    assert float(contrastive_term(close)) < float(contrastive_term(shuffled))


def test_contrastive_term_gradient_is_finite_when_views_coincide():
    z = torch.randn(4, 3, requires_grad=True)
    contrastive_term([z, z, z]).backward()
    assert torch.isfinite(z.grad).all()


def test_contrastive_term_input_checks():
    with pytest.raises(ValidationError, match="at least 2 views"):
        contrastive_term([torch.zeros(3, 2)])
    with pytest.raises(ValidationError, match="B >= 2"):
        contrastive_term([torch.zeros(1, 2), torch.zeros(1, 2)])
    with pytest.raises(ValidationError, match="view 1"):
        contrastive_term([torch.zeros(3, 2), torch.zeros(3, 4)])


def test_symmetric_cross_entropy_is_symmetric_and_the_entropy_at_equality():
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    assert float(symmetric_cross_entropy(a, b)) == pytest.approx(
        float(symmetric_cross_entropy(b, a))
    )
    p = torch.softmax(a, 1)
    entropy = -(p * p.log()).sum(1).mean()
    assert float(symmetric_cross_entropy(a, a)) == pytest.approx(float(entropy), rel=1e-5)
    assert float(symmetric_cross_entropy(a, b)) > float(entropy)


def test_cross_entropy_matches_torch():
    logits, z_bin = torch.randn(4, 6), torch.tensor([0, 5, 2, 2])
    assert torch.equal(cross_entropy(logits, z_bin), F.cross_entropy(logits, z_bin))


def test_refit_loss_is_zero_at_the_target_and_positive_elsewhere():
    torch.manual_seed(0)
    logits = torch.randn(6, 20, requires_grad=True)
    target = torch.softmax(torch.randn(6, 20), 1)
    assert float(cdf_w1_times_ce(logits.detach(), torch.softmax(logits.detach(), 1))) == (
        pytest.approx(0.0, abs=1e-6)
    )
    loss = cdf_w1_times_ce(logits, target)
    assert float(loss.detach()) > 0
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValidationError, match=r"\(B, n_bins\)"):
        cdf_w1_times_ce(logits, target[:, :10])


def _mlp_net(decoder: bool = True) -> SCLNet:
    cfg = NetConfig(
        kind="mlp",
        n_bins=3,
        n_features=4,
        n_extra=0,
        latent_dim=4,
        rest_dim=4,
        hidden=(32,),
        estimator_hidden=32,
        decoder=decoder,
    )
    return SCLNet(cfg)


def _toy_catalog(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose first column decides the bin: a separable three-class problem."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    z_bin = torch.bucketize(x[:, 0].contiguous(), torch.tensor([-0.5, 0.5]))
    return x, z_bin


def test_scl_loss_returns_every_term():
    torch.manual_seed(0)
    x, z_bin = _toy_catalog(16)
    total, parts = scl_loss(_mlp_net(), x, None, z_bin, feature_jitter)
    assert set(parts) == KEYS
    assert torch.isfinite(total)
    assert parts["total"] == pytest.approx(sum(parts[k] for k in KEYS - {"total"}), rel=1e-5)
    assert all(math.isfinite(v) for v in parts.values())


def test_scl_loss_on_images_back_propagates_to_every_part():
    torch.manual_seed(0)
    cfg = NetConfig(kind="compact", n_bins=5, n_bands=2, image_size=16, rest_dim=8, width=8,
                    estimator_hidden=16)  # fmt: skip
    net = SCLNet(cfg)
    x, extra = torch.randn(4, 2, 16, 16), torch.randn(4, 1)
    total, parts = scl_loss(net, x, extra, torch.tensor([0, 1, 2, 4]), random_dihedral)
    total.backward()
    assert parts["reconstruction"] > 0
    for module in (net.encoder, net.estimator, net.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_scl_loss_without_decoder_skips_reconstruction():
    torch.manual_seed(0)
    x, z_bin = _toy_catalog(8)
    total, parts = scl_loss(_mlp_net(decoder=False), x, None, z_bin, feature_jitter)
    assert parts["reconstruction"] == 0.0
    assert set(parts) == KEYS
    total.backward()


def test_scl_loss_rejects_bad_labels():
    x, z_bin = _toy_catalog(8)
    with pytest.raises(ValidationError, match="z_bin"):
        scl_loss(_mlp_net(), x, None, z_bin[:4], feature_jitter)
    with pytest.raises(ValidationError, match="integer"):
        scl_loss(_mlp_net(), x, None, z_bin.float(), feature_jitter)


def test_a_few_steps_of_scl_training_reduce_the_loss():
    torch.manual_seed(0)
    x, z_bin = _toy_catalog()
    net = _mlp_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    weights = SCLLossWeights(reconstruction=1.0)
    generator = torch.Generator().manual_seed(1)

    def augment(t: torch.Tensor) -> torch.Tensor:
        return feature_jitter(t, 0.05, generator)

    history = []
    for _ in range(40):
        total, parts = scl_loss(net, x, None, z_bin, augment, weights)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(parts)
    assert history[-1]["total"] < 0.6 * history[0]["total"]
    assert history[-1]["cross_entropy"] < 0.6 * history[0]["cross_entropy"]
    accuracy = (net(x).argmax(1) == z_bin).float().mean()
    assert float(accuracy) > 0.9


def _published_literally(net, x, z_bin, x_aug, c):
    """The published code's loss (CLAP_network.py), line by line, with the batch's even
    rows as the first half-batch and the odd rows as their paired second half-batch."""

    def rms(a, b):  # exp_minus_lmse takes the mean over rows of sqrt(mean over dims)
        return (a - b).pow(2).mean(1).sqrt()

    def ce_both(la, lb):  # get_zlogits_contrast: stop-gradient targets, both directions
        pa, pb = F.softmax(la, 1).detach(), F.softmax(lb, 1).detach()
        return (
            -(pa * F.log_softmax(lb, 1)).sum(1).mean() - (pb * F.log_softmax(la, 1)).sum(1).mean()
        )

    def single_cycle(xs, zs):  # get_outputs_single_cyc
        v1, b1 = net.encode(xs)
        rec1 = net.decode(v1, b1)
        v2, b2 = net.encode(rec1)
        rec2 = net.decode(v2, b2)
        l1, l2 = net.estimate(v1), net.estimate(v2)
        zp = F.cross_entropy(l1, zs) + F.cross_entropy(l2, zs)
        recon = F.mse_loss(rec1, xs) + F.mse_loss(rec2, xs)
        return zp, recon, ce_both(l1, l2), l1, v1, v2

    def aug(xs_morph, l1):  # get_outputs_aug
        vm, bm = net.encode(xs_morph)
        return F.mse_loss(net.decode(vm, bm), xs_morph), ce_both(l1, net.estimate(vm)), vm

    first, second = torch.arange(0, x.shape[0], 2), torch.arange(1, x.shape[0], 2)
    zp1, rec1, zc1, l1, v1, v1_ = single_cycle(x[first], z_bin[first])
    zp2, rec2, zc2, l2, v2, v2_ = single_cycle(x[second], z_bin[second])
    recm1, zcm1, vm1 = aug(x_aug[first], l1)
    recm2, zcm2, vm2 = aug(x_aug[second], l2)
    cost_zp = 0.5 * (zp1 + zp2)
    cost_recon = 0.5 * (rec1 + rec2 + recm1 + recm2)
    cost_zcontra = 0.5 * (zc1 + zc2 + zcm1 + zcm2)
    pos = torch.exp(-rms(torch.cat([v1, v1, v2, v2]), torch.cat([v1_, vm1, v2_, vm2])).mean())
    neg = torch.exp(-rms(v1, v2).mean())
    cost_contra = -torch.log(pos / (pos + neg))
    return cost_zp + c * cost_recon + cost_contra + cost_zcontra


def test_the_published_loss_is_the_published_code_term_for_term():
    torch.manual_seed(0)
    x, z_bin = _toy_catalog(8)
    net = _mlp_net()
    shift = torch.linspace(-0.2, 0.3, 4)  # a deterministic augmented view

    def augment(t):
        return t + shift

    pairs = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6])  # row 2i and row 2i + 1 are partners
    weights = SCLLossWeights(reconstruction=7.0)
    total, parts = scl_loss_published(net, x, None, z_bin, augment, weights, partners=pairs)
    expected = _published_literally(net, x, z_bin, augment(x), 7.0)
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert set(parts) == KEYS
    assert parts["total"] == pytest.approx(sum(parts[k] for k in KEYS - {"total"}), rel=1e-5)


def test_the_published_loss_trains_and_needs_a_decoder():
    torch.manual_seed(0)
    x, z_bin = _toy_catalog()
    net = _mlp_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    first = last = None
    for _ in range(40):
        total, parts = scl_loss_published(
            net, x, None, z_bin, lambda t: feature_jitter(t, 0.05, generator),
            SCLLossWeights(reconstruction=1.0), generator,
        )  # fmt: skip
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        first = first or parts
        last = parts
    assert last["cross_entropy"] < 0.6 * first["cross_entropy"]
    assert float((net(x).argmax(1) == z_bin).float().mean()) > 0.9
    with pytest.raises(ValidationError, match="needs a network with a decoder"):
        scl_loss_published(_mlp_net(decoder=False), x, None, z_bin, feature_jitter)
    with pytest.raises(ValidationError, match="at least 2 galaxies"):
        scl_loss_published(net, x[:1], None, z_bin[:1], feature_jitter)
