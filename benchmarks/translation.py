"""Five translation models side by side: what survives SDSS→SDSS and SDSS→CFHTLS.

On one mock survey (``clapkit simulate --instruments sdss,cfhtls,sdss_repeat``: the same
galaxies drawn by GalSim on the SDSS and the CFHTLS grid, depth and PSF, and a second SDSS
exposure with new noise, the target of s2s), for both tasks and every model
(NR-GAN, SwinIR-like, SRGAN, capsule network, conditional diffusion), exactly as the
command line does it (``clapkit translate train``, ``apply``, ``evaluate``):

1. train on the ``train`` split (NR-GAN semi-supervised with half of the galaxies paired;
   the other families supervised on pairs);
2. translate the ``test`` split; NR-GAN a second time without its emulated noise
   (``nrgan_smooth``: the generator's output alone);
3. evaluate against the real target images, with the real images themselves as the
   reference row ``real`` (the photo-z probe is trained on real target images).

NR-GAN is trained as published (``nrgan``) and as clapkit's earlier design
(``nrgan_clapkit``, the same code with other settings: generators on autoencoder output,
spectral noise loss, noise in flux); ``--ablations`` adds the publication's ablations
(``nrgan_pix2pix``, ``nrgan_cyclegan``, ``nrgan_cyclegan_id``), left out by default to
keep the quick run short.

Output: JSON shaped ``{task: {model: {metric: value}}}`` (tasks ``s2s`` and ``s2c``;
rows ``nrgan``, ``nrgan_smooth``, ``nrgan_clapkit``, ``swin``, ``srgan``, ``capsule``,
``diffusion``, ``real``, and the ablations when asked for; metrics of :data:`clapkit.translate.evaluate.HEADLINE_METRICS`, each with its
95% bootstrap interval over galaxies ``<metric>_ci``, plus ``train_seconds`` and
``translate_seconds``; stochastic sets, diffusion and ``nrgan``, draw 8 samples per
galaxy and add the spread between them, ``sample_*``, and every row the KS tests of its
morphology distributions against the real ones, ``ks_*``: see
:mod:`clapkit.translate.sampling`). The goal checks go to stderr; whether a model's probe σ_MAD and
outlier fraction (and the peak-flux estimator's, ``peakz_*``) differ from the real
images' is decided by :func:`clapkit.translate.results.rows_differ` (paired bootstrap
interval of the difference excludes 0); the issue's stricter test, whether each set's
σ_MAD interval overlaps the real images' (:func:`clapkit.translate.results.overlaps_real`),
is reported for both, with the intervals and the real-image probe's outlier fraction
(the finding counts at a size where it is below 5%).

Usage: ``python benchmarks/translation.py [--quick] [--out FILE] [--workdir DIR]
[--n N] [--preset tiny|cpu|paper] [--tasks s2s,s2c] [--models ...] [--ablations]
[--samples S]``. ``--quick`` (``cpu``
presets, 800 galaxies, few epochs) finishes within 30 minutes on 2 cores; without it the
``paper`` presets train for longer on 4,000 galaxies (meant for a GPU machine). A work
directory is reused: finished models are not trained again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from _report import emit

from clapkit.data import GalaxySet
from clapkit.presets import add_preset_argument
from clapkit.sim import simulate_to_file
from clapkit.translate.apply import ApplySettings, apply_translator
from clapkit.translate.evaluate import HEADLINE_METRICS, evaluate_task, format_evaluation
from clapkit.translate.models import MODEL_NAMES, family_of
from clapkit.translate.probe import ProbeConfig
from clapkit.translate.results import overlaps_real, rows_differ, task_dir
from clapkit.translate.tasks import TASKS as TASK_SPECS
from clapkit.translate.training import (
    default_options,
    load_translator,
    read_spec,
    train_translator,
)

TASKS = ("s2s", "s2c")
#: The image stacks both tasks need: s2s maps SDSS onto a second SDSS exposure.
STACKS = ("sdss", "cfhtls", "sdss_repeat")
#: Epochs per model and task in the quick mode, sized to the 30-minute budget on 2 cores.
QUICK_EPOCHS = {
    "s2s": {"nrgan": 16, "swin": 10, "srgan": 10, "capsule": 10, "diffusion": 14},
    "s2c": {"nrgan": 12, "swin": 8, "srgan": 8, "capsule": 8, "diffusion": 10},
}
FULL_EPOCHS = {"nrgan": 60, "swin": 40, "srgan": 40, "capsule": 40, "diffusion": 80}
#: The rows trained by default: every family, and NR-GAN also as clapkit's earlier design.
DEFAULT_MODELS = (*MODEL_NAMES[:1], "nrgan_clapkit", *MODEL_NAMES[1:])
#: The publication's NR-GAN ablations, trained only with --ablations.
ABLATIONS = ("nrgan_pix2pix", "nrgan_cyclegan", "nrgan_cyclegan_id")
#: Seed of the mock survey (notebook 04 runs the quick mode with the same settings).
SURVEY_SEED = 7
MODES = {
    "quick": {"n": 800, "preset": "cpu", "probe": ProbeConfig(epochs=12, crop=48)},
    "full": {"n": 4000, "preset": "paper", "probe": ProbeConfig(epochs=30, crop=64)},
}


def log(message: str) -> None:
    print(f"[translation] {message}", file=sys.stderr, flush=True)


def _stack_names(path: Path) -> list[str]:
    with GalaxySet.load(path) as galaxies:
        return galaxies.instruments


def _trained_for(model_dir: Path, task_name: str) -> bool:
    """Whether ``model_dir`` holds a model trained on this task's current target stack."""
    if not (model_dir / "model.pt").is_file() or not (model_dir / "timings.json").is_file():
        return False
    return read_spec(model_dir).target["instrument"] == TASK_SPECS[task_name].target


