"""Many translations of one galaxy: seeds, storage, spread between samples, and KS tests.

A stochastic model (diffusion; NR-GAN with its emulated noise) gives a different image for
every seed, so one translation per galaxy hides how much of its error against the real
image is the draw. :func:`~clapkit.translate.apply.apply_translator` therefore draws
``n_samples`` translations per galaxy; sample ``k`` uses the seed :func:`sample_seed`
``(seed, k)``, so every draw is reproducible on its own.

Storage, in the translated set's GalaxySet file: sample 0 is the ordinary image stack
(``/images/<target>``), so every reader of a translated set reads it unchanged; samples
1 … S−1 are ``/samples/<target>``, shape ``(S − 1, N, C, H, W)``, with attribute
``n_samples`` = S. A file without that dataset (deterministic models, older files) holds
one sample.

Measured from the samples (:func:`spread_parts`, per galaxy, then aggregated like the
other metrics of the evaluation row, with bootstrap intervals over galaxies):

- ``sample_pixel_spread``: per galaxy and band, the RMS over pixels of the standard
  deviation across samples (ddof=1), divided by the real image's background σ in that
  band; the mean over bands; the median over galaxies. 1 means the draws differ by
  about the real sky noise.
- ``sample_flux_spread``, ``sample_size_spread``: per galaxy and band, the standard
  deviation across samples of the flux (size: HSM σ) divided by |real value|; per band
  the median over galaxies, then the mean over bands: the same scale as
  ``flux_rel_error`` and ``size_rel_error``, which they sit beside.
- ``sample_flux_spread_ratio``, ``sample_size_spread_ratio``: that spread divided by
  the error of sample 0 against the real image (``flux_rel_error``, ``size_rel_error``),
  on the same galaxies: well below 1, the error is not the draw's.

Distribution-level comparison (:func:`ks_comparisons`, every set, deterministic too):
the two-sample Kolmogorov–Smirnov statistic and p-value (``scipy.stats.ks_2samp``) of the
translated (sample 0) against the real distribution of each morphology column of
:data:`KS_COLUMNS` in the reference band, as ``ks_<column>`` and ``ks_<column>_p``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ks_2samp

from clapkit.checks import check_int
from clapkit.errors import FileFormatError, ValidationError
from clapkit.translate.image_metrics import background_std, morphology

__all__ = [
    "DEFAULT_SAMPLES",
    "KS_COLUMNS",
    "SAMPLES_GROUP",
    "SPREAD_METRICS",
    "SpreadParts",
    "StoredSamples",
    "ks_comparisons",
    "n_samples_in",
    "read_sample",
    "sample_seed",
    "spread_parts",
]

#: Samples per galaxy that a stochastic model draws unless told otherwise.
DEFAULT_SAMPLES = 8
#: HDF5 group holding samples 1 … S−1 of a translated set (sample 0 is the image stack).
SAMPLES_GROUP = "samples"
#: Morphology columns compared as distributions: the key's name → the table's column.
KS_COLUMNS = {
    "flux": "flux",
    "size": "sigma",
    "ellipticity": "e",
    "concentration": "concentration",
    "peak": "peak",
}
#: Keys :class:`SpreadParts` adds to a row, in display order.
SPREAD_METRICS = (
    "sample_pixel_spread",
    "sample_flux_spread",
    "sample_size_spread",
    "sample_flux_spread_ratio",
    "sample_size_spread_ratio",
)


def sample_seed(seed: int, k: int) -> int:
    """The seed of sample ``k`` of a translation seeded ``seed``.

    Sample 0 uses ``seed`` itself, so a one-sample translation is the one written before
    samples existed; sample ``k >= 1`` uses ``np.random.SeedSequence((seed, k))``, so
    neighbouring seeds do not share samples.

    Examples
    --------
    >>> sample_seed(3, 0)
    3
    >>> sample_seed(3, 1) == sample_seed(3, 1) != sample_seed(3, 2)
    True
    >>> sample_seed(3, -1)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: k must be an integer >= 0, got -1
    """
    seed = check_int(seed, "seed", 0)
    k = check_int(k, "k", 0)
    if k == 0:
        return seed
    state = np.random.SeedSequence((seed, k)).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))  # 63 bits: what torch.Generator.manual_seed takes


def n_samples_in(f: h5py.File, instrument: str) -> int:
    """Samples per galaxy stored in an open translated-set file (1 without extras)."""
    group = f.get(SAMPLES_GROUP)
    if group is None or instrument not in group:
        return 1
    return int(group[instrument].shape[0]) + 1


def read_sample(path: str | os.PathLike, instrument: str, k: int) -> np.ndarray:
    """Sample ``k`` of a translated set's ``instrument`` images, ``(N, C, H, W)`` float32.

    Parameters
    ----------
    path : path-like
        A translated set (:func:`~clapkit.translate.apply.apply_translator`).
    instrument : str
        The target instrument.
    k : int
        The sample, ``0 <= k <`` its number of samples.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> read_sample("run/translate/s2c/nrgan/translated.h5", "cfhtls", 3)  # doctest: +SKIP
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        n = n_samples_in(f, instrument)
        if not 0 <= k < n:
            raise ValidationError(f"{path}: sample {k} asked for; the file holds {n}")
        if k == 0:
            if f"images/{instrument}" not in f:
                raise FileFormatError(f"{path}: has no /images/{instrument}")
            return np.asarray(f["images"][instrument][:], dtype=np.float32)
        return np.asarray(f[SAMPLES_GROUP][instrument][k - 1], dtype=np.float32)


