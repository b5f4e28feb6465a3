"""Judge translated images by what they preserve: pixels, morphology, noise, redshift.

:func:`compare_images` is the pure-array tier: one set of translated images against the
real target images of the same galaxies, giving one flat dict of headline numbers and the
per-galaxy tables behind them. :func:`evaluate_task` is the workflow on a run directory:
every translated set of a task, the real images as the reference row, and the photo-z
probe (:mod:`clapkit.translate.probe`), written to ``translate/<task>/evaluation.json``
(read back by :mod:`clapkit.translate.results`).

Headline metrics (the keys of the benchmark table):

- pixel: ``mse``, ``psnr`` (dB), ``ssim``, averaged over bands (per band as ``psnr_<b>``);
- morphology: ``size_rel_error`` (HSM σ), ``flux_rel_error``, ``peak_flux_rel_error``,
  ``concentration_rel_error``: per band the median over galaxies of |x_t − x_r| / |x_r|,
  then the mean over bands; ``ellipticity_abs_error`` and ``centroid_offset`` (pixels) in
  the reference band; ``peak_ratio_rel_error`` of the consecutive-band peak-flux ratios;
- noise: ``noise_std_rel_error`` (median background σ, worst band) and
  ``noise_power_max_rel_error``: the worst radial bin, over bands, of |P_t / P_r − 1| of the
  source-free noise power spectrum;
- redshift information: ``photoz_sigma_mad``, ``photoz_bias``, ``photoz_outlier_fraction``,
  ``photoz_crps``, ``photoz_pit_w1`` of the probe applied to the images, and the same
  five as ``peakz_*`` of the peak-flux estimator
  (:class:`~clapkit.translate.peak_photoz.PeakPhotoZ`: k-NN on the asinh colours of the
  bands at the galaxy's peak pixel, trained on the real images of the probe's training
  galaxies): the paper's finding, redshift information in the cross-band peak fluxes,
  measured directly.

Error bars: every metric is an aggregate over galaxies of per-galaxy contributions, so
one set of bootstrap draws of the galaxies (:class:`BootstrapConfig`, seeded) recomputes
every metric of every row on the same galaxies, and ``<key>_ci`` is its percentile
interval. What is resampled per metric: the per-galaxy pixel scores (MSE, PSNR, SSIM,
averaged); the per-galaxy relative errors of each morphology column and peak ratio
(median per band, then the band mean); the per-galaxy ellipticity error and centroid
offset (median); each galaxy's background σ in both sets (medians compared); each
galaxy's noise power spectrum in both sets (means compared bin by bin, worst bin kept);
the probe's (and the peak-flux estimator's) per-galaxy point estimate, PIT and CRPS
(σ_MAD, bias, outliers, mean CRPS and PIT W1 recomputed). Because the draws are shared, ``paired_differences`` gives the
interval of (row − real) galaxy for galaxy, and
:func:`clapkit.translate.results.rows_differ` says whether two rows differ.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

from clapkit.atomic import atomic_path, write_json
from clapkit.checks import check_int
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.metrics import (
    bias,
    outlier_fraction,
    per_galaxy_parts,
    sigma_mad,
    wasserstein_to_uniform,
)
from clapkit.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    bootstrap_draws,
    check_confidence,
    percentile_interval,
)
from clapkit.runs import RunDir
from clapkit.translate.image_metrics import (
    background_std,
    morphology,
    noise_power_spectrum,
    peak_flux_ratios,
    pixel_metrics,
)
from clapkit.translate.peak_photoz import PeakPhotoZ, PeakZConfig, table_peak_fluxes
from clapkit.translate.probe import ProbeConfig, probe_pdfs, train_probe
from clapkit.translate.results import task_dir
from clapkit.translate.sampling import StoredSamples, ks_comparisons, spread_parts
from clapkit.translate.tasks import task

__all__ = [
    "HEADLINE_METRICS",
    "BootstrapConfig",
    "compare_images",
    "evaluate_task",
    "noise_spectrum",
]

#: Band whose shape (ellipticity, centroid) is reported: the deepest optical band.
REFERENCE_BAND = "r"
#: Radial bins of the stored noise power spectra.
N_POWER_BINS = 16
#: Keys of one row of the evaluation table, in display order.
HEADLINE_METRICS = (
    "mse",
    "psnr",
    "ssim",
    "size_rel_error",
    "flux_rel_error",
    "peak_flux_rel_error",
    "concentration_rel_error",
    "ellipticity_abs_error",
    "centroid_offset",
    "peak_ratio_rel_error",
    "noise_std_rel_error",
    "noise_power_max_rel_error",
    "photoz_sigma_mad",
    "photoz_bias",
    "photoz_outlier_fraction",
    "photoz_crps",
    "photoz_pit_w1",
    "peakz_sigma_mad",
    "peakz_bias",
    "peakz_outlier_fraction",
    "peakz_crps",
    "peakz_pit_w1",
)


def _json_number(value: float) -> float | None:
    """A float for JSON: None for inf/NaN (PSNR of identical images is infinite)."""
    value = float(value)
    return value if math.isfinite(value) else None


def noise_spectrum(images: ArrayLike, n_bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Radial noise power spectrum of the source-free pixels, ``(k, power (B, n_bins))``."""
    return noise_power_spectrum(images, n_bins=n_bins)


