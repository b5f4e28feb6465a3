"""NR-GAN translator: shapes, determinism, both training steps and the noise emulator.

``_model`` builds NR-GAN as published (the default); ``_clapkit`` the ``nrgan_clapkit``
variant, clapkit's earlier design, for the behaviour only it has.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.nrgan import DOMAINS, NRGANConfig, NRGANTranslator

BANDS = 5


def _model(size: int = 16, seed: int = 0, **overrides) -> NRGANTranslator:
    torch.manual_seed(seed)
    return NRGANTranslator(NRGANConfig.preset("tiny", **overrides), BANDS, size)


def _clapkit(size: int = 16, seed: int = 0, **overrides) -> NRGANTranslator:
    torch.manual_seed(seed)
    config = NRGANConfig.variant("nrgan_clapkit", "tiny", **overrides)
    return NRGANTranslator(config, BANDS, size)


def _blobs(n: int, size: int, seed: int, width: float = 2.0) -> torch.Tensor:
    """``(n, 5, size, size)`` smooth Gaussian galaxies, peak 2–6, band ratios varying."""
    g = torch.Generator().manual_seed(seed)
    centre = size / 2 + (torch.rand(n, 2, generator=g) - 0.5) * size / 4  # (n, 2)
    sigma = width * (0.7 + 0.6 * torch.rand(n, generator=g))  # (n,)
    peak = (2.0 + 4.0 * torch.rand(n, 1, generator=g)) * (0.5 + torch.rand(n, BANDS, generator=g))
    axis = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    r2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2  # (n, S, S)
    profile = torch.exp(-0.5 * r2 / sigma[:, None, None] ** 2)
    return peak[:, :, None, None] * profile[:, None]  # (n, C, S, S)


def _noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return clean + sigma * torch.randn(clean.shape, generator=g)


def _expand(y: torch.Tensor) -> torch.Tensor:
    """Network units to flux in sky-noise units (PixelScaler.inverse with unit noise)."""
    return torch.sign(y) * torch.expm1(y.abs())


def _compress(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel2d = (kernel[:, None] * kernel[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel2d, groups=x.shape[1])


def _paired(source: torch.Tensor, target: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(source, target, source[:0], target[:0])


def _translate(model: NRGANTranslator, x: torch.Tensor, seed: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = model.translate(x, torch.Generator().manual_seed(seed))
    model.train()
    return out


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before, strict=True))


def _high_frequency_power(x: torch.Tensor) -> float:
    spectrum = torch.fft.rfft2(x, norm="ortho")
    ky = torch.fft.fftfreq(x.shape[-2])[:, None]
    kx = torch.fft.rfftfreq(x.shape[-1])[None, :]
    high = torch.sqrt(kx**2 + ky**2) > 0.25
    return spectrum.abs().pow(2)[..., high].mean().item()


# --- shapes and determinism -----------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 40])
def test_output_shapes_follow_the_input(size):
    model = _model(size)
    x = torch.rand(2, BANDS, size, size)
    assert _translate(model, x, 0).shape == x.shape
    assert model.smooth(x, "source").shape == x.shape
    assert model.noise(x, "target", torch.Generator()).shape == x.shape
    # 40 is a multiple of 8 but not of 16: updates in both steps must also go through.
    optimizers = model.make_optimizers(1e-3)
    for epoch in (0, 1):
        losses = model.train_step(_paired(x, x), optimizers, epoch, torch.Generator())
        assert all(math.isfinite(v) for v in losses.values())


def test_an_empty_batch_translates_to_an_empty_batch():
    out = _translate(_model(), torch.zeros(0, BANDS, 16, 16), 0)
    assert out.shape == (0, BANDS, 16, 16)


def test_translate_is_deterministic_per_seed_and_stochastic_across_seeds():
    model = _model()
    x = torch.rand(3, BANDS, 16, 16)
    a, b, c = (_translate(model, x, seed) for seed in (7, 7, 8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_state_dict_round_trip_gives_the_same_translation():
    model = _model(seed=0)
    x = _noisy(_blobs(4, 16, seed=1), 0.5, seed=2)
    optimizers = model.make_optimizers(1e-3)
    for epoch in (0, 1):  # one update in each step, so that every network has moved
        model.train_step(_paired(x, x), optimizers, epoch, torch.Generator().manual_seed(epoch))
    fresh = _model(seed=123)
    assert not torch.equal(_translate(fresh, x, 5), _translate(model, x, 5))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(_translate(fresh, x, 5), _translate(model, x, 5))


def test_smooth_variant_adds_no_high_frequency_noise():
    noisy_model = _clapkit(seed=0)
    smooth_model = _clapkit(seed=0, add_noise=False)
    x = _noisy(_blobs(4, 16, seed=3), 1.0, seed=4)
    noisy = _translate(noisy_model, x, 0)
    smooth = _translate(smooth_model, x, 0)
    assert _high_frequency_power(smooth) < 0.1 * _high_frequency_power(noisy)
    assert torch.equal(smooth, _translate(smooth_model, x, 1))  # nothing random left


def test_published_translation_is_the_generator_on_the_raw_image_plus_noise():
    model = _model(seed=0)
    x = _noisy(_blobs(3, 16, seed=3), 1.0, seed=4)
    with torch.no_grad():
        bare = model.generators["s2t"](x)
        noise = model.emulators["target"](bare, torch.Generator().manual_seed(2))
    torch.testing.assert_close(_translate(model, x, 2), bare + noise)
    model.config.add_noise = False
    torch.testing.assert_close(_translate(model, x, 9), bare)  # no autoencoder on the way


# --- training ---------------------------------------------------------------------------


def test_train_step_returns_the_documented_finite_losses():
    model = _model(pretrain_epochs=1)
    x = torch.rand(4, BANDS, 16, 16)
    optimizers = model.make_optimizers(1e-3)
    step1 = model.train_step(_paired(x, x), optimizers, 0, torch.Generator())
    step2 = model.train_step(_paired(x, x), optimizers, 1, torch.Generator())
    assert set(step1) == set(NRGANTranslator.STEP1_KEYS)
    assert set(step1) == {"reconstruction", "adversarial", "spectral", "discriminator"}
    assert set(step2) == {"identity", "cycle", "adversarial", "discriminator"}
    for value in (*step1.values(), *step2.values()):
        assert type(value) is float and math.isfinite(value)


def test_make_optimizers_names_and_covers_every_parameter_once():
    model = _model(ae_lr_factor=4.0, noise_lr_factor=20.0)
    optimizers = model.make_optimizers(2e-4)
    assert set(optimizers) == {"autoencoders", "generators", "discriminators"}
    seen = [id(p) for opt in optimizers.values() for g in opt.param_groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    ae_group, emulator_group = optimizers["autoencoders"].param_groups
    assert {id(p) for p in emulator_group["params"]} == {
        id(p) for p in model.emulators.parameters()
    }
    assert ae_group["lr"] == pytest.approx(8e-4)
    assert emulator_group["lr"] == pytest.approx(4e-3)
    for name in ("generators", "discriminators"):
        assert optimizers[name].param_groups[0]["lr"] == 2e-4
    for opt in optimizers.values():
        assert all(g["betas"] == (0.5, 0.999) for g in opt.param_groups)


@pytest.mark.parametrize("build", [_model, _clapkit], ids=["published", "clapkit"])
def test_step1_reconstruction_loss_falls_on_a_toy_task(build):
    model = build(pretrain_epochs=100, ae_lr_factor=5.0)
    source = _noisy(_blobs(4, 16, seed=10), 0.3, seed=11)
    target = 1.5 * _blur(source)
    optimizers = model.make_optimizers(1e-3)  # the autoencoders at 5e-3
    generator = torch.Generator().manual_seed(0)
    losses = [
        model.train_step(_paired(source, target), optimizers, 0, generator)["reconstruction"]
        for _ in range(30)
    ]
    assert sum(losses[-3:]) < 0.75 * sum(losses[:3])


@pytest.mark.parametrize("build", [_model, _clapkit], ids=["published", "clapkit"])
def test_step2_identity_loss_falls_on_a_toy_task(build):
    model = build(pretrain_epochs=1)
    source = _noisy(_blobs(4, 16, seed=12), 0.3, seed=13)
    target = 1.5 * _blur(source)
    optimizers = model.make_optimizers(1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):  # smooth components that start to resemble the images
        model.train_step(_paired(source, target), optimizers, 0, generator)
    optimizers = model.make_optimizers(5e-3)  # the generators' rate; step 2 only uses theirs
    losses = [
        model.train_step(_paired(source, target), optimizers, 1, generator)["identity"]
        for _ in range(30)
    ]
    assert sum(losses[-3:]) < 0.75 * sum(losses[:3])


@pytest.mark.parametrize(
    ("build", "adversarial_step2"),
    [(_model, False), (_clapkit, True)],
    ids=["published", "clapkit"],
)
def test_step1_leaves_the_generators_alone_and_step2_the_autoencoders(build, adversarial_step2):
    model = build(pretrain_epochs=1)
    x = _noisy(_blobs(4, 16, seed=5), 0.5, seed=6)
    optimizers = model.make_optimizers(1e-3)

    before = {name: _snapshot(module) for name, module in model.named_children()}
    model.train_step(_paired(x, x), optimizers, 0, torch.Generator())
    assert _unchanged(model.generators, before["generators"])
    for name in ("autoencoders", "emulators", "discriminators"):
        assert not _unchanged(getattr(model, name), before[name]), name

    before = {name: _snapshot(module) for name, module in model.named_children()}
    # Images that differ from their counterparts, so that the identity loss pulls.
    model.train_step(_paired(x, 1.5 * x), optimizers, 1, torch.Generator())
    assert _unchanged(model.autoencoders, before["autoencoders"])
    assert _unchanged(model.emulators, before["emulators"])
    assert not _unchanged(model.generators, before["generators"])
    # No adversarial term in the published step 2: the discriminators rest.
    assert _unchanged(model.discriminators, before["discriminators"]) != adversarial_step2
    # Frozen for the step only: trainable again afterwards.
    assert all(p.requires_grad for p in model.parameters())


def test_step2_without_paired_galaxies_uses_cycle_and_adversarial_only():
    model = _clapkit(pretrain_epochs=0)
    source, target = torch.rand(3, BANDS, 16, 16), torch.rand(4, BANDS, 16, 16)
    batch = TranslationBatch(source[:0], target[:0], source, target)
    optimizers = model.make_optimizers(1e-3)
    # The generators start as the identity, so the cycle is exact until the first update.
    first = model.train_step(batch, optimizers, 0, torch.Generator())
    second = model.train_step(batch, optimizers, 0, torch.Generator())
    assert first["cycle"] == 0.0 and first["identity"] == 0.0
    assert second["identity"] == 0.0
    assert second["cycle"] > 0.0
    assert second["adversarial"] > 0.0


def test_step2_with_paired_galaxies_only_uses_identity_and_adversarial_only():
    model = _clapkit(pretrain_epochs=0)
    source = torch.rand(4, BANDS, 16, 16)
    optimizers = model.make_optimizers(1e-3)
    losses = [
        model.train_step(_paired(source, 2 * source), optimizers, 3, torch.Generator())
        for _ in range(2)
    ]
    assert all(step["cycle"] == 0.0 for step in losses)
    assert all(step["identity"] > 0.0 and step["adversarial"] > 0.0 for step in losses)


def test_published_step2_compares_with_the_raw_images_and_injects_noise_mid_cycle():
    model = _model(pretrain_epochs=0)
    source, target = torch.rand(3, BANDS, 16, 16), torch.rand(3, BANDS, 16, 16)
    optimizers = model.make_optimizers(1e-3)
    # Untrained generators are the identity: the identity loss is the MSE between the raw
    # images of each pair (once per direction), with no autoencoder in between.
    paired = model.train_step(_paired(source, target), optimizers, 0, torch.Generator())
    assert paired["identity"] == pytest.approx(2 * (source - target).pow(2).mean().item())
    assert paired["cycle"] == 0.0
    assert paired["adversarial"] == 0.0 and paired["discriminator"] == 0.0
    # The cycle of an identity generator returns the image plus the emulated noise of the
    # other survey, injected half-way: an MSE of about the noise variance, not 0.
    model = _model(pretrain_epochs=0)
    unpaired = TranslationBatch(source[:0], target[:0], source, target)
    first = model.train_step(unpaired, model.make_optimizers(1e-3), 0, torch.Generator())
    assert first["identity"] == 0.0
    assert first["cycle"] == pytest.approx(2.0, rel=0.2)  # two directions, unit noise


def test_published_step1_adversarial_loss_updates_the_noise_emulators_only():
    x = _noisy(_blobs(4, 16, seed=5), 0.5, seed=6)
    # With the reconstruction switched off, only the adversarial loss is left in step 1.
    for build, autoencoders_move in ((_model, False), (_clapkit, True)):
        model = build(reconstruction_weight=0.0)
        before = {name: _snapshot(module) for name, module in model.named_children()}
        model.train_step(_paired(x, x), model.make_optimizers(1e-3), 0, torch.Generator())
        assert _unchanged(model.autoencoders, before["autoencoders"]) != autoencoders_move
        assert not _unchanged(model.emulators, before["emulators"])
        assert not _unchanged(model.discriminators, before["discriminators"])


def test_published_noise_amplitude_is_drawn_per_image_from_a_seed():
    model = _model()
    emulator = model.emulators["target"]
    with torch.no_grad():  # widen the MLP's output so that seeds matter visibly
        emulator.seed_net.net[-1].weight.mul_(100.0)
        blank, bright = torch.zeros(6, BANDS, 16, 16), torch.full((6, BANDS, 16, 16), 5.0)
        a = emulator.amplitude(blank, torch.Generator().manual_seed(0))
        b = emulator.amplitude(bright, torch.Generator().manual_seed(0))
        c = emulator.amplitude(blank, torch.Generator().manual_seed(1))
    assert a.shape == (6, BANDS) and bool((a > 0).all())
    torch.testing.assert_close(a, b)  # independent of the image
    assert not torch.allclose(a, c)  # random: a scatter of noise levels
    assert a.std(0).min() > 0.01


def test_step1_trains_on_unpaired_images_too():
    model = _model()
    source, target = torch.rand(3, BANDS, 16, 16), torch.rand(2, BANDS, 16, 16)
    optimizers = model.make_optimizers(1e-3)
    unpaired_only = TranslationBatch(source[:0], target[:0], source, target)
    losses = model.train_step(unpaired_only, optimizers, 0, torch.Generator())
    assert losses["reconstruction"] > 0.0


def test_a_batch_without_target_images_is_refused():
    model = _model()
    x = torch.rand(2, BANDS, 16, 16)
    batch = TranslationBatch(x[:0], x[:0], x, x[:0])
    with pytest.raises(ValidationError, match="no target image"):
        model.train_step(batch, model.make_optimizers(1e-3), 0, torch.Generator())


# --- the noise emulator -----------------------------------------------------------------


def test_noise_kernel_is_symmetric_under_the_dihedral_group():
    model = _model(noise_kernel_size=5)
    emulator = model.emulators["target"]
    with torch.no_grad():
        emulator.free_kernel.copy_(torch.rand(emulator.free_kernel.shape))
    free = emulator.free_kernel.detach()
    assert not torch.allclose(free, free.transpose(-2, -1))  # the symmetry is imposed
    kernel = model.noise_kernel("target").detach()
    assert kernel.shape == (BANDS, 5, 5)
    for turns in (1, 2, 3):
        torch.testing.assert_close(kernel, torch.rot90(kernel, turns, dims=(-2, -1)))
    torch.testing.assert_close(kernel, kernel.transpose(-2, -1))
    torch.testing.assert_close(kernel, kernel.flip(-1))
    torch.testing.assert_close(kernel.pow(2).sum((-2, -1)), torch.ones(BANDS))


def test_clapkit_step1_learns_the_noise_level_of_each_survey():
    # Noise adds in flux (in sky-noise units), not in the compressed units of the images.
    sigma = {"source": 0.5, "target": 1.8}
    clean = {"source": _blur(_blobs(8, 24, seed=20)), "target": _blobs(8, 24, seed=21)}
    images = {
        d: _compress(_noisy(_expand(clean[d]), sigma[d], seed=22 + i))
        for i, d in enumerate(DOMAINS)
    }
    model = _clapkit(size=24, pretrain_epochs=100)
    optimizers = model.make_optimizers(6e-4)  # autoencoders at 3e-3, emulators at 1.5e-2
    generator = torch.Generator().manual_seed(0)
    batch = TranslationBatch(
        images["source"], images["target"], images["source"][:0], images["target"][:0]
    )
    for _ in range(40):
        model.train_step(batch, optimizers, 0, generator)
    with torch.no_grad():
        for domain in DOMAINS:
            smooth = model.smooth(images[domain], domain)
            noise = model.noise(smooth, domain, torch.Generator().manual_seed(1))
            emulated = (_expand(smooth + noise) - _expand(smooth)).std().item()
            assert emulated == pytest.approx(sigma[domain], rel=0.3), domain


def test_emulated_noise_adds_in_flux_and_fades_on_bright_pixels():
    model = _clapkit()
    smooth = torch.zeros(4, BANDS, 16, 16)
    smooth[:, :, :8] = 6.0  # a bright half: e^6 sky σ
    noise = model.noise(smooth, "target", torch.Generator().manual_seed(0)).detach()
    flux = model.emulators["target"].flux_noise(smooth, torch.Generator().manual_seed(0))
    # float32 resolves e^6 ≈ 400 to about 1e-4 after the round trip through log1p.
    torch.testing.assert_close(
        _expand(smooth + noise) - _expand(smooth), flux.detach(), atol=2e-3, rtol=0
    )
    assert noise[:, :, :8].std() < 0.01 * noise[:, :, 8:].std()
    # As published, the noise is added in network units: the same on the bright half.
    published = _model().noise(smooth, "target", torch.Generator().manual_seed(0)).detach()
    assert published[:, :, :8].std() == pytest.approx(published[:, :, 8:].std().item(), rel=0.2)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [((2, 4, 16, 16), "shape"), ((2, BANDS, 24, 24), "shape"), ((BANDS, 16, 16), "shape")],
)
def test_wrong_images_are_refused(shape, message):
    model = _model()
    with pytest.raises(ValidationError, match=message):
        _translate(model, torch.zeros(shape), 0)


def test_nan_pixels_are_refused_in_translate_and_train_step():
    model = _model()
    x = torch.rand(2, BANDS, 16, 16)
    bad = x.clone()
    bad[1, 3, 5, 5] = float("nan")
    with pytest.raises(ValidationError, match="NaN"):
        _translate(model, bad, 0)
    batch = TranslationBatch(x, x, x[:0], bad)
    with pytest.raises(ValidationError, match="unpaired target"):
        model.train_step(batch, model.make_optimizers(1e-3), 0, torch.Generator())


def test_unknown_domain_is_refused():
    model = _model()
    with pytest.raises(ValidationError, match="domain"):
        model.smooth(torch.zeros(1, BANDS, 16, 16), "sdss")
    with pytest.raises(ValidationError, match="domain"):
        model.noise_kernel("cfhtls")


def test_unknown_config_key_is_refused():
    with pytest.raises(ValidationError, match="unknown NRGANConfig options"):
        NRGANConfig.from_dict({"ae_widht": 8})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ae_width", 0),
        ("ae_depth", 2.5),
        ("noise_kernel_size", 4),
        ("pretrain_epochs", -1),
        ("adversarial_weight", -1.0),
        ("noise_lr_factor", 0.0),
        ("cycle_weight", float("nan")),
        ("add_noise", "yes"),
        ("spectral_bins", True),
        ("generator_input", "noisy"),
        ("gan_loss", "wgan"),
        ("grad_clip", -1.0),
        ("cycle_noise", 1),
    ],
)
def test_bad_config_values_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        NRGANConfig.preset("tiny", **{field: value})


def test_config_round_trips_through_json_data():
    config = NRGANConfig.preset("paper", add_noise=False)
    assert NRGANConfig.from_dict(config.to_dict()) == config
    assert NRGANConfig() == NRGANConfig.preset("cpu")


def test_presets_build_translate_and_grow():
    counts = {}
    for name in ("tiny", "cpu", "paper"):
        torch.manual_seed(0)
        model = NRGANTranslator(NRGANConfig.preset(name), BANDS, 136)
        counts[name] = sum(p.numel() for p in model.parameters())
        assert _translate(model, torch.rand(1, BANDS, 136, 136), 0).shape == (1, BANDS, 136, 136)
    assert counts["paper"] > counts["cpu"] > counts["tiny"]


def test_a_kernel_larger_than_the_image_is_refused():
    with pytest.raises(ValidationError, match="noise_kernel_size"):
        NRGANTranslator(NRGANConfig.preset("tiny", noise_kernel_size=17), BANDS, 16)
