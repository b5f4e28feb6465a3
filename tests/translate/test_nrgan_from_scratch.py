"""NR-GAN as published, trained from a clean start on a toy survey pair with known truth.

The toy target survey is the source galaxies made 1.5× brighter and sharper, with white
Gaussian sky noise of unit σ in flux (the level :class:`~clapkit.translate.pixels.
PixelScaler` scales every survey to); the source survey is the same galaxies blurred, with
its own noise. The tiny preset trains through both steps from scratch, and its
translations of held-out galaxies are held against the real target images, band by band:
the standard deviation of the sky background in the network's units (where the published
emulator draws its noise), the robust σ of the sky in flux, and the total flux.

Measured with seeds 0–3 (300 steps of step 1 and 500 of step 2, learning rate 3e-3),
as ratios to the real images, band by band: background standard deviation in network
units 0.91–1.16; robust σ of the background in flux 0.69–0.94; total flux of the
smooth translation (``add_noise=False``) 0.77–0.95, of the noisy translation 0.95–1.28;
of the smooth translation, background standard deviation 0.33–0.49 and robust σ
0.25–0.40. With an emulator broken to add no noise, the trained model's standard
deviation is 0.72–0.73 (seed 0) and fails. The tolerances below hold for every seed.
The issue's goal (noise power within 10% in flux) is not reached at this size, and two
traits of the published design, run on clapkit's pixel scaling, stand in its way:

- the emulator draws Gaussian noise in network units (``sign(x) log(1 + |x|)`` of the
  flux), where real sky noise, Gaussian in flux, is not Gaussian; the adversarial loss
  settles near the variance of the real noise in those units (σ ≈ 0.62 for unit sky
  noise), which in flux has a robust σ some 20–25% below the real one;
- on galaxy pixels, noise of σ ``a`` in those units raises the mean flux by about
  ``exp(a² / 2)``, some 20% for ``a`` ≈ 0.6.

clapkit's earlier design (``nrgan_clapkit``) adds its noise in flux and has neither.
"""

import torch
import torch.nn.functional as F

from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.nrgan import NRGANConfig, NRGANTranslator

BANDS, SIZE = 3, 16
STEPS_1, STEPS_2 = 300, 500
#: Relative tolerances, sized on the measurements in the module docstring.
STD_TOLERANCE = 0.2  # background standard deviation in network units, every band
SIGMA_TOLERANCE = 0.35  # robust background σ in flux, every band
SMOOTH_FLUX_TOLERANCE = 0.3  # total flux without the emulated noise, every band
NOISY_FLUX_RANGE = (0.85, 1.4)  # total flux with it: raised by the noise (see above)


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


def _background_std(images: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the sky pixels of every band, ``(BANDS,)``."""
    return torch.stack([images[:, band][sky[:, band]].std() for band in range(images.shape[1])])


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
    """Translations in network units."""
    model.config.add_noise = add_noise
    with torch.no_grad():
        return model.translate(source, torch.Generator().manual_seed(3))


def test_published_nrgan_from_scratch_matches_the_real_flux_and_noise_level():
    model = _train(seed=0)
    source, target, truth = _surveys(64, seed=99)  # held-out galaxies
    sky = truth < 0.05
    real_std, real_sigma = _background_std(target, sky), _background_sigma(_expand(target), sky)
    real_flux = _band_flux(_expand(target))
    noisy = _translate(model, source, add_noise=True)
    smooth = _translate(model, source, add_noise=False)

    std_ratio = _background_std(noisy, sky) / real_std
    assert (std_ratio - 1).abs().max() < STD_TOLERANCE, std_ratio
    sigma_ratio = _background_sigma(_expand(noisy), sky) / real_sigma
    assert (sigma_ratio - 1).abs().max() < SIGMA_TOLERANCE, sigma_ratio
    smooth_flux = _band_flux(_expand(smooth)) / real_flux
    assert (smooth_flux - 1).abs().max() < SMOOTH_FLUX_TOLERANCE, smooth_flux
    noisy_flux = _band_flux(_expand(noisy)) / real_flux
    low, high = NOISY_FLUX_RANGE
    assert bool(((noisy_flux > low) & (noisy_flux < high)).all()), noisy_flux

    # The tolerances bite: without its noise the translation misses the noise level, and
    # an untrained model (generators the identity) misses the flux.
    smooth_std = _background_std(smooth, sky) / real_std
    assert (smooth_std - 1).abs().min() > STD_TOLERANCE, smooth_std
    torch.manual_seed(0)
    untrained = NRGANTranslator(NRGANConfig.preset("tiny"), BANDS, SIZE).eval()
    untrained_flux = _band_flux(_expand(_translate(untrained, source, False))) / real_flux
    assert (untrained_flux - 1).abs().min() > SMOOTH_FLUX_TOLERANCE, untrained_flux
