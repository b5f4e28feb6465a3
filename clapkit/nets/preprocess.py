"""Pixel preprocessing shared by every image network: the paper's scaling and a crop.

Both functions are pure tensor maps with no parameters, so training, the KNN step and
inference see exactly the same input.
"""

from __future__ import annotations

import torch

from clapkit.checks import check_int
from clapkit.errors import ValidationError


def scale_pixels(x: torch.Tensor) -> torch.Tensor:
    """Compress the dynamic range of pixels: sign(x) · log(1 + |x|), as in the CLAP paper.

    Odd and monotonic, so sky noise around zero stays symmetric and bright cores no longer
    dominate the loss.

    Examples
    --------
    >>> scale_pixels(torch.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.6931,  0.0000,  0.6931])
    """
    return torch.sign(x) * torch.log1p(x.abs())


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Central ``size`` × ``size`` pixels of a ``(B, C, H, W)`` stack.

    When H - size is odd the extra pixel is dropped at the bottom (right), so the crop of
    a 5-pixel image to 2 keeps rows 1 and 2.

    Examples
    --------
    >>> center_crop(torch.zeros(2, 5, 64, 64), 32).shape
    torch.Size([2, 5, 32, 32])
    """
    if x.ndim != 4:
        raise ValidationError(
            f"center_crop expects images of shape (B, C, H, W), got {tuple(x.shape)}"
        )
    height, width = x.shape[-2:]
    size = check_int(size, "crop size")
    if size > height or size > width:
        raise ValidationError(
            f"crop size {size} exceeds the image size {height}×{width}; expected size <= {min(height, width)}"
        )
    top = (height - size) // 2
    left = (width - size) // 2
    return x[:, :, top : top + size, left : left + size]
