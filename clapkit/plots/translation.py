"""Translation figures: stamps side by side, and the noise power spectra.

A grid of stamps shows, for a few test galaxies, the source image, the real target image
and every model's translation of the source in one band; the spectra show how each
model's noise compares with the real target survey's (``translate/<task>/
evaluation.json``'s ``noise_power``, :func:`~clapkit.translate.evaluate.evaluate_task`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from numpy.typing import ArrayLike

from clapkit.errors import ValidationError
from clapkit.plots.style import finish, label_panels, new_figure, print_style

#: Name of the real target images among the stamps and the spectra.
REAL = "real"


def plot_translation_grid(
    stamps: Mapping[str, ArrayLike],
    ids: Sequence[Any],
    band: str,
    *,
    reference: str = REAL,
    width: str | float = "double",
) -> tuple[Figure, Table]:
    """Stamps of a few galaxies (rows) as each image set shows them (columns), one band.

    Parameters
    ----------
    stamps : mapping of str to array, shape (N, H, W)
        Per column (e.g. ``source``, ``real``, then each model) the band's images of the
        same ``N`` galaxies; sets may differ in pixel grid (the source's coarser pixels),
        each is drawn over the same field.
    ids : sequence
        The ``N`` galaxy ids (row labels).
    band : str
        The band shown (in the title).
    reference : str
        The column whose asinh stretch limits the others of the same grid share, so a
        translation is seen as the real target would be; the default is ``"real"``.
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        ``N`` × ``len(stamps)`` image panels without ticks.
    table : Table
        One row per stamp: ``galaxy_id``, ``image_set``, ``band``, ``pixels`` (side),
        ``flux`` (sum of pixels), ``peak``, and ``vmin``/``vmax`` of its stretch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig, table = plot_translation_grid({"real": rng.normal(size=(2, 8, 8))}, [1, 2], "r")
    >>> len(fig.axes), table["galaxy_id"].tolist()
    (2, [1, 2])
    """
    arrays = {name: np.asarray(images, dtype=float) for name, images in stamps.items()}
    if not arrays:
        raise ValidationError("no stamps to plot; give at least one image set")
    n = len(ids)
    for name, images in arrays.items():
        if images.ndim != 3 or images.shape[0] != n:
            raise ValidationError(
                f"stamps of {name!r} have shape {images.shape}; expected ({n}, H, W) for "
                f"{n} galaxies"
            )
    rows: list[dict[str, Any]] = []
    names = list(arrays)
    with print_style():
        fig = new_figure(width, aspect=(n + 0.3) / len(names))
        axes = np.atleast_2d(fig.subplots(n, len(names), squeeze=False))
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
        for i in range(n):
            shared = _limits(arrays[reference][i]) if reference in arrays else None
            for j, name in enumerate(names):
                image = arrays[name][i]
                same_grid = reference in arrays and image.shape == arrays[reference][i].shape
                vmin, vmax = shared if same_grid else _limits(image)
                norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(0.1))
                ax = axes[i, j]
                ax.imshow(image, origin="lower", cmap="gray_r", norm=norm, extent=(0, 1, 0, 1))
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(name)
                if j == 0:
                    ax.set_ylabel(str(ids[i]))
                rows.append(
                    {
                        "galaxy_id": ids[i],
                        "image_set": name,
                        "band": band,
                        "pixels": image.shape[-1],
                        "flux": float(image.sum()),
                        "peak": float(image.max()),
                        "vmin": vmin,
                        "vmax": vmax,
                    }
                )
        fig.suptitle(f"{band} band", fontsize="medium")
    return fig, Table(rows=rows)


def _limits(image: np.ndarray) -> tuple[float, float]:
    """Display limits of one stamp: its 0.5-99.5 percentile range."""
    lo, hi = PercentileInterval(99.0).get_limits(image)
    return float(lo), float(hi if hi > lo else lo + 1.0)


def plot_noise_spectra(
    k: ArrayLike,
    spectra: Mapping[str, Mapping[str, ArrayLike]],
    bands: Sequence[str] | None = None,
    *,
    width: str | float = "double",
) -> tuple[Figure, Table]:
    """Radial noise power spectra of each image set, one panel per band, log-log.

    Parameters
    ----------
    k : array, shape (K,)
        Spatial frequencies (cycles per pixel).
    spectra : mapping of str to mapping of str to array
        ``{image set: {band: power (K,)}}``; the set ``real`` is drawn in black.
    bands : sequence of str, optional
        Panels, in order (default: the bands of the first set).
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        One panel per band, sharing both axes.
    table : Table
        ``image_set``, ``band``, ``k``, ``power``.

    Examples
    --------
    >>> fig, table = plot_noise_spectra([0.1, 0.2], {"real": {"r": [1.0, 0.5]}})
    >>> len(table), fig.axes[0].get_xscale()
    (2, 'log')
    """
    k = np.asarray(k, dtype=float)
    if not spectra:
        raise ValidationError("no noise spectra to plot; give at least one image set")
    bands = list(bands) if bands is not None else list(next(iter(spectra.values())))
    if not bands:
        raise ValidationError("no bands to plot")
    rows: list[dict[str, Any]] = []
    with print_style():
        ncols = min(len(bands), 3 if width == "single" else 5)
        nrows = -(-len(bands) // ncols)
        # Square panels, plus room for titles and labels.
        fig = new_figure(width, aspect=(nrows + 0.4) / ncols)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax in axes[len(bands) :]:
            ax.set_visible(False)
        colour = 0
        for name, by_band in spectra.items():
            style = {"color": "k", "lw": 1.4} if name == REAL else {"color": f"C{colour % 10}"}
            colour += name != REAL
            for ax, band in zip(axes, bands, strict=False):
                if band not in by_band:
                    continue
                power = np.asarray(by_band[band], dtype=float)
                if power.shape != k.shape:
                    raise ValidationError(
                        f"noise power of {name!r} in {band!r} has {power.size} values for "
                        f"{k.size} frequencies"
                    )
                ax.plot(k, power, label=name if band == bands[0] else None, **style)
                rows += [
                    {"image_set": name, "band": band, "k": kv, "power": pv}
                    for kv, pv in zip(k, power, strict=True)
                ]
        for ax, band in zip(axes, bands, strict=False):
            ax.set(xscale="log", yscale="log")
            ax.set_title(f"{band} band")
            # A decade or less of k: matplotlib would label every minor tick.
            ax.xaxis.set_minor_formatter(NullFormatter())
        label_panels(axes[: len(bands)], ncols, r"$k$ [pixel$^{-1}$]", "noise power")
        fig.legend(loc="outside lower center", ncols=min(4, len(spectra)))
        finish(fig)
    return fig, Table(rows=rows)
