"""CLAP against the conventional methods, side by side on the same data, splits and bins.

Two datasets, each trained and predicted through a run directory exactly as
``clapkit train --method all`` / ``clapkit predict`` do:

- ``mock_images``: a mock survey (``clapkit simulate``, SDSS-like ugriz 64x64 images +
  E(B-V)); compact encoder on the central 32x32 pixels.
- ``sdss_photometry``: the real SDSS catalog shipped with kcorrect (z <= 0.4), MLP
  encoder on ``mag_*`` and ``magerr_*``.

For every method: σ_MAD, bias, outlier fraction (|δz| > 0.05), mean CRPS, PIT KS and W1,
coverage error at 68% and 95% (|observed - nominal|), the worst coverage error over
equal-count bins of true redshift and of r magnitude (bins of at least 200 galaxies),
training time and inference galaxies per second. ``goals`` checks the issue's targets.

Usage: ``python benchmarks/calibration.py [--quick] [--out FILE] [--n-mock N]
[--datasets mock_images,sdss_photometry] [--workdir DIR] [--preset compact|paper]``.
``--quick`` uses 3,000 mock galaxies (within 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import emit

import clapkit
from clapkit.data import sdss_catalog
from clapkit.evaluation import evaluate_pdfs
from clapkit.photoz.pipeline import predict_run, train_run
from clapkit.runs import RunDir
from clapkit.sim import simulate_to_file

MIN_BIN = 200
NOMINAL = {"68": 0.68, "95": 0.95}
QUICK: dict = {}  # the quick mode differs only in the number of mock galaxies


def coverage_errors(summary: dict) -> dict[str, float]:
    """|observed - nominal| coverage at 68% and 95%."""
    return {lvl: abs(summary[f"coverage_{lvl}"] - nom) for lvl, nom in NOMINAL.items()}


def worst_bin_error(tables: list[list[dict]]) -> float:
    """Largest coverage error over all bins holding at least MIN_BIN galaxies."""
    worst = 0.0
    for rows in tables:
        for row in rows:
            if row["n"] >= MIN_BIN:
                worst = max(worst, *coverage_errors(row).values())
    return worst


def score_run(run: RunDir, r_mag: dict, timings: dict, train_record: dict) -> dict:
    """The benchmark's metrics for every method of a predicted run."""
    out = {}
    for method in run.methods():
        pdfs, attrs = run.load_pdfs(method)
        n_bins = max(1, min(5, pdfs.n // MIN_BIN))
        mags = np.array([r_mag[i] for i in pdfs.ids.tolist()])
        result = evaluate_pdfs(pdfs, z_bins=n_bins, extra_bins={"r_mag": (mags, n_bins)})
        s = result["summary"]
        errors = coverage_errors(s)
        trained = attrs["config"]["method"]
        out[method] = {
            "sigma_mad": s["sigma_mad"],
            "bias": s["bias"],
            "outlier_fraction": s["outlier_fraction"],
            "crps": s["crps"],
            "pit_ks": s["pit_ks"],
            "pit_w1": s["pit_w1"],
            "coverage_error_68": errors["68"],
            "coverage_error_95": errors["95"],
            "worst_bin_coverage_error": worst_bin_error([result["by_z_true"], result["by_r_mag"]]),
            "train_seconds": train_record["methods"][trained]["train_seconds"],
            "predict_per_second": timings[trained]["galaxies_per_second"],
            "n_test": pdfs.n,
        }
    return out


def goals(table: dict) -> dict:
    """The issue's targets for one dataset."""
    clap = table["clap"]
    others = {m: v for m, v in table.items() if not m.startswith("clap")}
    best_sigma = min(v["sigma_mad"] for v in table.values())

    def smallest(key):
        return all(clap[key] <= v[key] for v in others.values())

    return {
        "clap_smallest_pit_w1": smallest("pit_w1"),
        "clap_smallest_coverage_errors": smallest("coverage_error_68")
        and smallest("coverage_error_95"),
        "clap_coverage_error_within_0.02": max(clap["coverage_error_68"], clap["coverage_error_95"])
        <= 0.02,
        "clap_worst_bin_within_0.05": clap["worst_bin_coverage_error"] <= 0.05,
        "clap_sigma_mad_within_5pct_of_best": clap["sigma_mad"] <= 1.05 * best_sigma,
        "softmax_pit_not_flat_ks": table.get("softmax", {}).get("pit_ks"),
    }


def run_dataset(data: Path, run_dir: Path, config: dict, r_mag: dict, **train_kwargs) -> dict:
    run = RunDir(run_dir)
    record = train_run(data, run, "all", config=config, progress=True, **train_kwargs)
    timings = predict_run(run, data, progress=True)
    return score_run(run, r_mag, timings, record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 mock galaxies")
    parser.add_argument("--out", default=None)
    parser.add_argument("--n-mock", type=int, default=None, help="default 20,000 (quick 3,000)")
    parser.add_argument("--datasets", default="mock_images,sdss_photometry")
    parser.add_argument("--workdir", default=None, help="keep data and runs here")
    parser.add_argument("--preset", default="compact", choices=["compact", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_mock = args.n_mock or (3000 if args.quick else 20_000)
    config = {"preset": args.preset, "seed": args.seed, **(QUICK if args.quick else {})}
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="clapkit-calibration-"))
    workdir.mkdir(parents=True, exist_ok=True)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    report: dict = {}
    seconds: dict = {}
    for dataset in datasets:
        start = time.perf_counter()
        if dataset == "mock_images":
            data = workdir / f"mock_{n_mock}_{args.seed}.h5"
            if not data.exists():
                simulate_to_file(data, n_mock, args.seed, ("sdss",), workers=2, progress=True)
            from clapkit.data import GalaxySet

            with GalaxySet.load(data) as galaxies:
                catalog = galaxies.catalog
                r_mag = dict(zip(np.asarray(catalog["id"]).tolist(), catalog["mag_r"], strict=True))
            report[dataset] = run_dataset(data, workdir / "run_mock", config, r_mag, z_max=None)
        elif dataset == "sdss_photometry":
            data = workdir / "sdss.h5"
            galaxies = sdss_catalog()
            galaxies = galaxies[np.asarray(galaxies.catalog["z"]) <= 0.4].with_splits(
                seed=args.seed
            )
            if not data.exists():
                galaxies.save(data)
            catalog = galaxies.catalog
            r_mag = dict(zip(np.asarray(catalog["id"]).tolist(), catalog["mag_r"], strict=True))
            report[dataset] = run_dataset(data, workdir / "run_sdss", config, r_mag, z_max=0.4)
        else:
            raise SystemExit(f"unknown dataset {dataset!r}")
        seconds[dataset] = time.perf_counter() - start
    # The table alone is the JSON the issue specifies ({dataset: {method: {metric}}});
    # the goals and settings go to stderr so they can be read next to it.
    emit(report, args.out)
    print(
        json.dumps(
            {
                "goals": {name: goals(table) for name, table in report.items()},
                "settings": {
                    "quick": args.quick,
                    "n_mock": n_mock,
                    "preset": args.preset,
                    "config": config,
                    "seconds": seconds,
                    "workdir": str(workdir),
                    "torch_threads": torch.get_num_threads(),
                    "machine": platform.machine(),
                    "python": platform.python_version(),
                    "clapkit": clapkit.__version__,
                },
            },
            indent=2,
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
