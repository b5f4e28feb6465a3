"""Redshift from the cross-band peak fluxes alone: the translation paper's finding as a number.

The paper reads the redshift information a translator keeps from the fluxes of the bands
at the galaxy's peak. :class:`PeakPhotoZ` makes that a photo-z estimator: its features
are the colours of the galaxy at its peak pixel (every band read at the one pixel of
:func:`~clapkit.translate.image_metrics.galaxy_peak_pixels`), and its PDFs are those of
clapkit's photometry k-nearest-neighbour baseline
(:class:`~clapkit.photoz.baselines.KNNPhotoZ`) on the task's redshift bins. Trained on the
real target images of the probe's training galaxies, it is applied to the real and to
each translated set of the evaluation galaxies
(:func:`clapkit.translate.evaluate.evaluate_task`, keys ``peakz_*``).

Features: asinh colours relative to a reference band,

    c_b = asinh(f_b / s_b) − asinh(f_ref / s_ref),

with f_b the peak flux of band b and s_b a softening fixed on the training images (the
median background σ of the band). Far above the noise, c_b = ln(f_b / f_ref) + const: a
log flux ratio. Why not the ratio or its logarithm: a faint band's peak is often ≤ 0 in
noise, where log ratios are undefined and plain ratios blow up as the reference peak
nears 0; the asinh is finite, monotonic and linear within ±s_b of zero, so a noisy peak
moves its feature by about its noise in units of σ and no galaxy is dropped. The
softening is frozen at fit time, so translated images are read on the same scale as the
real ones (a translator that changes the noise does not change the features' units).

The estimator is deterministic (exact neighbour search, no random state), so no seed is
needed: the same training galaxies give the same PDFs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.metrics import check_edges
from clapkit.photoz.baselines import KNNPhotoZ
from clapkit.translate.image_metrics import background_std, peak_fluxes

__all__ = ["PeakPhotoZ", "PeakZConfig", "peak_colours", "stack_peak_fluxes", "table_peak_fluxes"]

#: Galaxies measured at once when reading a training stack (bounds the memory).
BATCH = 256


@dataclass(frozen=True)
class PeakZConfig:
    """Settings of the peak-flux photo-z estimator.

    Attributes
    ----------
    k : int
        Neighbours per PDF (capped at the number of training galaxies).
    reference_band : str or None
        Band the colours are taken against; None: ``"r"`` where present, else the
        middle band.

    Examples
    --------
    >>> PeakZConfig(k=10).k
    10
    """

    k: int = 20
    reference_band: str | None = None

    def __post_init__(self) -> None:
        check_int(self.k, "k")
        if self.reference_band is not None and not isinstance(self.reference_band, str):
            raise ValidationError(
                f"reference_band must be a band name, got {self.reference_band!r}"
            )


def _reference_index(bands: Sequence[str], reference: str | None) -> int:
    names = list(bands)
    if len(names) < 2:
        raise ValidationError(f"peak colours need at least 2 bands, got {names}")
    if len(set(names)) != len(names):
        raise ValidationError(f"band names repeat: {names}")
    if reference is None:
        return names.index("r") if "r" in names else len(names) // 2
    if reference not in names:
        raise ValidationError(f"reference_band {reference!r} is not one of the bands {names}")
    return names.index(reference)


def peak_colours(peaks: ArrayLike, softening: ArrayLike, reference: int) -> NDArray[np.float64]:
    """Asinh colours of the peak fluxes against band ``reference``, shape (N, B − 1).

    Parameters
    ----------
    peaks : array_like, shape (N, B)
        Flux of every band at the galaxy's peak pixel; any sign.
    softening : array_like, shape (B,)
        Per-band softening s_b > 0 (the flux where the asinh turns from linear to log).
    reference : int
        Index of the reference band (its column is left out: it would be 0).

    Returns
    -------
    numpy.ndarray, shape (N, B − 1)

    Examples
    --------
    >>> c = peak_colours([[2e3, 1e3], [-1.0, 1e3]], [1.0, 1.0], reference=1)
    >>> round(float(c[0, 0]), 4), bool(np.isfinite(c[1, 0]))  # ln 2 far above the noise
    (0.6931, True)
    """
    p = np.asarray(peaks, dtype=np.float64)
    s = np.asarray(softening, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValidationError(f"peaks must be (galaxies, bands ≥ 2), got shape {p.shape}")
    if s.shape != (p.shape[1],) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValidationError(f"softening must be {p.shape[1]} finite values > 0, got {s}")
    if not np.all(np.isfinite(p)):
        raise ValidationError("peak fluxes must be finite")
    if not 0 <= reference < p.shape[1]:
        raise ValidationError(f"reference band index {reference} outside 0…{p.shape[1] - 1}")
    mags = np.arcsinh(p / s)
    return np.delete(mags - mags[:, [reference]], reference, axis=1)


def table_peak_fluxes(table, bands: Sequence[str]) -> NDArray[np.float64]:
    """The ``peak_<b>`` columns of a :func:`~clapkit.translate.image_metrics.morphology`
    table as an (N, B) array.

    Examples
    --------
    >>> from astropy.table import Table
    >>> table_peak_fluxes(Table({"peak_g": [1.0, 2.0], "peak_r": [3.0, 4.0]}), ["g", "r"])
    array([[1., 3.],
           [2., 4.]])
    """
    missing = [f"peak_{b}" for b in bands if f"peak_{b}" not in table.colnames]
    if missing:
        raise ValidationError(f"morphology table lacks columns {missing}")
    return np.stack([np.asarray(table[f"peak_{b}"], dtype=np.float64) for b in bands], axis=1)


def stack_peak_fluxes(images, batch: int = BATCH) -> tuple[NDArray, NDArray]:
    """Peak fluxes (N, B) and background σ (N, B) of a stack read ``batch`` galaxies at a
    time (an HDF5 dataset or an array; each galaxy is measured on its own stamp).

    Examples
    --------
    >>> images = np.random.default_rng(0).normal(0, 2.0, (5, 2, 16, 16))
    >>> peaks, noise = stack_peak_fluxes(images, batch=2)
    >>> peaks.shape, bool(np.all(np.abs(noise - 2.0) < 0.5))
    ((5, 2), True)
    """
    batch = check_int(batch, "batch")
    peaks, noise = [], []
    for start in range(0, len(images), batch):
        chunk = np.asarray(images[start : start + batch], dtype=np.float64)
        peaks.append(peak_fluxes(chunk))
        noise.append(background_std(chunk))
    if not peaks:
        raise ValidationError("no training images")
    return np.concatenate(peaks), np.concatenate(noise)


class PeakPhotoZ:
    """k-NN redshift PDFs from the asinh colours of the bands at the galaxy's peak.

    Parameters
    ----------
    edges : array_like, shape (n_bins + 1,)
        The task's redshift bins (the probe's); every training redshift must lie on them.
    bands : sequence of str
        Band names, in the order of the images' band axis.
    config : PeakZConfig, optional

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.uniform(0.1, 0.9, 300)
    >>> peaks = np.stack([100 * np.exp(z), np.full(300, 100.0)], axis=1)
    >>> model = PeakPhotoZ(np.linspace(0, 1, 21), ["g", "r"]).fit(peaks, z, [1.0, 1.0])
    >>> p = model.predict(peaks[:2])
    >>> p.shape, np.allclose(p.sum(axis=1), 1)
    ((2, 20), True)
    """

    def __init__(
        self, edges: ArrayLike, bands: Sequence[str], config: PeakZConfig | None = None
    ) -> None:
        self.config = config or PeakZConfig()
        self.edges = check_edges(edges)
        self.bands = list(bands)
        self.reference = _reference_index(self.bands, self.config.reference_band)
        self._knn: KNNPhotoZ | None = None

    def fit(self, peaks: ArrayLike, z: ArrayLike, softening: ArrayLike) -> PeakPhotoZ:
        """Train on the peak fluxes (N, B) of real images and their true redshifts.

        ``softening`` (B,) is kept for every later prediction; :meth:`fit_images` takes
        it from the training images' background σ.
        """
        p = np.asarray(peaks, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.bands):
            raise ValidationError(
                f"peaks must be (galaxies, {len(self.bands)} bands), got shape {p.shape}"
            )
        self.softening_ = np.asarray(softening, dtype=np.float64)
        features = peak_colours(p, self.softening_, self.reference)
        k = min(self.config.k, len(features))  # a small training set: every galaxy
        self._knn = KNNPhotoZ(self.edges, k=max(k, 1)).fit(features, z)
        return self

    def fit_images(self, images, z: ArrayLike) -> PeakPhotoZ:
        """Train on real images (N, B, H, W; an HDF5 dataset is read in batches).

        The softening is the median over galaxies of each band's background σ, floored
        at 10⁻³ of the median |peak| (noise-free images have σ = 0).
        """
        shape = tuple(np.shape(images))  # the .shape of an HDF5 dataset: nothing read
        if len(shape) != 4 or shape[0] == 0 or shape[1] != len(self.bands):
            raise ValidationError(
                f"images must be (galaxies ≥ 1, {len(self.bands)} bands, height, width), "
                f"got shape {shape}"
            )
        peaks, noise = stack_peak_fluxes(images)
        sigma = np.nanmedian(noise, axis=0)
        floor = 1e-3 * np.median(np.abs(peaks), axis=0)
        softening = np.where(np.isfinite(sigma) & (sigma > 0), sigma, floor)
        softening = np.where(softening > 0, softening, 1.0)  # blank images: any scale
        return self.fit(peaks, z, softening)

    def predict(self, peaks: ArrayLike) -> NDArray[np.float64]:
        """PDFs (N, n_bins) of galaxies from their peak fluxes (N, B)."""
        if self._knn is None:
            raise ValidationError("call fit() before predict()")
        p = np.asarray(peaks, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.bands):
            raise ValidationError(
                f"peaks must be (galaxies, {len(self.bands)} bands), got shape {p.shape}"
            )
        return self._knn.predict(peak_colours(p, self.softening_, self.reference))

    def predict_images(self, images: ArrayLike) -> NDArray[np.float64]:
        """PDFs (N, n_bins) of galaxies from their images (N, B, H, W)."""
        peaks, _ = stack_peak_fluxes(images)
        return self.predict(peaks)
