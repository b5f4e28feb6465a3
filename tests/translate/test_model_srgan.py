"""SRGAN translator: shapes, determinism, training on a toy paired task, validation."""

import math

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.srgan import SRGANConfig, SRGANTranslator

BANDS = 5
SIZE = 16
KEYS = {"content", "perceptual", "adversarial", "discriminator"}


def _model(size: int = SIZE, seed: int = 0, **overrides) -> SRGANTranslator:
    torch.manual_seed(seed)
    return SRGANTranslator(SRGANConfig.preset("tiny", **overrides), BANDS, size)


def _blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur of every band, 5×5 kernel, edges replicated."""
    r = torch.arange(-2, 3, dtype=x.dtype)
    k1 = torch.exp(-(r**2) / (2 * sigma**2))
    k2 = torch.outer(k1, k1)
    k2 = (k2 / k2.sum()).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k2, groups=x.shape[1])


def _toy_pairs(n: int = 8, size: int = SIZE, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy round 'galaxies' and their targets: the source blurred and scaled by 1.5."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    profile = torch.exp(-((xx - centre) ** 2 + (yy - centre) ** 2) / (2 * 2.5**2))
    amplitude = 2 + 4 * torch.rand(n, BANDS, 1, 1, generator=g)
    source = amplitude * profile + 0.3 * torch.randn(n, BANDS, size, size, generator=g)
    return source, 1.5 * _blur(source)


def _batch(source: torch.Tensor, target: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(source, target, source[:0], target[:0])


def _translate(model: SRGANTranslator, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.translate(x, torch.Generator().manual_seed(seed))


def _train(model: SRGANTranslator, steps: int, lr: float = 1e-2, epoch: int = 0) -> list[dict]:
    source, target = _toy_pairs(size=model.size)
    opts = model.make_optimizers(lr)
    g = torch.Generator().manual_seed(0)
    model.train()
    history = []
    for step in range(steps):
        rows = slice(4 * (step % 2), 4 * (step % 2) + 4)
        history.append(model.train_step(_batch(source[rows], target[rows]), opts, epoch, g))
    return history


# --- shapes and determinism -------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 40])
@pytest.mark.parametrize("body_scale", [1, 2, 8])
def test_output_shape_equals_input_and_training_runs(size, body_scale):
    model = _model(size, body_scale=body_scale)
    _train(model, steps=1)
    x = torch.randn(3, BANDS, size, size)
    assert _translate(model, x).shape == x.shape


def test_untrained_model_is_the_identity_and_training_moves_it():
    model = _model()
    x = _toy_pairs()[0]
    assert torch.equal(_translate(model, x), x)
    _train(model, steps=2)
    assert not torch.allclose(_translate(model, x), x, atol=1e-3)


def test_translate_is_deterministic_and_ignores_the_generator_and_batch():
    model = _model()
    _train(model, steps=4)
    x = _toy_pairs()[0]
    first = _translate(model, x, seed=0)
    assert torch.equal(_translate(model, x, seed=0), first)
    # SRGAN draws no noise: another seed gives the same images.
    assert torch.equal(_translate(model, x, seed=123), first)
    # In eval mode BatchNorm uses its running statistics, so a galaxy's translation does
    # not depend on the other galaxies in its batch.
    torch.testing.assert_close(_translate(model, x[2:3]), first[2:3], atol=1e-5, rtol=1e-5)


def test_state_dict_round_trip_gives_the_same_translation():
    model = _model(seed=0)
    _train(model, steps=4)
    x = _toy_pairs()[0]
    fresh = _model(seed=5)
    _train(fresh, steps=1)
    assert not torch.allclose(_translate(fresh, x), _translate(model, x))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(_translate(fresh, x), _translate(model, x))


# --- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("epoch", [0, 10], ids=["adversarial", "pretraining"])
def test_training_lowers_the_content_loss_on_a_toy_task(epoch):
    model = _model(pretrain_epochs=5)
    history = _train(model, steps=30, epoch=epoch)
    content = [h["content"] for h in history]
    first, last = sum(content[:4]) / 4, sum(content[-4:]) / 4
    assert last < 0.5 * first, (first, last)


@pytest.mark.parametrize("content_loss", ["mse", "l1"])
def test_train_step_returns_finite_floats_and_keeps_the_discriminator_trainable(content_loss):
    model = _model(content_loss=content_loss)
    losses = _train(model, steps=2)[-1]
    assert set(losses) == KEYS
    assert all(type(v) is float and math.isfinite(v) for v in losses.values())
    assert losses["adversarial"] > 0 and losses["discriminator"] > 0
    assert all(p.requires_grad for p in model.parameters())


def test_pretraining_trains_the_generator_only():
    model = _model(pretrain_epochs=2)
    disc = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    gen = {k: v.clone() for k, v in model.generator.state_dict().items()}
    losses = _train(model, steps=2, epoch=1)[-1]
    assert losses["content"] > 0
    assert losses["perceptual"] == losses["adversarial"] == losses["discriminator"] == 0.0
    assert all(torch.equal(v, model.discriminator.state_dict()[k]) for k, v in disc.items())
    assert not all(torch.equal(v, model.generator.state_dict()[k]) for k, v in gen.items())
    # From epoch pretrain_epochs on, the discriminator learns too.
    _train(model, steps=1, epoch=2)
    assert not all(torch.equal(v, model.discriminator.state_dict()[k]) for k, v in disc.items())


def test_make_optimizers_names_and_learning_rates():
    model = _model(discriminator_lr_scale=2.0)
    opts = model.make_optimizers(1e-3)
    assert set(opts) == {"generator", "discriminator"}
    assert opts["generator"].param_groups[0]["lr"] == pytest.approx(1e-3)
    assert opts["discriminator"].param_groups[0]["lr"] == pytest.approx(2e-3)
    assert opts["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    owned = {name: {id(p) for g in o.param_groups for p in g["params"]} for name, o in opts.items()}
    assert owned["generator"] == {id(p) for p in model.generator.parameters()}
    assert owned["discriminator"] == {id(p) for p in model.discriminator.parameters()}


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(2, BANDS - 1, SIZE, SIZE), (2, BANDS, SIZE + 8, SIZE + 8), (BANDS, SIZE, SIZE)]
)
def test_wrong_shapes_are_refused(shape):
    model = _model()
    bad = torch.zeros(shape)
    with pytest.raises(ValidationError, match="must have shape"):
        _translate(model, bad)
    if len(shape) == 4:
        opts = model.make_optimizers(1e-3)
        with pytest.raises(ValidationError, match="must have shape"):
            model.train_step(_batch(bad, bad), opts, 0, torch.Generator())


def test_nan_pixels_are_refused():
    model = _model()
    source, target = _toy_pairs(n=4)
    target[1, 2, 3, 4] = float("nan")
    opts = model.make_optimizers(1e-3)
    with pytest.raises(ValidationError, match="target hold NaN"):
        model.train_step(_batch(source, target), opts, 0, torch.Generator())
    source[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValidationError, match="source images hold NaN"):
        _translate(model, source)


def test_an_empty_batch_is_refused():
    model = _model()
    empty = torch.zeros(0, BANDS, SIZE, SIZE)
    with pytest.raises(ValidationError, match="no paired source"):
        model.train_step(_batch(empty, empty), model.make_optimizers(1e-3), 0, torch.Generator())


def test_missing_optimizer_is_refused():
    model = _model()
    source, target = _toy_pairs(n=4)
    opts = model.make_optimizers(1e-3)
    del opts["discriminator"]
    with pytest.raises(ValidationError, match="discriminator"):
        model.train_step(_batch(source, target), opts, 0, torch.Generator())


# --- configuration ----------------------------------------------------------------------


def test_unknown_config_key_is_refused():
    with pytest.raises(ValidationError, match="unknown SRGANConfig options"):
        SRGANConfig.from_dict({"channels": 8, "n_resblocks": 4})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channels", 0),
        ("n_blocks", 2.5),
        ("outer_kernel", 4),
        ("body_scale", 3),
        ("body_scale", 2.0),
        ("disc_downsamplings", 0),
        ("content_loss", "l2"),
        ("adversarial_weight", -1e-3),
        ("perceptual_weight", float("nan")),
        ("pretrain_epochs", -1),
        ("discriminator_lr_scale", 0.0),
    ],
)
def test_bad_config_values_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        SRGANConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("outer_kernel", 4, "SRGANConfig.outer_kernel must be odd, got 4"),
        ("outer_kernel", 3.0, r"SRGANConfig.outer_kernel must be an integer >= 1, got 3\.0"),
        ("outer_kernel", True, "SRGANConfig.outer_kernel must be an integer >= 1, got True"),
        ("body_scale", 3, "SRGANConfig.body_scale must be 1, 2, 4 or 8, got 3"),
        ("body_scale", 2.0, r"SRGANConfig.body_scale must be an integer >= 1, got 2\.0"),
    ],
)
def test_kernel_and_scale_are_whole_numbers_then_odd_or_allowed(field, value, message):
    with pytest.raises(ValidationError, match=message):
        SRGANConfig(**{field: value})


def test_config_round_trips_and_cpu_preset_is_the_default():
    cfg = SRGANConfig.preset("paper", perceptual_weight=0.5)
    assert SRGANConfig.from_dict(cfg.to_dict()) == cfg
    assert SRGANConfig.preset("cpu") == SRGANConfig()


def test_presets_build_and_grow():
    counts = {}
    for name in ("tiny", "cpu", "paper"):
        model = SRGANTranslator(SRGANConfig.preset(name), BANDS, 136)
        assert model.name == "srgan" and model.supervised
        counts[name] = sum(p.numel() for p in model.parameters())
    assert counts["paper"] > counts["cpu"] > counts["tiny"]
