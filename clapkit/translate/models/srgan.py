"""SRGAN: a residual generator trained against a discriminator, on the target grid.

This follows SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution
Using a Generative Adversarial Network", CVPR, arXiv:1612.04802) with the changes that
the survey images call for.

* **No upsampling.** The paper's generator reads a low-resolution image and ends in
  pixel-shuffle upsamplers. Here the source images were already resampled onto the
  target grid (the pixel scales differ by a non-integer factor), so the generator
  returns an image of its input's shape: it predicts a *correction* that is added to the
  source image. Its body is the paper's: a head conv with PReLU, residual blocks
  (conv–BN–PReLU–conv–BN plus skip), a conv–BN closing the long skip, and a tail conv.
  The tail starts at zero, so an untrained model is the identity.
* **Body resolution.** With ``body_scale = 1`` (the ``"paper"`` preset) the body works at
  full resolution. A CPU cannot train that at 136² pixels, so ``body_scale = s`` first
  folds each s×s block of pixels into channels (a lossless space-to-depth) and the tail
  unfolds them again (depth-to-space, the paper's sub-pixel step, here only undoing the
  fold). Half resolution costs little: the SDSS images were themselves upsampled ×2.12
  onto the CFHTLS grid.
* **No VGG loss.** The paper's perceptual loss compares ImageNet VGG19 features, which
  cannot be downloaded here and mean nothing for five-band ugriz images. It is replaced
  by *feature matching* on the discriminator (Salimans et al. 2016, arXiv:1606.03498;
  pix2pixHD, Wang et al. 2018, arXiv:1711.11585): the L1 distance between the
  discriminator's intermediate feature maps of the generated and of the real target
  image, averaged over layers, weighted by ``perceptual_weight``.

The discriminator follows the paper's: strided 3×3 conv blocks with BatchNorm and
LeakyReLU(0.2), each halving followed by a conv that doubles the width, then global
average pooling and a dense layer giving one logit. Unlike the paper, its stem conv
already halves the image, which quarters the discriminator's cost. Strided 3×3 convs
with padding 1 give ``ceil(side / 2)`` and the pooling takes any remaining side, so
sides that are multiples of 8 but not of 16 (136 = 8·17) need no padding.

The generator minimises ``content + adversarial_weight·adversarial +
perceptual_weight·perceptual``, with the content loss MSE (the paper's SRResNet loss) or
L1 and the adversarial loss the non-saturating binary cross-entropy. For the first
``pretrain_epochs`` epochs only the content loss is trained (the paper's SRResNet
initialisation of the generator) and the discriminator is left alone.

Real and generated images go through the discriminator as one concatenated batch, so its
BatchNorm layers normalise both with the same statistics: the real/fake difference is
not normalised away before the feature-matching loss sees it, and a batch of one galaxy
still gives BatchNorm two samples. The generator's BatchNorm layers use running
statistics in eval mode, so a translation does not depend on the rest of its batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import ModelConfig, TranslationBatch, Translator

__all__ = [
    "ResidualBlock",
    "SRGANConfig",
    "SRGANDiscriminator",
    "SRGANGenerator",
    "SRGANTranslator",
]

#: The LeakyReLU slope of the paper's discriminator.
_LEAK = 0.2


# --- building blocks --------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """conv–BN–PReLU–conv–BN with an identity skip, at constant width and resolution.

    Parameters
    ----------
    channels : int
        Feature maps in and out.

    Examples
    --------
    >>> import torch
    >>> block = ResidualBlock(4)
    >>> tuple(block(torch.zeros(2, 4, 8, 8)).shape)
    (2, 4, 8, 8)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # The convs feed BatchNorm, whose shift makes a conv bias redundant.
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # (B, F, H, W)


