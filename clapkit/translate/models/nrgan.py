"""NR-GAN: semi-supervised, noise-reconstructed translation of galaxy images.

Follows the semi-supervised noise-reconstructed generative adversarial network of Lin,
Fouchez & Pasquet (2021), which translates galaxy images between SDSS and CFHTLS and
learns from galaxies seen by both surveys as well as from those seen by one only. An
image is a smooth component plus noise; the noise is learnt on its own and added back.
The networks (:mod:`clapkit.translate.models.nrgan_blocks`), one or two per survey:

- an autoencoder (:class:`SmoothAutoencoder`) whose narrow bottleneck lets through what
  is predictable (the galaxy) but not the noise;
- a noise emulator (:class:`NoiseEmulator`): an amplitude per band times white Gaussian
  noise convolved with a learnt kernel symmetric under the rotations and flips of the
  square;
- a discriminator (:class:`SpectralDiscriminator`) that sees the pixels and the
  log-amplitude of their Fourier transform;
- two generators (:class:`ResidualUNet`), source → target and back.

**As published** (the default ``nrgan``; the authors' code, ``model.py`` and
``networks.py`` of github.com/QiufanLin/ImageTranslation, is the reference), training
has two steps, chosen by the epoch (:meth:`NRGANTranslator.train_step`):

- Step 1 (``epoch < pretrain_epochs``), on every image of each survey: the autoencoders
  minimise the MSE to their input and nothing else (``model.py`` L271–273, L340, L374);
  the discriminators learn to tell the images from autoencoder output + emulated noise;
  the adversarial loss updates the noise emulators only (L154, L364, L376, L414–416).
  The noise amplitude is drawn from a Gaussian seed through a small MLP per band with a
  softplus (``networks.py`` L145–153), so the scatter of noise levels is learnt.
- Step 2, the generators alone, with no adversarial term (L342, L410–411): they read
  the *raw*, noisy images; the cycle injects emulated noise in the middle, ``x →
  G(x) + noise → G'(·)``, and is compared by MSE with the raw ``x`` on unpaired galaxies
  (L165–177, L293–295); the identity loss compares, by MSE, ``G(x)`` of a paired galaxy
  with its raw counterpart (L182, L277–279). The autoencoders are not used in step 2
  (only the emulators are carried over, L387–389).
- A translation is ``G_s2t(x) + noise_target`` (the test phase returns ``x1_recon``,
  L170 and L460); without its noise (``add_noise=False``, the ``nrgan_smooth`` set) it is
  ``G_s2t(x)``.

Both steps clip the global gradient norm at 5 (L50, L369–370) and use the
non-saturating binary cross-entropy GAN loss (L303–313).

**Variants**, the same code with other settings (:attr:`NRGANConfig.VARIANTS`):

- ``nrgan_clapkit``: clapkit's earlier design, which older saved models were trained
  with. Step 1 fits autoencoders *and* emulators on L1 + adversarial + a spectral loss
  matching the emulated noise's radial power spectrum to the residual ``x − AE(x)``;
  the amplitude is read from the smooth image and the noise added in flux; the
  discriminators are spectrally normalised and trained with the least-squares loss;
  step 2 maps autoencoder-smoothed images, ``G(AE(x)) + noise``, with identity, cycle
  (no noise injected) and adversarial terms, all L1.
- The publication's ablations, networks without the autoencoders or emulators, trained
  in one step with an adversarial term (``model.py`` L344–350): ``nrgan_pix2pix`` (paired
  identity loss only, "Ad.pix2pix"), ``nrgan_cyclegan`` (cycle loss only,
  "Ad.CycleGAN") and ``nrgan_cyclegan_id`` (cycle and identity, "Ad.CycleGAN+ID").

Every stabiliser that is not in the paper is an option that is off in the published
default: the spectral loss (``spectral_weight``), spectral normalisation
(``spectral_norm``), the least-squares loss (``gan_loss``), the learning-rate factors of
the autoencoders and emulators (``ae_lr_factor``, ``noise_lr_factor``). What stays
clapkit's in every variant: the network architectures above (the paper's are larger
plain encoder-decoders; the generators here are residual U-Nets on the target grid, since
clapkit resamples the source images onto it first), the emulator kernel scaled to unit
norm (the same noise fields, see :class:`NoiseEmulator`) and its amplitude starting near
the unit sky noise the images are scaled to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import ModelConfig, TranslationBatch, Translator
from clapkit.translate.models.nrgan_blocks import (
    NoiseEmulator,
    ResidualUNet,
    SmoothAutoencoder,
    SpectralDiscriminator,
    _radial_bins,
    dihedral_average,
    radial_log_power,
)

__all__ = [
    "CLAPKIT_DESIGN",
    "DESIGN_FIELDS",
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

#: Smooth pixels fainter than this, in network units (a flux of e − 1 ≈ 1.7 sky σ), are
#: sky for the spectral loss.
_SKY_LEVEL = 1.0

#: Log-power error (about ±12% in noise level) where the spectral loss turns from
#: quadratic, which settles smoothly, to linear, which shrugs off outlying annuli.
_SPECTRAL_DELTA = 0.25

#: Choices of the string settings of :class:`NRGANConfig`.
_CHOICES = {
    "generator_input": ("raw", "smooth"),
    "pixel_loss": ("mse", "l1"),
    "noise_amplitude": ("seed", "image"),
    "gan_loss": ("bce", "lsgan"),
}

#: Settings of clapkit's earlier design (the ``nrgan_clapkit`` variant), every one that
#: differs from the published default. A recorded config without the fields added with
#: the published design (issue 17) was trained this way and loads this way.
CLAPKIT_DESIGN: dict[str, Any] = {
    "generator_input": "smooth",
    "cycle_noise": False,
    "pixel_loss": "l1",
    "ae_adversarial": True,
    "noise_amplitude": "image",
    "noise_in_flux": True,
    "gan_loss": "lsgan",
    "spectral_norm": True,
    "generator_adversarial": True,
    "grad_clip": 0.0,
    "reconstruction_weight": 10.0,
    "spectral_weight": 10.0,
    "identity_weight": 10.0,
    "cycle_weight": 10.0,
    "ae_lr_factor": 5.0,
    "noise_lr_factor": 25.0,
}

#: The fields added with the published design: absent from configs recorded before it.
DESIGN_FIELDS = (
    "generator_input",
    "cycle_noise",
    "pixel_loss",
    "ae_adversarial",
    "noise_amplitude",
    "noise_in_flux",
    "gan_loss",
    "spectral_norm",
    "generator_adversarial",
    "grad_clip",
)

#: The publication's ablations (``model.py`` methods 3, 4 and 6): the generators alone,
#: in one adversarial step, no autoencoder and no noise, losses weighted 1000 : 1 against
#: the adversarial term (L344–350).
_ABLATION: dict[str, Any] = {
    "pretrain_epochs": 0,
    "generator_input": "raw",
    "add_noise": False,
    "cycle_noise": False,
    "generator_adversarial": True,
}


# --- configuration ---------------------------------------------------------------------


@dataclass
class NRGANConfig(ModelConfig):
    """Hyper-parameters of :class:`NRGANTranslator`; the defaults are the ``"cpu"`` preset.

    The defaults train NR-GAN as published (see the module docstring); :attr:`VARIANTS`
    holds the settings of the named variants. The ``"paper"`` preset is this module's
    larger networks for a GPU (widths 32–64, four halvings, 20 epochs of step 1); it is
    not checked against the sizes of Lin, Fouchez & Pasquet (2021), which this
    implementation does not reproduce layer for layer.

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
        Step 1: weights of the autoencoders' reconstruction loss and of the spectral loss
        (0, published: no spectral loss).
    identity_weight, cycle_weight : float
        Step 2: weights of the paired identity and of the unpaired cycle losses (0 leaves
        a loss out).
    adversarial_weight : float
        Weight of the adversarial loss wherever there is one.
    ae_lr_factor, noise_lr_factor : float
        Learning rates of the autoencoders and of the noise emulators as multiples of the
        training loop's (1, published).
    add_noise : bool
        Whether :meth:`NRGANTranslator.translate` adds emulated target noise (and, when
        step 2 is adversarial, whether the discriminators judge translations with it);
        False at inference is the "smooth" set (same training).
    generator_input : {"raw", "smooth"}
        What the generators read: the raw, noisy images (published) or their autoencoder
        output (clapkit's design).
    cycle_noise : bool
        Add the emulated noise of the intermediate survey in the middle of the cycle
        (published).
    pixel_loss : {"mse", "l1"}
        Distance of the reconstruction, identity and cycle losses.
    ae_adversarial : bool
        Step 1 also updates the autoencoders with the adversarial loss (and the spectral
        loss), in one update with the emulators (clapkit); False: the autoencoders learn
        on the reconstruction loss alone and the adversarial loss updates the emulators
        only (published).
    noise_amplitude : {"seed", "image"}
        The emulators' amplitude: from a Gaussian seed (published) or from the image.
    noise_in_flux : bool
        Add the emulated noise in flux rather than in network units.
    gan_loss : {"bce", "lsgan"}
        Non-saturating binary cross-entropy (published) or least squares.
    spectral_norm : bool
        Spectral normalisation on every discriminator layer (not published).
    generator_adversarial : bool
        Step 2 has an adversarial term and updates the discriminators (not in the
        published NR-GAN; part of its ablations).
    grad_clip : float
        Clip the global norm of each update's gradients at this value (5, published);
        0 clips nothing.

    Examples
    --------
    >>> NRGANConfig.preset("tiny").ae_width
    4
    >>> NRGANConfig.variant("nrgan_clapkit", "tiny").generator_input
    'smooth'
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
    reconstruction_weight: float = 1.0
    spectral_weight: float = 0.0
    identity_weight: float = 1.0
    cycle_weight: float = 1.0
    adversarial_weight: float = 1.0
    ae_lr_factor: float = 1.0
    noise_lr_factor: float = 1.0
    add_noise: bool = True
    generator_input: str = "raw"
    cycle_noise: bool = True
    pixel_loss: str = "mse"
    ae_adversarial: bool = False
    noise_amplitude: str = "seed"
    noise_in_flux: bool = False
    gan_loss: str = "bce"
    spectral_norm: bool = False
    generator_adversarial: bool = False
    grad_clip: float = 5.0

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

    #: Named variants: settings applied over a preset (the published NR-GAN is ``nrgan``,
    #: the defaults).
    VARIANTS: ClassVar[dict[str, dict[str, Any]]] = {
        "nrgan_clapkit": CLAPKIT_DESIGN,
        "nrgan_pix2pix": {**_ABLATION, "identity_weight": 1000.0, "cycle_weight": 0.0},
        "nrgan_cyclegan": {**_ABLATION, "identity_weight": 0.0, "cycle_weight": 1000.0},
        "nrgan_cyclegan_id": {**_ABLATION, "identity_weight": 1000.0, "cycle_weight": 1000.0},
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
            elif f.type == "str" and value not in _CHOICES[f.name]:
                raise ValidationError(
                    f"{name}.{f.name} must be one of {list(_CHOICES[f.name])}, got {value!r}"
                )
        if self.noise_kernel_size % 2 == 0:  # a kernel centred on its pixel
            raise ValidationError(
                f"{name}.noise_kernel_size must be odd, got {self.noise_kernel_size}"
            )

    @classmethod
    def variant(cls, name: str, preset: str, **overrides: Any) -> NRGANConfig:
        """The preset with the settings of variant ``name`` (``"nrgan"``: none), then overrides.

        Examples
        --------
        >>> NRGANConfig.variant("nrgan_cyclegan", "tiny").cycle_weight
        1000.0
        >>> NRGANConfig.variant("nrgan_cycle", "tiny")
        Traceback (most recent call last):
        ...
        clapkit.errors.ValidationError: unknown NR-GAN variant 'nrgan_cycle'; expected one of ['nrgan', 'nrgan_clapkit', 'nrgan_pix2pix', 'nrgan_cyclegan', 'nrgan_cyclegan_id']
        """
        if name != "nrgan" and name not in cls.VARIANTS:
            raise ValidationError(
                f"unknown NR-GAN variant {name!r}; expected one of {['nrgan', *cls.VARIANTS]}"
            )
        return cls.preset(preset, **{**cls.VARIANTS.get(name, {}), **overrides})

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> NRGANConfig:
        """A complete config recorded with a trained model; older records load as they trained.

        A record without the fields of the published design (written before them) was
        trained with clapkit's earlier design, so those fields take its settings
        (:data:`CLAPKIT_DESIGN`).

        Examples
        --------
        >>> record = {k: v for k, v in NRGANConfig().to_dict().items() if k not in DESIGN_FIELDS}
        >>> NRGANConfig.from_record(record).generator_input
        'smooth'
        """
        if any(key in data for key in DESIGN_FIELDS):
            return cls.from_dict(data)
        legacy = {key: CLAPKIT_DESIGN[key] for key in DESIGN_FIELDS}
        return cls.from_dict({**legacy, **data})


# --- the model -------------------------------------------------------------------------


def _gan_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """GAN loss of ``logits`` labelled real or fake: binary cross-entropy or least squares."""
    if kind == "lsgan":  # mean squared distance of the logits to 1 (real) or 0
        return (logits - float(real)).pow(2).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


def _distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean squared (``"mse"``) or absolute (``"l1"``) difference of two image batches."""
    difference = a - b
    return difference.pow(2).mean() if kind == "mse" else difference.abs().mean()


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
    """Semi-supervised noise-reconstructed GAN (Lin, Fouchez & Pasquet 2021).

    See the module docstring for the published training and the variants.

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
    A parameter without a gradient in an update is left alone by Adam, so the
    autoencoders and the emulators can be updated one after the other by one optimiser.

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

    #: Loss terms returned by :meth:`train_step` in step 1 and step 2 (0.0 when unused).
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
            {
                d: NoiseEmulator(
                    self.n_bands,
                    c.noise_kernel_size,
                    c.noise_hidden,
                    amplitude=c.noise_amplitude,
                    in_flux=c.noise_in_flux,
                )
                for d in DOMAINS
            }
        )
        self.discriminators = nn.ModuleDict(
            {
                d: SpectralDiscriminator(
                    self.n_bands,
                    c.discriminator_width,
                    c.discriminator_depth,
                    c.max_channels,
                    normalised=c.spectral_norm,
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

    def noise(self, image: torch.Tensor, domain: str, generator: torch.Generator) -> torch.Tensor:
        """Emulated noise of ``domain`` to add to ``image``, drawn from ``generator``.

        In network units: what to add to ``image`` (see :class:`NoiseEmulator`).

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny"), n_bands=5, size=16)
        >>> n = model.noise(torch.zeros(64, 5, 16, 16), "source", torch.Generator().manual_seed(1))
        >>> round(n.std().item(), 1)  # the emulator starts near unit sky noise
        1.0
        """
        self._check_domain(domain)
        self.check_images(image, f"{domain} images")
        return self.emulators[domain](image, generator)

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

        The autoencoders' optimiser also holds the noise emulators, fitted in step 1, in
        two parameter groups at ``ae_lr_factor`` and ``noise_lr_factor`` ×
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

        Step 1 (``epoch < pretrain_epochs``) fits the autoencoders, discriminators and
        noise emulators on every image of each survey (paired and unpaired); the
        generators are untouched. Returned terms, each summed over the two surveys:

        - ``"reconstruction"``: ``pixel_loss`` between image and autoencoder output;
        - ``"adversarial"``: GAN loss of autoencoder output + emulated noise judged as
          real (updates the emulators; with ``ae_adversarial``, the autoencoders too);
        - ``"spectral"``: (0.0 unless ``spectral_weight``) Huber distance (divided by its
          threshold, so L1-like) between the radially averaged log power spectra, per
          band and averaged over the batch, of the emulated noise and of the residual
          ``x − AE(x)``, both on the sky pixels of ``AE(x)``, each annulus weighted by its
          number of Fourier modes;
        - ``"discriminator"``: GAN loss of the discriminators (real vs output + noise).

        Step 2 (``epoch >= pretrain_epochs``) freezes the autoencoders and emulators and
        updates the generators (after the discriminators, with
        ``generator_adversarial``). The generators read the raw images or, with
        ``generator_input="smooth"``, their autoencoder output (the *inputs*). Returned
        terms, each summed over the two directions:

        - ``"identity"``: ``pixel_loss`` between the translation of a paired galaxy and
          the input of its counterpart (0.0 without paired galaxies);
        - ``"cycle"``: ``pixel_loss`` between an unpaired input and its round trip through
          both generators, with emulated noise added half-way if ``cycle_noise`` (0.0
          without unpaired galaxies);
        - ``"adversarial"``, ``"discriminator"``: GAN losses of the generators and of the
          discriminators on translations (+ noise, with ``add_noise``); 0.0 unless
          ``generator_adversarial``.

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

    def _update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``, its global gradient norm clipped at ``grad_clip``."""
        optimizer.zero_grad()
        if not loss.requires_grad:  # every term of the update is switched off
            return
        loss.backward()
        if self.config.grad_clip > 0:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()

    def _discriminator_update(
        self,
        real: dict[str, torch.Tensor],
        fake: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
    ) -> float:
        kind = self.config.gan_loss
        loss = real["source"].new_zeros(())
        for domain in DOMAINS:
            n_real = len(real[domain])
            # One call on real and fake together: one power iteration of the spectral norms.
            logits = self.discriminators[domain](torch.cat([real[domain], fake[domain].detach()]))
            loss = loss + 0.5 * (
                _gan_loss(logits[:n_real], True, kind) + _gan_loss(logits[n_real:], False, kind)
            )
        self._update(optimizer, loss)
        return loss.item()

    def _adversarial(self, fake: dict[str, torch.Tensor]) -> torch.Tensor:
        """Generator-side GAN loss, summed over surveys; the discriminators stay fixed."""
        kind = self.config.gan_loss
        with _frozen(list(self.discriminators.values())):
            return sum(
                (_gan_loss(self.discriminators[d](fake[d]), True, kind) for d in DOMAINS),
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

    def _spectral(
        self, images: dict[str, torch.Tensor], smooth: dict[str, torch.Tensor], noise
    ) -> torch.Tensor:
        """The spectral loss summed over surveys; fits the emulators only."""
        zero = images["source"].new_zeros(())
        if self.config.spectral_weight == 0:
            return zero
        return sum(
            (
                self._spectral_loss(images[d] - smooth[d].detach(), noise[d], smooth[d])
                for d in DOMAINS
            ),
            start=zero,
        )

    def _step_autoencoders(
        self,
        images: dict[str, torch.Tensor],
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        c = self.config
        optimizer = optimizers["autoencoders"]
        smooth = {d: self.autoencoders[d](images[d]) for d in DOMAINS}  # (B_d, C, S, S)
        zero = smooth["source"].new_zeros(())
        reconstruction = sum(
            (_distance(smooth[d], images[d], c.pixel_loss) for d in DOMAINS), start=zero
        )
        if c.ae_adversarial:
            # Discriminators, then autoencoders and emulators in one update. The emulators
            # read the detached smooth image: the spectral loss fits them only, and the
            # autoencoders see the noise as added (which it is, to first order).
            noise = {d: self.emulators[d](smooth[d].detach(), generator) for d in DOMAINS}
            fake = {d: smooth[d] + noise[d] for d in DOMAINS}
            d_loss = self._discriminator_update(images, fake, optimizers["discriminators"])
            spectral = self._spectral(images, smooth, noise)
            adversarial = self._adversarial(fake)
            self._update(
                optimizer,
                c.reconstruction_weight * reconstruction
                + c.spectral_weight * spectral
                + c.adversarial_weight * adversarial,
            )
        else:
            # As published (model.py L413–416): the autoencoders on their reconstruction
            # alone, then the discriminators, then the emulators on the adversarial loss
            # of the (now fixed) smooth image plus their noise.
            self._update(optimizer, c.reconstruction_weight * reconstruction)
            smooth = {d: smooth[d].detach() for d in DOMAINS}
            noise = {d: self.emulators[d](smooth[d], generator) for d in DOMAINS}
            fake = {d: smooth[d] + noise[d] for d in DOMAINS}
            d_loss = self._discriminator_update(images, fake, optimizers["discriminators"])
            spectral = self._spectral(images, smooth, noise)
            adversarial = self._adversarial(fake)
            self._update(
                optimizer, c.adversarial_weight * adversarial + c.spectral_weight * spectral
            )
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
        with _frozen([self.autoencoders, self.emulators], eval_mode=True):
            inputs = images
            if c.generator_input == "smooth":
                with torch.no_grad():
                    inputs = {d: self.autoencoders[d](images[d]) for d in DOMAINS}
            # Translations, keyed by the survey they imitate.
            translated = {
                "target": self.generators["s2t"](inputs["source"]),  # (B_s, C, S, S)
                "source": self.generators["t2s"](inputs["target"]),  # (B_t, C, S, S)
            }
            # The emulators' weights are frozen, but gradients pass through the noise (and
            # through an amplitude read from the image) to the translations.
            noisy = (c.generator_adversarial and c.add_noise) or c.cycle_noise
            noise = {d: self.emulators[d](translated[d], generator) for d in DOMAINS if noisy}
            zero = translated["source"].new_zeros(())
            d_loss, adversarial = 0.0, zero
            if c.generator_adversarial:
                fake = {
                    d: translated[d] + noise[d] if c.add_noise else translated[d] for d in DOMAINS
                }
                d_loss = self._discriminator_update(images, fake, optimizers["discriminators"])

            identity = zero
            if n_paired and c.identity_weight > 0:
                for d in DOMAINS:  # the translation of a paired galaxy against its counterpart
                    identity = identity + _distance(
                        translated[d][:n_paired], inputs[d][:n_paired], c.pixel_loss
                    )
            cycle = zero
            if c.cycle_weight > 0:
                for domain, there, back in (
                    ("source", "target", "t2s"),
                    ("target", "source", "s2t"),
                ):
                    half_way = translated[there][n_paired:]  # (B_d - n_paired, C, S, S)
                    if not len(half_way):
                        continue
                    if c.cycle_noise:  # as published: noise injected mid-cycle
                        half_way = half_way + noise[there][n_paired:]
                    returned = self.generators[back](half_way)
                    cycle = cycle + _distance(returned, inputs[domain][n_paired:], c.pixel_loss)
            if c.generator_adversarial:
                adversarial = self._adversarial(fake)
            self._update(
                optimizers["generators"],
                c.identity_weight * identity
                + c.cycle_weight * cycle
                + c.adversarial_weight * adversarial,
            )
        return {
            "identity": identity.item(),
            "cycle": cycle.item(),
            "adversarial": adversarial.item(),
            "discriminator": d_loss,
        }

    # --- inference --------------------------------------------------------------------

    @property
    def stochastic(self) -> bool:
        """True with the emulated noise (``add_noise``): it is drawn from the seed; the
        generator's output alone (``nrgan_smooth``) is deterministic."""
        return bool(self.config.add_noise)

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``G_s2t(x)`` plus emulated target noise (unless ``add_noise`` is off).

        ``x`` is the raw source image, or its autoencoder output with
        ``generator_input="smooth"``.

        Examples
        --------
        >>> model = NRGANTranslator(NRGANConfig.preset("tiny", add_noise=False), 5, 24).eval()
        >>> with torch.no_grad():
        ...     out = model.translate(torch.rand(2, 5, 24, 24), torch.Generator())
        >>> tuple(out.shape)
        (2, 5, 24, 24)
        """
        self.check_images(source, "source images")
        x = source
        if self.config.generator_input == "smooth":
            x = self.autoencoders["source"](source)  # (B, C, S, S)
        translated = self.generators["s2t"](x)  # (B, C, S, S)
        if not self.config.add_noise:
            return translated
        return translated + self.emulators["target"](translated, generator)  # (B, C, S, S)