def train_and_apply(
    data: Path,
    run: Path,
    task: str,
    model: str,
    epochs: int,
    preset: str,
    samples: int | None = None,
) -> dict:
    """Train (unless already trained) and translate the test split; returns the timings.

    ``samples`` translations per galaxy for the stochastic sets (None: the default, 8);
    the deterministic ones (``nrgan_smooth``, swin, ...) draw one.
    """
    model_dir = task_dir(run, task) / model
    timings = {}
    start = time.perf_counter()
    if not _trained_for(model_dir, task):
        train_translator(
            data,
            model_dir,
            model,
            task,
            preset=preset,
            options=default_options(model, epochs=epochs),
            progress=True,
        )
        timings["train_seconds"] = time.perf_counter() - start
    else:
        timings["train_seconds"] = json.loads((model_dir / "timings.json").read_text())[
            "train_seconds"
        ]
    variants = {model: None}
    if model == "nrgan":  # the published model's generator output, without its noise
        variants["nrgan_smooth"] = {"add_noise": False}
    for name, overrides in variants.items():
        stochastic = load_translator(model_dir, model, overrides)[0].stochastic
        start = time.perf_counter()
        apply_translator(
            model_dir,
            data,
            task_dir(run, task) / name / "translated.h5",
            ApplySettings(
                model=model, overrides=overrides, n_samples=samples if stochastic else None
            ),
            overwrite=True,
        )
        timings.setdefault("translate_seconds", time.perf_counter() - start)
    (model_dir / "timings.json").write_text(json.dumps(timings))
    return timings


