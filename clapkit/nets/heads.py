"""Heads on top of an encoder: the redshift estimator and the decoders.

- :class:`Estimator` reads v_A and returns logits over redshift bins (the paper's
  16 → 1024 ReLU → bins);
- :class:`ImageDecoder` and :class:`FeatureDecoder` read [v_A, v_B] and reconstruct the
  input, which gives the reconstruction view of the contrastive loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.nets.encoders import MIN_IMAGE_SIZE, _check_sizes


def _check_vectors(v: torch.Tensor, dim: int, name: str) -> None:
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValidationError(f"{name} must have shape (B, {dim}), got {tuple(v.shape)}")


class Estimator(nn.Module):
    """v_A to logits over redshift bins: Linear → ReLU → Dropout → Linear.

    Softmax of the logits is the redshift PDF on the bins.

    Examples
    --------
    >>> est = Estimator(latent_dim=16, n_bins=180, hidden=32)
    >>> est(torch.zeros(4, 16)).shape
    torch.Size([4, 180])
    """

    def __init__(
        self, latent_dim: int, n_bins: int, hidden: int = 1024, dropout: float = 0.0
    ) -> None:
        super().__init__()
        _check_sizes(latent_dim=latent_dim, n_bins=n_bins, hidden=hidden)
        if not 0.0 <= dropout < 1.0:
            raise ValidationError(f"dropout must be in [0, 1), got {dropout}")
        self.latent_dim, self.n_bins = latent_dim, n_bins
        self.fc = nn.Linear(latent_dim, hidden)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_bins)

    def forward(self, v_a: torch.Tensor) -> torch.Tensor:
        _check_vectors(v_a, self.latent_dim, "v_a")
        h = self.drop(self.act(self.fc(v_a)))  # (B, hidden)
        return self.out(h)  # (B, n_bins)


class UpBlock(nn.Module):
    """A 4×4 transposed convolution with stride 2: doubles H and W exactly."""

    def __init__(self, c_in: int, c_out: int, activation: bool = True) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
        self.act = nn.ReLU() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))  # (B, C_out, 2H, 2W)


class ImageDecoder(nn.Module):
    """[v_A, v_B] to images: a linear map to a small grid, then transposed convolutions.

    The grid has side g from 4 to 8 and ``width`` channels; each of the n upsampling
    steps doubles the side and halves the channels (at least 8), the last one giving
    ``n_bands`` channels and no activation (scaled pixels may be negative). When g · 2ⁿ
    is not ``image_size`` (sizes such as 17 that are not a power of two times 4–8), a final
    bilinear interpolation gives the exact size.

    Examples
    --------
    >>> dec = ImageDecoder(in_dim=80, n_bands=5, image_size=24, width=8)
    >>> dec(torch.zeros(2, 80)).shape
    torch.Size([2, 5, 24, 24])
    """

    def __init__(self, in_dim: int, n_bands: int, image_size: int, width: int = 32) -> None:
        super().__init__()
        _check_sizes(in_dim=in_dim, n_bands=n_bands, width=width)
        if image_size < MIN_IMAGE_SIZE:
            raise ValidationError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
        self.in_dim, self.n_bands, self.image_size, self.width = in_dim, n_bands, image_size, width

        n_up = (image_size // 4).bit_length() - 1  # floor(log2(S / 4)) >= 1 as S >= 8
        self.grid = math.ceil(image_size / 2**n_up)  # 4..8
        self.fc = nn.Linear(in_dim, width * self.grid**2)
        blocks: list[nn.Module] = []
        channels = width
        for step in range(n_up):
            last = step == n_up - 1
            c_out = n_bands if last else max(channels // 2, 8)
            blocks.append(UpBlock(channels, c_out, activation=not last))
            channels = c_out
        self.blocks = nn.Sequential(*blocks)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        _check_vectors(v, self.in_dim, "decoder input")
        h = F.relu(self.fc(v))  # (B, width * g * g)
        h = h.view(-1, self.width, self.grid, self.grid)  # (B, width, g, g)
        x = self.blocks(h)  # (B, n_bands, g 2ⁿ, g 2ⁿ)
        if x.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x  # (B, n_bands, S, S)


class FeatureDecoder(nn.Module):
    """[v_A, v_B] to catalog features: an MLP with two hidden ReLU layers.

    Examples
    --------
    >>> FeatureDecoder(in_dim=48, n_features=7, hidden=16)(torch.zeros(3, 48)).shape
    torch.Size([3, 7])
    """

    def __init__(self, in_dim: int, n_features: int, hidden: int = 256) -> None:
        super().__init__()
        _check_sizes(in_dim=in_dim, n_features=n_features, hidden=hidden)
        self.in_dim, self.n_features = in_dim, n_features
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_features),
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        _check_vectors(v, self.in_dim, "decoder input")
        return self.net(v)  # (B, n_features)
