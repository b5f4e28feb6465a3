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
  ``photoz_crps``, ``photoz_pit_w1`` of the probe applied to the images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike

from clapkit.atomic import atomic_path, write_json
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.runs import RunDir
from clapkit.translate.image_metrics import (
    background_std,
    morphology,
    noise_power_spectrum,
    peak_flux_ratios,
    pixel_metrics,
    relative_errors,
)
from clapkit.translate.probe import ProbeConfig, probe_metrics, probe_pdfs, train_probe
from clapkit.translate.results import task_dir
from clapkit.translate.tasks import task

__all__ = [
    "HEADLINE_METRICS",
    "compare_images",
    "evaluate_task",
    "noise_spectrum",
]

#: Band whose shape (ellipticity, centroid) is reported: the deepest optical band.
REFERENCE_BAND = "r"
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
)


def _json_number(value: float) -> float | None:
    """A float for JSON: None for inf/NaN (PSNR of identical images is infinite)."""
    value = float(value)
    return value if math.isfinite(value) else None


def noise_spectrum(images: ArrayLike, n_bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Radial noise power spectrum of the source-free pixels, ``(k, power (B, n_bins))``."""
    return noise_power_spectrum(images, n_bins=n_bins)


def _morphology_errors(table_t: Table, table_r: Table, bands: Sequence[str]) -> dict[str, float]:
    out = {}
    for key, column in (
        ("size_rel_error", "sigma"),
        ("flux_rel_error", "flux"),
        ("peak_flux_rel_error", "peak"),
        ("concentration_rel_error", "concentration"),
    ):
        per_band = relative_errors(table_t, table_r, [f"{column}_{b}" for b in bands])
        values = [v for v in per_band.values() if math.isfinite(v)]
        out[key] = float(np.mean(values)) if values else float("nan")
    band = REFERENCE_BAND if REFERENCE_BAND in bands else bands[len(bands) // 2]
    e_t = np.hypot(table_t[f"e1_{band}"], table_t[f"e2_{band}"])
    e_r = np.hypot(table_r[f"e1_{band}"], table_r[f"e2_{band}"])
    offset = np.hypot(
        table_t[f"x_{band}"] - table_r[f"x_{band}"], table_t[f"y_{band}"] - table_r[f"y_{band}"]
    )
    with np.errstate(invalid="ignore"):
        out["ellipticity_abs_error"] = float(np.nanmedian(np.abs(e_t - e_r)))
        out["centroid_offset"] = float(np.nanmedian(offset))
    return out


def compare_images(
    translated: ArrayLike,
    real: ArrayLike,
    bands: Sequence[str],
    pixel_scale: float,
    *,
    real_morphology: Table | None = None,
    n_power_bins: int = 16,
) -> tuple[dict[str, float], Table, np.ndarray]:
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

    Returns
    -------
    metrics : dict
        The pixel, morphology and noise keys of :data:`HEADLINE_METRICS`, plus per band
        ``psnr_<b>`` and ``ssim_<b>``.
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
    pixels = pixel_metrics(t, r)
    metrics: dict[str, float] = {
        "mse": float(np.mean(pixels["mse"])),
        "psnr": float(np.mean(pixels["psnr"])),
        "ssim": float(np.mean(pixels["ssim"])),
    }
    for b, name in enumerate(bands):
        metrics[f"psnr_{name}"] = float(pixels["psnr"][b])
        metrics[f"ssim_{name}"] = float(pixels["ssim"][b])
    table_t = morphology(t, pixel_scale, bands)
    table_r = real_morphology if real_morphology is not None else morphology(r, pixel_scale, bands)
    metrics.update(_morphology_errors(table_t, table_r, bands))
    ratios_t = peak_flux_ratios(t, bands)
    ratios_r = peak_flux_ratios(r, bands)
    ratio_errors = relative_errors(Table(ratios_t), Table(ratios_r), list(ratios_r))
    finite = [v for v in ratio_errors.values() if math.isfinite(v)]
    metrics["peak_ratio_rel_error"] = float(np.mean(finite)) if finite else float("nan")
    std_t = np.nanmedian(background_std(t), axis=0)
    std_r = np.nanmedian(background_std(r), axis=0)
    metrics["noise_std_rel_error"] = float(np.max(np.abs(std_t / std_r - 1.0)))
    _, power_t = noise_spectrum(t, n_power_bins)
    _, power_r = noise_spectrum(r, n_power_bins)
    metrics["noise_power_max_rel_error"] = float(np.nanmax(np.abs(power_t / power_r - 1.0)))
    return metrics, table_t, power_t


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
    overwrite: bool = False,
    progress: bool = False,
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
    overwrite : bool
        Replace ``evaluation.json``; without it an existing one is refused.

    Returns
    -------
    dict
        ``{"task", "n_galaxies", "bands", "models": {name: metrics}, "noise_power":
        {"k", name: {band: [...]}}}``, the row ``real`` being the real images.
    """
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
    real_table = morphology(real, pixel_scale, bands)
    metrics_real, _, power_real = compare_images(
        real, real, bands, pixel_scale, real_morphology=real_table
    )
    rows: dict[str, dict[str, Any]] = {}
    k, _ = noise_spectrum(real[:1])
    spectra: dict[str, Any] = {"k": k.tolist()}
    tables: dict[str, Table] = {"real": real_table}
    pdfs: dict[str, np.ndarray] = {"real": p_real}
    for name, path in sets.items():
        with GalaxySet.load(path) as translated:
            if not np.array_equal(np.asarray(translated.ids), ids):
                raise ValidationError(
                    f"{path}: translated galaxies differ from the {split!r} split of {data}; "
                    "apply the model to the same data again"
                )
            images = np.asarray(translated.stacks[target].images[:], dtype=np.float32)
            p, _ = probe_pdfs(probe_dir, translated)
        metrics, table, power = compare_images(
            images, real, bands, pixel_scale, real_morphology=real_table
        )
        metrics.update({f"photoz_{k}": v for k, v in probe_metrics(p, edges, z_true).items()})
        rows[name] = metrics
        spectra[name] = dict(zip(bands, power.tolist(), strict=True))
        tables[name], pdfs[name] = table, p
    metrics_real.update({f"photoz_{k}": v for k, v in probe_metrics(p_real, edges, z_true).items()})
    rows["real"] = metrics_real
    spectra["real"] = dict(zip(bands, power_real.tolist(), strict=True))
    for name, table in tables.items():
        table = table.copy()
        table.add_column(ids, name="id", index=0)
        table["z_true"] = z_true
        z_phot = (pdfs[name] * 0.5 * (edges[1:] + edges[:-1])).sum(axis=1)
        table["photoz"] = z_phot
        _write_table(paths.morphology_path(task_name, name), table)
    result = {
        "task": task_name,
        # Relative to the run when inside it, so that a moved run keeps its images.
        "data": paths.relative_data_path(data),
        "split": split,
        "n_galaxies": len(ids),
        "bands": bands,
        "models": {
            name: {key: _json_number(value) for key, value in row.items()}
            for name, row in rows.items()
        },
        "noise_power": spectra,
    }
    write_json(out, result, overwrite=True)
    return result


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
)


