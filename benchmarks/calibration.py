"""CLAP against the field's photo-z estimators, and CLAP's ablation, on the same data and bins.

Two datasets, each trained and predicted through a run directory exactly as
``clapkit train --method all,flexzboost`` / ``clapkit predict`` do:

- ``mock_images``: a mock survey (``clapkit simulate``, SDSS-like ugriz 64x64 images +
  E(B-V)); the preset's encoder (cpu: the compact CNN on the central 32x32 pixels).
- ``sdss_photometry``: a held-out split of the real SDSS catalog shipped with kcorrect
  (z <= 0.6, 180 bins), MLP encoder on the default catalog features (adjacent colours,
  the r magnitude and the magnitude errors).

``methods``: every method (CLAP's five stages, the network baselines, the photometry KNN,
RAIL's FlexZBoost) with the published CLAP configuration. ``ablation``: CLAP's stages
(SCL softmax, raw KNN, recalibrated, refitted, ensemble) for each option of
:class:`~clapkit.photoz.clap_config.CLAPConfig` changed from its published value, one at
a time, for this project's earlier variant as a whole (``project_variant``) and, on
images, for the compact CNN without batch norm. Variants that keep the published SCL
loss reuse the trained SCL networks, so only what differs is retrained;
``scl_loss=project`` and ``project_variant`` share networks trained with the project's
loss. ``goals``: the issue's targets, the ratios of CLAP to the best other method with
95% paired-bootstrap intervals. ``reference``: the exact posterior of a simulated
observation at CLAP's σ_MAD on the same test redshifts, the noise floor of the per-bin
coverage errors (see :func:`exact_posterior_reference`).

Metrics per row: σ_MAD, bias, outlier fraction (|δz| > 0.05), mean CRPS, PIT KS and W1,
coverage error at 68% and 95% (|observed − nominal|), the worst coverage error over
equal-count bins of true redshift, r magnitude and g − r colour (each bin of at least 200
galaxies; also per variable), training time and inference galaxies per second. ``goals``
checks the issue's targets on the final ``clap``.

Usage: ``python benchmarks/calibration.py [--quick] [--out FILE] [--n-mock N]
[--datasets mock_images,sdss_photometry] [--workdir DIR] [--preset tiny|cpu|paper]
[--device cpu|cuda|auto] [--no-ablation]``. ``--quick`` uses 3,000 mock galaxies.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import emit

import clapkit
from clapkit.data import GalaxySet, sdss_catalog
from clapkit.evaluation import bin_variables, evaluate_pdfs, table_rows
from clapkit.metrics import calibration_table, crps, point_estimate
from clapkit.metrics.point import sigma_mad
from clapkit.photoz.clap_config import PROJECT_VARIANT
from clapkit.photoz.details import read_clap_details
from clapkit.photoz.pipeline import PhotoZTrainSettings, merge, predict_run, train_run
from clapkit.presets import add_preset_argument
from clapkit.runs import RunDir
from clapkit.sim import simulate_to_file

MIN_BIN = 200
NOMINAL = {"68": 0.68, "95": 0.95}
BIN_VARIABLES = ("z_true", "mag_r", "g_r")
#: One option at a time, from the published default (see CLAPConfig), as configuration
#: overrides; the variants that change only what follows the SCL network reuse its
#: trained networks. ``batch_norm=false`` (images only) is the compact CNN without batch
#: norm, which the preset adds.
ABLATION = {
    "k_spacing=log": {"clap": {"k_spacing": "log"}},
    "pit_includes_self=false": {"clap": {"pit_includes_self": False}},
    "recalibration=train": {"clap": {"recalibration": "train"}},
    "recalibration=none": {"clap": {"recalibration": "none"}},
    "recalibration_cdf=centre": {"clap": {"recalibration_cdf": "centre"}},
    "refit_labels=raw": {"clap": {"refit_labels": "raw"}},
    "refit_on=valid": {"clap": {"refit_on": "valid"}},
    "refit_on=train_loo": {"clap": {"refit_on": "train_loo"}},
    "smoothing=fixed": {"clap": {"smoothing": "fixed"}},
    "scl_loss=project": {"clap": {"scl_loss": "project"}},
    "project_variant": {"clap": dict(PROJECT_VARIANT)},
    "batch_norm=false": {"net": {"batch_norm": False}},
}
CLAP_STAGES = ("clap_scl", "clap_raw", "clap_recal", "clap_refit", "clap")


def coverage_errors(summary: dict) -> dict[str, float]:
    """|observed - nominal| coverage at 68% and 95%."""
    return {lvl: abs(summary[f"coverage_{lvl}"] - nom) for lvl, nom in NOMINAL.items()}


def worst_bin_excess(rows: list[dict]) -> float | None:
    """Largest coverage error beyond two binomial standard deviations of its bin
    (≤ 0: every bin agrees with a calibrated method within its sampling noise)."""
    excess = [
        abs(row[f"coverage_{lvl}"] - nom) - 2 * np.sqrt(nom * (1 - nom) / row["n"])
        for row in rows
        if row["n"] >= MIN_BIN
        for lvl, nom in NOMINAL.items()
    ]
    return max(excess) if excess else None


def worst_bin_error(rows: list[dict]) -> float | None:
    """Largest coverage error over the bins holding at least MIN_BIN galaxies."""
    errors = [max(coverage_errors(row).values()) for row in rows if row["n"] >= MIN_BIN]
    return max(errors) if errors else None


def score_pdfs(pdfs, variables: dict[str, dict], keep: dict | None = None) -> dict:
    """The benchmark's metrics of one set of PDFs (``keep`` receives the per-galaxy CRPS,
    point estimate and true redshift, for paired intervals)."""
    if keep is not None:
        keep["crps"] = crps(pdfs.p, pdfs.edges, pdfs.z_true)
        keep["z_phot"] = point_estimate(pdfs.p, pdfs.edges)
        keep["z_true"] = pdfs.z_true
    n_bins = max(1, min(5, pdfs.n // MIN_BIN))
    ids = pdfs.ids.tolist()
    extra = {
        name: (np.array([values[i] for i in ids]), n_bins) for name, values in variables.items()
    }
    result = evaluate_pdfs(pdfs, z_bins=n_bins, extra_bins=extra)
    s = result["summary"]
    errors = coverage_errors(s)
    per_variable = {name: worst_bin_error(result[f"by_{name}"]) for name in BIN_VARIABLES}
    excess = {name: worst_bin_excess(result[f"by_{name}"]) for name in BIN_VARIABLES}
    found = [v for v in per_variable.values() if v is not None]
    found_excess = [v for v in excess.values() if v is not None]
    return {
        "sigma_mad": s["sigma_mad"],
        "bias": s["bias"],
        "outlier_fraction": s["outlier_fraction"],
        "crps": s["crps"],
        "pit_ks": s["pit_ks"],
        "pit_w1": s["pit_w1"],
        "coverage_error_68": errors["68"],
        "coverage_error_95": errors["95"],
        "worst_bin_coverage_error": max(found) if found else None,
        "worst_bin_coverage_error_by": per_variable,
        "worst_bin_excess_over_noise": max(found_excess) if found_excess else None,
        "n_test": pdfs.n,
    }


def score_run(
    run: RunDir, variables: dict, timings: dict, record: dict, names=None, keep=None
) -> dict:
    """Metrics of every method (or ``names``) of a predicted run, with its timings;
    ``keep`` receives each method's per-galaxy CRPS, point estimate and true redshift."""
    out = {}
    for method in names or run.methods():
        pdfs, attrs = run.load_pdfs(method)
        trained = attrs["config"]["method"]
        kept = {} if keep is not None else None
        out[method] = {
            **score_pdfs(pdfs, variables, kept),
            "train_seconds": record["methods"][trained]["train_seconds"],
            "predict_per_second": timings[trained]["galaxies_per_second"],
        }
        if keep is not None:
            keep[method] = kept
    return out


