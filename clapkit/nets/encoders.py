"""Encoders: an input galaxy to a latent pair (v_A, v_B).

v_A (``latent_dim``, 16 in the paper) is the part the redshift estimator reads and the
KNN searches; v_B (``rest_dim``) holds everything else the decoder needs to reconstruct
the input. Three encoders share one call, ``encoder(x, extra) -> (v_a, v_b)``:

- :class:`CompactEncoder`, a small CNN that trains on two CPU cores;
- :class:`InceptionEncoder`, the paper's inception network (Pasquet et al. 2019 style),
  meant for a GPU;
- :class:`MLPEncoder`, for catalog features instead of images.

``extra`` holds scalars known per galaxy that are not pixels, such as the Galactic
reddening E(B−V); it joins the network after the convolutions, as in the paper.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from clapkit.checks import check_int
from clapkit.errors import ValidationError

#: Smallest image side the convolutional encoders and the image decoder accept.
MIN_IMAGE_SIZE = 8


def _check_images(x: torch.Tensor, n_bands: int, image_size: int) -> None:
    expected = ("B", n_bands, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected[1:]:
        raise ValidationError(f"images must have shape {expected}, got {tuple(x.shape)}")


def _check_extra(extra: torch.Tensor | None, batch: int, n_extra: int) -> torch.Tensor | None:
    """``extra`` as (B, n_extra), or None when the network takes no extra scalars."""
    if n_extra == 0:
        if extra is not None and extra.numel() > 0:
            raise ValidationError(
                f"this encoder takes no extra scalars (n_extra=0), got extra of shape {tuple(extra.shape)}"
            )
        return None
    if extra is None:
        raise ValidationError(f"extra of shape ({batch}, {n_extra}) is required, got None")
    if extra.ndim == 1 and n_extra == 1:
        extra = extra[:, None]
    if tuple(extra.shape) != (batch, n_extra):
        raise ValidationError(
            f"extra must have shape ({batch}, {n_extra}), got {tuple(extra.shape)}"
        )
    return extra


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_int(value, name)


def _check_image_encoder(
    n_bands: int, image_size: int, n_extra: int, latent_dim: int, rest_dim: int, width: int
) -> None:
    """The constructor arguments both convolutional encoders share."""
    _check_sizes(n_bands=n_bands, latent_dim=latent_dim, rest_dim=rest_dim, width=width)
    check_int(image_size, "image_size", minimum=MIN_IMAGE_SIZE)
    check_int(n_extra, "n_extra", minimum=0)


def _conv_unit(conv: nn.Conv2d, act: nn.Module, batch_norm: bool) -> list[nn.Module]:
    """``conv → act``, or ``conv → BatchNorm → act``.

    Nothing is inserted without batch norm, so the parameter names of networks saved
    before the option existed are unchanged.
    """
    return [conv, nn.BatchNorm2d(conv.out_channels), act] if batch_norm else [conv, act]


def _dropout(rate: float) -> nn.Module:
    """Dropout before an encoder's last linear layer (MC dropout, as published), or none.

    Dropout has no parameters: state dicts keep their keys with or without it.
    """
    if not 0.0 <= rate < 1.0:
        raise ValidationError(f"dropout must be in [0, 1), got {rate}")
    return nn.Dropout(rate) if rate > 0 else nn.Identity()


def _last_layer_with_dropout(mlp: nn.Sequential, drop: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``mlp(h)`` with ``drop`` applied to the input of its last layer."""
    return mlp[-1](drop(mlp[:-1](h)))


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


# -----------------------------------------------------------------------------
# Compact CNN


