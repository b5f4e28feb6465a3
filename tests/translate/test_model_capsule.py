"""The capsule translator: shapes, routing invariants, determinism, learning, refusals."""

import math

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.capsule import (
    CapsuleConfig,
    CapsuleTranslator,
    route_by_agreement,
    squash,
)

BANDS = 5


def _model(size: int = 16, seed: int = 0, **overrides) -> CapsuleTranslator:
    torch.manual_seed(seed)
    return CapsuleTranslator(CapsuleConfig.preset("tiny", **overrides), BANDS, size)


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, BANDS, size, size, generator=torch.Generator().manual_seed(seed))


def _batch(source: torch.Tensor, target: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(source, target, source[:0], target[:0])


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :]) / 16
    weight = kernel.expand(x.shape[1], 1, 3, 3).contiguous()
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=x.shape[1])


def _toy_pairs(n: int = 8, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy sources; the target is a blurred, scaled copy of each."""
    source = _images(n, size, seed=1)
    return source, 0.6 * _blur(source)


def _translate(model: CapsuleTranslator, source: torch.Tensor, seed: int = 0) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.translate(source, torch.Generator().manual_seed(seed))


def _train(model: CapsuleTranslator, steps: int, lr: float = 1e-2) -> list[float]:
    source, target = _toy_pairs()
    optimizers = model.make_optimizers(lr)
    gen = torch.Generator().manual_seed(0)
    model.train()
    return [
        model.train_step(_batch(source, target), optimizers, 0, gen)["l1"] for _ in range(steps)
    ]


# --- shapes and routing ----------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 40])
def test_translation_keeps_the_shape(size):
    model = _model(size)
    source = _images(3, size)
    assert _translate(model, source).shape == source.shape
    v, coupling = model.capsules(source, return_coupling=True)
    assert v.shape == (3, 3, 4)
    # Two primary types at every position of the ⌈size / 16⌉² grid.
    assert coupling.shape == (3, 2 * ((size // 8 + 1) // 2) ** 2, 3)


def test_capsule_lengths_are_squashed_and_couplings_sum_to_one():
    model = _model(24)
    with torch.no_grad():
        v, coupling = model.capsules(3.0 * _images(4, 24), return_coupling=True)
    lengths = v.norm(dim=-1)
    assert torch.all(lengths >= 0) and torch.all(lengths < 1)
    assert torch.all(coupling >= 0)
    assert torch.allclose(coupling.sum(-1), torch.ones(coupling.shape[:2]), atol=1e-6)


def test_squash_keeps_direction_and_maps_length():
    s = torch.tensor([[0.5, 0.0, 0.0], [0.0, 3.0, 4.0]])
    v = squash(s)
    norms = s.norm(dim=-1)
    assert torch.allclose(v.norm(dim=-1), norms**2 / (1 + norms**2), atol=1e-6)
    assert torch.allclose(F.normalize(v, dim=-1), F.normalize(s, dim=-1), atol=1e-6)


def test_routing_follows_agreement():
    # (B, J, N, D): lower capsules 0-2 agree on output capsule 0 and disagree on
    # capsule 1; lower capsule 3 alone predicts capsule 1 and opposes capsule 0.
    u_hat = torch.zeros(1, 2, 4, 2)
    u_hat[0, 0, :3] = torch.tensor([2.0, 0.0])
    u_hat[0, 1, :3] = torch.tensor([[0.0, 0.5], [0.0, -0.5], [0.0, 0.5]])
    u_hat[0, 0, 3] = torch.tensor([-2.0, 0.0])
    u_hat[0, 1, 3] = torch.tensor([0.0, 2.0])
    _, uniform = route_by_agreement(u_hat, iterations=1)
    _, two = route_by_agreement(u_hat, iterations=2)
    _, three = route_by_agreement(u_hat, iterations=3)
    assert torch.allclose(uniform, torch.full((1, 4, 2), 0.5), atol=1e-6)
    # Each round sends more of every lower capsule to the capsule it agrees with.
    assert torch.all(three[0, :3, 0] > two[0, :3, 0]) and torch.all(two[0, :3, 0] > 0.7)
    assert three[0, 3, 1] > two[0, 3, 1] > 0.9


def test_capsules_carry_context_beyond_the_local_refinement():
    # The full-resolution convolutions see 5×5 pixels; only the routed capsules connect
    # one corner of the image to the other.
    model = _model(24)
    source, target = _images(4, 24, seed=2), 0.6 * _blur(_images(4, 24, seed=2))
    optimizers = model.make_optimizers(1e-2)
    for _ in range(3):
        model.train_step(_batch(source, target), optimizers, 0, torch.Generator())
    moved = source.clone()
    moved[:, :, :4, :4] += 3.0
    far = (slice(None), slice(None), slice(-4, None), slice(-4, None))
    change = (_translate(model, source) - _translate(model, moved))[far].abs().max()
    assert change > 1e-5
    assert (model.capsules(source) - model.capsules(moved)).abs().max() > 1e-5


# --- determinism and state -------------------------------------------------------------


def test_translate_is_deterministic_and_ignores_the_generator_seed():
    model = _model()
    _train(model, 3)
    source = _images(2, 16, seed=5)
    first = _translate(model, source, seed=0)
    assert torch.equal(first, _translate(model, source, seed=0))
    # The model has no noise input: another seed gives the same translation.
    assert torch.equal(first, _translate(model, source, seed=123))


def test_state_dict_round_trip_gives_the_same_translation():
    model = _model(seed=0)
    _train(model, 3)
    source = _images(2, 16, seed=7)
    expected = _translate(model, source)
    fresh = _model(seed=1)
    assert not torch.allclose(_translate(fresh, source), expected)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(_translate(fresh, source), expected)


# --- training --------------------------------------------------------------------------


def test_train_step_returns_finite_l1_and_changes_the_model():
    model = _model()
    before = _translate(model, _images(2, 16, seed=3))
    losses = _train(model, 2)
    source, target = _toy_pairs()
    out = model.train_step(
        _batch(source, target), model.make_optimizers(1e-3), 0, torch.Generator()
    )
    assert set(out) == {"l1"}
    assert type(out["l1"]) is float and math.isfinite(out["l1"])
    assert all(math.isfinite(x) for x in losses)
    assert not torch.equal(before, _translate(model, _images(2, 16, seed=3)))


def test_training_lowers_the_l1_on_a_toy_paired_task():
    model = _model()
    losses = _train(model, 30)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first


def test_make_optimizers_names_one_adam_over_all_parameters():
    model = _model()
    optimizers = model.make_optimizers(2e-3)
    assert list(optimizers) == ["generator"]
    opt = optimizers["generator"]
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == 2e-3
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in model.parameters())


# --- refusals --------------------------------------------------------------------------


def test_empty_paired_batch_is_refused():
    model = _model()
    empty = _images(0, 16)
    with pytest.raises(ValidationError, match="no paired source"):
        model.train_step(_batch(empty, empty), model.make_optimizers(1e-3), 0, torch.Generator())


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, BANDS - 1, 16, 16), "must have shape"), ((2, BANDS, 24, 24), "must have shape")],
)
def test_wrong_band_count_or_size_is_refused(shape, match):
    model = _model(16)
    bad = torch.zeros(shape)
    with pytest.raises(ValidationError, match=match):
        _translate(model, bad)
    with pytest.raises(ValidationError, match=match):
        model.capsules(bad)
    with pytest.raises(ValidationError, match=match):
        model.train_step(_batch(bad, bad), model.make_optimizers(1e-3), 0, torch.Generator())


def test_nan_pixels_are_refused():
    model = _model()
    source = _images(2, 16)
    bad = source.clone()
    bad[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValidationError, match="NaN"):
        _translate(model, bad)
    opts = model.make_optimizers(1e-3)
    with pytest.raises(ValidationError, match="target images hold NaN"):
        model.train_step(_batch(source, bad), opts, 0, torch.Generator())


# --- config ----------------------------------------------------------------------------


def test_unknown_config_key_is_refused():
    with pytest.raises(ValidationError, match="unknown CapsuleConfig options"):
        CapsuleConfig.from_dict({"n_capsules": 4, "n_caps": 4})


@pytest.mark.parametrize(
    ("field", "value"),
    [("routing_iterations", 0), ("capsule_dim", 1), ("n_capsules", 2.5), ("width", True)],
)
def test_bad_config_value_is_refused(field, value):
    with pytest.raises(ValidationError, match=f"CapsuleConfig.{field} must be an integer"):
        CapsuleConfig.preset("tiny", **{field: value})


def test_routing_iterations_must_be_a_whole_number():
    u_hat = torch.zeros(1, 2, 3, 4)
    for bad in (0, 1.5):
        with pytest.raises(ValidationError, match=f"iterations must be an integer >= 1, got {bad}"):
            route_by_agreement(u_hat, iterations=bad)


def test_config_round_trips_and_cpu_preset_is_the_default():
    config = CapsuleConfig.preset("paper")
    assert CapsuleConfig.from_dict(config.to_dict()) == config
    assert CapsuleConfig.preset("cpu") == CapsuleConfig()


def test_presets_build_and_grow():
    counts = {}
    for name in ("tiny", "cpu", "paper"):
        torch.manual_seed(0)
        model = CapsuleTranslator(CapsuleConfig.preset(name), BANDS, 32)
        counts[name] = sum(p.numel() for p in model.parameters())
    assert counts["paper"] > counts["cpu"] > counts["tiny"]


def test_wrong_config_class_is_refused():
    with pytest.raises(ValidationError, match="needs a CapsuleConfig"):
        CapsuleTranslator(object(), BANDS, 16)  # type: ignore[arg-type]
