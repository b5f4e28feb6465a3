"""Shapes of encoders, estimator and decoders, and their input checks."""

import pytest
import torch

from clapkit.errors import ValidationError
from clapkit.nets import (
    CompactEncoder,
    Estimator,
    FeatureDecoder,
    ImageDecoder,
    InceptionEncoder,
    MLPEncoder,
)


@pytest.mark.parametrize("size", [16, 24, 32, 64])
def test_compact_encoder_shapes(size):
    torch.manual_seed(0)
    enc = CompactEncoder(n_bands=5, image_size=size, latent_dim=16, rest_dim=12, width=8)
    v_a, v_b = enc(torch.randn(3, 5, size, size), torch.randn(3, 1))
    assert v_a.shape == (3, 16)
    assert v_b.shape == (3, 12)
    assert torch.isfinite(v_a).all() and torch.isfinite(v_b).all()


def test_compact_encoder_reads_the_extra_scalars():
    torch.manual_seed(0)
    enc = CompactEncoder(n_bands=2, image_size=16, n_extra=1, width=8)
    x = torch.randn(2, 2, 16, 16)
    v0, _ = enc(x, torch.zeros(2, 1))
    v1, _ = enc(x, torch.ones(2, 1))
    assert not torch.allclose(v0, v1)


def test_compact_encoder_without_extra():
    enc = CompactEncoder(n_bands=2, image_size=16, n_extra=0, width=8)
    v_a, _ = enc(torch.zeros(2, 2, 16, 16))
    assert v_a.shape == (2, 16)


def test_encoder_input_checks():
    enc = CompactEncoder(n_bands=5, image_size=16, width=8)
    with pytest.raises(ValidationError, match=r"\('B', 5, 16, 16\)"):
        enc(torch.zeros(2, 4, 16, 16), torch.zeros(2, 1))
    with pytest.raises(ValidationError, match=r"\('B', 5, 16, 16\), got \(2, 5, 32, 32\)"):
        enc(torch.zeros(2, 5, 32, 32), torch.zeros(2, 1))
    with pytest.raises(ValidationError, match="extra"):
        enc(torch.zeros(2, 5, 16, 16))
    with pytest.raises(ValidationError, match=r"extra must have shape \(2, 1\)"):
        enc(torch.zeros(2, 5, 16, 16), torch.zeros(2, 3))
    with pytest.raises(ValidationError, match="image_size must be an integer >= 8, got 4"):
        CompactEncoder(n_bands=5, image_size=4)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CompactEncoder(n_bands=0, image_size=16), "n_bands must be an integer >= 1, got 0"),
        (lambda: CompactEncoder(n_bands=5, image_size=16.0), r"image_size must be an integer >= 8, got 16\.0"),
        (lambda: InceptionEncoder(n_bands=5, image_size=16, width=True), "width must be an integer >= 1, got True"),
        (lambda: CompactEncoder(n_bands=5, image_size=16, n_extra=-1), "n_extra must be an integer >= 0, got -1"),
        (lambda: MLPEncoder(n_features=2.5), r"n_features must be an integer >= 1, got 2\.5"),
        (lambda: MLPEncoder(n_features=3, hidden=(8, 0)), r"hidden\[1\] must be an integer >= 1, got 0"),
        (lambda: MLPEncoder(n_features=3, n_extra=0.5), r"n_extra must be an integer >= 0, got 0\.5"),
    ],
)  # fmt: skip
def test_encoder_sizes_must_be_whole_numbers(make, match):
    with pytest.raises(ValidationError, match=match):
        make()


def test_paper_encoder_shapes():
    torch.manual_seed(0)
    enc = InceptionEncoder(n_bands=5, image_size=32, rest_dim=24, width=8)
    v_a, v_b = enc(torch.randn(2, 5, 32, 32), torch.randn(2, 1))
    assert v_a.shape == (2, 16)
    assert v_b.shape == (2, 24)


def test_paper_encoder_defaults_follow_the_paper():
    enc = InceptionEncoder(n_bands=5, image_size=64)
    assert enc.rest_dim == 512
    assert enc.stem[0].out_channels == 64
    assert enc.stem[0].kernel_size == (5, 5)


def test_mlp_encoder_shapes_and_extra():
    torch.manual_seed(0)
    enc = MLPEncoder(n_features=6, n_extra=1, latent_dim=4, rest_dim=3, hidden=(16, 16))
    v_a, v_b = enc(torch.randn(5, 6), torch.randn(5, 1))
    assert v_a.shape == (5, 4)
    assert v_b.shape == (5, 3)
    linear = MLPEncoder(n_features=6, hidden=())
    assert linear(torch.randn(5, 6))[0].shape == (5, 16)
    with pytest.raises(ValidationError, match=r"\(B, 6\)"):
        linear(torch.randn(5, 7))


def test_estimator_outputs_logits_per_bin():
    est = Estimator(latent_dim=16, n_bins=30, hidden=32, dropout=0.1)
    assert est(torch.randn(4, 16)).shape == (4, 30)
    with pytest.raises(ValidationError, match=r"\(B, 16\)"):
        est(torch.randn(4, 15))
    with pytest.raises(ValidationError, match="dropout"):
        Estimator(16, 30, dropout=1.0)


@pytest.mark.parametrize("size", [16, 24, 32, 64, 17])
def test_image_decoder_gives_the_exact_size(size):
    dec = ImageDecoder(in_dim=20, n_bands=5, image_size=size, width=8)
    assert dec(torch.randn(2, 20)).shape == (2, 5, size, size)


def test_feature_decoder_shape():
    assert FeatureDecoder(in_dim=10, n_features=7, hidden=16)(torch.randn(3, 10)).shape == (3, 7)


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "compact", "n_bands": 3, "image_size": 16, "width": 4, "rest_dim": 4},
        {"kind": "paper", "n_bands": 3, "image_size": 16, "width": 4, "rest_dim": 4},
        {"kind": "mlp", "n_features": 5, "n_extra": 0, "hidden": (8,), "rest_dim": 4},
    ],
)
def test_encoder_dropout_is_random_in_training_and_keeps_the_parameter_names(config):
    from clapkit.nets import NetConfig, SCLNet

    torch.manual_seed(0)
    plain = SCLNet(NetConfig(n_bins=6, estimator_hidden=8, **config))
    dropped = SCLNet(NetConfig(n_bins=6, estimator_hidden=8, encoder_dropout=0.5, **config))
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    if config["kind"] == "mlp":
        x, extra = torch.randn(4, 5), None
    else:
        x, extra = torch.randn(4, 3, 16, 16), torch.randn(4, 1)
    dropped.eval()
    torch.testing.assert_close(dropped.encode(x, extra)[0], plain.eval().encode(x, extra)[0])
    dropped.train()
    first, second = dropped.encode(x, extra)[0], dropped.encode(x, extra)[0]
    assert not torch.allclose(first, second)
    with pytest.raises(ValidationError, match="encoder_dropout must be in"):
        NetConfig(n_bins=6, encoder_dropout=1.0, **config)
