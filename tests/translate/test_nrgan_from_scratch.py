"""NR-GAN as published, trained from a clean start on a toy survey pair with known truth.

The toy target survey is the source galaxies made 1.5× brighter and sharper, with white
Gaussian sky noise of unit σ in flux (the level :class:`~clapkit.translate.pixels.
PixelScaler` scales every survey to); the source survey is the same galaxies blurred, with
its own noise. The tiny preset trains through both steps from scratch, and its
translations of held-out galaxies are held against the real target images: total flux
and the robust σ of the sky background, band by band.

Measured with seeds 0–2 (200 steps of step 1 and 300 of step 2, learning rate 3e-3):
background σ within 0.77–1.05 of the real one; total flux of the smooth translation
(``add_noise=False``) within 0.90–0.92 of the real one, of the noisy translation
1.17–1.30. The published emulator adds its Gaussian noise in network units
(``sign(x) log(1 + |x|)`` here), and on galaxy pixels a noise of σ ``a`` in those units
raises the mean flux by about ``exp(a² / 2)``: with ``a`` ≈ 0.6, some 20%. clapkit's
earlier design adds it in flux (``noise_in_flux``) and has no such bias.
"""

import torch
import torch.nn.functional as F

from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.nrgan import NRGANConfig, NRGANTranslator

BANDS, SIZE = 3, 16
STEPS_1, STEPS_2 = 300, 500
#: Relative tolerances, sized on the measurements in the module docstring.
SIGMA_TOLERANCE = 0.3  # background σ, every band
SMOOTH_FLUX_TOLERANCE = 0.15  # total flux without the emulated noise, every band
NOISY_FLUX_RANGE = (0.9, 1.45)  # total flux with it: raised by the noise (see above)


def _galaxies(n: int, seed: int) -> torch.Tensor:
    """``(n, BANDS, SIZE, SIZE)`` Gaussian galaxies in flux (sky σ units), peaks 1.5–13."""
    g = torch.Generator().manual_seed(seed)
    centre = SIZE / 2 + (torch.rand(n, 2, generator=g) - 0.5) * SIZE / 4  # (n, 2)
    sigma = 1.5 * (0.7 + 0.6 * torch.rand(n, generator=g))  # (n,)
    peak = (3 + 6 * torch.rand(n, 1, generator=g)) * (0.5 + torch.rand(n, BANDS, generator=g))
    axis = torch.arange(SIZE, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    r2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    return peak[:, :, None, None] * torch.exp(-0.5 * r2 / sigma[:, None, None] ** 2)[:, None]


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel2d = (kernel[:, None] * kernel[None, :]).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), kernel2d, groups=x.shape[1])


def _compress(x: torch.Tensor) -> torch.Tensor:
    """Flux to network units, as :class:`~clapkit.translate.pixels.PixelScaler` does."""
    return torch.sign(x) * torch.log1p(x.abs())


def _expand(y: torch.Tensor) -> torch.Tensor:
    return torch.sign(y) * torch.expm1(y.abs())


def _surveys(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source and target images (network units) and the noiseless target (flux)."""
    clean = _galaxies(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    source = _blur(_blur(clean)) + torch.randn(clean.shape, generator=g)
    truth = 1.5 * clean
    target = truth + torch.randn(clean.shape, generator=g)
    return _compress(source), _compress(target), truth


def _background_sigma(flux: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Robust σ (1.4826 × MAD) of the sky pixels of every band, ``(BANDS,)``."""
    out = []
    for band in range(flux.shape[1]):
        values = flux[:, band][sky[:, band]]
        out.append(1.4826 * (values - values.median()).abs().median())
    return torch.stack(out)


def _band_flux(flux: torch.Tensor) -> torch.Tensor:
    return flux.sum((0, 2, 3))  # (BANDS,)


def _train(seed: int) -> NRGANTranslator:
    torch.manual_seed(seed)
    model = NRGANTranslator(NRGANConfig.preset("tiny"), BANDS, SIZE)  # published defaults
    optimizers = model.make_optimizers(3e-3)
    source, target, _ = _surveys(96, seed=1)
    order = torch.Generator().manual_seed(5 + seed)
    noise = torch.Generator().manual_seed(seed)
    for step in range(STEPS_1 + STEPS_2):
        rows = torch.randperm(len(source), generator=order)
        pairs, source_only, target_only = rows[:8], rows[8:16], rows[16:24]
        batch = TranslationBatch(
            source[pairs], target[pairs], source[source_only], target[target_only]
        )
        model.train_step(batch, optimizers, 0 if step < STEPS_1 else 1, noise)
    return model.eval()


def _translate(model: NRGANTranslator, source: torch.Tensor, add_noise: bool) -> torch.Tensor:
    model.config.add_noise = add_noise
    with torch.no_grad():
        return _expand(model.translate(source, torch.Generator().manual_seed(3)))


def test_published_nrgan_from_scratch_matches_the_real_flux_and_noise_level():
    model = _train(seed=0)
    source, target, truth = _surveys(64, seed=99)  # held-out galaxies
    real = _expand(target)
    sky = truth < 0.05
    noisy = _translate(model, source, add_noise=True)
    smooth = _translate(model, source, add_noise=False)

    sigma_ratio = _background_sigma(noisy, sky) / _background_sigma(real, sky)
    assert (sigma_ratio - 1).abs().max() < SIGMA_TOLERANCE, sigma_ratio
    smooth_flux = _band_flux(smooth) / _band_flux(real)
    assert (smooth_flux - 1).abs().max() < SMOOTH_FLUX_TOLERANCE, smooth_flux
    noisy_flux = _band_flux(noisy) / _band_flux(real)
    low, high = NOISY_FLUX_RANGE
    assert bool(((noisy_flux > low) & (noisy_flux < high)).all()), noisy_flux

    # The tolerances bite: without its noise the translation misses the noise level, and
    # an untrained model (generators the identity) misses the flux.
    smooth_sigma = _background_sigma(smooth, sky) / _background_sigma(real, sky)
    assert (smooth_sigma - 1).abs().min() > SIGMA_TOLERANCE, smooth_sigma
    torch.manual_seed(0)
    untrained = NRGANTranslator(NRGANConfig.preset("tiny"), BANDS, SIZE).eval()
    untrained_flux = _band_flux(_translate(untrained, source, False)) / _band_flux(real)
    assert (untrained_flux - 1).abs().min() > SMOOTH_FLUX_TOLERANCE, untrained_flux