class DownBlock(nn.Module):
    """A 3×3 convolution with stride 2 (batch norm optional) and a ReLU: halves H and W
    (rounding up)."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1)
        # Identity has no parameters: without batch norm the state dict keeps its old keys.
        self.norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))  # (B, C_out, ceil(H/2), ceil(W/2))


class CompactEncoder(nn.Module):
    """A small CNN: images plus extra scalars to (v_A, v_B), cheap enough for a CPU.

    A 3×3 stem (stride 2 for images larger than 16 pixels), stride-2 blocks with
    ``2 * width`` channels until the grid is at most 4×4, global average pooling, then an
    MLP that also reads ``extra``. On one CPU thread a forward and backward pass over 128
    images of 5 × 32 × 32 takes about 0.05 s.

    Parameters
    ----------
    n_bands : int
        Input channels (photometric bands).
    image_size : int
        Side S of the square input, at least 8.
    n_extra : int
        Scalars per galaxy joined after pooling (E(B−V) by default); may be 0.
    latent_dim, rest_dim : int
        Sizes of v_A and v_B.
    width : int
        Channels of the stem.
    batch_norm : bool
        Batch normalisation after every convolution. Targets that need the absolute flux
        combined with colours (stellar mass) stay on the prior for tens of epochs without
        it; see :data:`clapkit.interpret.mass.MASS_PRESETS`.

    Examples
    --------
    >>> enc = CompactEncoder(n_bands=5, image_size=16, width=8)
    >>> v_a, v_b = enc(torch.zeros(2, 5, 16, 16), torch.zeros(2, 1))
    >>> v_a.shape, v_b.shape
    (torch.Size([2, 16]), torch.Size([2, 64]))
    """

    def __init__(
        self,
        n_bands: int,
        image_size: int,
        n_extra: int = 1,
        latent_dim: int = 16,
        rest_dim: int = 64,
        width: int = 32,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_image_encoder(n_bands, image_size, n_extra, latent_dim, rest_dim, width)
        self.n_bands, self.image_size, self.n_extra = n_bands, image_size, n_extra
        self.latent_dim, self.rest_dim = latent_dim, rest_dim
        self.drop = _dropout(dropout)

        # Images larger than 16 pixels are halved by the stem already: the full-resolution
        # convolution would cost as much as the rest of the network.
        stride = 2 if image_size > 16 else 1
        stem = nn.Conv2d(n_bands, width, kernel_size=3, stride=stride, padding=1)
        self.stem = nn.Sequential(*_conv_unit(stem, nn.ReLU(), batch_norm))
        blocks: list[nn.Module] = []
        side, channels = (image_size + stride - 1) // stride, width
        while side > 4:
            blocks.append(DownBlock(channels, 2 * width, batch_norm))
            side, channels = (side + 1) // 2, 2 * width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = _mlp([channels + n_extra, 4 * width, latent_dim + rest_dim])

    def forward(
        self, x: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.n_bands, self.image_size)
        extra = _check_extra(extra, x.shape[0], self.n_extra)
        h = self.stem(x)  # (B, width, S', S'), S' = S or S/2
        h = self.blocks(h)  # (B, C, s, s), s <= 4
        h = self.pool(h).flatten(1)  # (B, C)
        if extra is not None:
            h = torch.cat([h, extra.to(h.dtype)], dim=1)  # (B, C + n_extra)
        v = _last_layer_with_dropout(self.head, self.drop, h)  # (B, latent_dim + rest_dim)
        return v[:, : self.latent_dim], v[:, self.latent_dim :]


# -----------------------------------------------------------------------------
# The paper's inception network


class Inception(nn.Module):
    """Four parallel branches, concatenated: 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 avg pool → 1×1.

    Each branch has ``c_out // 4`` channels; H and W are unchanged. With ``batch_norm``
    every convolution is followed by batch normalisation.
    """

    def __init__(self, c_in: int, c_out: int, batch_norm: bool = False) -> None:
        super().__init__()
        if c_out % 4:
            raise ValidationError(f"inception output channels must be a multiple of 4, got {c_out}")
        c = c_out // 4

        def unit(c_from: int, size: int) -> list[nn.Module]:
            conv = nn.Conv2d(c_from, c, size, padding=size // 2)
            return _conv_unit(conv, nn.PReLU(c), batch_norm)

        self.branch1 = nn.Sequential(*unit(c_in, 1))
        self.branch3 = nn.Sequential(*unit(c_in, 1), *unit(c, 3))
        self.branch5 = nn.Sequential(*unit(c_in, 1), *unit(c, 5))
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), *unit(c_in, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)  # (B, C_out, H, W)


class InceptionEncoder(nn.Module):
    """The paper's inception-style encoder (after Pasquet et al. 2019), for a GPU.

    A 5×5 convolution, five inception modules with 2×2 average pooling after the first,
    third and fifth, average pooling to 4×4, then two fully connected layers of
    ``16 * width`` units that also read ``extra``. PReLU activations throughout.

    Parameters are those of :class:`CompactEncoder`; the defaults follow the paper
    (v_B of 512 values, 64 channels, no batch norm).

    Examples
    --------
    >>> enc = InceptionEncoder(n_bands=5, image_size=16, rest_dim=8, width=8)
    >>> v_a, v_b = enc(torch.zeros(2, 5, 16, 16), torch.zeros(2, 1))
    >>> v_a.shape, v_b.shape
    (torch.Size([2, 16]), torch.Size([2, 8]))
    """

    def __init__(
        self,
        n_bands: int,
        image_size: int,
        n_extra: int = 1,
        latent_dim: int = 16,
        rest_dim: int = 512,
        width: int = 64,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_image_encoder(n_bands, image_size, n_extra, latent_dim, rest_dim, width)
        self.n_bands, self.image_size, self.n_extra = n_bands, image_size, n_extra
        self.latent_dim, self.rest_dim = latent_dim, rest_dim
        self.drop = _dropout(dropout)

        c = 4 * ((2 * width + 3) // 4)  # inception channels: 2 × width, a multiple of 4
        stem = nn.Conv2d(n_bands, width, 5, padding=2)
        self.stem = nn.Sequential(*_conv_unit(stem, nn.PReLU(width), batch_norm))
        self.features = nn.Sequential(
            Inception(width, c, batch_norm),
            nn.AvgPool2d(2, ceil_mode=True),
            Inception(c, c, batch_norm),
            Inception(c, c, batch_norm),
            nn.AvgPool2d(2, ceil_mode=True),
            Inception(c, c, batch_norm),
            Inception(c, c, batch_norm),
            nn.AvgPool2d(2, ceil_mode=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        fc = 16 * width
        self.head = nn.Sequential(
            nn.Linear(16 * c + n_extra, fc),
            nn.PReLU(),
            nn.Linear(fc, fc),
            nn.PReLU(),
            nn.Linear(fc, latent_dim + rest_dim),
        )

    def forward(
        self, x: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.n_bands, self.image_size)
        extra = _check_extra(extra, x.shape[0], self.n_extra)
        h = self.stem(x)  # (B, width, S, S)
        h = self.features(h)  # (B, C, S/8, S/8)
        h = self.pool(h).flatten(1)  # (B, 16 C)
        if extra is not None:
            h = torch.cat([h, extra.to(h.dtype)], dim=1)  # (B, 16 C + n_extra)
        v = _last_layer_with_dropout(self.head, self.drop, h)  # (B, latent_dim + rest_dim)
        return v[:, : self.latent_dim], v[:, self.latent_dim :]


# -----------------------------------------------------------------------------
# Catalog features


class MLPEncoder(nn.Module):
    """Catalog features (plus optional extra scalars) to (v_A, v_B) with an MLP.

    Parameters
    ----------
    n_features : int
        Standardised features per galaxy.
    n_extra : int
        Extra scalars concatenated to the features; 0 when they are already among them.
    latent_dim, rest_dim : int
        Sizes of v_A and v_B.
    hidden : tuple of int
        Widths of the hidden layers (ReLU); empty for a linear map.

    Examples
    --------
    >>> enc = MLPEncoder(n_features=7, hidden=(32,))
    >>> v_a, v_b = enc(torch.zeros(4, 7))
    >>> v_a.shape, v_b.shape
    (torch.Size([4, 16]), torch.Size([4, 32]))
    """

    def __init__(
        self,
        n_features: int,
        n_extra: int = 0,
        latent_dim: int = 16,
        rest_dim: int = 32,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_sizes(n_features=n_features, latent_dim=latent_dim, rest_dim=rest_dim)
        _check_sizes(**{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        check_int(n_extra, "n_extra", minimum=0)
        self.n_features, self.n_extra = n_features, n_extra
        self.latent_dim, self.rest_dim = latent_dim, rest_dim
        self.net = _mlp([n_features + n_extra, *hidden, latent_dim + rest_dim])
        self.drop = _dropout(dropout)

    def forward(
        self, x: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValidationError(
                f"features must have shape (B, {self.n_features}), got {tuple(x.shape)}"
            )
        extra = _check_extra(extra, x.shape[0], self.n_extra)
        if extra is not None:
            x = torch.cat([x, extra.to(x.dtype)], dim=1)  # (B, n_features + n_extra)
        v = _last_layer_with_dropout(self.net, self.drop, x)  # (B, latent_dim + rest_dim)
        return v[:, : self.latent_dim], v[:, self.latent_dim :]
