"""NetConfig round trips and errors; SCLNet parts, decoder-less nets and the refit head."""

import json

import numpy as np
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
    NetConfig,
    build_net,
)

IMAGES = {"kind": "compact", "n_bins": 12, "n_bands": 3, "image_size": 16, "width": 8,
          "rest_dim": 8, "estimator_hidden": 16}  # fmt: skip


def test_config_round_trips_through_json():
    cfg = NetConfig(kind="mlp", n_bins=180, n_features=7, hidden=(64, 32), dropout=0.1)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["hidden"] == [64, 32]
    assert NetConfig.from_dict(d) == cfg
    assert NetConfig.from_dict(d).hidden == (64, 32)


def test_config_stores_plain_python_numbers():
    cfg = NetConfig(kind="compact", n_bins=np.int64(10), n_bands=5, image_size=np.int64(32))
    assert type(cfg.n_bins) is int and type(cfg.image_size) is int
    json.dumps(cfg.to_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, r"unknown network config keys \['colour'\]"),
        ({"kind": "foo"}, "kind must be one of"),
        ({"n_bands": 0}, "needs n_bands >= 1"),
        ({"image_size": 4}, "needs image_size >= 8"),
        ({"n_bins": 0}, "n_bins must be an integer >= 1, got 0"),
        ({"width": 2.5}, "width must be an integer"),
        ({"dropout": 1.5}, "dropout"),
        ({"hidden": [8, 0]}, "hidden"),
        ({"kind": "mlp"}, "needs n_features >= 1"),
    ],
)
def test_bad_configs_are_named(change, message):
    with pytest.raises(ValidationError, match=message):
        NetConfig.from_dict({**IMAGES, **change})


def test_config_requires_kind_and_bins():
    with pytest.raises(ValidationError, match=r"required keys \['n_bins'\]"):
        NetConfig.from_dict({"kind": "mlp", "n_features": 3})


def test_net_parts_follow_the_kind():
    torch.manual_seed(0)
    net = build_net(IMAGES)
    assert isinstance(net.encoder, CompactEncoder)
    assert isinstance(net.decoder, ImageDecoder)
    assert isinstance(net.estimator, Estimator)
    paper = build_net({**IMAGES, "kind": "paper"})
    assert isinstance(paper.encoder, InceptionEncoder)
    mlp = build_net({"kind": "mlp", "n_bins": 5, "n_features": 3, "hidden": [8]})
    assert isinstance(mlp.encoder, MLPEncoder)
    assert isinstance(mlp.decoder, FeatureDecoder)


def test_net_encode_estimate_decode_forward():
    torch.manual_seed(0)
    net = build_net(IMAGES)
    x, extra = torch.randn(2, 3, 16, 16), torch.randn(2, 1)
    v_a, v_b = net.encode(x, extra)
    assert v_a.shape == (2, 16) and v_b.shape == (2, 8)
    assert net.estimate(v_a).shape == (2, 12)
    assert net.decode(v_a, v_b).shape == x.shape
    assert torch.allclose(net(x, extra), net.estimate(v_a))


def test_net_without_decoder_refuses_to_decode():
    net = build_net({**IMAGES, "decoder": False})
    assert net.decoder is None
    v_a, v_b = net.encode(torch.randn(2, 3, 16, 16), torch.randn(2, 1))
    with pytest.raises(ValidationError, match="no decoder"):
        net.decode(v_a, v_b)


def test_new_estimator_is_fresh_and_of_the_same_shape():
    torch.manual_seed(0)
    net = build_net(IMAGES)
    fresh = net.new_estimator()
    assert isinstance(fresh, Estimator)
    old = net.estimator.state_dict()
    new = fresh.state_dict()
    assert old.keys() == new.keys()
    assert all(old[k].shape == new[k].shape for k in old)
    assert not torch.equal(old["fc.weight"], new["fc.weight"])
    assert fresh is not net.estimator


def test_state_dict_reloads_into_a_net_built_from_the_saved_config():
    torch.manual_seed(0)
    net = build_net(IMAGES)
    clone = build_net(json.loads(json.dumps(net.config.to_dict())))
    clone.load_state_dict(net.state_dict())
    x, extra = torch.randn(2, 3, 16, 16), torch.randn(2, 1)
    assert torch.equal(clone(x, extra), net(x, extra))


@pytest.mark.parametrize("kind", ["compact", "paper"])
def test_batch_norm_follows_every_convolution_and_leaves_old_names_alone(kind):
    plain = build_net({**IMAGES, "kind": kind}).encoder
    normed = build_net({**IMAGES, "kind": kind, "batch_norm": True}).encoder
    convs = [m for m in normed.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in normed.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == len(convs) > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    # Networks saved before the option existed load into batch_norm=False ones: the
    # parameter names of the plain encoder are those it always had.
    state = plain.state_dict()
    assert state["stem.0.weight"].ndim == 4
    if kind == "compact":
        assert {k.split(".")[-2] for k in state if k.startswith("blocks.")} == {"conv"}
    else:  # conv 1x1, PReLU, conv 3x3, PReLU
        assert state["features.0.branch3.1.weight"].ndim == 1
        assert state["features.0.branch3.2.weight"].shape[-2:] == (3, 3)
    with pytest.raises(ValidationError, match="batch_norm applies to the image encoders"):
        NetConfig(kind="mlp", n_bins=4, n_features=3, batch_norm=True)
    with pytest.raises(ValidationError, match="batch_norm must be true or false"):
        NetConfig.from_dict({**IMAGES, "batch_norm": "yes"})
