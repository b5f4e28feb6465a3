"""The demo: photometric-redshift PDFs of the real SDSS catalog and their calibration.

Loads the 10,000 real SDSS main-sample galaxies that kcorrect ships, splits them, fits
the photometry k-nearest-neighbour baseline (k chosen on the validation split), predicts
PDFs for the held-out test split and evaluates them. Everything lands in a run directory
(``data/runs/demo`` by default); a second call with the same configuration and clapkit
version reuses it instead of recomputing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import clapkit
from clapkit.data import sdss_catalog
from clapkit.errors import OverwriteError
from clapkit.evaluation import evaluate_pdfs, format_table
from clapkit.metrics import PDFs
from clapkit.photoz import KNNPhotoZ, photometry_features, select_k
from clapkit.plots import plot_calibration
from clapkit.runs import RunDir

DEFAULT_RUN = Path("data") / "runs" / "demo"
METHOD = "knn_photometry"


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the demo run; a change invalidates the cached run."""

    n_bins: int = 180
    z_max: float = 0.4
    split_seed: int = 0
    fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "valid": 0.15, "test": 0.15}
    )
    bands: tuple[str, ...] = ("u", "g", "r", "i", "z")
    k_candidates: tuple[int, ...] = (5, 10, 20, 40, 80)
    outlier_threshold: float = 0.05

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (tuples become lists)."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}


def _is_current(run: RunDir, config: DemoConfig) -> bool:
    try:
        manifest = run.read_json("manifest.json")
    except OSError:
        return False
    return (
        manifest.get("complete") is True
        and manifest.get("clapkit_version") == clapkit.__version__
        and manifest.get("config") == config.to_json()
        and (run.root / "metrics.json").is_file()
    )


def _build(run: RunDir, config: DemoConfig, progress: bool, log: Callable[[str], None]) -> None:
    steps = tqdm(total=5, desc="demo", unit="step", disable=not progress)
    galaxies = sdss_catalog()
    n_all = len(galaxies)
    on_grid = np.asarray(galaxies.catalog["z"]) <= config.z_max
    galaxies = galaxies[on_grid].with_splits(config.fractions, seed=config.split_seed)
    counts = {name: int(np.sum(galaxies.catalog["split"] == name)) for name in config.fractions}
    nonpositive = galaxies.meta.get("n_nonpositive_modelflux", {})
    log(
        f"catalog: {n_all} real SDSS galaxies (kcorrect); {int((~on_grid).sum())} with z > {config.z_max} "
        f"left out of the redshift grid; non-positive model fluxes kept as asinh magnitudes: {nonpositive}"
    )
    log(
        "splits: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" (seed {config.split_seed})"
    )
    steps.update()

    edges = np.linspace(0.0, config.z_max, config.n_bins + 1)
    parts = {}
    for name in ("train", "valid", "test"):
        subset = galaxies.split(name).catalog
        features, feature_names = photometry_features(subset, config.bands)
        parts[name] = (subset, features, np.asarray(subset["z"], dtype=np.float64))
    best_k, scores = select_k(
        parts["train"][1],
        parts["train"][2],
        parts["valid"][1],
        parts["valid"][2],
        edges,
        config.k_candidates,
    )
    log(
        f"features: {', '.join(feature_names)}; k = {best_k} chosen by mean validation CRPS {scores}"
    )
    steps.update()

    test_catalog, test_features, test_z = parts["test"]
    model = KNNPhotoZ(edges, k=best_k).fit(parts["train"][1], parts["train"][2])
    pdfs = PDFs(
        model.predict(test_features, progress=progress),
        edges,
        z_true=test_z,
        ids=test_catalog["id"],
    )
    method_config = {
        **config.to_json(),
        "k": best_k,
        "features": feature_names,
        "validation_crps": scores,
    }
    run.save_pdfs(METHOD, pdfs, config=method_config)
    steps.update()

    r_mag = np.asarray(test_catalog["mag_r"], dtype=np.float64)
    result = evaluate_pdfs(
        pdfs,
        outlier_threshold=config.outlier_threshold,
        z_bins=np.array([0.0, 0.05, 0.1, 0.15, 0.2, config.z_max]),
        extra_bins={"mag_r": (r_mag, np.array([12.0, 15.5, 16.5, 17.0, 17.5, 18.5]))},
    )
    run.write_json("metrics.json", {"methods": {METHOD: result}})
    steps.update()

    figure = plot_calibration({METHOD: pdfs})
    figure.savefig(run.root / "calibration.png", dpi=120)
    run.write_json("manifest.json", {"kind": "demo", "config": config.to_json(), "complete": True})
    steps.update()
    steps.close()


def build_demo(
    run_root: str | os.PathLike = DEFAULT_RUN,
    config: DemoConfig | None = None,
    *,
    rebuild: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> dict[str, Any]:
    """Build (or reuse) the demo run and return its ``metrics.json`` content.

    The run is built in a temporary sibling folder and moved into place only when
    complete. An existing folder is replaced only if it is an outdated demo run (its
    manifest says so) or ``rebuild`` is true; any other folder raises
    :class:`~clapkit.errors.OverwriteError` and is left untouched.

    Parameters
    ----------
    run_root : path-like
        The run directory.
    config : DemoConfig, optional
    rebuild : bool
        Recompute even if a current run exists.
    progress : bool
        Show a progress bar.
    log : callable
        Receives one line of text per step.
    """
    config = config or DemoConfig()
    run = RunDir(run_root)
    if not rebuild and _is_current(run, config):
        log(
            f"reusing the demo run in {run.root} (same configuration and clapkit {clapkit.__version__})"
        )
        return run.read_json("metrics.json")
    if run.root.exists() and any(run.root.iterdir()):
        try:
            is_demo = run.read_json("manifest.json").get("kind") == "demo"
        except OSError:
            is_demo = False
        if not (is_demo or rebuild):
            raise OverwriteError(
                f"{run.root} exists and is not a demo run; choose another --run or pass --rebuild to replace it"
            )
    run.root.parent.mkdir(parents=True, exist_ok=True)
    staging = run.root.parent / f".{run.root.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _build(RunDir(staging), config, progress, log)
        if run.root.exists():
            retired = run.root.parent / f".{run.root.name}.old-{os.getpid()}"
            run.root.rename(retired)
            staging.rename(run.root)
            shutil.rmtree(retired)
        else:
            staging.rename(run.root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run.read_json("metrics.json")


def report(metrics: dict[str, Any], run_root: str | os.PathLike) -> str:
    """The text the demo prints: the summary table and the per-bin tables."""
    methods = metrics["methods"]
    lines = ["", "Photometric-redshift PDFs of the held-out SDSS test split", format_table(methods)]
    for name, result in methods.items():
        for key, rows in result.items():
            if not key.startswith("by_"):
                continue
            lines += [
                "",
                f"{name}, in bins of {key[3:]}:",
                format_table({_bin_label(r): {"summary": r} for r in rows}, label=key[3:]),
            ]
    lines += ["", f"run directory: {run_root} (PDFs, metrics.json, calibration.png)"]
    return "\n".join(lines)


def _bin_label(row: dict[str, Any]) -> str:
    return f"[{row['lo']:.3g}, {row['hi']:.3g}]"
