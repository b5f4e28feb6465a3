"""Attributions of image models: analytic truths on hand-made models, then the summaries."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import spearmanr

from clapkit.errors import ValidationError
from clapkit.interpret.attributions import (
    METHODS,
    attribute,
    centre_fraction,
    mean_by_group,
    radial_profiles,
    randomisation_check,
    randomised_copy,
    rank_correlation,
)
from clapkit.nets.scl import NetConfig, SCLNet

N_BANDS, SIZE, N_BINS = 2, 9, 4


class Linear(nn.Module):
    """logits_c = Σ w_c · x (+ optional per-galaxy scale from extra): gradients known exactly."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(N_BINS, N_BANDS, SIZE, SIZE, generator=g))

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        logits = torch.einsum("nbhw,cbhw->nc", x, self.weight)  # (B, n_bins)
        if extra is not None:
            logits = logits * extra[:, :1] + extra[:, 1:]
        return logits


class SmoothConv(nn.Module):
    """A small conv net with smooth activations, so integrated gradients converge fast."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(N_BANDS, 4, 3, padding=1)
        self.act = nn.Tanh()
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4 * SIZE * SIZE, N_BINS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.act(self.conv(x))).flatten(1))


def centred_window_net() -> nn.Module:
    """Conv → softplus → linear whose weights look only at a Gaussian window on the centre.

    Stands in for a trained network: its maps have structure (the centre) that random
    weights do not reproduce.
    """
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(N_BANDS, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 15 * 15, 3)
    )
    y, x = np.indices((15, 15))
    window = torch.tensor(np.exp(-((y - 7) ** 2 + (x - 7) ** 2) / 8.0), dtype=torch.float32)
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
        for c in range(4):
            net[0].weight[c, c % N_BANDS, 1, 1] = 1.0
        net[3].weight.copy_(window.expand(3, 4, 15, 15).reshape(3, -1))
        net[3].bias.zero_()
    return net


def images(n: int = 6, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, N_BANDS, size, size)).astype(np.float32)


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k
    assert all(p.grad is None for p in model.parameters())


# -----------------------------------------------------------------------------
# attribute


def test_saliency_of_linear_model_is_absolute_weight():
    model, x = Linear(), images()
    target = np.array([0, 1, 2, 3, 0, 3])
    maps = attribute(model, x, target, method="saliency")
    expected = model.weight.detach().abs().numpy()[target]
    assert maps.dtype == np.float32
    np.testing.assert_array_equal(maps, expected)


def test_integrated_gradients_of_linear_model_is_input_times_weight():
    model, x = Linear(), images()
    target = np.array([3, 2, 1, 0, 1, 2])
    w = model.weight.detach().numpy()[target]
    maps = attribute(model, x, target, n_steps=5)
    np.testing.assert_allclose(maps, x * w, rtol=1e-5, atol=1e-6)

    baseline = np.full((N_BANDS, SIZE, SIZE), 0.3, dtype=np.float32)
    maps = attribute(model, x, target, baseline=baseline, n_steps=5)
    np.testing.assert_allclose(maps, (x - baseline) * w, rtol=1e-5, atol=1e-6)

    per_galaxy = images(6, seed=1)
    maps = attribute(model, x, target, baseline=per_galaxy, n_steps=5, batch_size=4)
    np.testing.assert_allclose(maps, (x - per_galaxy) * w, rtol=1e-5, atol=1e-5)


def test_read_only_inputs_are_accepted():
    # memory maps and broadcast views cannot be written; no warning may arise from them
    model = Linear()
    x = np.broadcast_to(images(1), (4, N_BANDS, SIZE, SIZE))
    baseline = np.broadcast_to(np.float32(0.1), (N_BANDS, SIZE, SIZE))
    maps = attribute(model, x, np.zeros(4, dtype=int), baseline=baseline, n_steps=3)
    np.testing.assert_allclose(maps, (x - 0.1) * model.weight.detach().numpy()[0], atol=1e-5)


def test_internal_batch_size_bounds_each_forward_pass():
    sizes = []

    class Recording(Linear):
        def forward(self, x, extra=None):
            sizes.append(x.shape[0])
            return super().forward(x, extra)

    x, target = images(5), np.zeros(5, dtype=int)
    attribute(Recording(), x, target, n_steps=32, batch_size=32, internal_batch_size=8)
    assert max(sizes) <= 8


def test_extra_reaches_each_galaxy():
    # logits scaled by extra[:, 0] per galaxy: maps scale with it, across chunk borders
    model, x = Linear(), images(7)
    target = np.zeros(7, dtype=int)
    extra = np.stack([np.arange(1.0, 8.0), np.ones(7)], axis=1)
    w = model.weight.detach().numpy()[0]
    expected = x * w * extra[:, 0, None, None, None]
    maps = attribute(model, x, target, extra=extra, n_steps=4, batch_size=3)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    sal = attribute(model, x, target, extra=extra, method="saliency", batch_size=3)
    np.testing.assert_allclose(sal, np.abs(w * extra[:, 0, None, None, None]), rtol=1e-6)
    # each noisy copy gets its own galaxy's extra: the gradient, constant, is unchanged
    smooth = attribute(model, x, target, extra=extra, method="smoothgrad", n_samples=5)
    np.testing.assert_allclose(smooth, sal, rtol=1e-5)


def test_integrated_gradients_are_complete_on_a_conv_net():
    torch.manual_seed(1)
    model, x = SmoothConv(), images(4)
    target = np.array([0, 1, 2, 3])
    maps = attribute(model, x, target, n_steps=64)
    with torch.no_grad():
        model.eval()
        gain = model(torch.from_numpy(x)) - model(torch.zeros_like(torch.from_numpy(x)))
    expected = gain.numpy()[np.arange(4), target]
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_batching_does_not_change_the_maps(method):
    torch.manual_seed(2)
    model, x = SmoothConv(), images(7)
    target = np.arange(7) % N_BINS
    ref = attribute(
        model, x, target, method=method, n_steps=8, batch_size=32, internal_batch_size=64
    )
    for batch_size, internal in [(1, 1), (3, 5), (4, 100)]:
        maps = attribute(
            model, x, target, method=method, n_steps=8, batch_size=batch_size,
            internal_batch_size=internal,
        )  # fmt: skip
        np.testing.assert_allclose(maps, ref, rtol=1e-5, atol=1e-7)


def test_model_is_left_as_it_was():
    torch.manual_seed(3)
    model = SmoothConv()
    model.train()
    model.conv.eval()  # mixed modes on purpose: each must come back
    model.conv.bias.requires_grad_(False)
    before = snapshot(model)
    x, target = images(3), np.zeros(3, dtype=int)
    first = attribute(model, x, target, n_steps=4)
    assert_unchanged(model, before)
    # evaluation mode inside: dropout is off, so the maps are reproducible
    np.testing.assert_array_equal(attribute(model, x, target, n_steps=4), first)
    assert_unchanged(model, before)


def test_works_under_no_grad():
    model, x = Linear(), images(2)
    with torch.no_grad():
        maps = attribute(model, x, [1, 1], method="saliency")
    np.testing.assert_array_equal(maps[0], model.weight.detach().abs().numpy()[1])


def test_scl_net_with_extra_scalars():
    torch.manual_seed(4)
    cfg = NetConfig(kind="compact", n_bins=12, n_bands=3, image_size=16, n_extra=1, width=4,
                    rest_dim=4, estimator_hidden=8, decoder=False)  # fmt: skip
    net = SCLNet(cfg)
    x = np.random.default_rng(4).normal(size=(5, 3, 16, 16)).astype(np.float32)
    ebv = np.linspace(0.01, 0.1, 5)
    target = np.array([0, 3, 6, 9, 11])
    maps = attribute(net, x, target, extra=ebv, n_steps=8, batch_size=2)
    assert maps.shape == x.shape and maps.dtype == np.float32 and np.isfinite(maps).all()
    same = attribute(net, x, target, extra=ebv[:, None], n_steps=8, batch_size=5)
    np.testing.assert_allclose(maps, same, rtol=1e-5, atol=1e-7)
    sal = attribute(net, x, 11, extra=ebv, method="saliency")
    assert (sal >= 0).all() and sal.any()


# -----------------------------------------------------------------------------
# SmoothGrad


class HalfSquare(nn.Module):
    """Every logit is Σ x² / 2: the gradient is the image itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum(dim=(1, 2, 3))[:, None].repeat(1, N_BINS)  # (B, n_bins)