def goals(report: dict, results: dict) -> dict:
    """The issue's goals, checked on the report (and the evaluations, for intervals)."""
    out = {}
    for task, rows in report.items():
        real = rows["real"]
        translated = [name for name in rows if name != "real"]
        out[task] = {
            **{
                f"{name}_noise_power_within_10pct": rows[name]["noise_power_max_rel_error"] <= 0.10
                for name in ("nrgan", "nrgan_smooth", "nrgan_clapkit")
                if name in rows
            },
            **{
                f"{key}_ratio_to_real": {
                    name: None
                    if row.get(key) is None or not real.get(key)
                    else row[key] / real[key]
                    for name, row in rows.items()
                    if name != "real"
                }
                for key in ("photoz_sigma_mad", "peakz_sigma_mad")
            },
            # Redshift information lost (or gained): outside the bootstrap noise.
            **{
                f"{key}_differs_from_real": {
                    name: rows_differ(results[task], name, "real", key) for name in translated
                }
                for key in (
                    "photoz_sigma_mad",
                    "photoz_outlier_fraction",
                    "peakz_sigma_mad",
                    "peakz_outlier_fraction",
                )
            },
            # The finding reproduced (False: the intervals are disjoint) or refuted
            # (True), for the CNN probe and the peak-flux estimator.
            **{
                f"{key}_ci_overlaps_real": overlaps_real(results[task], key)
                for key in ("photoz_sigma_mad", "peakz_sigma_mad")
            },
            **{
                f"{key}_ci": {name: row.get(f"{key}_ci") for name, row in rows.items()}
                for key in ("photoz_sigma_mad", "peakz_sigma_mad")
            },
            # The size condition: the real-image probe has < 5% outliers.
            "real_probe_outlier_fraction": real.get("photoz_outlier_fraction"),
            "real_probe_outliers_below_5pct": (
                None
                if real.get("photoz_outlier_fraction") is None
                else real["photoz_outlier_fraction"] < 0.05
            ),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cpu presets, 800 galaxies")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--workdir", default="data/runs/bench_translation")
    parser.add_argument("--n", type=int, help="galaxies to simulate")
    add_preset_argument(
        parser, "translation", default=None, default_help="cpu with --quick, else paper"
    )
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument(
        "--samples",
        type=int,
        help="translations per galaxy of the stochastic models (default 8)",
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also train the NR-GAN ablations: " + ", ".join(ABLATIONS),
    )
    parser.add_argument(
        "--epochs-scale", type=float, default=1.0, help="multiply every epoch count"
    )
    args = parser.parse_args(argv)
    mode = MODES["quick" if args.quick else "full"]
    n = args.n or mode["n"]
    preset = args.preset or mode["preset"]
    workdir = Path(args.workdir) / f"{'quick' if args.quick else 'full'}_n{n}"
    workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = workdir / "mock_survey.h5"
    started = time.perf_counter()
    if not data.is_file() or set(STACKS) - set(_stack_names(data)):
        # Same seed, so stacks already there come back bit-identical (models stay valid).
        log(f"simulating {n} galaxies: {', '.join(STACKS)}")
        simulate_to_file(
            data, n, seed=SURVEY_SEED, instruments=STACKS, workers=2, progress=True, overwrite=True
        )
    report: dict = {}
    results: dict = {}
    for task in args.tasks.split(","):
        timings = {}
        models = args.models.split(",") + (list(ABLATIONS) if args.ablations else [])
        for model in models:
            family = family_of(model)  # a variant trains as long as its family
            epochs = QUICK_EPOCHS[task][family] if args.quick else FULL_EPOCHS[family]
            epochs = max(1, round(epochs * args.epochs_scale))
            log(f"{task} {model}: {epochs} epochs ({preset})")
            timing = train_and_apply(data, workdir, task, model, epochs, preset, args.samples)
            timings[model] = timing
            if model == "nrgan":
                timings["nrgan_smooth"] = timing
        result = evaluate_task(workdir, task, data, probe=mode["probe"], overwrite=True)
        log("\n" + format_evaluation(result))
        results[task] = result
        report[task] = {
            name: {
                **{key: row.get(key) for key in HEADLINE_METRICS},
                **{f"{key}_ci": row.get(f"{key}_ci") for key in HEADLINE_METRICS},
                # Many-to-many: samples per galaxy, their spread (with _ci), KS tests.
                **{
                    key: value
                    for key, value in row.items()
                    if key == "n_samples" or key.startswith(("sample_", "ks_"))
                },
                **timings.get(name, {}),
            }
            for name, row in result["models"].items()
        }
    log(f"goals: {json.dumps(goals(report, results), indent=1, default=float)}")
    log(f"total {time.perf_counter() - started:.0f} s")
    return emit(report, args.out)


if __name__ == "__main__":
    main()
