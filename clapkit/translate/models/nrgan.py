"""NR-GAN: semi-supervised, noise-reconstructed translation of galaxy images.

Follows the semi-supervised noise-reconstructed generative adversarial network of
Lin et al. (2023), which translates galaxy images between SDSS and CFHTLS and learns
from galaxies seen by both surveys as well as from those seen by one only. An image is
modelled as a smooth component plus noise, and each part is learnt on its own:

- an autoencoder per survey (:class:`SmoothAutoencoder`) whose narrow bottleneck and
  lack of skip connections let through what is predictable (the galaxy) but not what is
  not (the noise): its output is the smooth component of an image of its survey;
- a noise emulator per survey (:class:`NoiseEmulator`): a per-band amplitude read from
  summary statistics of the smooth image, times white Gaussian noise convolved with a
  learnt kernel per band that is symmetric under the eight rotations and flips of the
  square (noise has no preferred direction on the sky), added in flux rather than in the
  range-compressed units the networks see, so that it fades on bright cores as real
  noise does;
- a discriminator per survey (:class:`SpectralDiscriminator`) that looks at the pixels
  and at the log-amplitude of their Fourier transform, where a wrong noise texture
  stands out; trained with the least-squares GAN loss (LSGAN) and spectral
  normalisation on every layer, a pairing that needs no gradient penalty;
- two generators (:class:`ResidualUNet`) that map smooth components between surveys.

Training follows the paper's two steps, chosen by the epoch (see
:meth:`NRGANTranslator.train_step`). Step 1 fits the autoencoders and noise emulators
on every image of each survey, paired or not: an L1 reconstruction loss, an adversarial
loss on smooth + emulated noise, and, as a stabiliser that is not in the paper, a
spectral loss that matches the emulated noise's radially averaged log power spectrum to
the one of the residual ``x − AE(x)``, so that noise level and texture converge in a
few CPU epochs instead of waiting on the adversarial signal alone (which, while the
autoencoder still misses part of the galaxy, also pushes the noise up to make up the
missing power). Step 2 freezes them
and fits the generators between smooth components: identity loss on paired galaxies,
cycle consistency on unpaired ones, adversarial loss on translated smooth + emulated
target noise. A translation is ``G_s2t(AE_source(x)) + noise_target(...)``.

Every network handles sides that are multiples of 8 but not of 16 (136 = 8·17):
downsampling uses padded stride-2 convolutions and upsampling interpolates to the exact
size recorded on the way down, so no padding or cropping is needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import ModelConfig, TranslationBatch, Translator

__all__ = [
    "DOMAINS",
    "NRGANConfig",
    "NRGANTranslator",
    "NoiseEmulator",
    "ResidualUNet",
    "SmoothAutoencoder",
    "SpectralDiscriminator",
    "dihedral_average",
    "radial_log_power",
]

#: The two surveys, as named by :meth:`NRGANTranslator.smooth` and friends.
DOMAINS = ("source", "target")

#: Slope of the leaky ReLUs: the customary GAN value, keeps gradients through negatives.
_SLOPE = 0.2

#: Floor added to powers before their logarithm; far below the power of unit sky noise.
_POWER_FLOOR = 1e-6

#: Smooth pixels fainter than this, in network units (a flux of e − 1 ≈ 1.7 sky σ), are
#: sky for the spectral loss.
_SKY_LEVEL = 1.0

#: Largest |pixel| in network units that is expanded to flux: e^30 sky σ is far beyond any
#: galaxy, and the clamp keeps a diverging generator from overflowing float32.
_MAX_NETWORK_UNITS = 30.0

#: Log-power error (about ±12% in noise level) where the spectral loss turns from
#: quadratic, which settles smoothly, to linear, which shrugs off outlying annuli.
_SPECTRAL_DELTA = 0.25


def _conv(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(_SLOPE)


def _channels(width: int, depth: int, max_channels: int) -> list[int]:
    """Channels per resolution level: doubling at each halving, capped."""
    return [min(width * 2**level, max_channels) for level in range(depth + 1)]


def _init_convs(module: nn.Module) -> None:
    # He initialisation for the leaky ReLUs: without normalisation layers, PyTorch's
    # default shrinks the signal at every layer, and the autoencoders then take several
    # times more steps to start reproducing galaxies.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=_SLOPE, nonlinearity="leaky_relu")
            nn.init.zeros_(m.bias)


def _to_flux(y: torch.Tensor) -> torch.Tensor:
    """Network units ``sign(x) log(1 + |x|)`` back to flux in units of the sky noise ``x``."""
    y = y.clamp(-_MAX_NETWORK_UNITS, _MAX_NETWORK_UNITS)
    return torch.sign(y) * torch.expm1(y.abs())


def _from_flux(x: torch.Tensor) -> torch.Tensor:
    """Flux in units of the sky noise to network units (:class:`~clapkit.translate.pixels.PixelScaler`)."""
    return torch.sign(x) * torch.log1p(x.abs())


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    # To an exact size rather than a factor 2, so that odd sides (17 after three halvings
    # of 136) come back to their original size.
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


# --- building blocks ------------------------------------------------------------------


def dihedral_average(kernel: torch.Tensor) -> torch.Tensor:
    """Average square kernels over the 8 rotations and flips of the square (group D4).

    Parameters
    ----------
    kernel : torch.Tensor, shape (..., k, k)

    Returns
    -------
    torch.Tensor, shape (..., k, k)
        Equal to its own rotations by 90° and to its transpose.

    Examples
    --------
    >>> k = dihedral_average(torch.arange(9.0).reshape(3, 3))
    >>> k
    tensor([[4., 4., 4.],
            [4., 4., 4.],
            [4., 4., 4.]])
    >>> k2 = dihedral_average(torch.rand(2, 5, 5))
    >>> bool(torch.allclose(k2, k2.transpose(-2, -1)) and torch.allclose(k2, k2.rot90(1, (-2, -1))))
    True
    """
    turns = [torch.rot90(kernel, t, dims=(-2, -1)) for t in range(4)]
    views = turns + [t.transpose(-2, -1) for t in turns]
    return torch.stack(views).mean(0)


def _radial_bins(size: int, n_bins: int) -> tuple[torch.Tensor, int]:
    """Annulus index of each ``rfft2`` frequency of an S×S image; -1 for the mean.

    Annuli of equal width span (0, √2/2] cycles per pixel, corners included: a kernel
    free to put power in the corners beyond the Nyquist circle would otherwise hide noise
    variance from the spectral loss. Empty annuli are dropped, so every returned index in
    ``0..n - 1`` holds at least one frequency.
    """
    ky = torch.fft.fftfreq(size)[:, None]
    kx = torch.fft.rfftfreq(size)[None, :]
    k = torch.sqrt(kx**2 + ky**2)  # (S, S // 2 + 1)
    index = torch.ceil(k / math.sqrt(0.5) * n_bins).long().clamp(max=n_bins) - 1
    inside = k > 0
    used, relabelled = torch.unique(index[inside], return_inverse=True)
    out = torch.full_like(index, -1)
    out[inside] = relabelled
    return out, len(used)


def radial_log_power(power: torch.Tensor, bins: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Log of the mean of ``power`` over each annulus of spatial frequency.

    Parameters
    ----------
    power : torch.Tensor, shape (..., S, S // 2 + 1)
        A power spectrum on the ``rfft2`` frequency grid.
    bins : torch.Tensor of int, shape (S, S // 2 + 1)
        Annulus of each frequency, -1 for frequencies to leave out.
    n_bins : int
        Number of annuli (``bins.max() + 1``).

    Returns
    -------
    torch.Tensor, shape (..., n_bins)

    Examples
    --------
    >>> bins = torch.tensor([[-1, 0], [1, 1]])
    >>> radial_log_power(torch.tensor([[9.0, 1.0], [2.0, 4.0]]), bins, 2).exp().round()
    tensor([1., 3.])
    """
    keep = bins >= 0
    flat = power[..., keep]  # (..., n_kept)
    index = bins[keep]
    sums = flat.new_zeros((*flat.shape[:-1], n_bins)).index_add_(-1, index, flat)
    counts = torch.bincount(index, minlength=n_bins).to(flat.dtype)
    return torch.log(sums / counts + _POWER_FLOOR)