@dataclass(frozen=True)
class BootstrapConfig:
    """Bootstrap intervals over galaxies for every row of the evaluation table.

    Attributes
    ----------
    n_resamples : int
        Draws of the galaxies, with replacement; 0 gives no intervals.
    confidence : float
        Probability covered by each interval (percentile interval).
    seed : int
        Seed of ``np.random.default_rng``: the same seed gives the same draws, and so
        the same intervals.

    Examples
    --------
    >>> BootstrapConfig(n_resamples=200).draws(5).shape
    (200, 5)
    """

    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.n_resamples, "n_resamples", minimum=0)
        check_confidence(self.confidence)
        check_int(self.seed, "seed", minimum=0)

    def draws(self, n: int) -> NDArray[np.intp] | None:
        """Galaxy indices of every draw, shape (n_resamples, n); None without draws."""
        if self.n_resamples == 0:
            return None
        return bootstrap_draws(n, self.n_resamples, self.seed)


def _nanmedian(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over galaxies (axis 0) ignoring NaN; NaN, silently, where all are NaN.

    ``np.nanmedian`` goes through masked arrays (a millisecond a call); sorting puts NaN
    last, so the median of the finite values is read from the sorted columns directly.
    """
    ordered = np.sort(values.reshape(len(values), -1), axis=0)  # (N, columns)
    n = (~np.isnan(ordered)).sum(axis=0)
    low = np.take_along_axis(ordered, (np.maximum(n - 1, 0) // 2)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.minimum(n // 2, len(values) - 1)[None], axis=0)[0]
    median = np.where(n > 0, 0.5 * (low + high), np.nan)
    return median.reshape(values.shape[1:])


def _per_galaxy_rel_error(xt: ArrayLike, xr: ArrayLike) -> NDArray[np.float64]:
    """|x_t − x_r| / |x_r| per galaxy; NaN where either is not finite or x_r is 0."""
    xt = np.asarray(xt, dtype=np.float64)
    xr = np.asarray(xr, dtype=np.float64)
    usable = np.isfinite(xt) & np.isfinite(xr) & (xr != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, np.abs(xt - xr) / np.abs(xr), np.nan)


@dataclass
class _RowParts:
    """Per-galaxy contributions to one row of the table: what a bootstrap resamples.

    Each metric is an aggregate over galaxies of per-galaxy values, so any resample of
    the galaxies (``index``, repeats allowed) gives the metric on that resample:

    - ``means``: the metric is the mean over galaxies (MSE, PSNR, SSIM; per galaxy
      already averaged over bands for the band-averaged keys);
    - ``band_medians``: per band the median over galaxies of the relative error, then
      the mean over the bands where it is defined (size, flux, peak, concentration,
      peak ratios);
    - ``medians``: the median over galaxies (ellipticity error, centroid offset);
    - ``noise_std``: per-galaxy background σ of both sets, (N, B) each; the metric
      compares their medians over galaxies, band by band, and keeps the worst band;
    - ``noise_power``: per-galaxy noise power spectra of both sets, (N, B, K) each; the
      metric compares their means over galaxies, bin by bin, and keeps the worst bin;
    - ``photoz``: the probe's per-galaxy point estimate, PIT and CRPS and the true
      redshifts; the metrics are recomputed from them (σ_MAD, bias, outliers, mean
      CRPS, PIT W1 of the resampled galaxies);
    - ``peakz``: the same parts of the peak-flux estimator (keys ``peakz_*``).
    """

    means: dict[str, NDArray[np.float64]]
    band_medians: dict[str, NDArray[np.float64]]
    medians: dict[str, NDArray[np.float64]]
    noise_std: tuple[NDArray[np.float64], NDArray[np.float64]]
    noise_power: tuple[NDArray[np.float64], NDArray[np.float64]]
    photoz: dict[str, NDArray[np.float64]] | None = field(default=None)
    peakz: dict[str, NDArray[np.float64]] | None = field(default=None)

    def metrics(self, index: NDArray[np.intp] | None = None) -> dict[str, float]:
        """Every metric of the row on the galaxies ``index`` (default: all, once each)."""

        def pick(values: NDArray[np.float64]) -> NDArray[np.float64]:
            return values if index is None else values[index]

        out: dict[str, float] = {}
        for key, values in self.means.items():
            out[key] = float(np.mean(pick(values)))
        for key, values in self.band_medians.items():
            per_band = np.atleast_1d(_nanmedian(pick(values)))
            finite = per_band[np.isfinite(per_band)]
            out[key] = float(np.mean(finite)) if finite.size else float("nan")
        for key, values in self.medians.items():
            out[key] = float(_nanmedian(pick(values)))
        std_t, std_r = (_nanmedian(pick(v)) for v in self.noise_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["noise_std_rel_error"] = float(np.max(np.abs(std_t / std_r - 1.0)))
        power_t, power_r = (pick(v).mean(axis=0) for v in self.noise_power)
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN ratio
            out["noise_power_max_rel_error"] = float(np.nanmax(np.abs(power_t / power_r - 1.0)))
        if self.photoz is not None:
            out.update(_photoz_metrics(*(pick(self.photoz[key]) for key in PHOTOZ_PARTS)))
        if self.peakz is not None:
            parts = (pick(self.peakz[key]) for key in PHOTOZ_PARTS)
            out.update(_photoz_metrics(*parts, prefix="peakz"))
        return out


#: Per-galaxy parts of the probe's metrics, in the order :func:`_photoz_metrics` takes.
PHOTOZ_PARTS = ("z_phot", "z_true", "pit", "crps")


def _photoz_metrics(
    z_phot: NDArray[np.float64],
    z_true: NDArray[np.float64],
    pit: NDArray[np.float64],
    crps: NDArray[np.float64],
    prefix: str = "photoz",
) -> dict[str, float]:
    """The probe's metrics (:func:`~clapkit.translate.probe.probe_metrics`) from its
    per-galaxy parts, keyed ``<prefix>_<metric>``: no pass over the PDFs, no uniformity
    tests beyond W1."""
    out = {
        f"{prefix}_sigma_mad": sigma_mad(z_phot, z_true),
        f"{prefix}_bias": bias(z_phot, z_true),
        f"{prefix}_outlier_fraction": outlier_fraction(z_phot, z_true, 0.05),
        f"{prefix}_crps": float(np.mean(crps)),
        f"{prefix}_pit_w1": wasserstein_to_uniform(pit) if pit.size >= 2 else float("nan"),
    }
    return {key: float(value) for key, value in out.items()}


def _row_parts(
    t: NDArray[np.float64],
    r: NDArray[np.float64],
    bands: Sequence[str],
    table_t: Table,
    table_r: Table,
    n_power_bins: int,
) -> _RowParts:
    """The per-galaxy contributions of translated ``t`` against real ``r``."""
    pixels = pixel_metrics(t, r, per_galaxy=True)  # (N, B) each
    means = {key: pixels[key].mean(axis=1) for key in ("mse", "psnr", "ssim")}
    for b, name in enumerate(bands):
        means[f"psnr_{name}"] = pixels["psnr"][:, b]
        means[f"ssim_{name}"] = pixels["ssim"][:, b]
    band_medians = {}
    for key, column in (
        ("size_rel_error", "sigma"),
        ("flux_rel_error", "flux"),
        ("peak_flux_rel_error", "peak"),
        ("concentration_rel_error", "concentration"),
    ):
        band_medians[key] = np.stack(
            [
                _per_galaxy_rel_error(table_t[f"{column}_{b}"], table_r[f"{column}_{b}"])
                for b in bands
            ],
            axis=1,
        )
    ratios_t = peak_flux_ratios(t, bands)
    ratios_r = peak_flux_ratios(r, bands)
    band_medians["peak_ratio_rel_error"] = np.stack(
        [_per_galaxy_rel_error(ratios_t[key], ratios_r[key]) for key in ratios_r]
        or [np.full(len(t), np.nan)],
        axis=1,
    )
    band = REFERENCE_BAND if REFERENCE_BAND in bands else bands[len(bands) // 2]
    e_t = np.hypot(table_t[f"e1_{band}"], table_t[f"e2_{band}"])
    e_r = np.hypot(table_r[f"e1_{band}"], table_r[f"e2_{band}"])
    offset = np.hypot(
        table_t[f"x_{band}"] - table_r[f"x_{band}"], table_t[f"y_{band}"] - table_r[f"y_{band}"]
    )
    medians = {
        "ellipticity_abs_error": np.abs(np.asarray(e_t - e_r, dtype=np.float64)),
        "centroid_offset": np.asarray(offset, dtype=np.float64),
    }
    _, power_t = noise_power_spectrum(t, n_bins=n_power_bins, per_galaxy=True)
    _, power_r = noise_power_spectrum(r, n_bins=n_power_bins, per_galaxy=True)
    return _RowParts(
        means=means,
        band_medians=band_medians,
        medians=medians,
        noise_std=(background_std(t), background_std(r)),
        noise_power=(power_t, power_r),
    )


def _peakz_parts(
    model: PeakPhotoZ, table: Table, bands: Sequence[str], z_true: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    """Per-galaxy point estimate, PIT, CRPS and true z of the peak-flux estimator applied
    to the ``peak_<b>`` columns of a morphology table (the parts ``_RowParts.peakz``)."""
    z = np.asarray(z_true, dtype=np.float64)
    if z.shape != (len(table),):
        raise ValidationError(
            f"z_true must have one redshift per galaxy ({len(table)}), got {z.shape}"
        )
    p = model.predict(table_peak_fluxes(table, bands))
    return {**per_galaxy_parts(p, model.edges, z), "z_true": z}


def _draw_values(
    metrics: Callable[[NDArray[np.intp] | None], dict[str, float]], draws: NDArray[np.intp]
) -> dict[str, NDArray[np.float64]]:
    """Every metric recomputed on every draw: key → array (R,)."""
    rows = [metrics(index) for index in draws]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def _intervals(
    values: dict[str, NDArray[np.float64]], confidence: float
) -> dict[str, tuple[float, float]]:
    return {key: percentile_interval(v, confidence) for key, v in values.items()}


def compare_images(
    translated: ArrayLike,
    real: ArrayLike,
    bands: Sequence[str],
    pixel_scale: float,
    *,
    real_morphology: Table | None = None,
    n_power_bins: int = 16,
    bootstrap: BootstrapConfig | None = None,
    peak_photoz: PeakPhotoZ | None = None,
    z_true: ArrayLike | None = None,
) -> tuple[dict[str, Any], Table, np.ndarray]:
    """Pixel, morphology and noise fidelity of ``translated`` against ``real`` images.

    Parameters
    ----------
    translated, real : array_like, shape (N, B, H, W)
        Images of the same galaxies, in the same flux units and on the same grid.
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel (sizes are reported in arcsec).
    real_morphology : Table, optional
        :func:`~clapkit.translate.image_metrics.morphology` of ``real``, when already
        measured (it is the same for every model).
    n_power_bins : int
        Radial bins of the noise power spectrum.
    bootstrap : BootstrapConfig, optional
        With it, every metric ``<key>`` gets ``<key>_ci``: its bootstrap interval over
        galaxies, ``(lo, hi)`` (the module docstring says what each metric resamples).
    peak_photoz : PeakPhotoZ, optional
        A fitted peak-flux estimator; with it (and ``z_true``) the ``peakz_*`` keys of
        the translated images are added, resampled on the same draws.
    z_true : array_like, shape (N,), optional
        True redshifts of the galaxies, needed with ``peak_photoz``.

    Returns
    -------
    metrics : dict
        The pixel, morphology and noise keys of :data:`HEADLINE_METRICS` (and the
        ``peakz_*`` keys with ``peak_photoz``; the probe's ``photoz_*`` need a run:
        :func:`evaluate_task`), plus per band ``psnr_<b>`` and ``ssim_<b>`` (and their
        ``_ci`` with ``bootstrap``).
    table : astropy.table.Table
        Per-galaxy morphology of ``translated``.
    power : ndarray, shape (B, n_power_bins)
        Noise power spectrum of ``translated``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:24, :24]
    >>> blob = 50 * np.exp(-((xx - 11.5) ** 2 + (yy - 11.5) ** 2) / 8.0)
    >>> real = blob + rng.normal(0, 1.0, (40, 2, 24, 24))
    >>> noisy = blob + rng.normal(0, 2.0, (40, 2, 24, 24))
    >>> metrics, _, _ = compare_images(noisy, real, ["g", "r"], 0.2)
    >>> 2.5 < metrics["noise_power_max_rel_error"] + 1 < 6  # twice the σ: 4 × the power
    True
    """
    t = np.asarray(translated, dtype=np.float64)
    r = np.asarray(real, dtype=np.float64)
    if t.shape != r.shape:
        raise ValidationError(
            f"translated images {t.shape} and real images {r.shape} differ in shape"
        )
    if len(bands) != r.shape[1]:
        raise ValidationError(f"{len(bands)} band names for images of {r.shape[1]} bands")
    table_t = morphology(t, pixel_scale, bands)
    table_r = real_morphology if real_morphology is not None else morphology(r, pixel_scale, bands)
    parts = _row_parts(t, r, bands, table_t, table_r, n_power_bins)
    if peak_photoz is not None:
        if z_true is None:
            raise ValidationError("peak_photoz needs z_true, the galaxies' true redshifts")
        parts.peakz = _peakz_parts(peak_photoz, table_t, bands, z_true)
    metrics: dict[str, Any] = parts.metrics()
    draws = bootstrap.draws(len(t)) if bootstrap is not None else None
    if draws is not None:
        intervals = _intervals(_draw_values(parts.metrics, draws), bootstrap.confidence)
        metrics.update({f"{key}_ci": ci for key, ci in intervals.items()})
    return metrics, table_t, parts.noise_power[0].mean(axis=0)


# ----------------------------------------------------------------------------- workflow


def _translated_sets(run: RunDir, task_name: str, models: Sequence[str] | None) -> dict[str, Path]:
    found = run.translated_sets(task_name)
    folder = run.task_dir(task_name)
    if models is None:
        return found
    missing = [m for m in models if m not in found]
    if missing:
        raise FileFormatError(
            f"{folder}: no translated images for {missing} (run `clapkit translate apply` "
            f"first); found {sorted(found)}"
        )
    return {m: found[m] for m in models}


def _write_table(path: Path, table: Table) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        table.write(tmp, format="hdf5", path="morphology", serialize_meta=True, overwrite=True)


def evaluate_task(
    run: str | os.PathLike,
    task_name: str,
    data: str | os.PathLike,
    *,
    models: Sequence[str] | None = None,
    probe: ProbeConfig | None = None,
    split: str = "test",
    bootstrap: BootstrapConfig | None = None,
    overwrite: bool = False,
    progress: bool = False,
    peakz: PeakZConfig | None = None,
) -> dict[str, Any]:
    """Evaluate every translated set of ``task_name`` in ``run`` against the real images.

    Parameters
    ----------
    run : path
        Run directory; translated sets are ``translate/<task>/<name>/translated.h5``.
    data : path
        The GalaxySet the translations came from: its ``split`` galaxies give the real
        target images, its ``train``/``valid`` splits train the photo-z probe.
    models : sequence of str, optional
        Names to evaluate (default: every translated set found).
    probe : ProbeConfig, optional
    split : str
        The split whose galaxies are evaluated.
    bootstrap : BootstrapConfig, optional
        Intervals over galaxies (default :class:`BootstrapConfig`: 1,000 draws, 95%).
        The same draws serve every metric and every row, so rows are paired.
    overwrite : bool
        Replace ``evaluation.json``; without it an existing one is refused.
    progress : bool
        Show the probe's training progress.
    peakz : PeakZConfig, optional
        The peak-flux photo-z estimator (:mod:`clapkit.translate.peak_photoz`), trained
        on the real images of the probe's training split, on the probe's bins.

    Returns
    -------
    dict
        ``{"task", "n_galaxies", "bands", "models": {name: metrics}, "noise_power":
        {"k", name: {band: [...]}}, "bootstrap", "paired_differences"}``, the row
        ``real`` being the real images. Each row holds ``<key>`` and ``<key>_ci``
        (``[lo, hi]``, null where not finite); ``bootstrap`` is the configuration
        (``n_resamples``, ``confidence``, ``seed``, ``resampled: "galaxies"``);
        ``paired_differences`` is ``{"reference": "real", "models": {name: {key:
        [lo, hi]}}}``, the interval of (row − real) over the same draws, which is
        narrower than comparing two intervals because the galaxies are paired.
        Without draws (``n_resamples=0``) the last two are absent and so are the
        ``_ci`` keys. Each translated row also holds ``n_samples`` (translations per
        galaxy), a set of several samples the spread between them
        (:data:`~clapkit.translate.sampling.SPREAD_METRICS`, with ``_ci``), and every
        row ``ks_<column>`` and ``ks_<column>_p``: KS tests of its morphology
        distributions against the real ones (:mod:`clapkit.translate.sampling`). Older
        evaluations lack these keys.
    """
    bootstrap = bootstrap if bootstrap is not None else BootstrapConfig()
    folder = task_dir(run, task_name)
    paths = RunDir(run)
    out = paths.evaluation_path(task_name)
    if out.exists() and not overwrite:
        raise FileFormatError(f"{out} already exists; pass overwrite=True (--overwrite) to redo it")
    sets = _translated_sets(paths, task_name, models)
    if not sets:
        raise FileFormatError(f"{folder}: nothing to evaluate; run `clapkit translate apply` first")
    target = task(task_name).target
    with GalaxySet.load(data) as galaxies:
        if target not in galaxies.stacks:
            raise ValidationError(
                f"{data}: the real {target!r} images are needed; the data has {sorted(galaxies.stacks)}"
            )
        probe_dir = paths.probe_dir(task_name)
        train_probe(
            galaxies.split("train"),
            galaxies.split("valid"),
            target,
            probe_dir,
            probe,
            progress=progress,
        )
        test = galaxies.split(split)
        real_stack = test.stacks[target]
        real = np.asarray(real_stack.images[:], dtype=np.float32)
        bands, pixel_scale = list(real_stack.bands), float(real_stack.pixel_scale)
        ids = np.asarray(test.ids)
        z_true = np.asarray(test.catalog["z"], dtype=np.float64)
        p_real, edges = probe_pdfs(probe_dir, test)
        train = galaxies.split("train")  # the probe's training galaxies
        peak_model = PeakPhotoZ(edges, bands, peakz).fit_images(
            train.stacks[target].images, np.asarray(train.catalog["z"], dtype=np.float64)
        )
    real_table = morphology(real, pixel_scale, bands)
    real64 = np.asarray(real, dtype=np.float64)
    draws = bootstrap.draws(len(ids))

    def photoz_parts(p: np.ndarray) -> dict[str, np.ndarray]:
        return {**per_galaxy_parts(p, edges, z_true), "z_true": z_true}

    parts: dict[str, _RowParts] = {}
    # Many-to-many (clapkit.translate.sampling): spread between samples, KS per set.
    spreads: dict[str, Any] = {}
    ks_band = REFERENCE_BAND if REFERENCE_BAND in bands else bands[len(bands) // 2]
    spectra: dict[str, Any] = {"k": noise_spectrum(real[:1])[0].tolist()}
    tables: dict[str, Table] = {"real": real_table}
    pdfs: dict[str, np.ndarray] = {"real": p_real}
    for name, path in sets.items():
        with GalaxySet.load(path) as translated:
            if not np.array_equal(np.asarray(translated.ids), ids):
                raise ValidationError(
                    f"{path}: translated galaxies differ from the {split!r} split of {data}; "
                    "apply the model to the same data again"
                )
            images = np.asarray(translated.stacks[target].images[:], dtype=np.float64)
            p, _ = probe_pdfs(probe_dir, translated)
        table = morphology(images, pixel_scale, bands)
        samples = StoredSamples(path, target)
        if len(samples) > 1:
            spreads[name] = spread_parts(
                samples,
                real64,
                bands,
                pixel_scale,
                real_morphology=real_table,
                first_morphology=table,
            )
        parts[name] = _row_parts(images, real64, bands, table, real_table, N_POWER_BINS)
        parts[name].photoz = photoz_parts(p)
        parts[name].peakz = _peakz_parts(peak_model, table, bands, z_true)
        tables[name], pdfs[name] = table, p
    parts["real"] = _row_parts(real64, real64, bands, real_table, real_table, N_POWER_BINS)
    parts["real"].photoz = photoz_parts(p_real)
    parts["real"].peakz = _peakz_parts(peak_model, real_table, bands, z_true)
    rows: dict[str, dict[str, Any]] = {}
    drawn: dict[str, dict[str, np.ndarray]] = {}
    for name, row_parts in parts.items():
        rows[name] = {key: _json_number(v) for key, v in row_parts.metrics().items()}
        _add_sampling(rows[name], spreads.get(name), tables[name], real_table, ks_band)
        if name != "real":
            rows[name]["n_samples"] = len(StoredSamples(sets[name], target))
        spectra[name] = dict(
            zip(bands, row_parts.noise_power[0].mean(axis=0).tolist(), strict=True)
        )
        if draws is None:
            continue
        drawn[name] = _draw_values(row_parts.metrics, draws)
        for key, ci in _intervals(drawn[name], bootstrap.confidence).items():
            rows[name][f"{key}_ci"] = [_json_number(v) for v in ci]
        if name in spreads:
            spread_drawn = _draw_values(spreads[name].metrics, draws)
            for key, ci in _intervals(spread_drawn, bootstrap.confidence).items():
                rows[name][f"{key}_ci"] = [_json_number(v) for v in ci]
    for name, table in tables.items():
        table = table.copy()
        table.add_column(ids, name="id", index=0)
        table["z_true"] = z_true
        z_phot = (pdfs[name] * 0.5 * (edges[1:] + edges[:-1])).sum(axis=1)
        table["photoz"] = z_phot
        table["peakz"] = parts[name].peakz["z_phot"]
        _write_table(paths.morphology_path(task_name, name), table)
    result = {
        "task": task_name,
        # Relative to the run when inside it, so that a moved run keeps its images.
        "data": paths.relative_data_path(data),
        "split": split,
        "n_galaxies": len(ids),
        "bands": bands,
        "models": rows,
        "noise_power": spectra,
    }
    if draws is not None:
        result["bootstrap"] = {**asdict(bootstrap), "resampled": "galaxies"}
        differences = {}
        for name in sets:
            with np.errstate(invalid="ignore"):  # inf − inf: PSNR of identical images
                paired = {key: drawn[name][key] - drawn["real"][key] for key in drawn[name]}
            differences[name] = {
                key: [_json_number(v) for v in ci]
                for key, ci in _intervals(paired, bootstrap.confidence).items()
            }
        result["paired_differences"] = {"reference": "real", "models": differences}
    write_json(out, result, overwrite=True)
    return result


def _add_sampling(
    row: dict[str, Any], spread: Any, table: Table, real_table: Table, band: str
) -> None:
    """Add the spread between samples (sets with several) and the KS comparisons of the
    morphology distributions (every set) to one row; see :mod:`clapkit.translate.sampling`."""
    if spread is not None:
        row.update({key: _json_number(v) for key, v in spread.metrics().items()})
    row.update({key: _json_number(v) for key, v in ks_comparisons(table, real_table, band).items()})


#: Columns of the printed table: (metric key, header, format).
_TABLE_COLUMNS = (
    ("psnr", "PSNR", "{:6.2f}"),
    ("ssim", "SSIM", "{:5.3f}"),
    ("size_rel_error", "size err", "{:8.3f}"),
    ("flux_rel_error", "flux err", "{:8.3f}"),
    ("peak_flux_rel_error", "peak err", "{:8.3f}"),
    ("noise_power_max_rel_error", "noise P err", "{:11.3f}"),
    ("photoz_sigma_mad", "σ_MAD", "{:7.4f}"),
    ("photoz_outlier_fraction", "outliers", "{:8.3f}"),
    ("photoz_pit_w1", "PIT W1", "{:6.3f}"),
    ("peakz_sigma_mad", "peak σ", "{:7.4f}"),
)


#: Columns added to the printed table where some row has them: samples per galaxy, the
#: spread between samples (beside the errors) and KS statistics of the distributions.
_SAMPLING_COLUMNS = (
    ("n_samples", "S", "{:2.0f}"),
    ("sample_pixel_spread", "pix spread", "{:10.3f}"),
    ("sample_flux_spread", "flux spread", "{:11.3f}"),
    ("sample_size_spread", "size spread", "{:11.3f}"),
    ("ks_flux", "KS flux", "{:7.3f}"),
    ("ks_size", "KS size", "{:7.3f}"),
    ("ks_concentration", "KS conc", "{:7.3f}"),
)


def _columns(rows: dict[str, dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The printed columns: the headline ones, then the sampling/KS ones some row holds."""
    present = tuple(
        column
        for column in _SAMPLING_COLUMNS
        if any(row.get(column[0]) is not None for row in rows.values())
    )
    return _TABLE_COLUMNS + present


