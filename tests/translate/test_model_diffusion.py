"""The conditional diffusion translator: schedule, sampler, U-Net and the model's calls."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.diffusion import (
    DiffusionConfig,
    DiffusionTranslator,
    alpha_bar_schedule,
    ddim_sample,
    ddim_timesteps,
    predict_x0,
    q_sample,
)

BANDS = 5
SIZE = 16


def _close(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    # Not torch.testing.assert_close: its first call imports for seconds.
    return a.shape == b.shape and bool(((a - b).abs() <= atol).all())


def _model(size: int = SIZE, seed: int = 0, **overrides) -> DiffusionTranslator:
    torch.manual_seed(seed)
    return DiffusionTranslator(DiffusionConfig.preset("tiny", **overrides), BANDS, size)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy_pairs(n: int, size: int = SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs in noise, and as target the same images blurred and brightened."""
    g = _gen(seed)
    axis = torch.arange(size) - (size - 1) / 2
    r2 = axis[:, None] ** 2 + axis[None, :] ** 2
    amplitude = 1 + 3 * torch.rand(n, 1, 1, 1, generator=g)
    source = amplitude * torch.exp(-r2 / 8) + 0.5 * torch.randn(n, BANDS, size, size, generator=g)
    kernel = torch.full((BANDS, 1, 3, 3), 1 / 9)
    target = 1.5 * F.conv2d(source, kernel, padding=1, groups=BANDS)
    return source, target


