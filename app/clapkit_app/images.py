"""Galaxy images for display: asinh-stretched bands, colour composites, mosaics.

Display only (no science): astropy.visualization does the stretching, as in the
field's own viewers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval, make_lupton_rgb

#: Bands of the colour composite, red to blue, in order of preference.
COMPOSITE_BANDS = (("i", "r", "g"), ("z", "r", "g"), ("r", "g", "u"))


def stretch_band(
    image: np.ndarray,
    percentile: float = 99.5,
    a: float = 0.1,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """One band scaled to [0, 1] by an asinh stretch between robust limits: those of
    ``image``, or of ``reference`` when given (two images shown on one scale).

    Examples
    --------
    >>> out = stretch_band(np.arange(16.0).reshape(4, 4))
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    >>> float(stretch_band(np.full((2, 2), 30.0), reference=np.arange(16.0)).max())
    1.0
    """
    limits = image if reference is None else reference
    norm = ImageNormalize(limits, interval=PercentileInterval(percentile), stretch=AsinhStretch(a))
    return np.clip(np.ma.filled(norm(image), 0.0), 0.0, 1.0).astype(np.float32)


def composite_bands(bands: Sequence[str]) -> tuple[int, int, int]:
    """Indices of the red, green and blue bands of a composite from ``bands``.

    Examples
    --------
    >>> composite_bands(("u", "g", "r", "i", "z"))
    (3, 2, 1)
    >>> composite_bands(("g", "r", "i"))
    (2, 1, 0)
    """
    bands = list(bands)
    for choice in COMPOSITE_BANDS:
        if all(b in bands for b in choice):
            return tuple(bands.index(b) for b in choice)
    # Any three bands, reddest (last) as red; fewer bands repeat the last.
    last = len(bands) - 1
    return (last, max(last - 1, 0), max(last - 2, 0))


def colour_composite(
    image: np.ndarray, bands: Sequence[str], stretch: float = 0.5, q: float = 8.0
) -> np.ndarray:
    """An RGB composite (H, W, 3) uint8 of one galaxy's (B, H, W) bands, with the
    asinh stretch of Lupton et al. (2004), scaled to the galaxy's own brightness.

    Examples
    --------
    >>> rgb = colour_composite(np.ones((3, 8, 8)), ("g", "r", "i"))
    >>> rgb.shape, rgb.dtype.name
    ((8, 8, 3), 'uint8')
    """
    red, green, blue = (image[i].astype(np.float64) for i in composite_bands(bands))
    peak = float(np.percentile(np.stack([red, green, blue]), 99.5))
    scale = 1.0 / peak if peak > 0 else 1.0
    return make_lupton_rgb(
        red * scale, green * scale, blue * scale, minimum=0.0, stretch=stretch, Q=q
    )


def mosaic(tiles: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """Tiles (N, H, W, 3) arranged in rows of ``columns``, separated by ``gap`` pixels
    of white; the grid of a neighbour browser in one image.

    Examples
    --------
    >>> mosaic(np.zeros((5, 4, 4, 3), np.uint8), columns=3).shape
    (10, 16, 3)
    """
    n, h, w, c = tiles.shape
    rows = max(1, -(-n // columns))
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, col * (w + gap) : col * (w + gap) + w] = tiles[i]
    return out


def rgba_image(rgb: np.ndarray) -> np.ndarray:
    """An RGB image (H, W, 3) uint8, top row first, as Bokeh's ``image_rgba`` wants it:
    (H, W) uint32 of packed RGBA, bottom row first.

    Examples
    --------
    >>> rgb = np.zeros((2, 3, 3), np.uint8)
    >>> rgb[0] = 255  # a white top row
    >>> out = rgba_image(rgb)
    >>> out.shape, out.dtype.name
    ((2, 3), 'uint32')
    >>> bool(out[1, 0] == np.array([255, 255, 255, 255], np.uint8).view(np.uint32)[0])
    True
    """
    h, w, _ = rgb.shape
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = rgb[::-1]
    rgba[..., 3] = 255
    return rgba.view(np.uint32).reshape(h, w)


def label_on_stamps(fig: Any, font_size: str, name: str, **glyph: Any) -> Any:
    """White text on a solid black box, top-left anchored, added to Bokeh figure ``fig``:
    bare text is unreadable on a noisy stamp. ``glyph`` gives the positions and text
    (``x``, ``y``, ``text`` as columns of a ``source``, or as lists) and may override the
    text colour (``text_color``)."""
    options = {"text_color": "white", **glyph}
    return fig.text(
        text_font_size=font_size,
        text_align="left",
        text_baseline="top",
        background_fill_color="black",
        background_fill_alpha=0.75,
        padding=1,
        name=name,
        **options,
    )