def test_smoothgrad_of_a_linear_model_is_its_saliency():
    # the gradient is the same at every noisy copy, so averaging |gradient| changes nothing
    model, x = Linear(), images()
    target = np.array([0, 1, 2, 3, 0, 3])
    smooth = attribute(model, x, target, method="smoothgrad", n_samples=7, noise_fraction=0.5)
    np.testing.assert_allclose(smooth, attribute(model, x, target, method="saliency"), rtol=1e-6)
    np.testing.assert_allclose(smooth, model.weight.detach().abs().numpy()[target], rtol=1e-6)


def test_smoothgrad_noise_is_a_fraction_of_each_images_range():
    # |gradient| at a zero pixel is |noise|, whose mean is σ √(2/π); σ = fraction × range
    x = np.zeros((2, N_BANDS, SIZE, SIZE), dtype=np.float32)
    x[0, 0, 4, 4], x[1, 1, 0, 0] = 2.0, -6.0  # ranges 2 and 6
    maps = attribute(HalfSquare(), x, 0, method="smoothgrad", n_samples=400, noise_fraction=0.1)
    for image, sigma in ((0, 0.2), (1, 0.6)):
        zero = x[image] == 0
        np.testing.assert_allclose(maps[image][zero].mean(), sigma * np.sqrt(2 / np.pi), rtol=0.03)