def _encoder(n_bands: int, channels: Sequence[int]) -> nn.ModuleList:
    """One block per halving: a stride-2 convolution, then a convolution at that scale.

    No layer works at full resolution, where a convolution costs four times what it costs
    after the first halving: on CPU, at 136² pixels, that is most of a training step.
    """
    c_in = [n_bands, *channels[:-1]]
    return nn.ModuleList(
        nn.Sequential(_conv(a, b, stride=2), _act(), _conv(b, b), _act())
        for a, b in zip(c_in, channels, strict=True)
    )


class SmoothAutoencoder(nn.Module):
    """Convolutional autoencoder whose output is the smooth component of its input.

    ``depth`` stride-2 halvings, a 1×1 bottleneck of ``bottleneck`` channels, and a
    decoder of bilinear upsamplings, the last one to full resolution followed by a single
    convolution. There are no skip connections: the only path from input to output is
    the bottleneck, too narrow to carry pixel noise, which cannot be predicted from its
    neighbours and so is what the reconstruction gives up first.

    Parameters
    ----------
    n_bands : int
        Channels of the images.
    width : int
        Channels after the first halving; doubled at each further one up to
        ``max_channels``.
    depth : int
        Number of halvings.
    bottleneck : int
        Channels at the coarsest resolution.
    max_channels : int
        Cap on the channels of any level.

    Examples
    --------
    >>> ae = SmoothAutoencoder(5, width=4, depth=3, bottleneck=4, max_channels=16)
    >>> tuple(ae(torch.zeros(2, 5, 40, 40)).shape)
    (2, 5, 40, 40)
    """

    def __init__(
        self, n_bands: int, width: int, depth: int, bottleneck: int, max_channels: int
    ) -> None:
        super().__init__()
        ch = _channels(width, depth - 1, max_channels)  # channels at halvings 1..depth
        self.down = _encoder(n_bands, ch)
        self.bottleneck = nn.Sequential(
            _conv(ch[-1], bottleneck, kernel=1), _act(), _conv(bottleneck, ch[-1], kernel=1), _act()
        )
        self.up = nn.ModuleList(
            nn.Sequential(_conv(ch[i + 1], ch[i]), _act()) for i in reversed(range(depth - 1))
        )
        self.head = _conv(ch[0], n_bands)
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        sizes = []
        for block in self.down:
            sizes.append(h.shape[-2:])
            h = block(h)  # (B, w_l, H / 2^l, W / 2^l)
        h = self.bottleneck(h)  # (B, w_depth, H / 2^depth, W / 2^depth)
        for block, size in zip(self.up, reversed(sizes[1:]), strict=True):
            h = block(_resize(h, size))  # (B, w_{l-1}, H / 2^(l-1), W / 2^(l-1))
        return self.head(_resize(h, sizes[0]))  # (B, C, H, W)