def _batch(source: torch.Tensor, target: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(source, target, source[:0], source[:0])


def _translate(model: DiffusionTranslator, source: torch.Tensor, seed: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.translate(source, _gen(seed))


def _trained(steps: int = 3, seed: int = 0, **overrides) -> DiffusionTranslator:
    """A tiny model moved off its zero-initialised output layer by a few updates."""
    model = _model(seed=seed, **overrides)
    optimizers = model.make_optimizers(1e-2)
    source, target = _toy_pairs(4)
    for _ in range(steps):
        model.train_step(_batch(source, target), optimizers, 0, _gen(seed))
    return model


# --- schedule, forward process and sampler ---------------------------------------------


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_alpha_bar_decreases_from_one_to_zero(kind):
    ab = alpha_bar_schedule(kind, 1000)
    assert ab.shape == (1000,)
    assert ab[0] > 0.999
    assert ab[-1] < 1e-3
    assert bool((ab.diff() < 0).all())


def test_cosine_schedule_keeps_half_the_signal_at_mid_time_and_linear_does_not():
    # cos²(π/4) = 1/2 is what makes the cosine schedule spend steps evenly in log-SNR.
    assert 0.45 < alpha_bar_schedule("cosine", 1000)[500] < 0.55
    assert alpha_bar_schedule("linear", 1000)[500] < 0.1


def test_linear_schedule_ends_equally_noisy_for_any_number_of_steps():
    assert math.isclose(
        alpha_bar_schedule("linear", 100)[-1], alpha_bar_schedule("linear", 1000)[-1], rel_tol=0.5
    )


def test_schedule_refuses_unknown_kind_and_bad_length():
    with pytest.raises(ValidationError, match="schedule"):
        alpha_bar_schedule("quadratic", 100)
    with pytest.raises(ValidationError, match="timesteps"):
        alpha_bar_schedule("cosine", 0)


def test_q_sample_is_variance_preserving_and_starts_clean():
    ab = alpha_bar_schedule("cosine", 1000)
    g = _gen(0)
    x0 = torch.randn(64, 1, 16, 16, generator=g)
    eps = torch.randn(64, 1, 16, 16, generator=g)
    x_mid = q_sample(x0, torch.full((64,), 500), eps, ab)
    assert abs(x_mid.var().item() - 1) < 0.05
    # Half signal, half noise: correlated with both at √½.
    for part in (x0, eps):
        corr = torch.corrcoef(torch.stack([x_mid.flatten(), part.flatten()]))[0, 1]
        assert abs(corr.item() - math.sqrt(0.5)) < 0.03
    x_first = q_sample(x0, torch.zeros(64, dtype=torch.long), eps, ab)
    assert torch.allclose(x_first, x0, atol=0.05)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_predict_x0_with_the_true_noise_recovers_x0(kind):
    ab = alpha_bar_schedule(kind, 200)
    g = _gen(1)
    x0 = 3 * torch.randn(8, BANDS, 8, 8, generator=g)
    eps = torch.randn(8, BANDS, 8, 8, generator=g)
    t = torch.tensor([0, 1, 50, 100, 150, 190, 198, 199])
    x_t = q_sample(x0, t, eps, ab)
    assert _close(predict_x0(x_t, t, eps, ab), x0, atol=2e-3)
    # A wrong noise must not give x0 back.
    wrong = predict_x0(x_t, t, torch.zeros_like(eps), ab)
    assert (wrong - x0).abs().max() > 0.5


def test_ddim_timesteps_are_uniform_distinct_and_end_at_zero():
    assert ddim_timesteps(1000, 10) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert ddim_timesteps(7, 7) == [6, 5, 4, 3, 2, 1, 0]
    assert ddim_timesteps(100, 1) == [0]
    with pytest.raises(ValidationError, match="sampling steps"):
        ddim_timesteps(10, 11)


def _oracle(x0: torch.Tensor, ab: torch.Tensor, calls: list):
    """The ε that exactly explains x_t given the known x0, recording every call."""

    def denoise(x_t, t):
        a = ab[t].to(x_t.dtype).reshape(-1, 1, 1, 1)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        calls.append((t.clone(), eps.clone()))
        return eps

    return denoise


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_the_true_noise_oracle_recovers_x0(eta):
    ab = alpha_bar_schedule("cosine", 1000)
    x0 = 2 * torch.randn(3, BANDS, 8, 8, generator=_gen(2))
    calls = []
    out = ddim_sample(_oracle(x0, ab, calls), tuple(x0.shape), ab, 10, _gen(3), eta=eta)
    assert _close(out, x0, atol=1e-4)
    assert [int(t[0]) for t, _ in calls] == ddim_timesteps(1000, 10)
    assert all(t.shape == (3,) and t.dtype == torch.long for t, _ in calls)


def test_ddim_eta_zero_follows_one_noise_and_clipping_spares_in_range_samples():
    # Deterministic DDIM moves x_t along the line of a single ε; the oracle sees it.
    ab = alpha_bar_schedule("cosine", 1000)
    x0 = 2 * torch.randn(2, 1, 8, 8, generator=_gen(4))
    calls = []
    out = ddim_sample(_oracle(x0, ab, calls), (2, 1, 8, 8), ab, 6, _gen(5), clip_x0=20.0)
    assert _close(out, x0, atol=1e-4)
    first = calls[0][1]
    for _, eps in calls[1:]:
        assert _close(eps, first, atol=2e-3)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_eta_injects_the_ddpm_posterior_variance(eta):
    # Along the oracle's path, x_prev − √ᾱ_prev x0 = √(1 − ᾱ_prev − σ²) ε_t + σ z with fresh
    # z and σ² = η² β̃, β̃ = (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev) the DDPM posterior's
    # variance; the oracle reports ε_prev = (x_prev − √ᾱ_prev x0)/√(1 − ᾱ_prev).
    ab = alpha_bar_schedule("cosine", 1000)
    x0 = torch.randn(16, 1, 16, 16, generator=_gen(10))
    calls = []
    ddim_sample(_oracle(x0, ab, calls), tuple(x0.shape), ab, 4, _gen(11), eta=eta)
    grid = ddim_timesteps(1000, 4)
    for i in range(len(grid) - 1):
        a, a_prev = ab[grid[i]].item(), ab[grid[i + 1]].item()
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        eps_now, eps_next = calls[i][1], calls[i + 1][1]
        fresh = eps_next * math.sqrt(1 - a_prev) - math.sqrt(1 - a_prev - sigma**2) * eps_now
        assert abs(fresh.std().item() - sigma) < 0.05 * sigma + 1e-3
        if eta > 0:
            corr = torch.corrcoef(torch.stack([fresh.flatten(), eps_now.flatten()]))[0, 1]
            assert abs(corr.item()) < 0.1


def test_ddim_without_knowledge_of_x0_does_not_recover_it():
    ab = alpha_bar_schedule("cosine", 1000)
    x0 = 2 * torch.randn(2, 1, 8, 8, generator=_gen(6))
    out = ddim_sample(lambda x_t, t: torch.zeros_like(x_t), (2, 1, 8, 8), ab, 10, _gen(7))
    assert (out - x0).abs().mean() > 0.5


def test_ddim_clip_bounds_the_sample():
    ab = alpha_bar_schedule("cosine", 1000)
    out = ddim_sample(lambda x_t, t: -5 * x_t, (2, 1, 8, 8), ab, 5, _gen(8), clip_x0=3.0)
    assert out.abs().max() <= 3.0 + 1e-5


# --- the model ---------------------------------------------------------------------------


def test_class_attributes():
    assert DiffusionTranslator.name == "diffusion"
    assert DiffusionTranslator.supervised is True
    assert DiffusionTranslator.config_class is DiffusionConfig


@pytest.mark.parametrize("size", [16, 24, 40])
def test_translate_keeps_the_shape(size):
    model = _model(size)
    source = torch.randn(2, BANDS, size, size, generator=_gen(0))
    out = _translate(model, source, 1)
    assert out.shape == source.shape
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("size", [16, 40])
def test_denoiser_keeps_the_shape_at_three_halvings(size):
    model = _model(size, channel_mults=(1, 1, 2, 4))
    x = torch.randn(2, 2 * BANDS, size, size, generator=_gen(0))
    assert model.denoiser(x, torch.tensor([0, 99])).shape == (2, BANDS, size, size)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_translate_is_deterministic_per_seed_and_varies_across_seeds(eta):
    model = _trained(eta=eta)
    source, _ = _toy_pairs(2)
    a, b, c = (_translate(model, source, seed) for seed in (11, 11, 12))
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 1e-2


def test_eta_changes_the_sample():
    source, _ = _toy_pairs(2)
    deterministic = _translate(_trained(eta=0.0), source, 3)
    stochastic = _translate(_trained(eta=1.0), source, 3)
    assert (deterministic - stochastic).abs().mean() > 1e-3


def test_state_dict_round_trip_gives_the_same_translation():
    model = _trained()
    source, _ = _toy_pairs(2)
    fresh = _model(seed=1)
    # Without loading, the fresh model translates differently: the check below can fail.
    assert (_translate(fresh, source, 5) - _translate(model, source, 5)).abs().max() > 1e-3
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(_translate(fresh, source, 5), _translate(model, source, 5))


@pytest.mark.parametrize("prediction", ["v", "epsilon"])
def test_training_lowers_the_noise_prediction_error(prediction):
    model = _model(prediction=prediction)
    optimizers = model.make_optimizers(3e-3)
    source, target = _toy_pairs(4)
    generator = _gen(0)
    losses = [
        model.train_step(_batch(source, target), optimizers, 0, generator)["mse"] for _ in range(30)
    ]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    if prediction == "epsilon":
        # An untrained ε̂ = 0 scores E[ε²] = 1.
        assert 0.8 < first < 1.2
    assert last < 0.85 * first


def test_train_step_returns_finite_float_mse_and_updates_weights():
    model = _model()
    optimizers = model.make_optimizers(1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    source, target = _toy_pairs(4)
    out = model.train_step(_batch(source, target), optimizers, 0, _gen(0))
    assert set(out) == {"mse"}
    assert type(out["mse"]) is float and math.isfinite(out["mse"])
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_train_step_is_reproducible_given_the_generator():
    source, target = _toy_pairs(4)
    runs = []
    for _ in range(2):
        model = _model()
        optimizers = model.make_optimizers(1e-3)
        runs.append([model.train_step(_batch(source, target), optimizers, 0, _gen(9))["mse"]])
        runs[-1].append(model.train_step(_batch(source, target), optimizers, 0, _gen(10))["mse"])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]


def test_diffusing_the_target_instead_of_the_residual():
    source, _ = _toy_pairs(2)
    residual = _translate(_trained(residual=True), source, 4)
    direct = _translate(_trained(residual=False), source, 4)
    assert direct.shape == source.shape
    assert (residual - direct).abs().mean() > 1e-2


class _PairOracle(torch.nn.Module):
    """A stand-in denoiser that knows the target and returns the exact noise (or velocity).

    It reads the condition from the input's second half, so it only works when the model
    concatenates the source there, and it only scores zero when the model diffuses what
    ``residual`` says (target − source, or the target) and predicts what ``prediction``
    says (ε, or v = √ᾱ ε − √(1 − ᾱ) x0).
    """

    def __init__(self, target, alpha_bars, residual: bool, prediction: str = "epsilon"):
        super().__init__()
        self.target, self.alpha_bars, self.residual = target, alpha_bars, residual
        self.prediction = prediction
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # the optimiser needs a parameter

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_t, source = x[:, :BANDS], x[:, BANDS:]
        x0 = self.target - source if self.residual else self.target
        a = self.alpha_bars[t].reshape(-1, 1, 1, 1)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        if self.prediction == "v":
            return a.sqrt() * eps - (1 - a).sqrt() * x0 + self.dummy
        return eps + self.dummy


@pytest.mark.parametrize("prediction", ["v", "epsilon"])
@pytest.mark.parametrize("residual", [True, False])
def test_a_perfect_denoiser_translates_exactly_and_scores_zero(residual, prediction):
    source, target = _toy_pairs(3)
    model = _model(residual=residual, prediction=prediction)
    model.denoiser = _PairOracle(target, model.alpha_bars, residual, prediction)
    assert _close(_translate(model, source, 0), target, atol=1e-3)
    model.train()
    mse = model.train_step(_batch(source, target), model.make_optimizers(1e-3), 0, _gen(1))["mse"]
    assert mse < 1e-6
    # The same oracle misled about what is diffused scores badly: the check can fail.
    model.denoiser = _PairOracle(target, model.alpha_bars, not residual, prediction)
    mse = model.train_step(_batch(source, target), model.make_optimizers(1e-3), 0, _gen(1))["mse"]
    assert mse > 1e-2


def test_train_step_refuses_an_empty_batch():
    model = _model()
    empty = torch.zeros(0, BANDS, SIZE, SIZE)
    with pytest.raises(ValidationError, match="empty"):
        model.train_step(_batch(empty, empty), model.make_optimizers(1e-3), 0, _gen(0))


@pytest.mark.parametrize(
    ("shape", "message"),
    [((2, BANDS + 1, SIZE, SIZE), "shape"), ((2, BANDS, 24, 24), "shape"), (None, "NaN")],
)
def test_bad_images_are_refused(shape, message):
    model = _model()
    if shape is None:
        bad = torch.zeros(2, BANDS, SIZE, SIZE)
        bad[1, 2, 3, 4] = float("nan")
    else:
        bad = torch.zeros(shape)
    with pytest.raises(ValidationError, match=message):
        _translate(model, bad, 0)
    with pytest.raises(ValidationError, match=message):
        model.train_step(_batch(bad, bad), model.make_optimizers(1e-3), 0, _gen(0))


def test_make_optimizers_gives_one_adamw_over_all_parameters():
    model = _model()
    optimizers = model.make_optimizers(2e-4)
    assert list(optimizers) == ["denoiser"]
    opt = optimizers["denoiser"]
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == 2e-4
    n_optimised = sum(p.numel() for group in opt.param_groups for p in group["params"])
    assert n_optimised == sum(p.numel() for p in model.parameters())


# --- config ------------------------------------------------------------------------------


def test_presets_build_and_grow():
    counts = {}
    for name in ("tiny", "cpu", "paper"):
        model = DiffusionTranslator(DiffusionConfig.preset(name), BANDS, 136)
        counts[name] = sum(p.numel() for p in model.parameters())
    assert counts["tiny"] < counts["cpu"] < counts["paper"]
    assert DiffusionConfig.preset("cpu") == DiffusionConfig()


def test_config_json_round_trip():
    config = DiffusionConfig.preset("paper", eta=0.3)
    again = DiffusionConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.channel_mults == (1, 2, 4, 8)


def test_unknown_config_key_is_refused():
    with pytest.raises(ValidationError, match="n_layers"):
        DiffusionConfig.from_dict({"n_layers": 3})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timesteps": 0}, "timesteps"),
        ({"base_channels": 2.5}, "base_channels"),
        ({"schedule": "quadratic"}, "schedule"),
        ({"sampling_steps": 200}, "sampling_steps"),
        ({"eta": 1.5}, "eta"),
        ({"channel_mults": (1, 2, 2, 2, 2)}, "channel_mults"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"norm_groups": 3}, "norm_groups"),
        ({"attention_heads": 3}, "attention_heads"),
        ({"attention_levels": 5}, "attention_levels"),
        ({"dropout": 1.0}, "dropout"),
        ({"residual": "yes"}, "residual"),
        ({"prediction": "x0"}, "prediction"),
        ({"clip_x0": -1.0}, "clip_x0"),
        ({"grad_clip": float("nan")}, "grad_clip"),
    ],
)
def test_bad_config_values_are_refused(overrides, field):
    with pytest.raises(ValidationError, match=f"DiffusionConfig.{field} "):
        DiffusionConfig.preset("tiny", **overrides)


def test_channel_multipliers_are_whole_numbers():
    message = r"DiffusionConfig.channel_mults\[1\] must be an integer >= 1, got 2\.0"
    with pytest.raises(ValidationError, match=message):
        DiffusionConfig.preset("tiny", channel_mults=(1, 2.0))


def test_model_refuses_another_config_class():
    from clapkit.translate.models.base import ModelConfig

    with pytest.raises(ValidationError, match="DiffusionConfig"):
        DiffusionTranslator(ModelConfig(), BANDS, SIZE)


@pytest.mark.parametrize("n_bands", [0, 2.5, True])
def test_model_refuses_a_band_count_that_is_not_a_whole_number(n_bands):
    with pytest.raises(ValidationError, match=f"n_bands must be an integer >= 1, got {n_bands}"):
        DiffusionTranslator(DiffusionConfig.preset("tiny"), n_bands, SIZE)