def test_smoothgrad_is_seeded_and_leaves_the_global_generator():
    torch.manual_seed(5)
    model, x = SmoothConv(), images(5)
    target = np.arange(5) % N_BINS
    state = torch.get_rng_state()
    first = attribute(model, x, target, method="smoothgrad", n_samples=6, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    again = attribute(model, x, target, method="smoothgrad", n_samples=6, seed=1, batch_size=2)
    other = attribute(model, x, target, method="smoothgrad", n_samples=6, seed=2)
    np.testing.assert_array_equal(again, first)
    assert not np.allclose(other, first, rtol=1e-3, atol=0)
    # the noise matters on a non-linear model, yet the maps stay close to saliency's
    saliency = attribute(model, x, target, method="saliency")
    assert not np.allclose(first, saliency, rtol=1e-3, atol=0)
    assert (first >= 0).all()
    assert spearmanr(first.ravel(), saliency.ravel())[0] > 0.8


# -----------------------------------------------------------------------------
# Radial summaries and groups


def test_radial_profile_of_a_disc():
    r = np.hypot(*(np.indices((15, 15)) - 7.0))
    disc = (r < 3).astype(float)
    maps = np.stack([disc, 2 * disc])[None]  # (1, 2, 15, 15)
    profiles, edges = radial_profiles(maps)
    np.testing.assert_array_equal(edges, np.arange(11.0))  # farthest corner: r = 9.9
    np.testing.assert_array_equal(profiles[0, 0], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(profiles[0, 1], 2 * profiles[0, 0])


def test_radial_profile_counts_every_pixel_once():
    maps = -np.ones((2, 1, 8, 8))  # absolute values are averaged
    profiles, edges = radial_profiles(maps, n_radii=4)
    np.testing.assert_array_equal(profiles, np.ones((2, 1, 4)))
    assert edges[0] == 0 and edges[-1] == pytest.approx(np.hypot(3.5, 3.5))
    profiles, _ = radial_profiles(maps, n_radii=100)  # annuli thinner than the pixel grid
    assert np.isnan(profiles).any()
    assert np.nanmax(profiles) == 1


def test_centre_fraction():
    point = np.zeros((1, 2, 9, 9))
    point[0, :, 4, 4] = [3.0, -1.0]
    np.testing.assert_array_equal(centre_fraction(point, 0.5), [[1.0, 1.0]])
    corner = np.zeros((1, 1, 9, 9))
    corner[0, 0, 0, 0] = 1.0
    assert centre_fraction(corner, 4.0)[0, 0] == 0.0
    uniform = np.ones((2, 1, 9, 9))
    inside = (np.hypot(*(np.indices((9, 9)) - 4.0)) <= 2).sum()
    np.testing.assert_allclose(centre_fraction(uniform, 2), inside / 81)
    assert np.isnan(centre_fraction(np.zeros((1, 1, 9, 9)), 2.0)).all()


def test_mean_by_group():
    values = np.arange(12.0).reshape(4, 3)
    means = mean_by_group(values, np.array(["late", "early", "late", "late"]))
    assert list(means) == ["early", "late"]
    assert all(type(k) is str for k in means)
    np.testing.assert_array_equal(means["early"], [3, 4, 5])
    np.testing.assert_array_equal(means["late"], [5, 6, 7])
    assert float(mean_by_group([1, 2, 4], [0, 1, 1])[1]) == 3.0


def test_rank_correlation_is_spearman_of_absolute_values():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3, 2, 4, 4))
    b = a + rng.normal(size=a.shape)
    rho = rank_correlation(a, b)
    for i in range(3):
        expected = spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic
        assert rho[i] == pytest.approx(expected)
    assert rank_correlation(a, a).tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(rank_correlation(a[:1], np.zeros_like(a[:1])))[0]