class NoiseEmulator(nn.Module):
    """Noise of one survey given the smooth component of an image: amplitude × texture.

    The noise is a Gaussian field in flux, in units of the band's sky noise: an amplitude
    per band, from a small MLP on the mean and maximum of every band of the smooth image
    (through a softplus, so that it stays positive), times white Gaussian noise convolved
    (circularly), band by band, with a ``kernel_size`` × ``kernel_size`` kernel that is
    averaged over the 8 symmetries of the square on every call (noise has no preferred
    direction) and scaled to unit L2 norm, so that the amplitude *is* the noise's standard
    deviation per pixel (:meth:`flux_noise`).

    It is added where noise adds, in flux: the images are ``sign(x) log(1 + |x|)`` of the
    flux ``x`` in sky-noise units (:class:`~clapkit.translate.pixels.PixelScaler`), so the
    emulator returns ``T(T⁻¹(smooth) + n) − smooth`` in those network units (``T`` the
    compression). Like real noise it is then weaker on bright galaxy cores than on the
    sky, and it has the right power once a translation is scaled back to flux; a Gaussian
    added in network units would have some 16% too much.

    Parameters
    ----------
    n_bands : int
    kernel_size : int
        Odd side of the texture kernel.
    hidden : int
        Width of the amplitude MLP.

    Examples
    --------
    >>> emulator = NoiseEmulator(5, kernel_size=3, hidden=8)
    >>> noise = emulator(torch.zeros(2, 5, 16, 16), torch.Generator().manual_seed(0))
    >>> tuple(noise.shape), tuple(emulator.kernel().shape)
    ((2, 5, 16, 16), (5, 3, 3))
    """

    def __init__(self, n_bands: int, kernel_size: int, hidden: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.amplitude_net = nn.Sequential(
            nn.Linear(2 * n_bands, hidden), _act(), nn.Linear(hidden, n_bands)
        )
        # Start at an amplitude of 1 (softplus⁻¹(1) = log(e − 1)): the images are scaled to
        # unit sky noise, so training starts close to the answer.
        last = self.amplitude_net[-1]
        nn.init.normal_(last.weight, std=0.01)
        nn.init.constant_(last.bias, math.log(math.e - 1.0))
        # A delta kernel: white noise, the right texture for a perfectly sampled image.
        free = 0.01 * torch.randn(n_bands, kernel_size, kernel_size)
        free[:, kernel_size // 2, kernel_size // 2] += 1.0
        self.free_kernel = nn.Parameter(free)

    def kernel(self) -> torch.Tensor:
        """The effective ``(n_bands, k, k)`` kernel: D4-symmetric with unit L2 norm."""
        k = dihedral_average(self.free_kernel)  # (C, k, k)
        return k / torch.sqrt(k.pow(2).sum((-2, -1), keepdim=True) + 1e-12)

    def amplitude(self, smooth: torch.Tensor) -> torch.Tensor:
        """Noise standard deviation per image and band, ``(B, C)``, from the smooth image."""
        stats = torch.cat([smooth.mean((-2, -1)), smooth.amax((-2, -1))], dim=1)  # (B, 2C)
        return F.softplus(self.amplitude_net(stats))  # (B, C)

    def transfer(self, height: int, width: int) -> torch.Tensor:
        """Discrete Fourier transform of the kernel on an ``height`` × ``width`` grid.

        The kernel is centred on pixel (0, 0), so a symmetric kernel has a real transfer
        function, shape ``(C, height, width // 2 + 1)``.
        """
        k = self.kernel_size
        padded = F.pad(self.kernel(), (0, width - k, 0, height - k))  # (C, H, W)
        centred = torch.roll(padded, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1))
        return torch.fft.rfft2(centred)  # (C, H, W // 2 + 1)

    def flux_noise(self, smooth: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The emulated Gaussian noise in flux, in units of the sky noise, ``(B, C, H, W)``."""
        height, width = smooth.shape[-2:]
        white = torch.randn(
            smooth.shape, generator=generator, device=generator.device, dtype=smooth.dtype
        ).to(smooth.device)
        # A circular convolution, through the FFT: exactly stationary up to the edges, and
        # on CPU several times cheaper than the backward pass of a depthwise convolution.
        spectrum = torch.fft.rfft2(white) * self.transfer(height, width)  # (B, C, H, W // 2 + 1)
        texture = torch.fft.irfft2(spectrum, s=(height, width))  # (B, C, H, W)
        return self.amplitude(smooth)[..., None, None] * texture  # (B, C, H, W)

    def forward(self, smooth: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if len(smooth) == 0:  # MKL's FFT refuses an empty batch
            return torch.zeros_like(smooth)
        noisy = _from_flux(_to_flux(smooth) + self.flux_noise(smooth, generator))  # (B, C, H, W)
        return noisy - smooth  # (B, C, H, W)


class SpectralDiscriminator(nn.Module):
    """Two-branch discriminator: pixels and the log-amplitude of their Fourier transform.

    The real-space branch is a PatchGAN (``depth`` stride-2 convolutions, one logit per
    patch); the Fourier branch sees ``log |rfft2(x)|`` of each band, where a noise of the
    wrong level or texture is a shifted or tilted spectrum, and gives one logit per image
    that is added to every patch logit. Every layer is spectrally normalised.

    Parameters
    ----------
    n_bands : int
    width : int
        Channels of the first layer of each branch; doubled per layer up to ``max_channels``.
    depth : int
        Stride-2 layers of the real-space branch.
    max_channels : int

    Examples
    --------
    >>> disc = SpectralDiscriminator(5, width=4, depth=2, max_channels=16)
    >>> tuple(disc(torch.zeros(3, 5, 24, 24)).shape)
    (3, 1, 6, 6)
    """

    #: Side of the grid the Fourier features are pooled to: keeps frequency position.
    fourier_grid: ClassVar[int] = 4

    def __init__(self, n_bands: int, width: int, depth: int, max_channels: int) -> None:
        super().__init__()
        ch = [n_bands, *_channels(width, depth - 1, max_channels)]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(ch):
            layers += [spectral_norm(_conv(c_in, c_out, stride=2)), _act()]
        layers.append(spectral_norm(_conv(ch[-1], 1)))
        self.pixels = nn.Sequential(*layers)
        f1, f2 = _channels(width, 1, max_channels)
        self.fourier = nn.Sequential(
            spectral_norm(_conv(n_bands, f1, stride=2)),
            _act(),
            spectral_norm(_conv(f1, f2, stride=2)),
            _act(),
            nn.AdaptiveAvgPool2d(self.fourier_grid),
            nn.Flatten(),
            spectral_norm(nn.Linear(f2 * self.fourier_grid**2, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        spectrum = torch.fft.rfft2(x)  # (B, C, S, S // 2 + 1)
        power = (spectrum.real**2 + spectrum.imag**2) / size**2
        # Centred along the full axis so that low frequencies are neighbours for the convs.
        log_amplitude = 0.5 * torch.fft.fftshift(torch.log(power + _POWER_FLOOR), dim=-2)
        patch_logits = self.pixels(x)  # (B, 1, S / 2^depth, S / 2^depth)
        image_logit = self.fourier(log_amplitude)  # (B, 1)
        return patch_logits + image_logit[..., None, None]  # (B, 1, S / 2^depth, S / 2^depth)


class ResidualUNet(nn.Module):
    """Small U-Net that adds a correction to its input: a generator between surveys.

    ``depth`` stride-2 halvings with skip connections and bilinear upsampling; the last
    layer sees the upsampled features next to the input image itself and starts at zero,
    so an untrained generator is the identity: smooth SDSS and CFHTLS galaxies differ by
    a small correction, which is what the network learns.

    Parameters
    ----------
    n_bands : int
    width : int
        Channels after the first halving; doubled at each further one up to
        ``max_channels``.
    depth : int
        Number of halvings.
    max_channels : int

    Examples
    --------
    >>> net = ResidualUNet(5, width=4, depth=3, max_channels=16)
    >>> x = torch.rand(2, 5, 40, 40)
    >>> y = net(x)
    >>> tuple(y.shape), bool(torch.equal(x, y))
    ((2, 5, 40, 40), True)
    """

    def __init__(self, n_bands: int, width: int, depth: int, max_channels: int) -> None:
        super().__init__()
        ch = _channels(width, depth - 1, max_channels)  # channels at halvings 1..depth
        self.down = _encoder(n_bands, ch)
        self.up = nn.ModuleList(
            nn.Sequential(_conv(ch[i + 1] + ch[i], ch[i]), _act())
            for i in reversed(range(depth - 1))
        )
        self.head = _conv(ch[0] + n_bands, n_bands)
        _init_convs(self)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        skips = []
        for block in self.down:
            h = block(h)  # (B, w_l, H / 2^l, W / 2^l)
            skips.append(h)
        skips.pop()  # the coarsest level is h itself
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = block(torch.cat([_resize(h, skip.shape[-2:]), skip], dim=1))  # (B, w_{l-1}, ...)
        features = torch.cat([_resize(h, x.shape[-2:]), x], dim=1)  # (B, w_1 + C, H, W)
        return x + self.head(features)  # (B, C, H, W)


# --- configuration ---------------------------------------------------------------------


@dataclass
class NRGANConfig(ModelConfig):
    """Hyper-parameters of :class:`NRGANTranslator`; the defaults are the ``"cpu"`` preset.

    The ``"paper"`` preset is this module's larger networks for a GPU (widths 32–64, four
    halvings, 20 epochs of step 1); it is not checked against the sizes of Lin et al.
    (2023), which this implementation does not reproduce layer for layer.

    Attributes
    ----------
    ae_width, ae_depth, ae_bottleneck : int
        Autoencoders: channels after the first halving (doubled at each further one),
        halvings, bottleneck channels.
    generator_width, generator_depth : int
        Generators (residual U-Nets): channels after the first halving, halvings.
    discriminator_width, discriminator_depth : int
        Discriminators: channels of the first layer, stride-2 layers of the pixel branch.
    max_channels : int
        Cap on the channels of any layer of any network.
    noise_kernel_size : int
        Odd side of the noise emulators' texture kernels.
    noise_hidden : int
        Width of the noise emulators' amplitude MLPs.
    spectral_bins : int
        Annuli of the spectral loss on (0, √2/2] cycles per pixel (empty ones dropped).
    pretrain_epochs : int
        Epochs of step 1 (autoencoders and noise); step 2 (generators) follows.
    reconstruction_weight, spectral_weight : float
        Step 1: weights of the L1 reconstruction and of the spectral loss.
    identity_weight, cycle_weight : float
        Step 2: weights of the paired identity and of the unpaired cycle losses.
    adversarial_weight : float
        Weight of the adversarial loss in both steps.
    ae_lr_factor, noise_lr_factor : float
        Learning rates of the autoencoders and of the noise emulators as multiples of the
        training loop's (which suits the adversarial parts, 2e-4 by default): both are
        fitted mostly by their own reconstruction and spectral losses, and the emulators
        must follow the residual's texture as the autoencoders learn.
    add_noise : bool
        Whether :meth:`NRGANTranslator.translate` adds emulated target noise; False is
        the "smooth autoencoder-only" variant (same training).

    Examples
    --------
    >>> NRGANConfig.preset("tiny").ae_width
    4
    >>> NRGANConfig.from_dict({"noise_kernel_size": 4})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: NRGANConfig.noise_kernel_size must be odd, got 4
    """

    ae_width: int = 8
    ae_depth: int = 3
    ae_bottleneck: int = 16
    generator_width: int = 8
    generator_depth: int = 3
    discriminator_width: int = 8
    discriminator_depth: int = 3
    max_channels: int = 32
    noise_kernel_size: int = 5
    noise_hidden: int = 32
    spectral_bins: int = 16
    pretrain_epochs: int = 3
    reconstruction_weight: float = 10.0
    spectral_weight: float = 10.0
    identity_weight: float = 10.0
    cycle_weight: float = 10.0
    adversarial_weight: float = 1.0
    ae_lr_factor: float = 5.0
    noise_lr_factor: float = 25.0
    add_noise: bool = True

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "ae_width": 4,
            "ae_depth": 2,
            "ae_bottleneck": 4,
            "generator_width": 4,
            "generator_depth": 2,
            "discriminator_width": 4,
            "discriminator_depth": 2,
            "max_channels": 8,
            "noise_kernel_size": 3,
            "noise_hidden": 8,
            "spectral_bins": 6,
            "pretrain_epochs": 1,
        },
        "cpu": {},
        "paper": {
            "ae_width": 32,
            "ae_depth": 4,
            "ae_bottleneck": 64,
            "generator_width": 32,
            "generator_depth": 4,
            "discriminator_width": 64,
            "discriminator_depth": 4,
            "max_channels": 256,
            "noise_kernel_size": 7,
            "noise_hidden": 64,
            "spectral_bins": 32,
            "pretrain_epochs": 20,
        },
    }

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                minimum = 0 if f.name == "pretrain_epochs" else 1
                setattr(self, f.name, check_int(value, f"{name}.{f.name}", minimum))
            elif f.type == "float":
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                if f.name.endswith("_lr_factor"):
                    if not ok or not math.isfinite(value) or value <= 0:
                        raise ValidationError(
                            f"{name}.{f.name} must be a finite number > 0, got {value!r}"
                        )
                elif not ok or not math.isfinite(value) or value < 0:
                    raise ValidationError(
                        f"{name}.{f.name} must be a finite number >= 0, got {value!r}"
                    )
            elif f.type == "bool" and not isinstance(value, bool):
                raise ValidationError(f"{name}.{f.name} must be true or false, got {value!r}")
        if self.noise_kernel_size % 2 == 0:  # a kernel centred on its pixel
            raise ValidationError(
                f"{name}.noise_kernel_size must be odd, got {self.noise_kernel_size}"
            )


# --- the model -------------------------------------------------------------------------


def _lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean squared distance of the logits to 1 (real) or 0."""
    return (logits - float(real)).pow(2).mean()


@contextmanager
def _frozen(modules: Sequence[nn.Module], eval_mode: bool = False) -> Iterator[None]:
    """Stop gradients into the parameters of ``modules`` (gradients still flow through)."""
    params = [p for m in modules for p in m.parameters()]
    grad_flags = [p.requires_grad for p in params]
    modes = [m.training for m in modules]
    for p in params:
        p.requires_grad_(False)
    if eval_mode:
        for m in modules:
            m.eval()
    try:
        yield
    finally:
        for p, flag in zip(params, grad_flags, strict=True):
            p.requires_grad_(flag)
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


class NRGANTranslator(Translator):
    """Semi-supervised noise-reconstructed GAN (Lin et al. 2023); see the module docstring.

    Parameters
    ----------
    config : NRGANConfig
    n_bands : int
        Bands per image, the same in both surveys.
    size : int
        Side of the images on the target grid, a multiple of 8.

    Notes
    -----
    Optimisers (:meth:`make_optimizers`), all Adam with betas (0.5, 0.999):
    ``"autoencoders"`` (both autoencoders and both noise emulators, at ``ae_lr_factor``
    and ``noise_lr_factor`` times the training loop's learning rate), ``"generators"``
    (``G_s2t`` and ``G_t2s``) and ``"discriminators"``, at the loop's learning rate.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = NRGANTranslator(NRGANConfig.preset("tiny"), n_bands=5, size=16)
    >>> x = torch.rand(4, 5, 16, 16)
    >>> batch = TranslationBatch(x, x + 0.1, x[:0], x[:0])
    >>> losses = model.train_step(batch, model.make_optimizers(1e-3), 0, torch.Generator())
    >>> sorted(losses)
    ['adversarial', 'discriminator', 'reconstruction', 'spectral']
    >>> with torch.no_grad():
    ...     out = model.eval().translate(x, torch.Generator().manual_seed(0))
    >>> tuple(out.shape)
    (4, 5, 16, 16)
    """

    name: ClassVar[str] = "nrgan"
    config_class: ClassVar[type[ModelConfig]] = NRGANConfig
    supervised: ClassVar[bool] = False

    #: Loss terms returned by :meth:`train_step` in step 1 and step 2.
    STEP1_KEYS: ClassVar[tuple[str, ...]] = (
        "reconstruction",
        "adversarial",
        "spectral",
        "discriminator",
    )
    STEP2_KEYS: ClassVar[tuple[str, ...]] = ("identity", "cycle", "adversarial", "discriminator")

    config: NRGANConfig

    def __init__(self, config: NRGANConfig, n_bands: int, size: int) -> None:
        super().__init__(config, n_bands, size)
        c = config
        if c.noise_kernel_size > self.size:
            raise ValidationError(
                f"nrgan: noise_kernel_size {c.noise_kernel_size} exceeds the image size {self.size}"
            )
        self.autoencoders = nn.ModuleDict(
            {
                d: SmoothAutoencoder(
                    self.n_bands, c.ae_width, c.ae_depth, c.ae_bottleneck, c.max_channels
                )
                for d in DOMAINS
            }
        )
        self.emulators = nn.ModuleDict(
            {d: NoiseEmulator(self.n_bands, c.noise_kernel_size, c.noise_hidden) for d in DOMAINS}
        )
        self.discriminators = nn.ModuleDict(
            {
                d: SpectralDiscriminator(
                    self.n_bands, c.discriminator_width, c.discriminator_depth, c.max_channels
                )
                for d in DOMAINS
            }
        )
        self.generators = nn.ModuleDict(
            {
                direction: ResidualUNet(
                    self.n_bands, c.generator_width, c.generator_depth, c.max_channels
                )
                for direction in ("s2t", "t2s")
            }
        )
        bins, n_bins = _radial_bins(self.size, c.spectral_bins)
        counts = torch.bincount(bins[bins >= 0], minlength=n_bins).float()
        # Derived from the size: rebuilt by __init__, so kept out of the state dict.
        self.register_buffer("_bins", bins, persistent=False)
        self.register_buffer("_bin_weights", counts / counts.sum(), persistent=False)
        self._n_bins = n_bins

    # --- public helpers ---------------------------------------------------------------

    def _check_domain(self, domain: str) -> None:
        if domain not in DOMAINS:
            raise ValidationError(f"nrgan: domain must be one of {DOMAINS}, got {domain!r}")

    def smooth(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """The smooth (noise-free) component of images of ``domain``: its autoencoder's output.

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny"), n_bands=5, size=16)
        >>> tuple(model.smooth(torch.zeros(2, 5, 16, 16), "target").shape)
        (2, 5, 16, 16)
        """
        self._check_domain(domain)
        self.check_images(x, f"{domain} images")
        return self.autoencoders[domain](x)

    def noise(self, smooth: torch.Tensor, domain: str, generator: torch.Generator) -> torch.Tensor:
        """Emulated noise of ``domain`` for the given smooth components, drawn from ``generator``.

        In network units: what to add to ``smooth`` (see :class:`NoiseEmulator`).

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny"), n_bands=5, size=16)
        >>> n = model.noise(torch.zeros(64, 5, 16, 16), "source", torch.Generator().manual_seed(1))
        >>> round(n.std().item(), 2)  # the emulator starts at unit sky noise, range-compressed
        0.62
        """
        self._check_domain(domain)
        self.check_images(smooth, f"smooth {domain} images")
        return self.emulators[domain](smooth, generator)

    def noise_kernel(self, domain: str) -> torch.Tensor:
        """The effective ``(n_bands, k, k)`` texture kernel of ``domain``'s noise emulator.

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny"), n_bands=5, size=16)
        >>> tuple(model.noise_kernel("target").shape)
        (5, 3, 3)
        """
        self._check_domain(domain)
        return self.emulators[domain].kernel()

    # --- training ---------------------------------------------------------------------

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """Adam optimisers ``"autoencoders"``, ``"generators"`` and ``"discriminators"``.

        The autoencoders' optimiser also holds the noise emulators, fitted together in
        step 1, in two parameter groups at ``ae_lr_factor`` and ``noise_lr_factor`` ×
        ``learning_rate``; the other two run at ``learning_rate``.
        """
        c = self.config

        def adam(*groups: dict[str, Any]) -> torch.optim.Adam:
            return torch.optim.Adam(list(groups), lr=learning_rate, betas=(0.5, 0.999))

        return {
            "autoencoders": adam(
                {
                    "params": list(self.autoencoders.parameters()),
                    "lr": c.ae_lr_factor * learning_rate,
                },
                {
                    "params": list(self.emulators.parameters()),
                    "lr": c.noise_lr_factor * learning_rate,
                },
            ),
            "generators": adam({"params": list(self.generators.parameters())}),
            "discriminators": adam({"params": list(self.discriminators.parameters())}),
        }

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One update in the step that ``epoch`` falls in; returns the loss terms.

        Step 1 (``epoch < pretrain_epochs``) updates the discriminators, then the
        autoencoders and noise emulators, on every image of each survey (paired and
        unpaired); the generators are untouched. Returned terms, each summed over the
        two surveys:

        - ``"reconstruction"``: L1 between image and autoencoder output;
        - ``"adversarial"``: LSGAN loss of smooth + emulated noise judged as real;
        - ``"spectral"``: Huber distance (divided by its threshold, so L1-like) between
          the radially averaged log power spectra, per band and averaged over the batch,
          of the emulated noise and of the residual ``x − AE(x)``, both on the sky pixels
          of ``AE(x)``, each annulus weighted by its number of Fourier modes;
        - ``"discriminator"``: LSGAN loss of the discriminators (real vs smooth + noise).

        Step 2 (``epoch >= pretrain_epochs``) freezes the autoencoders and emulators and
        updates the discriminators, then the generators. Returned terms, each summed over
        the two directions:

        - ``"identity"``: L1 between the translated smooth component of a paired galaxy and
          the smooth component of its real counterpart (0.0 without paired galaxies);
        - ``"cycle"``: L1 between an unpaired smooth component and its round trip through
          both generators (0.0 without unpaired galaxies);
        - ``"adversarial"``: LSGAN loss of translated smooth + emulated noise judged as real;
        - ``"discriminator"``: LSGAN loss of the discriminators (real vs translated).

        Raises
        ------
        ValidationError
            When the batch holds no source or no target image at all.
        """
        self.check_images(batch.source, "paired source images")
        self.check_images(batch.target, "paired target images")
        self.check_images(batch.unpaired_source, "unpaired source images")
        self.check_images(batch.unpaired_target, "unpaired target images")
        images = {
            "source": torch.cat([batch.source, batch.unpaired_source]),
            "target": torch.cat([batch.target, batch.unpaired_target]),
        }
        for domain, x in images.items():
            if len(x) == 0:
                raise ValidationError(
                    f"nrgan: the batch holds no {domain} image (paired or unpaired); "
                    "both surveys are needed in every batch"
                )
        if epoch < self.config.pretrain_epochs:
            return self._step_autoencoders(images, optimizers, generator)
        return self._step_generators(images, len(batch.source), optimizers, generator)

    def _discriminator_update(
        self,
        real: dict[str, torch.Tensor],
        fake: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
    ) -> float:
        loss = real["source"].new_zeros(())
        for domain in DOMAINS:
            n_real = len(real[domain])
            # One call on real and fake together: one power iteration of the spectral norms.
            logits = self.discriminators[domain](torch.cat([real[domain], fake[domain].detach()]))
            loss = loss + 0.5 * (_lsgan(logits[:n_real], True) + _lsgan(logits[n_real:], False))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def _adversarial(self, fake: dict[str, torch.Tensor]) -> torch.Tensor:
        """Generator-side LSGAN loss, summed over surveys; the discriminators stay fixed."""
        with _frozen(list(self.discriminators.values())):
            return sum(
                (_lsgan(self.discriminators[d](fake[d]), True) for d in DOMAINS),
                start=fake["source"].new_zeros(()),
            )

    def _spectral_loss(
        self, residual: torch.Tensor, noise: torch.Tensor, smooth: torch.Tensor
    ) -> torch.Tensor:
        """Distance of the log power spectra of two ``(B, C, S, S)`` noise fields on the sky."""
        # Both fields are cut to the same sky pixels, so the cut changes both spectra
        # alike; it keeps out the galaxies, where an autoencoder still learning leaves
        # residuals that would pass for noise.
        sky = (smooth.detach().abs() < _SKY_LEVEL).to(smooth.dtype)  # (B, C, S, S)
        fraction = sky.mean((0, 2, 3)).clamp(min=1.0 / sky[0, 0].numel())  # (C,)
        log_power = []
        for field in (residual, noise):
            spectrum = torch.fft.rfft2(field * sky, norm="ortho")  # (B, C, S, S // 2 + 1)
            power = (spectrum.real**2 + spectrum.imag**2).mean(0) / fraction[:, None, None]
            log_power.append(radial_log_power(power, self._bins, self._n_bins))  # (C, n_bins)
        # Each annulus weighs as many Fourier modes as it holds, and the distance grows
        # linearly beyond a log-power error of _SPECTRAL_DELTA (Huber): annuli where the
        # residual still holds some galaxy pull no harder than any other.
        distance = F.huber_loss(*log_power, reduction="none", delta=_SPECTRAL_DELTA)
        return (distance / _SPECTRAL_DELTA * self._bin_weights).sum(-1).mean()

    def _step_autoencoders(
        self,
        images: dict[str, torch.Tensor],
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        c = self.config
        smooth = {d: self.autoencoders[d](images[d]) for d in DOMAINS}  # (B_d, C, S, S)
        # Read from the detached smooth image: the spectral loss fits the emulators only,
        # and the autoencoders see the noise as added (which it is, to first order).
        noise = {d: self.emulators[d](smooth[d].detach(), generator) for d in DOMAINS}
        fake = {d: smooth[d] + noise[d] for d in DOMAINS}
        d_loss = self._discriminator_update(images, fake, optimizers["discriminators"])

        zero = smooth["source"].new_zeros(())
        reconstruction = sum(((images[d] - smooth[d]).abs().mean() for d in DOMAINS), start=zero)
        spectral = sum(
            (
                self._spectral_loss(images[d] - smooth[d].detach(), noise[d], smooth[d])
                for d in DOMAINS
            ),
            start=zero,
        )
        adversarial = self._adversarial(fake)
        loss = (
            c.reconstruction_weight * reconstruction
            + c.spectral_weight * spectral
            + c.adversarial_weight * adversarial
        )
        optimizers["autoencoders"].zero_grad()
        loss.backward()
        optimizers["autoencoders"].step()
        return {
            "reconstruction": reconstruction.item(),
            "adversarial": adversarial.item(),
            "spectral": spectral.item(),
            "discriminator": d_loss,
        }

    def _step_generators(
        self,
        images: dict[str, torch.Tensor],
        n_paired: int,
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        c = self.config
        frozen = [self.autoencoders, self.emulators]
        with _frozen(frozen, eval_mode=True):
            with torch.no_grad():
                smooth = {d: self.autoencoders[d](images[d]) for d in DOMAINS}  # (B_d, C, S, S)
            # Translated smooth components, keyed by the survey they imitate.
            translated = {
                "target": self.generators["s2t"](smooth["source"]),  # (B_s, C, S, S)
                "source": self.generators["t2s"](smooth["target"]),  # (B_t, C, S, S)
            }
            # The emulators' weights are frozen, but their amplitudes still pass gradients
            # back to the translated images they are read from.
            fake = {d: translated[d] + self.emulators[d](translated[d], generator) for d in DOMAINS}
            d_loss = self._discriminator_update(images, fake, optimizers["discriminators"])

            zero = translated["source"].new_zeros(())
            identity = zero
            if n_paired:
                identity = (
                    (translated["target"][:n_paired] - smooth["target"][:n_paired]).abs().mean()
                )
                identity = (
                    identity
                    + (translated["source"][:n_paired] - smooth["source"][:n_paired]).abs().mean()
                )
            cycle = zero
            for domain, there, back in (("source", "target", "t2s"), ("target", "source", "s2t")):
                unpaired = translated[there][n_paired:]  # (B_d - n_paired, C, S, S)
                if len(unpaired):
                    returned = self.generators[back](unpaired)
                    cycle = cycle + (returned - smooth[domain][n_paired:]).abs().mean()
            adversarial = self._adversarial(fake)
            loss = (
                c.identity_weight * identity
                + c.cycle_weight * cycle
                + c.adversarial_weight * adversarial
            )
            optimizers["generators"].zero_grad()
            loss.backward()
            optimizers["generators"].step()
        return {
            "identity": identity.item(),
            "cycle": cycle.item(),
            "adversarial": adversarial.item(),
            "discriminator": d_loss,
        }

    # --- inference --------------------------------------------------------------------

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``G_s2t(AE_source(x))`` plus emulated target noise (unless ``add_noise`` is off).

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny", add_noise=False), 5, 24).eval()
        >>> with torch.no_grad():
        ...     out = model.translate(torch.rand(2, 5, 24, 24), torch.Generator())
        >>> tuple(out.shape)
        (2, 5, 24, 24)
        """
        self.check_images(source, "source images")
        translated = self.generators["s2t"](self.autoencoders["source"](source))  # (B, C, S, S)
        if not self.config.add_noise:
            return translated
        return translated + self.emulators["target"](translated, generator)  # (B, C, S, S)