class StoredSamples(Sequence[np.ndarray]):
    """The samples of a translated set as a sequence, each read from the file when indexed.

    Examples
    --------
    >>> samples = StoredSamples("run/translate/s2c/nrgan/translated.h5", "cfhtls")  # doctest: +SKIP
    >>> len(samples), samples[1].shape  # doctest: +SKIP
    (8, (12, 5, 64, 64))
    """

    def __init__(self, path: str | os.PathLike, instrument: str) -> None:
        self.path, self.instrument = Path(path), instrument
        with h5py.File(self.path, "r") as f:
            self._n = n_samples_in(f, instrument)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k: int) -> np.ndarray:  # type: ignore[override]
        if not isinstance(k, int | np.integer):
            raise TypeError("StoredSamples takes one integer index")
        k = int(k) + self._n if k < 0 else int(k)
        if not 0 <= k < self._n:
            raise IndexError(k)
        return read_sample(self.path, self.instrument, k)


def _rel(values: NDArray[np.float64], reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values / |reference|``; NaN where either is not finite or the reference is 0."""
    usable = np.isfinite(values) & np.isfinite(reference) & (reference != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, values / np.abs(reference), np.nan)


def _band_columns(table: Table, column: str, bands: Sequence[str]) -> NDArray[np.float64]:
    """``(N, B)`` of ``<column>_<band>``, NaN where HSM failed (for its size)."""
    out = np.stack([np.asarray(table[f"{column}_{b}"], dtype=np.float64) for b in bands], axis=1)
    if column == "sigma":
        for i, b in enumerate(bands):
            if f"hsm_ok_{b}" in table.colnames:
                out[~np.asarray(table[f"hsm_ok_{b}"], dtype=bool), i] = np.nan
    return out


def _median_rows(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over galaxies (axis 0), ignoring NaN, NaN where a column has none."""
    finite = np.isfinite(values)
    out = np.full(values.shape[1:], np.nan)
    for j in np.ndindex(values.shape[1:]):
        column = values[(slice(None), *j)][finite[(slice(None), *j)]]
        if column.size:
            out[j] = np.median(column)
    return out


def _band_mean_of_medians(values: NDArray[np.float64]) -> float:
    per_band = np.atleast_1d(_median_rows(values))
    finite = per_band[np.isfinite(per_band)]
    return float(np.mean(finite)) if finite.size else float("nan")


@dataclass
class SpreadParts:
    """Per-galaxy spread between samples: what :meth:`metrics` aggregates (and a bootstrap
    resamples).

    Attributes
    ----------
    n_samples : int
        Samples per galaxy (S >= 2).
    pixel : ndarray, shape (N,)
        RMS over pixels of the across-sample σ over the real background σ, band mean.
    flux, size : ndarray, shape (N, B)
        Across-sample σ of the flux and size over |real value|.
    flux_error, size_error : ndarray, shape (N, B)
        |sample 0 − real| / |real| of the flux and size.
    """

    n_samples: int
    pixel: NDArray[np.float64]
    flux: NDArray[np.float64]
    size: NDArray[np.float64]
    flux_error: NDArray[np.float64]
    size_error: NDArray[np.float64]

    def metrics(self, index: NDArray[np.intp] | None = None) -> dict[str, float]:
        """The :data:`SPREAD_METRICS` on the galaxies ``index`` (default: all, once each).

        Examples
        --------
        >>> ones = np.ones((4, 2))
        >>> parts = SpreadParts(8, np.ones(4), 0.1 * ones, 0.2 * ones, 0.5 * ones, ones)
        >>> parts.metrics()["sample_flux_spread_ratio"]
        0.2
        """

        def pick(values: NDArray[np.float64]) -> NDArray[np.float64]:
            return values if index is None else values[index]

        pixel = pick(self.pixel)
        pixel = pixel[np.isfinite(pixel)]
        out = {"sample_pixel_spread": float(np.median(pixel)) if pixel.size else float("nan")}
        for name in ("flux", "size"):
            spread = _band_mean_of_medians(pick(getattr(self, name)))
            error = _band_mean_of_medians(pick(getattr(self, f"{name}_error")))
            out[f"sample_{name}_spread"] = spread
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"sample_{name}_spread_ratio"] = float(np.float64(spread) / error)
        return {key: out[key] for key in SPREAD_METRICS}