class SRGANGenerator(nn.Module):
    """The SRGAN generator, returning to the input grid: ``output = source + correction``.

    Parameters
    ----------
    n_bands : int
        Bands in and out.
    channels : int
        Width of the feature maps (64 in the paper).
    n_blocks : int
        Residual blocks (16 in the paper).
    outer_kernel : int
        Odd kernel side of the head and tail convs (9 in the paper).
    body_scale : int
        The body runs at ``1 / body_scale`` of the grid (1: full resolution).

    Examples
    --------
    >>> import torch
    >>> gen = SRGANGenerator(n_bands=5, channels=4, n_blocks=1, outer_kernel=3, body_scale=2)
    >>> x = torch.randn(2, 5, 24, 24)
    >>> out = gen(x)
    >>> tuple(out.shape), bool(torch.equal(out, x))  # the tail starts at zero
    ((2, 5, 24, 24), True)
    """

    def __init__(
        self, n_bands: int, channels: int, n_blocks: int, outer_kernel: int, body_scale: int
    ) -> None:
        super().__init__()
        self.body_scale = body_scale
        grid_bands = n_bands * body_scale**2
        pad = outer_kernel // 2
        self.head = nn.Sequential(
            nn.Conv2d(grid_bands, channels, outer_kernel, padding=pad), nn.PReLU(channels)
        )
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(n_blocks)))
        self.post = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.tail = nn.Conv2d(channels, grid_bands, outer_kernel, padding=pad)
        # Sources already resemble their targets: start from the identity map, so early
        # training refines the image instead of first learning to copy it.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        # Space-to-depth loses no pixel: each body pixel sees a body_scale² block.
        x = F.pixel_unshuffle(source, self.body_scale)  # (B, C·s², H/s, W/s)
        head = self.head(x)  # (B, F, H/s, W/s)
        body = self.post(self.blocks(head)) + head  # (B, F, H/s, W/s), the long skip
        correction = F.pixel_shuffle(self.tail(body), self.body_scale)  # (B, C, H, W)
        return source + correction  # (B, C, H, W)


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator: strided conv–BN–LeakyReLU blocks, global pool, one logit.

    Parameters
    ----------
    n_bands : int
        Bands of the images it judges.
    channels : int
        Width of the stem; each further halving doubles it (64 in the paper).
    n_downsamplings : int
        Stride-2 convs (4 in the paper), the stem's included.

    Examples
    --------
    >>> import torch
    >>> disc = SRGANDiscriminator(n_bands=5, channels=4, n_downsamplings=3)
    >>> logits, features = disc(torch.randn(3, 5, 40, 40))
    >>> tuple(logits.shape), [tuple(f.shape) for f in features]
    ((3,), [(3, 4, 20, 20), (3, 8, 10, 10), (3, 16, 5, 5)])
    """

    def __init__(self, n_bands: int, channels: int, n_downsamplings: int) -> None:
        super().__init__()
        # The paper's stem keeps the full resolution; halving at once quarters the cost
        # of the discriminator, whose 3×3 strided kernels still see every pixel. No
        # BatchNorm on the stem (as in the paper and DCGAN): it would normalise away the
        # images' own brightness scale before anything has looked at it.
        self.stem = nn.Sequential(
            nn.Conv2d(n_bands, channels, 3, stride=2, padding=1), nn.LeakyReLU(_LEAK)
        )
        stages = []
        width = channels
        for _ in range(n_downsamplings - 1):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.LeakyReLU(_LEAK),
                    # Widen after halving, as the paper does: the wider conv costs less.
                    nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(2 * width),
                    nn.LeakyReLU(_LEAK),
                )
            )
            width *= 2
        self.stages = nn.ModuleList(stages)
        self.dense = nn.Linear(width, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits ``(B,)`` (real > 0) and the feature map after the stem and each stage."""
        x = self.stem(images)  # (B, F, ceil(H/2), ceil(W/2))
        features = [x]
        for stage in self.stages:
            x = stage(x)  # (B, 2F, ceil(H/2), ceil(W/2)) of its input
            features.append(x)
        pooled = x.mean(dim=(2, 3))  # (B, F_last)
        return self.dense(pooled).squeeze(1), features  # (B,)


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Stop parameter gradients of ``module`` (inputs still get theirs) for a block."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


# --- configuration ----------------------------------------------------------------------