def paired_ratio(
    a: dict, b: dict, rng: np.random.Generator, n_boot: int = 1000
) -> dict[str, list[float]]:
    """Mean CRPS and σ_MAD of ``a`` over ``b`` on the same galaxies, with 95% intervals
    from a paired bootstrap (the galaxies resampled together)."""
    n = a["crps"].size
    rows = rng.integers(0, n, (n_boot, n))

    def ratios(stat):
        point = stat(a, np.arange(n)) / stat(b, np.arange(n))
        boot = np.array([stat(a, r) / stat(b, r) for r in rows])
        return [float(point), *np.percentile(boot, [2.5, 97.5]).tolist()]

    def mean_crps(d, r):
        return d["crps"][r].mean()

    def sigma(d, r):
        return sigma_mad(d["z_phot"][r], d["z_true"][r])

    return {"crps": ratios(mean_crps), "sigma_mad": ratios(sigma)}


def goals(table: dict, kept: dict, seed: int = 0) -> dict:
    """The issue's targets for one dataset, on the final ``clap``; the ratios to the best
    other method come with 95% paired-bootstrap intervals."""
    clap = table["clap"]
    others = {m: v for m, v in table.items() if not m.startswith("clap")}
    best_crps = min(others, key=lambda m: others[m]["crps"])
    best_sigma = min(others, key=lambda m: others[m]["sigma_mad"])
    rng = np.random.default_rng(seed)
    crps_ratio = paired_ratio(kept["clap"], kept[best_crps], rng)["crps"]
    sigma_ratio = paired_ratio(kept["clap"], kept[best_sigma], rng)["sigma_mad"]
    worst = clap["worst_bin_coverage_error"]
    return {
        "clap_lowest_crps": clap["crps"] <= others[best_crps]["crps"],
        "best_other_crps": best_crps,
        "clap_crps_over_best_other": crps_ratio,
        "clap_sigma_mad_within_2pct_of_best": clap["sigma_mad"]
        <= 1.02 * others[best_sigma]["sigma_mad"],
        "best_other_sigma_mad": best_sigma,
        "clap_sigma_mad_over_best_other": sigma_ratio,
        "clap_coverage_errors_within_0.02": max(
            clap["coverage_error_68"], clap["coverage_error_95"]
        )
        <= 0.02,
        "clap_worst_bin_within_0.05": worst is not None and worst <= 0.05,
        "clap_worst_bin_excess_over_noise": clap["worst_bin_excess_over_noise"],
        "clap_smallest_pit_w1": all(clap["pit_w1"] <= v["pit_w1"] for v in others.values()),
        "clap_train_seconds": clap["train_seconds"],
    }