def format_evaluation(result: dict[str, Any]) -> str:
    """The evaluation of one task as a text table, one row per translated set.

    Examples
    --------
    >>> row = {key: 0.5 for key, _, _ in _TABLE_COLUMNS}
    >>> result = {"task": "s2c", "n_galaxies": 3, "models": {"nrgan_smooth": row}}
    >>> print(format_evaluation(result))
    s2c (3 test galaxies)
    model           PSNR   SSIM  size err  flux err  peak err  noise P err    σ_MAD  outliers  PIT W1
    nrgan_smooth    0.50  0.500     0.500     0.500     0.500        0.500   0.5000     0.500   0.500
    """
    first = max([len("model"), *(len(name) for name in result["models"])])
    widths = [max(len(title), len(fmt.format(0.0))) for _, title, fmt in _TABLE_COLUMNS]
    header = f"{'model':<{first}}" + "".join(
        f"  {title:>{w}}" for (_, title, _), w in zip(_TABLE_COLUMNS, widths, strict=True)
    )
    lines = [f"{result['task']} ({result['n_galaxies']} test galaxies)", header]
    for name, row in result["models"].items():
        cells = []
        for (key, _, fmt), width in zip(_TABLE_COLUMNS, widths, strict=True):
            value = row.get(key)
            text = "—" if value is None else fmt.format(value).strip()
            cells.append(f"  {text:>{width}}")
        lines.append(f"{name:<{first}}" + "".join(cells))
    return "\n".join(lines)
