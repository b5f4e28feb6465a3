"""The demo: CLAP and the methods it must beat, side by side on a small mock survey;
image translation SDSS→CFHTLS, judged by what it preserves; and why networks estimate
stellar mass as they do.

Simulates a small mock survey (SDSS-like ugriz images of galaxies drawn from kcorrect's
real SDSS fits), trains CLAP and the baselines with the ``cpu`` preset on its
``train`` split, predicts PDFs for the held-out ``test`` split and evaluates every
method. A second, smaller survey drawn in both SDSS and CFHTLS trains NR-GAN and the
SwinIR-like translator, whose test translations are evaluated (pixels, morphology,
noise, redshift information). On the first survey, stellar-mass models for five input
sets are trained and interpreted (local causal tests, PC, the MI decomposition,
attributions). Everything lands in a run directory (``data/runs/demo``
by default); a second call with the same configuration and clapkit version reuses it
at once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import clapkit
from clapkit.errors import FileFormatError, OverwriteError
from clapkit.evaluation import EvaluationSettings, evaluate_run, format_table, ordered_methods
from clapkit.interpret.mass_metric_names import upgrade_mass_metrics
from clapkit.interpret.pipeline import attribute_stage, causal_stage, pid_stage, train_stage
from clapkit.interpret.results import read_mass_metrics
from clapkit.interpret.settings import (
    AttributionSettings,
    CausalSettings,
    MassTrainSettings,
    PIDSettings,
)
from clapkit.photoz.pipeline import PhotoZTrainSettings, predict_run, train_run
from clapkit.plots import plot_calibration
from clapkit.runs import RunDir
from clapkit.sim import simulate_to_file
from clapkit.translate.apply import ApplySettings, apply_translator
from clapkit.translate.evaluate import evaluate_task, format_evaluation
from clapkit.translate.probe import ProbeConfig
from clapkit.translate.results import read_evaluation
from clapkit.translate.training import default_options, train_translator

DEFAULT_RUN = Path("data") / "runs" / "demo"
#: Methods drawn in the calibration figure (all are in the table).
PLOTTED = ("clap", "clap_raw", "softmax", "temperature", "ensemble")


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the demo run; a change invalidates the cached run.

    ``pipeline`` overrides the ``cpu`` preset of :mod:`clapkit.photoz.pipeline` so the
    whole demo trains in minutes on two CPU cores.
    """

    n_galaxies: int = 3000
    seed: int = 0
    instruments: tuple[str, ...] = ("sdss",)
    n_bins: int = 180
    methods: str = "all"
    # 20 epochs (the cpu preset trains 30): with batch norm the networks have learned
    # by then, and the whole demo takes about twelve minutes on two cores.
    pipeline: dict[str, Any] = field(
        default_factory=lambda: {
            "train": {"epochs": 20},
            "clap": {"n_realisations": 2, "refit": {"epochs": 25}},
            "baselines": {"ensemble_size": 3},
        }
    )
    outlier_threshold: float = 0.05
    #: The image-translation stage: a second, smaller mock survey drawn in both SDSS and
    #: CFHTLS, NR-GAN and the SwinIR-like model trained on it (``cpu`` presets), the test split
    #: translated and evaluated with a photo-z probe on real CFHTLS images.
    translation: dict[str, Any] = field(
        default_factory=lambda: {
            "n_galaxies": 600,
            "seed": 1,
            "task": "s2c",
            "preset": "cpu",
            "epochs": {"nrgan": 6, "swin": 4},
            "probe_epochs": 10,
        }
    )

    #: The stellar-mass stage, on the demo survey: CLAP mass models for five input sets
    #: (``cpu`` preset, few epochs), local tests in the image model's latent space, PC, the MI
    #: decomposition of every input pair and attributions of a few test galaxies.
    interpretation: dict[str, Any] = field(
        default_factory=lambda: {
            "input_sets": [
                "photometry",
                "photometry_wise",
                "images",
                "images_normalised",
                "images_wise",
            ],
            "preset": "cpu",
            "epochs": 15,
            "k": 20,
            "permutations": 499,
            "bootstrap": 10,
            "attributions": 16,
            # The MI classifiers read the images through their own CNN, as published; on
            # 16-pixel cut-outs (the cpu default is 32) the five pairs train in about a
            # minute on two cores instead of four.
            "pid_crop": 16,
        }
    )

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (tuples become lists)."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}


def _is_current(run: RunDir, config: DemoConfig) -> bool:
    try:
        manifest = run.read_json(run.manifest_path)
    except OSError:
        return False
    return (
        manifest.get("complete") is True
        and manifest.get("clapkit_version") == clapkit.__version__
        and manifest.get("config") == config.to_json()
        and run.metrics_path.is_file()
        # Runs from before the dashboards lack the per-galaxy table they read.
        and run.galaxy_table_path.is_file()
        and run.evaluation_path(config.translation["task"]).is_file()
        and run.attribution_summary_path.is_file()
    )