def run_methods(data: Path, run_dir: Path, config: dict, variables: dict, **train_kwargs):
    """Every method with the published CLAP: the run, its table and the per-galaxy CRPS,
    point estimate and true redshift of every method."""
    run = RunDir(run_dir)
    device = train_kwargs.pop("device", None)  # the rest are settings: z_max, n_bins
    settings = PhotoZTrainSettings("all,flexzboost", config=config, **train_kwargs)
    record = train_run(data, run, settings, progress=True, device=device)
    timings = predict_run(run, data, progress=True, overwrite=True)
    kept: dict = {}
    return run, score_run(run, variables, timings, record, keep=kept), kept


def exact_posterior_reference(
    train_z: np.ndarray, test_z: np.ndarray, edges: np.ndarray, sigma: float, seed: int
) -> dict:
    """What a perfectly calibrated estimator scores on the benchmark's own bins.

    The test redshifts are observed as x = z + N(0, σ(1 + z)) and given their exact
    posterior, prior (the training redshifts' histogram) × likelihood, on the grid. Its
    coverage is right given x (an observable), but not given the true z: a galaxy whose
    true z sits in the prior's tail has its posterior pulled towards the bulk, so
    equal-count bins of *true* redshift show coverage errors that no estimator can avoid.
    Returned over 20 draws: the median and 90th percentile of the worst bin error.
    """
    rng = np.random.default_rng(seed)
    centres = 0.5 * (edges[1:] + edges[:-1])
    prior = np.histogram(train_z, bins=edges)[0].astype(np.float64) + 1e-12
    n_bins = max(1, min(5, test_z.size // MIN_BIN))
    worst: dict[str, list[float]] = {"z_true": [], "observed": [], "excess_z_true": []}
    for _ in range(20):
        x = test_z + rng.normal(0.0, 1.0, test_z.size) * sigma * (1 + test_z)
        width = sigma * (1 + centres)
        like = np.exp(-0.5 * ((x[:, None] - centres[None]) / width[None]) ** 2) / width[None]
        p = prior[None] * like
        p /= p.sum(axis=1, keepdims=True)
        for name, by in (("z_true", test_z), ("observed", x)):
            rows = table_rows(calibration_table(p, edges, test_z, by, n_bins))
            worst[name].append(worst_bin_error(rows))
            if name == "z_true":
                worst["excess_z_true"].append(worst_bin_excess(rows))
    return {
        "sigma": sigma,
        "n_test": int(test_z.size),
        **{
            f"worst_bin_coverage_error_{name}": np.percentile(values, [50, 90]).tolist()
            for name, values in worst.items()
        },
    }


def run_variant(
    data: Path,
    run_dir: Path,
    config: dict,
    override: dict,
    variables: dict,
    networks_from: RunDir | None,
    **train_kwargs,
) -> dict:
    """CLAP with the configuration ``override``, reusing the SCL networks of
    ``networks_from`` (None: trained anew)."""
    run = RunDir(run_dir)
    if networks_from is not None:
        for net in sorted((networks_from.root / "models" / "clap").glob("r*/net.pt")):
            target = run.root / "models" / "clap" / net.parent.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(net, target / "net.pt")
    variant = merge(config, override)
    device = train_kwargs.pop("device", None)
    settings = PhotoZTrainSettings("clap", config=variant, **train_kwargs)
    record = train_run(data, run, settings, progress=True, device=device)
    timings = predict_run(run, data, progress=True, overwrite=True)
    scores = score_run(run, variables, timings, record, CLAP_STAGES)
    if networks_from is not None:  # the SCL time was spent once, by the run that trained them
        scores["clap"]["train_seconds_without_scl"] = scores["clap"].pop("train_seconds")
    return scores


def ablation(
    data, base: RunDir, workdir: Path, config: dict, variables: dict, images: bool, **kwargs
) -> dict:
    """CLAP's stages for the published configuration and each variant of :data:`ABLATION`
    (``batch_norm=false`` only for images)."""
    out = {"published": base_scores(base, variables)}
    project_nets = None  # trained by the first variant with the project's SCL loss
    for name, override in ABLATION.items():
        if "net" in override and not images:
            continue
        folder = workdir / f"ablation_{name.replace('=', '_')}"
        project_loss = override.get("clap", {}).get("scl_loss") == "project"
        # A new network architecture is trained anew; the project's loss trains once.
        reusable = project_nets if project_loss else base
        source = None if "net" in override else reusable
        out[name] = run_variant(data, folder, config, override, variables, source, **kwargs)
        if project_loss and project_nets is None:
            project_nets = RunDir(folder)
    return out


def base_scores(base: RunDir, variables: dict) -> dict:
    record = base.read_json("train.json")
    timings = base.read_json("predict.json")["timings"]
    return score_run(base, variables, timings, record, CLAP_STAGES)


def reference(base: RunDir, table: dict, seed: int) -> dict:
    """The exact-posterior reference at the σ_MAD of CLAP's final PDFs on this dataset."""
    clap, _ = base.load_pdfs("clap")
    train_z = read_clap_details(base.root / "clap" / "knn.h5").train_z
    return exact_posterior_reference(
        train_z, clap.z_true, clap.edges, table["clap"]["sigma_mad"], seed
    )


def catalog_variables(catalog) -> dict[str, dict]:
    """r magnitude and g − r colour per galaxy id (the bins of local calibration)."""
    ids = np.asarray(catalog["id"])
    values = bin_variables(catalog, ids)
    return {name: dict(zip(ids.tolist(), values[name].tolist(), strict=True)) for name in values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 mock galaxies")
    parser.add_argument("--out", default=None)
    parser.add_argument("--n-mock", type=int, default=None, help="default 20,000 (quick 3,000)")
    parser.add_argument("--datasets", default="mock_images,sdss_photometry")
    parser.add_argument("--workdir", default=None, help="keep data and runs here")
    add_preset_argument(parser, "photo-z")
    parser.add_argument("--device", default="cpu", help="where the networks train")
    parser.add_argument("--no-ablation", action="store_true", help="the methods table only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_mock = args.n_mock or (3000 if args.quick else 20_000)
    config = {"preset": args.preset, "seed": args.seed}
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="clapkit-calibration-"))
    workdir.mkdir(parents=True, exist_ok=True)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    report: dict = {"methods": {}, "ablation": {}, "goals": {}, "reference": {}}
    seconds: dict = {}
    for dataset in datasets:
        start = time.perf_counter()
        if dataset == "mock_images":
            data = workdir / f"mock_{n_mock}_{args.seed}.h5"
            if not data.exists():
                simulate_to_file(data, n_mock, args.seed, ("sdss",), workers=2, progress=True)
            with GalaxySet.load(data) as galaxies:
                variables = catalog_variables(galaxies.catalog)
            kwargs = {"z_max": None, "device": args.device}
        elif dataset == "sdss_photometry":
            data = workdir / "sdss.h5"
            galaxies = sdss_catalog()
            galaxies = galaxies[np.asarray(galaxies.catalog["z"]) <= 0.6].with_splits(
                seed=args.seed
            )
            if not data.exists():
                galaxies.save(data)
            variables = catalog_variables(galaxies.catalog)
            kwargs = {"z_max": 0.6, "n_bins": 180, "device": args.device}
        else:
            raise SystemExit(f"unknown dataset {dataset!r}")
        base, table, kept = run_methods(
            data, workdir / f"run_{dataset}", config, variables, **kwargs
        )
        report["methods"][dataset] = table
        report["goals"][dataset] = goals(table, kept, args.seed)
        report["reference"][dataset] = reference(base, table, args.seed)
        if not args.no_ablation:
            report["ablation"][dataset] = ablation(
                data,
                base,
                workdir / dataset,
                config,
                variables,
                images=dataset == "mock_images",
                **kwargs,
            )
        seconds[dataset] = time.perf_counter() - start
    report["settings"] = {
        "quick": args.quick,
        "n_mock": n_mock,
        "preset": args.preset,
        "device": args.device,
        "config": config,
        "seconds": seconds,
        "workdir": str(workdir),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "clapkit": clapkit.__version__,
    }
    emit(report, args.out)
    print(json.dumps(report["goals"], indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