@dataclass
class SRGANConfig(ModelConfig):
    """Architecture and loss weights of :class:`SRGANTranslator` (defaults: ``"cpu"``).

    The ``"paper"`` preset has the published sizes of generator and discriminator (64
    channels, 16 residual blocks, 9×9 outer kernels, four halvings), with the changes of
    the module docstring (no upsampling, no VGG loss, a halving stem).

    Attributes
    ----------
    channels : int
        Generator feature width (paper: 64).
    n_blocks : int
        Generator residual blocks (paper: 16).
    outer_kernel : int
        Odd kernel side of the generator's head and tail convs (paper: 9).
    body_scale : int
        1, 2, 4 or 8: the generator body runs at ``1 / body_scale`` of the grid after a
        lossless space-to-depth (1: full resolution; 2 or 4 are what a CPU can train).
    disc_channels : int
        Discriminator stem width, doubled at each halving (paper: 64).
    disc_downsamplings : int
        Discriminator stride-2 convs, the stem's included (paper: 4).
    content_loss : str
        ``"mse"`` (the paper's) or ``"l1"`` between generated and target images.
    adversarial_weight : float
        Weight of the generator's adversarial BCE loss (paper: 1e-3).
    perceptual_weight : float
        Weight of the discriminator feature-matching L1 loss (stands in for VGG).
    pretrain_epochs : int
        Epochs of content-only generator training before the adversarial stage.
    discriminator_lr_scale : float
        Discriminator learning rate as a multiple of the generator's.

    Examples
    --------
    >>> cfg = SRGANConfig.preset("tiny")
    >>> cfg.channels, cfg.n_blocks, cfg.content_loss
    (8, 1, 'mse')
    """

    channels: int = 16
    n_blocks: int = 3
    outer_kernel: int = 3
    body_scale: int = 2
    disc_channels: int = 16
    disc_downsamplings: int = 3
    content_loss: str = "mse"
    adversarial_weight: float = 1e-3
    perceptual_weight: float = 0.1
    pretrain_epochs: int = 2
    discriminator_lr_scale: float = 1.0

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "channels": 8,
            "n_blocks": 1,
            "disc_channels": 4,
            "disc_downsamplings": 2,
            "pretrain_epochs": 0,
        },
        "cpu": {},
        "paper": {
            "channels": 64,
            "n_blocks": 16,
            "outer_kernel": 9,
            "disc_channels": 64,
            "body_scale": 1,
            "disc_downsamplings": 4,
            "pretrain_epochs": 5,
        },
    }

    def __post_init__(self) -> None:
        for name in (
            "channels", "n_blocks", "outer_kernel", "disc_channels", "body_scale",
            "disc_downsamplings",
        ):  # fmt: skip
            setattr(self, name, check_int(getattr(self, name), f"SRGANConfig.{name}"))
        if self.outer_kernel % 2 == 0:  # a kernel centred on its pixel
            raise ValidationError(f"SRGANConfig.outer_kernel must be odd, got {self.outer_kernel}")
        if self.body_scale not in (1, 2, 4, 8):
            # Image sides are multiples of 8, so these divide every valid side.
            raise ValidationError(
                f"SRGANConfig.body_scale must be 1, 2, 4 or 8, got {self.body_scale}"
            )
        if self.content_loss not in ("mse", "l1"):
            raise ValidationError(
                f"SRGANConfig.content_loss must be 'mse' or 'l1', got {self.content_loss!r}"
            )
        for name in ("adversarial_weight", "perceptual_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ValidationError(f"SRGANConfig.{name} must be a number >= 0, got {value!r}")
        self.pretrain_epochs = check_int(self.pretrain_epochs, "SRGANConfig.pretrain_epochs", 0)
        s = self.discriminator_lr_scale
        if not isinstance(s, int | float) or isinstance(s, bool) or not 0 < s < float("inf"):
            raise ValidationError(
                f"SRGANConfig.discriminator_lr_scale must be a finite number > 0, got {s!r}"
            )


# --- the translator ---------------------------------------------------------------------


class SRGANTranslator(Translator):
    """SRGAN on the target grid: residual generator, discriminator, feature matching.

    Parameters
    ----------
    config : SRGANConfig
        Architecture and loss weights.
    n_bands : int
        Bands per image.
    size : int
        Image side, a multiple of 8.

    Notes
    -----
    :meth:`train_step` returns the unweighted loss terms ``"content"``, ``"perceptual"``
    (feature matching), ``"adversarial"`` (the generator's BCE) and ``"discriminator"``
    (the discriminator's BCE on real and generated images); the last three are zero
    during the ``pretrain_epochs``. :meth:`make_optimizers` returns ``"generator"`` and
    ``"discriminator"``. Translation is deterministic: the generator argument is unused.

    Examples
    --------
    >>> import torch
    >>> from clapkit.translate.models.base import TranslationBatch
    >>> _ = torch.manual_seed(0)
    >>> model = SRGANTranslator(SRGANConfig.preset("tiny"), n_bands=5, size=16)
    >>> opts = model.make_optimizers(1e-3)
    >>> x = torch.randn(4, 5, 16, 16)
    >>> batch = TranslationBatch(x, 0.5 * x, x[:0], x[:0])
    >>> sorted(model.train_step(batch, opts, epoch=0, generator=torch.Generator()))
    ['adversarial', 'content', 'discriminator', 'perceptual']
    >>> with torch.no_grad():
    ...     out = model.eval().translate(x, torch.Generator())
    >>> tuple(out.shape)
    (4, 5, 16, 16)
    """

    name: ClassVar[str] = "srgan"
    config_class: ClassVar[type[ModelConfig]] = SRGANConfig
    supervised: ClassVar[bool] = True
    config: SRGANConfig

    def __init__(self, config: SRGANConfig, n_bands: int, size: int) -> None:
        super().__init__(config, n_bands, size)
        self.generator = SRGANGenerator(
            self.n_bands, config.channels, config.n_blocks, config.outer_kernel, config.body_scale
        )
        self.discriminator = SRGANDiscriminator(
            self.n_bands, config.disc_channels, config.disc_downsamplings
        )

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """Adam with betas (0.5, 0.999) for ``"generator"`` and ``"discriminator"``."""
        d_lr = learning_rate * self.config.discriminator_lr_scale
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=learning_rate, betas=(0.5, 0.999)
            ),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=d_lr, betas=(0.5, 0.999)
            ),
        }

    def _content(self, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.content_loss == "l1":
            return F.l1_loss(fake, target)
        return F.mse_loss(fake, target)

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """Discriminator step, then generator step (content only while pretraining).

        The generated images are computed once and shared by both steps; the
        discriminator step sees them detached, the generator step sees the discriminator
        as already updated on this batch.
        """
        source, target = batch.source, batch.target
        if source.shape[0] == 0:
            raise ValidationError(
                "srgan: the batch holds no paired source images; SRGAN trains on paired "
                "source/target images only"
            )
        self.check_images(source, "source")
        self.check_images(target, "target")
        missing = sorted({"generator", "discriminator"} - set(optimizers))
        if missing:
            raise ValidationError(f"srgan: optimizers {missing} are missing; use make_optimizers")
        g_opt, d_opt = optimizers["generator"], optimizers["discriminator"]
        cfg = self.config
        n = source.shape[0]

        fake = self.generator(source)  # (B, C, H, W)
        content = self._content(fake, target)
        if epoch < cfg.pretrain_epochs:
            g_opt.zero_grad(set_to_none=True)
            content.backward()
            g_opt.step()
            return {
                "content": content.item(),
                "perceptual": 0.0,
                "adversarial": 0.0,
                "discriminator": 0.0,
            }

        real_is_one = torch.cat([source.new_ones(n), source.new_zeros(n)])  # (2B,)
        d_opt.zero_grad(set_to_none=True)
        logits, _ = self.discriminator(torch.cat([target, fake.detach()]))  # (2B,)
        d_loss = F.binary_cross_entropy_with_logits(logits, real_is_one)
        d_loss.backward()
        d_opt.step()

        g_opt.zero_grad(set_to_none=True)
        with _frozen(self.discriminator):
            logits, features = self.discriminator(torch.cat([fake, target]))  # (2B,)
        # Non-saturating loss: the generator wants its images (the first half) called real.
        adversarial = F.binary_cross_entropy_with_logits(logits[:n], torch.ones_like(logits[:n]))
        perceptual = torch.stack([F.l1_loss(f[:n], f[n:].detach()) for f in features]).mean()
        g_loss = content + cfg.adversarial_weight * adversarial + cfg.perceptual_weight * perceptual
        g_loss.backward()
        g_opt.step()
        return {
            "content": content.item(),
            "perceptual": perceptual.item(),
            "adversarial": adversarial.item(),
            "discriminator": d_loss.item(),
        }

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The generator's output, ``(B, C, S, S)``; ``generator`` is unused (deterministic)."""
        self.check_images(source, "source images")
        return self.generator(source)  # (B, C, H, W)
