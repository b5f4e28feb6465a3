"""From survey images to what a translation network sees, and back.

Two steps, both invertible up to resampling, applied the same way in training,
translation and the dashboard:

1. :func:`resample` puts a source stack on the target instrument's pixel grid,
   conserving flux: pixel values are surface brightness × pixel area, so an upsampled
   image is interpolated and multiplied by the ratio of pixel areas. Both instruments of
   the mock survey cover the same field of view (25.3″), which :func:`check_grids`
   verifies before anything is resampled.
2. :class:`PixelScaler` maps nanomaggies to ``sign(x) log(1 + |x| / s_b)``, where ``s_b``
   is the band's sky noise: the CLAP paper's range compression, in units of the noise so
   that every band and both instruments weigh alike in a loss.

:func:`task_stacks` finds the source and target stacks of a translation task
(:mod:`clapkit.translate.tasks`) in a GalaxySet and checks their grids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray

from clapkit.data import GalaxySet
from clapkit.data.stack import ImageStack
from clapkit.errors import ValidationError
from clapkit.translate.image_metrics import background_std
from clapkit.translate.tasks import task

__all__ = ["PixelScaler", "check_grids", "resample"]

#: Largest relative difference of the fields of view that still counts as the same field.
FIELD_TOLERANCE = 0.02


def check_grids(source: ImageStack, target: ImageStack, *, what: str = "images") -> None:
    """Refuse stacks that differ in band set or field of view, naming the difference.

    Examples
    --------
    >>> a = ImageStack(np.zeros((1, 2, 64, 64), np.float32), ("g", "r"), 0.396, (22.5, 22.5))
    >>> b = ImageStack(np.zeros((1, 2, 64, 64), np.float32), ("g", "r"), 0.187, (22.5, 22.5))
    >>> check_grids(a, b)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: images: the fields of view differ: 25.34″ (source) vs 11.97″ (target); translation needs the same field
    """
    if tuple(source.bands) != tuple(target.bands):
        raise ValidationError(
            f"{what}: the band sets differ: {list(source.bands)} (source) vs "
            f"{list(target.bands)} (target)"
        )
    for stack, side in ((source, "source"), (target, "target")):
        height, width = stack.shape[-2:]
        if height != width:
            raise ValidationError(f"{what}: {side} images are {height}×{width}; expected square")
    fields = [s.shape[-1] * s.pixel_scale for s in (source, target)]
    if abs(fields[0] - fields[1]) > FIELD_TOLERANCE * max(fields):
        raise ValidationError(
            f"{what}: the fields of view differ: {fields[0]:.2f}″ (source) vs "
            f"{fields[1]:.2f}″ (target); translation needs the same field"
        )


def resample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resample ``(B, C, H, W)`` images in flux units onto a ``size`` × ``size`` grid.

    Bilinear interpolation (antialiased when shrinking) over the same field, times the
    ratio of pixel areas ``(H / size)²``, so the total flux of a smooth image is
    conserved. The ratio is taken from the pixel counts rather than the nominal pixel
    scales, because the two grids map the same field onto each other exactly (their
    nominal fields differ by 0.35%). A batched tensor operation rather than a WCS
    reprojection (``reproject``): training resamples whole stacks, and the grids share
    their centre and field.

    Examples
    --------
    >>> x = torch.ones(1, 1, 64, 64)
    >>> y = resample(x, 136)
    >>> tuple(y.shape), round(y.sum().item() / x.sum().item(), 3)
    ((1, 1, 136, 136), 1.0)
    """
    if images.ndim != 4:
        raise ValidationError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    height = images.shape[-1]
    if height == size:
        return images
    out = F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < height
    )
    return out * (height / size) ** 2


@dataclass(frozen=True)
class PixelScaler:
    """Invertible per-band range compression in units of the sky noise.

    ``forward(x) = sign(x) log(1 + |x| / noise_b)`` and ``inverse`` undoes it exactly.

    Parameters
    ----------
    noise : sequence of float
        Sky noise per band (the median background standard deviation), in pixel units.

    Examples
    --------
    >>> scaler = PixelScaler((0.5, 2.0))
    >>> x = torch.tensor([[[[1.0]], [[-6.0]]]])
    >>> y = scaler.forward(x)
    >>> [round(v, 4) for v in y.flatten().tolist()], torch.allclose(scaler.inverse(y), x)
    ([1.0986, -1.3863], True)
    """

    noise: tuple[float, ...]

    def __post_init__(self) -> None:
        values = np.asarray(self.noise, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise ValidationError(
                f"noise must be a non-empty sequence of finite positive values, got {self.noise}"
            )
        object.__setattr__(self, "noise", tuple(float(v) for v in values))

    @classmethod
    def fit(cls, images: ArrayLike) -> PixelScaler:
        """The scaler whose noise is the median background std of ``(N, B, H, W)`` images."""
        per_image = background_std(images)
        noise = np.nanmedian(per_image, axis=0)
        if not np.all(np.isfinite(noise) & (noise > 0)):
            raise ValidationError(
                f"cannot measure the sky noise of every band (got {noise.tolist()}); "
                "the images need source-free pixels"
            )
        return cls(tuple(noise))

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != len(self.noise):
            raise ValidationError(
                f"expected (B, {len(self.noise)}, H, W) images, got {tuple(x.shape)}"
            )
        return torch.tensor(self.noise, dtype=x.dtype).view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (flux units) → network units."""
        return torch.sign(x) * torch.log1p(x.abs() / self._noise(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Network units → pixels (flux units)."""
        return torch.sign(y) * torch.expm1(y.abs()) * self._noise(y)

    def to_list(self) -> list[float]:
        """JSON-ready form."""
        return list(self.noise)


def check_finite(images: NDArray, what: str, ids: Sequence | None = None) -> None:
    """Refuse a stack holding NaN or infinite pixels, naming the first galaxy and band."""
    bad = ~np.isfinite(images)
    if bad.any():
        row, band = np.argwhere(bad)[0][:2]
        name = f"id {ids[row]}" if ids is not None else f"row {row}"
        raise ValidationError(
            f"{what}: non-finite pixels, first in galaxy {name} (row {row}), band index {band}"
        )


def task_stacks(galaxies: GalaxySet, name: str, *, what: str) -> tuple[ImageStack, ImageStack]:
    """The source and target stacks of task ``name`` in ``galaxies``, checked."""
    spec = task(name)
    missing = [s for s in (spec.source, spec.target) if s not in galaxies.stacks]
    if missing:
        raise ValidationError(
            f"{what}: task {name!r} needs the {missing} image stacks; the data has "
            f"{sorted(galaxies.stacks)} (simulate them with clapkit simulate --instruments "
            f"{','.join(dict.fromkeys((spec.source, spec.target)))})"
        )
    source, target = galaxies.stacks[spec.source], galaxies.stacks[spec.target]
    check_grids(source, target, what=what)
    return source, target