# -----------------------------------------------------------------------------
# Model-parameter randomisation


@pytest.mark.parametrize("method", METHODS)
def test_randomisation_check_passes_for_a_structured_net(method):
    net = centred_window_net()
    x = np.random.default_rng(6).normal(size=(6, N_BANDS, 15, 15)).astype(np.float32)
    before = snapshot(net)
    rng_state = torch.get_rng_state()
    result = randomisation_check(net, x, np.full(6, 2), method=method, n_steps=8, seed=3)
    assert result["verdict"] == "passed"
    assert result["median_abs_rho"] < 0.4
    assert result["unchanged"] == []
    assert result["rho"].shape == (6,)
    # the structure is in the trained maps, not the random ones
    assert centre_fraction(result["attributions"], 3).mean() > 0.5
    assert centre_fraction(result["randomised"], 3).mean() < 0.25
    assert_unchanged(net, before)
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_randomisation_check_fails_when_nothing_is_randomised():
    # no module with reset_parameters: the "randomised" copy is the model itself
    model = Linear()
    result = randomisation_check(model, images(), np.zeros(6, dtype=int), n_steps=4)
    assert result["unchanged"] == ["weight"]
    np.testing.assert_array_equal(result["rho"], np.ones(6))
    assert result["verdict"] == "failed"


def test_randomised_copy_is_seeded_and_leaves_the_model():
    net = centred_window_net()
    before = snapshot(net)
    a, b, c = (randomised_copy(net, seed=s) for s in (1, 1, 2))
    assert_unchanged(net, before)
    for (_, pa), (_, pb), (_, pc), (_, p) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), net.named_parameters(),
        strict=True,
    ):  # fmt: skip
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc) and not torch.equal(pa, p)


def test_randomised_copy_of_a_freshly_seeded_model_differs():
    # the default seed 0 must not reproduce the weights of a model built after manual_seed(0)
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    assert not torch.equal(randomised_copy(model).weight, model.weight)


# -----------------------------------------------------------------------------
# Bad input