def spread_parts(
    samples: Sequence[ArrayLike],
    real: ArrayLike,
    bands: Sequence[str],
    pixel_scale: float,
    *,
    real_morphology: Table | None = None,
    first_morphology: Table | None = None,
) -> SpreadParts:
    """Per-galaxy spread between the translated ``samples`` of the same galaxies.

    Parameters
    ----------
    samples : sequence of array_like, each (N, B, H, W)
        At least two translations of the galaxies of ``real``; read one at a time (a
        sequence of lazily loaded samples keeps memory at two samples).
    real : array_like, shape (N, B, H, W)
        The real target images.
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    real_morphology, first_morphology : Table, optional
        :func:`~clapkit.translate.image_metrics.morphology` of ``real`` and of sample 0,
        when already measured.

    Returns
    -------
    SpreadParts

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:24, :24]
    >>> blob = 50 * np.exp(-((xx - 11.5) ** 2 + (yy - 11.5) ** 2) / 8.0)
    >>> real = blob + rng.normal(0, 1.0, (10, 1, 24, 24))
    >>> draws = [blob + rng.normal(0, 1.0, real.shape) for _ in range(4)]
    >>> parts = spread_parts(draws, real, ["r"], 0.2)
    >>> 0.8 < parts.metrics()["sample_pixel_spread"] < 1.2  # draws differ by the sky σ
    True
    """
    if len(samples) < 2:
        raise ValidationError(f"the spread between samples needs >= 2 samples, got {len(samples)}")
    r = np.asarray(real, dtype=np.float64)
    if len(bands) != r.shape[1]:
        raise ValidationError(f"{len(bands)} band names for images of {r.shape[1]} bands")
    # Welford over samples: the across-sample variance without holding every sample.
    mean = np.zeros_like(r)
    m2 = np.zeros_like(r)
    fluxes, sizes = [], []
    for k, sample in enumerate(samples):
        x = np.asarray(sample, dtype=np.float64)
        if x.shape != r.shape:
            raise ValidationError(f"sample {k} has shape {x.shape}; the real images {r.shape}")
        delta = x - mean
        mean += delta / (k + 1)
        m2 += delta * (x - mean)
        table = first_morphology if k == 0 and first_morphology is not None else None
        table = table if table is not None else morphology(x, pixel_scale, bands)
        if k == 0:
            first = table
        fluxes.append(_band_columns(table, "flux", bands))
        sizes.append(_band_columns(table, "sigma", bands))
    n = len(samples)
    pixel_std = np.sqrt(np.mean(m2 / (n - 1), axis=(2, 3)))  # (N, B): RMS over pixels
    sky = background_std(r)  # (N, B)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixel = np.where(sky > 0, pixel_std / sky, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a galaxy without sky pixels
        pixel = np.nanmean(pixel, axis=1)
    real_table = (
        real_morphology if real_morphology is not None else morphology(r, pixel_scale, bands)
    )
    real_flux = _band_columns(real_table, "flux", bands)
    real_size = _band_columns(real_table, "sigma", bands)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a size that failed in a sample
        flux_std = np.std(np.stack(fluxes), axis=0, ddof=1)
        size_std = np.std(np.stack(sizes), axis=0, ddof=1)
    first_flux = _band_columns(first, "flux", bands)
    first_size = _band_columns(first, "sigma", bands)
    return SpreadParts(
        n_samples=n,
        pixel=pixel,
        flux=_rel(flux_std, real_flux),
        size=_rel(size_std, real_size),
        flux_error=_rel(np.abs(first_flux - real_flux), real_flux),
        size_error=_rel(np.abs(first_size - real_size), real_size),
    )