def _build(run: RunDir, config: DemoConfig, progress: bool, log: Callable[[str], None]) -> None:
    data = run.data_file("mock_survey")
    log(f"simulating {config.n_galaxies} mock galaxies (seed {config.seed})")
    simulate_to_file(
        data,
        config.n_galaxies,
        config.seed,
        config.instruments,
        workers=os.cpu_count() or 1,
        progress=progress,
    )
    train_run(
        data,
        run,
        PhotoZTrainSettings(config.methods, config=config.pipeline, n_bins=config.n_bins),
        progress=progress,
        log=log,
    )
    predict_run(run, data, progress=progress, log=log)
    log("evaluating every method (metrics.json, galaxies.h5)")
    evaluate_run(
        run, EvaluationSettings(z_bins=4, extra_bins=4, outlier_threshold=config.outlier_threshold)
    )
    loaded = {m: run.load_pdfs(m)[0] for m in PLOTTED if m in run.methods()}
    figure = plot_calibration(loaded)
    figure.savefig(run.calibration_figure_path, dpi=120)
    _build_translation(run, config, progress, log)
    _build_interpretation(run, data, config, progress, log)
    manifest = {"kind": "demo", "config": config.to_json(), "complete": True}
    run.write_json(run.manifest_path, manifest)


def _build_translation(
    run: RunDir, config: DemoConfig, progress: bool, log: Callable[[str], None]
) -> None:
    settings = config.translation
    data = run.data_file("translation_survey")
    task = settings["task"]
    log(f"simulating {settings['n_galaxies']} mock galaxies in SDSS and CFHTLS for translation")
    simulate_to_file(
        data,
        settings["n_galaxies"],
        settings["seed"],
        ("sdss", "cfhtls"),
        workers=os.cpu_count() or 1,
        progress=progress,
    )
    for model, epochs in settings["epochs"].items():
        log(f"training the {model} translation model ({task}, {epochs} epochs)")
        model_dir = run.translation_dir(task, model)
        options = default_options(model, epochs=epochs, seed=config.seed)
        train_translator(
            data,
            model_dir,
            model,
            task,
            preset=settings["preset"],
            options=options,
            progress=progress,
        )
        apply_translator(model_dir, data, run.translated_path(task, model), progress=progress)
        if model == "nrgan":
            smooth = run.translated_path(task, "nrgan_smooth")
            apply_translator(model_dir, data, smooth, ApplySettings(overrides={"add_noise": False}))
    log("evaluating the translations (pixels, morphology, noise, photo-z probe)")
    probe = ProbeConfig(epochs=settings["probe_epochs"], seed=config.seed)
    evaluate_task(run.root, task, data, probe=probe, progress=progress)


def _build_interpretation(
    run: RunDir, data: Path, config: DemoConfig, progress: bool, log: Callable[[str], None]
) -> None:
    settings = config.interpretation
    mass = MassTrainSettings(
        settings["input_sets"],
        preset=settings["preset"],
        overrides={"train": {"epochs": settings["epochs"]}},
        seed=config.seed,
    )
    train_stage(data, run.root, mass, progress=progress, log=log)
    causal = CausalSettings(
        k=settings["k"],
        n_permutations=settings["permutations"],
        n_bootstrap=settings["bootstrap"],
        seed=config.seed,
    )
    causal_stage(data, run.root, causal, progress=progress, log=log)
    pid = PIDSettings(seed=config.seed, crop=settings.get("pid_crop", PIDSettings.crop))
    pid_stage(data, run.root, pid, progress=progress, log=log)
    attributions = AttributionSettings(n_galaxies=settings["attributions"], seed=config.seed)
    attribute_stage(data, run.root, attributions, log=log)


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
        return run.read_json(run.metrics_path)
    if run.root.exists() and any(run.root.iterdir()):
        try:
            is_demo = run.read_json(run.manifest_path).get("kind") == "demo"
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
    return run.read_json(run.metrics_path)


def report(metrics: dict[str, Any], run_root: str | os.PathLike) -> str:
    """The text the demo prints: the summary table and the per-bin tables."""
    methods = metrics["methods"]
    lines = [
        "",
        "Photometric-redshift PDFs of the held-out mock-survey test split",
        format_table({name: methods[name] for name in ordered_methods(list(methods))}),
    ]
    for name in [m for m in ("clap", "softmax") if m in methods]:
        for key, rows in methods[name].items():
            if not key.startswith("by_"):
                continue
            lines += [
                "",
                f"{name}, in bins of {key[3:]}:",
                format_table({_bin_label(r): {"summary": r} for r in rows}, label=key[3:]),
            ]
    for task in ("s2s", "s2c"):
        try:
            evaluation = read_evaluation(run_root, task)
        except FileFormatError:
            continue
        lines += ["", "Image translation, judged against the real target images:"]
        lines.append(format_evaluation(evaluation))
    if RunDir(run_root).mass_metrics_path.is_file():
        rows = read_mass_metrics(run_root)["input_sets"]
        lines += ["", "Stellar mass from each input set (test split, dex; offset: median):"]
        lines.append(f"{'input set':<16} {'sigma':>7} {'offset':>7} {'CRPS':>7}")
        for name, stored in rows.items():
            row = upgrade_mass_metrics(stored)  # runs before the rename store "bias"
            lines.append(
                f"{name:<16} {row['sigma']:7.3f} {row['median_offset']:+7.3f} {row['crps']:7.3f}"
            )
    lines += [
        "",
        f"run directory: {run_root} (PDFs, metrics.json, calibration.png, translate/, interpret/)",
    ]
    return "\n".join(lines)


def _bin_label(row: dict[str, Any]) -> str:
    return f"[{row['lo']:.3g}, {row['hi']:.3g}]"