def _attribute_kwargs(**changes):
    kwargs = dict(model=Linear(), images=images(3), target=np.zeros(3, dtype=int))
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"method": "gradcam"}, r"method must be one of \['integrated_gradients', 'saliency', 'smoothgrad'\]"),
        ({"model": lambda x: x}, "model must be a torch.nn.Module"),
        ({"images": np.zeros((3, SIZE, SIZE))}, r"images must have shape \(N, bands, H, W\)"),
        ({"images": np.zeros((0, N_BANDS, SIZE, SIZE))}, "no empty axis"),
        ({"images": np.full((3, N_BANDS, SIZE, SIZE), np.nan)}, r"not finite for galaxies \[0, 1, 2\]"),
        ({"target": np.zeros(2, dtype=int)}, r"target must have shape \(3,\)"),
        ({"target": np.zeros(3)}, "integer bin indices"),
        ({"target": np.array([0, -1, 0])}, "must be >= 0"),
        ({"target": np.array([0, N_BINS, 0])}, f"must be < {N_BINS}"),
        ({"extra": np.ones((2, 2))}, r"extra must have shape \(3, n_extra\)"),
        ({"extra": np.full((3, 2), np.inf)}, "extra is not finite"),
        ({"baseline": np.zeros((N_BANDS, SIZE))}, "baseline must have shape"),
        ({"baseline": np.zeros((N_BANDS, SIZE, SIZE)), "method": "saliency"}, "integrated_gradients only"),
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
        ({"batch_size": 2.0}, "batch_size must be an integer >= 1"),
        ({"internal_batch_size": 0}, "internal_batch_size must be"),
        ({"method": "smoothgrad", "n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"method": "smoothgrad", "n_samples": 2.5}, "n_samples must be an integer"),
        ({"method": "smoothgrad", "noise_fraction": 0}, r"noise_fraction must be a number in \(0, 1\)"),
        ({"method": "smoothgrad", "noise_fraction": 1.5}, r"noise_fraction must be a number in \(0, 1\)"),
        ({"method": "smoothgrad", "noise_fraction": np.nan}, "noise_fraction must be"),
        ({"method": "smoothgrad", "seed": -1}, "seed must be an integer >= 0"),
        ({"model": nn.Identity()}, r"logits of shape \(n, n_bins\)"),
    ],
)  # fmt: skip
def test_attribute_rejects_bad_input(changes, match):
    kwargs = _attribute_kwargs(**changes)
    with pytest.raises(ValidationError, match=match):
        attribute(kwargs.pop("model"), kwargs.pop("images"), kwargs.pop("target"), **kwargs)


def test_summaries_reject_bad_input():
    maps = np.ones((2, 1, 5, 5))
    with pytest.raises(ValidationError, match="maps must have shape"):
        radial_profiles(maps[0])
    with pytest.raises(ValidationError, match="n_radii must be an integer >= 1"):
        radial_profiles(maps, n_radii=0)
    with pytest.raises(ValidationError, match="radius must be a number of pixels > 0"):
        centre_fraction(maps, 0)
    with pytest.raises(ValidationError, match="radius must be finite"):
        centre_fraction(maps, np.inf)
    with pytest.raises(ValidationError, match=r"labels must have shape \(2,\)"):
        mean_by_group(maps, ["early"])
    with pytest.raises(ValidationError, match="values must be a real array"):
        mean_by_group(["a", "b"], ["early", "late"])
    with pytest.raises(ValidationError, match="must have one shape"):
        rank_correlation(maps, maps[:1])
    with pytest.raises(ValidationError, match=r"threshold must be in \(0, 1\]"):
        randomisation_check(Linear(), images(2), [0, 0], threshold=0)
    with pytest.raises(ValidationError, match="seed must be an integer >= 0"):
        randomised_copy(Linear(), seed=-1)


def test_non_finite_galaxies_are_named_across_check_blocks(monkeypatch):
    import clapkit.interpret.attributions as attributions

    monkeypatch.setattr(attributions, "_CHECK_BLOCK", 2)
    x = images(5)
    x[3, 1, 0, 0] = np.nan
    with pytest.raises(ValidationError, match=r"images is not finite for galaxies \[3\]"):
        attribute(Linear(), x, np.zeros(5, dtype=int))