def _ks_values(table: Table, column: str, band: str) -> NDArray[np.float64]:
    if column == "e":
        values = np.hypot(
            np.asarray(table[f"e1_{band}"], dtype=np.float64),
            np.asarray(table[f"e2_{band}"], dtype=np.float64),
        )
    else:
        values = _band_columns(table, column, [band])[:, 0]
    return values[np.isfinite(values)]


def ks_comparisons(translated: Table, real: Table, band: str) -> dict[str, float]:
    """Two-sample KS statistic and p-value of each :data:`KS_COLUMNS` column in ``band``.

    Parameters
    ----------
    translated, real : Table
        :func:`~clapkit.translate.image_metrics.morphology` of the translated and the real
        images (the same galaxies or not: the distributions are compared).
    band : str
        The band whose columns are compared.

    Returns
    -------
    dict
        ``ks_<name>`` (the largest gap between the two empirical CDFs, 0–1) and
        ``ks_<name>_p`` for each name of :data:`KS_COLUMNS`; NaN where a side has no
        finite value.

    Examples
    --------
    >>> table = Table({"flux_r": [1.0, 2.0, 3.0], "sigma_r": [1.0, 1.1, 1.2],
    ...                "e1_r": [0.1, 0.0, 0.2], "e2_r": [0.0, 0.1, 0.0],
    ...                "concentration_r": [2.0, 2.5, 3.0], "peak_r": [5.0, 6.0, 7.0]})
    >>> result = ks_comparisons(table, table, "r")
    >>> result["ks_flux"], result["ks_flux_p"]
    (0.0, 1.0)
    """
    out: dict[str, float] = {}
    for name, column in KS_COLUMNS.items():
        a, b = _ks_values(translated, column, band), _ks_values(real, column, band)
        if a.size == 0 or b.size == 0:
            out[f"ks_{name}"] = out[f"ks_{name}_p"] = float("nan")
            continue
        result = ks_2samp(a, b)
        out[f"ks_{name}"] = float(result.statistic)
        out[f"ks_{name}_p"] = float(result.pvalue)
    return out
