"""Capsule network translator: dynamic routing between capsules, then a decoder.

Follows Sabour, Frosst & Hinton (2017), "Dynamic Routing Between Capsules" (NeurIPS),
turned from a classifier with a reconstruction decoder into an image-to-image translator:

1. a convolutional stem halves the image three times, down to a coarse ``S/8 × S/8``
   grid (three halvings, so sides that are multiples of 8 but not of 16, like 136, work
   without padding);
2. *primary capsules*: a stride-2 convolution, as in the paper, whose output is cut into
   ``primary_types`` vectors of ``primary_dim`` components at every position of the
   resulting ``⌈S/16⌉ × ⌈S/16⌉`` grid, each passed through the squash nonlinearity so
   that its length lies in [0, 1);
3. *routing by agreement* to ``n_capsules`` output capsules of ``capsule_dim`` components:
   every primary capsule ``i`` predicts each output capsule ``j`` as ``û_j|i = W_ij u_i``;
   coupling coefficients ``c_ij`` are a softmax over the output capsules of logits
   ``b_ij`` that start at zero and grow by the agreement ``û_j|i · v_j`` for
   ``routing_iterations`` rounds (the paper's procedure 1);
4. a decoder that reconstructs the *target* image from the output capsule vectors: a
   linear layer to a coarse feature map, then upsampling convolutions back to ``S``.

Departures from the paper, all needed for large images rather than 28×28 digits:

- One matrix ``W_ij`` per primary capsule *type* and output capsule, shared across the
  grid like a convolution's weights (the paper's DigitCaps layer has one per primary
  capsule), keeps the parameter count independent of the image size. Shared matrices make
  the routed capsules blind to *where* a part sits, so the grid position of each primary
  capsule is added to the first two components of its predictions ("coordinate addition",
  Hinton, Sabour & Frosst 2018, "Matrix capsules with EM routing").
- The total input of an output capsule is divided by the mean number of primary capsules
  per output capsule (the same as rescaling ``W``), so that capsule lengths do not grow
  with the image, and the convolutions get He initialisation, so that primary capsules
  start where the squash is sensitive rather than squashed to zero.
- A handful of capsule vectors cannot carry every pixel of a 136×136×5 image. The
  decoder's last stage therefore gets a light skip: it concatenates the source image to
  the upsampled capsule features, refines them with two convolutions and predicts the
  *residual* to the source. The capsules carry the global, part-level context; the skip
  carries the pixels, within the 5×5-pixel reach of those two convolutions. The residual
  convolution starts at zero, so an untrained model is the identity.

The loss is the L1 distance between translation and target, with one Adam optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import (
    SIZE_MULTIPLE,
    ModelConfig,
    TranslationBatch,
    Translator,
)

__all__ = [
    "CapsuleConfig",
    "CapsuleDecoder",
    "CapsuleTranslator",
    "PrimaryCapsules",
    "RoutedCapsules",
    "route_by_agreement",
    "squash",
]


def squash(s: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """The capsule nonlinearity ``v = |s|² / (1 + |s|²) · s / |s|`` (Sabour et al. eq. 1).

    Short vectors shrink to almost zero, long ones to just below unit length, and the
    direction is kept, so the length can act as the probability that an entity exists.

    Parameters
    ----------
    s : torch.Tensor
        Capsule inputs, the vector along ``dim``.
    dim : int
        Axis of the capsule vectors.
    eps : float
        Keeps the gradient finite at ``s = 0``.

    Returns
    -------
    torch.Tensor
        Same shape as ``s``, every vector of length in [0, 1).

    Examples
    --------
    >>> v = squash(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    >>> [round(x, 4) for x in v.norm(dim=-1).tolist()]
    [0.9615, 0.0]
    """
    sq_norm = (s * s).sum(dim=dim, keepdim=True)
    return s * (sq_norm / (1.0 + sq_norm)) / torch.sqrt(sq_norm + eps)


def route_by_agreement(
    u_hat: torch.Tensor, iterations: int, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic routing (Sabour et al. procedure 1), vectorised over the batch.

    Parameters
    ----------
    u_hat : torch.Tensor, shape (B, J, N, D)
        Prediction of each of the ``N`` lower capsules for each of the ``J`` output
        capsules (output capsule first: the sums over ``N`` are then batched matrix
        products).
    iterations : int
        Routing rounds (3 in the paper); 1 gives uniform coupling.
    scale : float
        Multiplies the total input ``s_j`` before the squash (1 is the paper's sum).

    Returns
    -------
    v : torch.Tensor, shape (B, J, D)
        The output capsules, lengths in [0, 1).
    coupling : torch.Tensor, shape (B, N, J)
        The final coupling coefficients, summing to 1 over the output capsules.

    Examples
    --------
    >>> u_hat = torch.randn(2, 3, 6, 4, generator=torch.Generator().manual_seed(0))
    >>> v, c = route_by_agreement(u_hat, iterations=3)
    >>> tuple(v.shape), tuple(c.shape), bool(torch.allclose(c.sum(-1), torch.ones(2, 6)))
    ((2, 3, 4), (2, 6, 3), True)
    """
    iterations = check_int(iterations, "iterations")
    logits = u_hat.new_zeros(u_hat.shape[:3])  # (B, J, N)
    for it in range(iterations):
        coupling = torch.softmax(logits, dim=1)  # (B, J, N)
        s = scale * torch.einsum("bjn,bjnd->bjd", coupling, u_hat)  # (B, J, D)
        v = squash(s)  # (B, J, D)
        if it < iterations - 1:
            logits = logits + torch.einsum("bjnd,bjd->bjn", u_hat, v)  # (B, J, N)
    return v, coupling.transpose(1, 2)


class PrimaryCapsules(nn.Module):
    """A stride-2 convolution read as ``n_types`` squashed capsule vectors per position.

    The paper's PrimaryCaps layer is also strided; halving the grid here cuts the number
    of primary capsules, and so the cost of routing, by four.

    Parameters
    ----------
    in_channels : int
        Channels of the feature map.
    n_types : int
        Capsule types (32 in the paper), each with its own filters.
    dim : int
        Components per capsule vector (8 in the paper).

    Examples
    --------
    >>> caps = PrimaryCapsules(in_channels=6, n_types=2, dim=4)
    >>> u = caps(torch.randn(3, 6, 5, 5))
    >>> tuple(u.shape), bool((u.norm(dim=-1) < 1).all())
    ((3, 9, 2, 4), True)
    """

    def __init__(self, in_channels: int, n_types: int, dim: int) -> None:
        super().__init__()
        self.n_types = int(n_types)
        self.dim = int(dim)
        self.conv = nn.Conv2d(in_channels, n_types * dim, kernel_size=3, stride=2, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, G, G)`` features to ``(B, ⌈G/2⌉², n_types, dim)`` capsules."""
        out = self.conv(features)  # (B, T·D, ⌈G/2⌉, ⌈G/2⌉)
        b, _, h, w = out.shape
        out = out.view(b, self.n_types, self.dim, h * w)  # (B, T, D, P)
        return squash(out.permute(0, 3, 1, 2))  # (B, P, T, D)


class RoutedCapsules(nn.Module):
    """Output capsules routed by agreement from a grid of primary capsules.

    One transformation matrix ``W_ij`` per (primary type, output capsule) pair is shared
    across the grid; the grid position is added to the first two components of every
    prediction so that the routed capsules know where their parts are.

    Parameters
    ----------
    grid : int
        Side of the primary capsules' grid.
    n_types, in_dim : int
        Primary capsule types and their dimension.
    n_capsules, capsule_dim : int
        Output capsules and their dimension (at least 2, for the coordinates).
    iterations : int
        Routing rounds.

    Examples
    --------
    >>> layer = RoutedCapsules(grid=4, n_types=2, in_dim=4, n_capsules=3, capsule_dim=5,
    ...                        iterations=3)
    >>> v, c = layer(torch.rand(2, 16, 2, 4) / 4)
    >>> tuple(v.shape), tuple(c.shape)
    ((2, 3, 5), (2, 32, 3))
    """

    def __init__(
        self,
        grid: int,
        n_types: int,
        in_dim: int,
        n_capsules: int,
        capsule_dim: int,
        iterations: int,
    ) -> None:
        super().__init__()
        self.iterations = int(iterations)
        # With |u| < 1, this keeps |û| of order one whatever the dimensions.
        self.weight = nn.Parameter(
            torch.randn(n_types, n_capsules, capsule_dim, in_dim) / in_dim**0.5
        )
        # Pixel-centre coordinates in [-1, 1], row-major like the flattened grid.
        axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid * 2 - 1
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        coords = torch.zeros(grid * grid, capsule_dim)
        coords[:, 0], coords[:, 1] = xx.reshape(-1), yy.reshape(-1)
        self.register_buffer("coords", coords.view(1, 1, grid * grid, 1, capsule_dim))
        # Divide s_j by the mean number of primary capsules per output capsule, N / J
        # (the same as rescaling W): the paper's plain sum would grow with the image.
        self.scale = n_capsules / (grid * grid * n_types)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, P, T, in_dim)`` primary capsules to ``(B, J, D)`` capsules and couplings."""
        b, p, t, _ = u.shape
        # Output capsule before primary capsule, so that routing's sums over the N
        # primary capsules are plain batched matrix products on contiguous memory.
        u_hat = torch.einsum("tjdi,bpti->bjptd", self.weight, u)  # (B, J, P, T, D)
        u_hat = u_hat + self.coords  # (B, J, P, T, D)
        u_hat = u_hat.reshape(b, u_hat.shape[1], p * t, -1)  # (B, J, N, D)
        return route_by_agreement(u_hat, self.iterations, self.scale)


class CapsuleDecoder(nn.Module):
    """Capsule vectors (plus the source image) to a translated image.

    A linear layer maps the flattened capsules to a coarse ``S/8`` feature map, two
    upsampling convolutions bring it to ``S/2``; at full size the source image joins and
    two convolutions predict the residual that is added to the source.

    Parameters
    ----------
    n_capsules, capsule_dim : int
        The routed capsules.
    n_bands, size : int
        Bands and side of the images.
    channels : int
        Channels of the coarse feature maps.
    refine_channels : int
        Channels of the full-resolution refinement.

    Examples
    --------
    >>> dec = CapsuleDecoder(n_capsules=3, capsule_dim=4, n_bands=2, size=16, channels=4,
    ...                      refine_channels=4)
    >>> source = torch.randn(2, 2, 16, 16)
    >>> out = dec(torch.rand(2, 3, 4) / 4, source)
    >>> tuple(out.shape), bool(torch.equal(out, source))  # the residual starts at zero
    ((2, 2, 16, 16), True)
    """

    def __init__(
        self,
        n_capsules: int,
        capsule_dim: int,
        n_bands: int,
        size: int,
        channels: int,
        refine_channels: int,
    ) -> None:
        super().__init__()
        self.size = int(size)
        self.grid = self.size // SIZE_MULTIPLE
        self.channels = int(channels)
        self.linear = nn.Linear(n_capsules * capsule_dim, channels * self.grid**2)
        self.up1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.up2 = nn.Conv2d(channels, refine_channels, kernel_size=3, padding=1)
        self.refine = nn.Conv2d(refine_channels + n_bands, refine_channels, 3, padding=1)
        self.residual = nn.Conv2d(refine_channels, n_bands, kernel_size=3, padding=1)
        nn.init.zeros_(self.residual.weight)
        nn.init.zeros_(self.residual.bias)
        self.act = nn.LeakyReLU(0.1)

    def _up(self, x: torch.Tensor, side: int) -> torch.Tensor:
        return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)

    def forward(self, capsules: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """``(B, J, D)`` capsules and ``(B, C, S, S)`` source to ``(B, C, S, S)``."""
        b = capsules.shape[0]
        x = self.act(self.linear(capsules.reshape(b, -1)))  # (B, channels·G·G)
        x = x.view(b, self.channels, self.grid, self.grid)  # (B, channels, S/8, S/8)
        x = self.act(self.up1(self._up(x, self.size // 4)))  # (B, channels, S/4, S/4)
        x = self.act(self.up2(self._up(x, self.size // 2)))  # (B, refine, S/2, S/2)
        x = torch.cat([self._up(x, self.size), source], dim=1)  # (B, refine + C, S, S)
        x = self.act(self.refine(x))  # (B, refine, S, S)
        return source + self.residual(x)  # (B, C, S, S)


def _positive_int(config: Any, name: str, minimum: int = 1) -> None:
    setattr(config, name, check_int(getattr(config, name), f"CapsuleConfig.{name}", minimum))


@dataclass
class CapsuleConfig(ModelConfig):
    """Sizes of the capsule translator; the defaults are the ``"cpu"`` preset.

    The paper is a digit classifier, so no published translator size exists: the
    ``"paper"`` preset takes its capsule sizes (32 primary types of 8 components, 16-D
    output capsules, 3 routing rounds) but routes to 32 output capsules rather than 10
    (one per digit), with a stem and decoder of this module's own (64 and 128 channels).

    Attributes
    ----------
    width : int
        Channels after the stem's first halving; doubled by the second and third.
    primary_types : int
        Primary capsule types per grid position (32 in the paper).
    primary_dim : int
        Components of a primary capsule (8 in the paper).
    n_capsules : int
        Routed output capsules (10 in the paper, one per digit).
    capsule_dim : int
        Components of an output capsule (16 in the paper); at least 2.
    routing_iterations : int
        Rounds of routing by agreement (3 in the paper).
    decoder_channels : int
        Channels of the decoder's coarse feature maps.
    refine_channels : int
        Channels of the full-resolution refinement next to the source image.

    Examples
    --------
    >>> CapsuleConfig.preset("tiny").n_capsules
    3
    >>> CapsuleConfig(routing_iterations=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: CapsuleConfig.routing_iterations must be an integer >= 1, got 0
    """

    width: int = 16
    primary_types: int = 16
    primary_dim: int = 8
    n_capsules: int = 10
    capsule_dim: int = 16
    routing_iterations: int = 3
    decoder_channels: int = 32
    refine_channels: int = 16

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "width": 4,
            "primary_types": 2,
            "primary_dim": 4,
            "n_capsules": 3,
            "capsule_dim": 4,
            "decoder_channels": 8,
            "refine_channels": 8,
        },
        "cpu": {},
        "paper": {
            "width": 64,
            "primary_types": 32,
            "n_capsules": 32,
            "decoder_channels": 128,
            "refine_channels": 64,
        },
    }

    def __post_init__(self) -> None:
        for name in (
            "width",
            "primary_types",
            "primary_dim",
            "n_capsules",
            "routing_iterations",
            "decoder_channels",
            "refine_channels",
        ):
            _positive_int(self, name)
        # Coordinate addition writes the grid position into two components.
        _positive_int(self, "capsule_dim", minimum=2)


class CapsuleTranslator(Translator):
    """Capsule network with dynamic routing and a residual decoder (Sabour et al. 2017).

    Supervised: :meth:`train_step` takes one step of the ``"generator"`` Adam optimiser
    on the L1 distance between the translated paired sources and their targets, and
    returns ``{"l1": ...}``. The model holds no noise, so :meth:`translate` ignores its
    generator.

    Parameters
    ----------
    config : CapsuleConfig
        Sizes of the network.
    n_bands : int
        Bands per image.
    size : int
        Image side, a multiple of 8.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = CapsuleTranslator(CapsuleConfig.preset("tiny"), n_bands=5, size=16)
    >>> source = torch.randn(2, 5, 16, 16)
    >>> batch = TranslationBatch(source, 0.5 * source, source[:0], source[:0])
    >>> gen = torch.Generator().manual_seed(0)
    >>> losses = model.train_step(batch, model.make_optimizers(1e-3), 0, gen)
    >>> sorted(losses)
    ['l1']
    >>> tuple(model.capsules(source).shape)
    (2, 3, 4)
    >>> with torch.no_grad():
    ...     tuple(model.translate(source, gen).shape)
    (2, 5, 16, 16)
    """

    name: ClassVar[str] = "capsule"
    config_class: ClassVar[type[ModelConfig]] = CapsuleConfig
    supervised: ClassVar[bool] = True

    def __init__(self, config: CapsuleConfig, n_bands: int, size: int) -> None:
        super().__init__(config, n_bands, size)
        w = config.width
        act = nn.LeakyReLU(0.1)
        self.stem = nn.Sequential(
            nn.Conv2d(self.n_bands, w, kernel_size=3, stride=2, padding=1),
            act,
            nn.Conv2d(w, 2 * w, kernel_size=3, stride=2, padding=1),
            act,
            nn.Conv2d(2 * w, 4 * w, kernel_size=3, stride=2, padding=1),
            act,
        )
        # The primary capsules' stride-2 convolution halves the S/8 grid, rounding up.
        grid = (self.size // SIZE_MULTIPLE + 1) // 2
        self.primary = PrimaryCapsules(4 * w, config.primary_types, config.primary_dim)
        self.routed = RoutedCapsules(
            grid,
            config.primary_types,
            config.primary_dim,
            config.n_capsules,
            config.capsule_dim,
            config.routing_iterations,
        )
        self.decoder = CapsuleDecoder(
            config.n_capsules,
            config.capsule_dim,
            self.n_bands,
            self.size,
            config.decoder_channels,
            config.refine_channels,
        )
        # PyTorch's default init shrinks activations layer by layer, and the squash maps
        # a short vector to a quadratically shorter one: the capsules would start dead.
        for conv in [*self.stem[::2], self.primary.conv]:
            nn.init.kaiming_normal_(conv.weight, a=0.1, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)

    def _capsules(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.stem(source)  # (B, 4w, S/8, S/8)
        u = self.primary(features)  # (B, ⌈S/16⌉², T, primary_dim)
        return self.routed(u)  # (B, J, D), (B, P·T, J)

    def _forward(self, source: torch.Tensor) -> torch.Tensor:
        v, _ = self._capsules(source)  # (B, J, D)
        return self.decoder(v, source)  # (B, C, S, S)

    def capsules(
        self, source: torch.Tensor, return_coupling: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The routed output capsules of ``(B, C, S, S)`` source images.

        Parameters
        ----------
        source : torch.Tensor, shape (B, C, S, S)
            Scaled source images.
        return_coupling : bool
            Also return the final coupling coefficients.

        Returns
        -------
        capsules : torch.Tensor, shape (B, n_capsules, capsule_dim)
            Lengths in [0, 1); components 0 and 1 hold the coupling-weighted grid
            position of the parts routed to a capsule (before the squash).
        coupling : torch.Tensor, shape (B, N, n_capsules)
            Only with ``return_coupling``: ``N = ⌈S/16⌉² · primary_types`` primary
            capsules (grid position major), each row summing to 1.

        Examples
        --------
        >>> model = CapsuleTranslator(CapsuleConfig.preset("tiny"), n_bands=1, size=16)
        >>> v, c = model.capsules(torch.randn(2, 1, 16, 16), return_coupling=True)
        >>> tuple(v.shape), tuple(c.shape)
        ((2, 3, 4), (2, 2, 3))
        """
        self.check_images(source, "source images")
        v, coupling = self._capsules(source)
        return (v, coupling) if return_coupling else v

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """One Adam optimiser, ``"generator"``, over every parameter."""
        return {"generator": torch.optim.Adam(self.parameters(), lr=learning_rate)}

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One Adam step on the L1 distance to the paired targets; returns ``{"l1": ...}``.

        ``epoch`` and ``generator`` are unused: the model is deterministic.
        """
        if batch.source.shape[0] == 0:
            raise ValidationError(
                "capsule: the batch holds no paired source images; this supervised model "
                "trains on paired (source, target) images only"
            )
        self.check_images(batch.source, "source images")
        self.check_images(batch.target, "target images")
        opt = optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(self._forward(batch.source), batch.target)
        loss.backward()
        opt.step()
        return {"l1": loss.item()}

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Translate ``(B, C, S, S)`` scaled source images; ``generator`` is unused."""
        self.check_images(source, "source images")
        return self._forward(source)  # (B, C, S, S)
