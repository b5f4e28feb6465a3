"""The networks NR-GAN is built from: autoencoder, noise emulator, discriminator, generator.

Building blocks of :mod:`clapkit.translate.models.nrgan`, bottom up; each reads on its
own, with shape comments. Every network handles sides that are multiples of 8 but not of
16 (136 = 8·17): downsampling uses padded stride-2 convolutions and upsampling
interpolates to the exact size recorded on the way down, so no padding or cropping is
needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "NoiseEmulator",
    "ResidualUNet",
    "SmoothAutoencoder",
    "SpectralDiscriminator",
    "dihedral_average",
    "radial_log_power",
]

#: Slope of the leaky ReLUs: the customary GAN value, keeps gradients through negatives.
_SLOPE = 0.2

#: Floor added to powers before their logarithm; far below the power of unit sky noise.
_POWER_FLOOR = 1e-6


#: Largest |pixel| in network units that is expanded to flux: e^30 sky σ is far beyond any
#: galaxy, and the clamp keeps a diverging generator from overflowing float32.
_MAX_NETWORK_UNITS = 30.0


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


class _SeedAmplitude(nn.Module):
    """Per-band noise amplitudes drawn at random: a Gaussian seed through a small MLP.

    Each band has its own MLP (1 → ``hidden`` → ``hidden`` → 1, leaky ReLUs, softplus at
    the end so that the amplitude stays positive) reading one standard normal number per
    image, so the amplitude varies from image to image and the spread of noise levels in a
    survey is learnt along with their typical value. This is the published emulator's
    amplitude (the authors' ``networks.py``, ``noise_emulator``: a seed per band, three
    fully connected layers, softplus); the bands' MLPs run side by side as grouped 1×1
    convolutions.
    """

    def __init__(self, n_bands: int, hidden: int) -> None:
        super().__init__()
        self.n_bands = n_bands
        self.net = nn.Sequential(
            nn.Conv1d(n_bands, n_bands * hidden, 1, groups=n_bands),
            _act(),
            nn.Conv1d(n_bands * hidden, n_bands * hidden, 1, groups=n_bands),
            _act(),
            nn.Conv1d(n_bands * hidden, n_bands, 1, groups=n_bands),
        )
        # Start near an amplitude of 1 (softplus⁻¹(1) = log(e − 1)), the sky noise the
        # images are scaled to, with a small spread for training to widen or narrow.
        last = self.net[-1]
        nn.init.normal_(last.weight, std=0.01)
        nn.init.constant_(last.bias, math.log(math.e - 1.0))

    def forward(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        weight = self.net[0].weight
        seed = torch.randn(
            (batch, self.n_bands, 1), generator=generator, device=generator.device
        ).to(weight.device, weight.dtype)  # (B, C, 1)
        return F.softplus(self.net(seed))[..., 0]  # (B, C)


class NoiseEmulator(nn.Module):
    """Noise of one survey: a per-band amplitude × white noise convolved with a kernel.

    The noise is a Gaussian field: an amplitude per image and band times white Gaussian
    noise convolved (circularly), band by band, with a ``kernel_size`` × ``kernel_size``
    kernel that is averaged over the 8 symmetries of the square on every call (noise has
    no preferred direction) and scaled to unit L2 norm, so that the amplitude *is* the
    noise's standard deviation per pixel (:meth:`flux_noise`). The published emulator
    (the authors' ``networks.py``, ``noise_emulator``) leaves its kernel unnormalised; the
    product amplitude × kernel spans the same noise fields either way, and the unit norm
    only makes the amplitude readable.

    Two ways to get the amplitude (``amplitude``):

    - ``"seed"`` (published): drawn at random from a Gaussian seed through a small MLP
      per band (:class:`_SeedAmplitude`), so that the scatter of noise levels is learnt;
    - ``"image"`` (clapkit's earlier design): a small MLP on the mean and maximum of every
      band of the image the noise is added to, through a softplus.

    Two places to add it (``in_flux``):

    - ``False`` (published): in the network's units, as it is returned;
    - ``True``: in flux: the images are ``sign(x) log(1 + |x|)`` of the flux ``x`` in
      sky-noise units (:class:`~clapkit.translate.pixels.PixelScaler`), so the emulator
      returns ``T(T⁻¹(image) + n) − image`` in network units (``T`` the compression). Like
      real noise it is then weaker on bright galaxy cores than on the sky.

    Parameters
    ----------
    n_bands : int
    kernel_size : int
        Odd side of the texture kernel.
    hidden : int
        Width of the amplitude MLP.
    amplitude : {"seed", "image"}
        Where the amplitude comes from.
    in_flux : bool
        Add the noise in flux rather than in network units.

    Examples
    --------
    >>> emulator = NoiseEmulator(5, kernel_size=3, hidden=8)
    >>> noise = emulator(torch.zeros(2, 5, 16, 16), torch.Generator().manual_seed(0))
    >>> tuple(noise.shape), tuple(emulator.kernel().shape)
    ((2, 5, 16, 16), (5, 3, 3))
    """

    def __init__(
        self,
        n_bands: int,
        kernel_size: int,
        hidden: int,
        amplitude: str = "seed",
        in_flux: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.in_flux = in_flux
        self.amplitude_source = amplitude
        if amplitude == "seed":
            self.seed_net = _SeedAmplitude(n_bands, hidden)
        else:
            self.amplitude_net = nn.Sequential(
                nn.Linear(2 * n_bands, hidden), _act(), nn.Linear(hidden, n_bands)
            )
            # Start at an amplitude of 1 (softplus⁻¹(1) = log(e − 1)): the images are
            # scaled to unit sky noise, so training starts close to the answer.
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

    def amplitude(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Noise standard deviation per image and band, ``(B, C)``.

        Drawn from ``generator`` (``"seed"``), or read from ``image`` (``"image"``).
        """
        if self.amplitude_source == "seed":
            return self.seed_net(len(image), generator)  # (B, C)
        stats = torch.cat([image.mean((-2, -1)), image.amax((-2, -1))], dim=1)  # (B, 2C)
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

    def flux_noise(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The emulated Gaussian field, ``(B, C, H, W)``, before it is added.

        In units of the sky noise when ``in_flux``, else in network units.
        """
        amplitude = self.amplitude(image, generator)  # (B, C)
        height, width = image.shape[-2:]
        white = torch.randn(
            image.shape, generator=generator, device=generator.device, dtype=image.dtype
        ).to(image.device)
        # A circular convolution, through the FFT: exactly stationary up to the edges, and
        # on CPU several times cheaper than the backward pass of a depthwise convolution.
        spectrum = torch.fft.rfft2(white) * self.transfer(height, width)  # (B, C, H, W // 2 + 1)
        texture = torch.fft.irfft2(spectrum, s=(height, width))  # (B, C, H, W)
        return amplitude[..., None, None] * texture  # (B, C, H, W)

    def forward(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """What to add to ``image``, in network units, ``(B, C, H, W)``."""
        if len(image) == 0:  # MKL's FFT refuses an empty batch
            return torch.zeros_like(image)
        noise = self.flux_noise(image, generator)  # (B, C, H, W)
        if not self.in_flux:
            return noise
        return _from_flux(_to_flux(image) + noise) - image  # (B, C, H, W)


class SpectralDiscriminator(nn.Module):
    """Two-branch discriminator: pixels and the log-amplitude of their Fourier transform.

    The real-space branch is a PatchGAN (``depth`` stride-2 convolutions, one logit per
    patch); the Fourier branch sees ``log |rfft2(x)|`` of each band, where a noise of the
    wrong level or texture is a shifted or tilted spectrum, and gives one logit per image
    that is added to every patch logit. With ``normalised``, every layer is spectrally
    normalised (a stabiliser of clapkit's earlier design; the published discriminator, in
    the authors' ``networks.py``, has none).

    Parameters
    ----------
    n_bands : int
    width : int
        Channels of the first layer of each branch; doubled per layer up to ``max_channels``.
    depth : int
        Stride-2 layers of the real-space branch.
    max_channels : int
    normalised : bool
        Spectral normalisation on every layer.

    Examples
    --------
    >>> disc = SpectralDiscriminator(5, width=4, depth=2, max_channels=16)
    >>> tuple(disc(torch.zeros(3, 5, 24, 24)).shape)
    (3, 1, 6, 6)
    """

    #: Side of the grid the Fourier features are pooled to: keeps frequency position.
    fourier_grid: ClassVar[int] = 4

    def __init__(
        self, n_bands: int, width: int, depth: int, max_channels: int, normalised: bool = True
    ) -> None:
        super().__init__()

        def norm(layer: nn.Module) -> nn.Module:
            return spectral_norm(layer) if normalised else layer

        ch = [n_bands, *_channels(width, depth - 1, max_channels)]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(ch):
            layers += [norm(_conv(c_in, c_out, stride=2)), _act()]
        layers.append(norm(_conv(ch[-1], 1)))
        self.pixels = nn.Sequential(*layers)
        f1, f2 = _channels(width, 1, max_channels)
        self.fourier = nn.Sequential(
            norm(_conv(n_bands, f1, stride=2)),
            _act(),
            norm(_conv(f1, f2, stride=2)),
            _act(),
            nn.AdaptiveAvgPool2d(self.fourier_grid),
            nn.Flatten(),
            norm(nn.Linear(f2 * self.fourier_grid**2, 1)),
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
    so an untrained generator is the identity: SDSS and CFHTLS galaxies differ by a small
    correction, which is what the network learns. (The published generators, in the
    authors' ``networks.py``, are plain encoder-decoders without skips; this one is
    clapkit's, shared by every NR-GAN variant.)

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