def _interval_text(row: dict[str, Any], key: str, fmt: str) -> str:
    """``lo–hi`` of a row's stored interval of ``key`` in the column's format, or ""."""
    stored = row.get(f"{key}_ci")
    if stored is None:
        return ""
    lo, hi = ("?" if v is None else fmt.format(v).strip() for v in stored)
    return f"{lo}–{hi}"


def format_evaluation(result: dict[str, Any]) -> str:
    """The evaluation of one task as a text table, one row per translated set.

    Where the rows carry bootstrap intervals (``<key>_ci``), each row is followed by a
    line of its intervals, ``lo–hi`` under each value, and the title says their level.
    Where some row has them, compact columns follow: samples per galaxy (``S``), the
    spread between samples (pixels over the sky σ; flux and size, relative, beside
    ``flux err`` and ``size err``) and the KS statistics of the flux, size and
    concentration distributions against the real ones.

    Examples
    --------
    >>> row = {key: 0.5 for key, _, _ in _TABLE_COLUMNS}
    >>> result = {"task": "s2c", "n_galaxies": 3, "models": {"nrgan_smooth": row}}
    >>> print(format_evaluation(result))
    s2c (3 test galaxies)
    model           PSNR   SSIM  size err  flux err  peak err  noise P err    σ_MAD  outliers  PIT W1   peak σ
    nrgan_smooth    0.50  0.500     0.500     0.500     0.500        0.500   0.5000     0.500   0.500   0.5000
    >>> row["psnr_ci"] = [0.25, 0.75]
    >>> print(format_evaluation({**result, "bootstrap": {"confidence": 0.95}}))
    s2c (3 test galaxies; second lines: 95% bootstrap intervals over galaxies)
    model              PSNR   SSIM  size err  flux err  peak err  noise P err    σ_MAD  outliers  PIT W1   peak σ
    nrgan_smooth       0.50  0.500     0.500     0.500     0.500        0.500   0.5000     0.500   0.500   0.5000
                  0.25–0.75
    """
    rows = result["models"]
    columns = _columns(rows)
    first = max([len("model"), *(len(name) for name in rows)])
    widths = [
        max(
            len(title),
            len(fmt.format(0.0)),
            *(len(_interval_text(row, key, fmt)) for row in rows.values()),
        )
        for key, title, fmt in columns
    ]
    header = f"{'model':<{first}}" + "".join(
        f"  {title:>{w}}" for (_, title, _), w in zip(columns, widths, strict=True)
    )
    title = f"{result['task']} ({result['n_galaxies']} test galaxies"
    has_intervals = any(
        _interval_text(row, key, fmt) for row in rows.values() for key, _, fmt in columns
    )
    if has_intervals:
        level = result.get("bootstrap", {}).get("confidence")
        level_text = f"{100 * level:g}% " if level is not None else ""
        title += f"; second lines: {level_text}bootstrap intervals over galaxies"
    lines = [title + ")", header]
    for name, row in rows.items():
        cells, intervals = [], []
        for (key, _, fmt), width in zip(columns, widths, strict=True):
            value = row.get(key)
            text = "—" if value is None else fmt.format(value).strip()
            cells.append(f"  {text:>{width}}")
            intervals.append(f"  {_interval_text(row, key, fmt):>{width}}")
        lines.append(f"{name:<{first}}" + "".join(cells))
        if has_intervals:
            lines.append((" " * first + "".join(intervals)).rstrip())
    return "\n".join(lines)
