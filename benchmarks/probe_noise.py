"""Does the translation probe see NR-GAN's emulated noise? (issue 22's question)

In the demo's translation table, ``nrgan`` (the generator's output plus emulated CFHTLS
noise) and ``nrgan_smooth`` (the generator's output alone) gave the same photo-z probe
columns to four digits while their pixels differ. This script measures, on one run's
translation task, why:

1. **pixels**: per band, the standard deviation of ``nrgan − nrgan_smooth`` (the emulated
   noise the probe is shown) against the real target images' sky noise (1.4826 × MAD of
   the stamp border);
2. **probe PDFs**: the mean total-variation distance between the probe's PDFs of the two
   sets, galaxy by galaxy, and the mean |Δ z_mean|, beside the probe metrics of
   ``real``, ``nrgan`` and ``nrgan_smooth``;
3. **the probe's response to noise it was trained on**: the real test images with extra
   Gaussian noise of f × the sky σ added (f = 0.5, 1, 2), through the same probe — the TV
   distance to the PDFs of the untouched real images and the probe metrics.

If (3) moves the PDFs and (1)–(2) do not, the probe sees noise but NR-GAN's emulated noise
is too faint to matter; if (3) does not move them either, the probe is blind to noise at
this level (its crop and pixel scaling average it away).

Usage: ``python benchmarks/probe_noise.py --run DIR [--task s2c] [--seed 0]`` on a run
whose task has been evaluated (``clapkit translate evaluate``, or ``make demo``), or
``--build WORKDIR`` to build the demo's translation stage there first (its settings:
:class:`clapkit.demo.DemoConfig` ``translation``; ~10 minutes on 2 cores). Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from _report import emit

from clapkit.data import GalaxySet
from clapkit.demo import DemoConfig
from clapkit.metrics import summarize
from clapkit.photoz.network_baselines import predict_baseline
from clapkit.photoz.network_inputs import NetworkInputs, network_inputs, scale_images
from clapkit.runs import RunDir
from clapkit.sim import simulate_to_file
from clapkit.translate.apply import ApplySettings, apply_translator
from clapkit.translate.probe import PROBE_METRICS, ProbeConfig, read_probe, train_probe
from clapkit.translate.tasks import task as task_info
from clapkit.translate.training import default_options, train_translator

NOISE_FACTORS = (0.5, 1.0, 2.0)
BORDER = 4  # pixels of the stamp edge taken as sky


def build_demo_translation(workdir: Path, seed: int) -> Path:
    """The demo's translation stage in ``workdir`` (reused where already there)."""
    settings = DemoConfig().translation
    run = RunDir(workdir)
    run.root.mkdir(parents=True, exist_ok=True)
    data = run.data_file("translation_survey")
    if not data.is_file():
        simulate_to_file(data, settings["n_galaxies"], settings["seed"], ("sdss", "cfhtls"))
    task = settings["task"]
    model_dir = run.translation_dir(task, "nrgan")
    if not (model_dir / "config.json").is_file():
        options = default_options("nrgan", epochs=settings["epochs"]["nrgan"], seed=seed)
        train_translator(data, model_dir, "nrgan", task, preset=settings["preset"], options=options)
    for name, overrides in (("nrgan", {}), ("nrgan_smooth", {"add_noise": False})):
        out = run.translated_path(task, name)
        if not out.is_file():
            apply_translator(model_dir, data, out, ApplySettings(overrides=overrides))
    with GalaxySet.load(data) as galaxies:
        train_probe(
            galaxies.split("train"),
            galaxies.split("valid"),
            task_info(task).target,
            run.probe_dir(task),
            ProbeConfig(epochs=settings["probe_epochs"], seed=seed),
        )
    return data


def sky_sigma(images: np.ndarray) -> np.ndarray:
    """Per band, 1.4826 × MAD of the stamps' border pixels ``(C,)``."""
    mask = np.ones(images.shape[-2:], dtype=bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = False
    border = images[..., mask]  # (N, C, P)
    centred = border - np.median(border, axis=(0, 2), keepdims=True)
    return 1.4826 * np.median(np.abs(centred), axis=(0, 2))


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per galaxy, ½ Σ |p − q| (0: the same PDF, 1: disjoint)."""
    return 0.5 * np.abs(p - q).sum(axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", type=Path, help="a run whose translation task is evaluated")
    where.add_argument("--build", type=Path, help="build the demo's translation stage here")
    parser.add_argument("--task", default="s2c")
    parser.add_argument("--data", type=Path, help="the task's survey (default: the run's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    if args.build:
        data = build_demo_translation(args.build, args.seed)
        run = RunDir(args.build)
    else:
        run = RunDir(args.run)
        data = args.data or run.data_file("translation_survey")
    task = args.task
    target = task_info(task).target
    probe_dir = run.probe_dir(task)
    spec, config = read_probe(probe_dir)
    edges = np.asarray(spec.edges)

    def pdfs(inputs: NetworkInputs) -> np.ndarray:
        return predict_baseline("softmax", probe_dir, spec, config.baseline(), inputs)

    def metrics(p: np.ndarray, z: np.ndarray) -> dict[str, float]:
        summary = summarize(p, edges, z)
        return {key: round(float(summary[key]), 5) for key in PROBE_METRICS}

    with GalaxySet.load(data) as galaxies:
        test = galaxies.split("test")
        z = np.asarray(test.catalog["z"], dtype=np.float64)
        real_images = np.asarray(test.stacks[target].images[:], dtype=np.float64)
        stack_bands = list(test.stacks[target].bands)
        real_inputs = network_inputs(spec, test)
    sets = {}
    for name in ("nrgan", "nrgan_smooth"):
        with GalaxySet.load(run.translated_path(task, name)) as translated:
            images = np.asarray(translated.stacks[target].images[:], dtype=np.float64)
            sets[name] = (images, network_inputs(spec, translated))

    bands = list(spec.bands)
    sigma_real = sky_sigma(real_images)  # (C,), the stack's band order
    emulated = sets["nrgan"][0] - sets["nrgan_smooth"][0]
    p_real = pdfs(real_inputs)
    p_noisy, p_smooth = pdfs(sets["nrgan"][1]), pdfs(sets["nrgan_smooth"][1])

    def z_mean(p: np.ndarray) -> np.ndarray:
        return p @ (0.5 * (edges[1:] + edges[:-1]))

    result: dict = {
        "task": task,
        "n_test": len(z),
        "pixels": {
            "real_sky_sigma": dict(zip(stack_bands, np.round(sigma_real, 5).tolist(), strict=True)),
            "emulated_noise_std": dict(
                zip(stack_bands, np.round(emulated.std(axis=(0, 2, 3)), 5).tolist(), strict=True)
            ),
            "smooth_sky_sigma": dict(
                zip(
                    stack_bands,
                    np.round(sky_sigma(sets["nrgan_smooth"][0]), 5).tolist(),
                    strict=True,
                )
            ),
            "nrgan_sky_sigma": dict(
                zip(stack_bands, np.round(sky_sigma(sets["nrgan"][0]), 5).tolist(), strict=True)
            ),
        },
        "probe": {
            "real": metrics(p_real, z),
            "nrgan": metrics(p_noisy, z),
            "nrgan_smooth": metrics(p_smooth, z),
            "tv_nrgan_vs_smooth_mean": round(float(total_variation(p_noisy, p_smooth).mean()), 5),
            "abs_dz_mean_nrgan_vs_smooth": round(
                float(np.abs(z_mean(p_noisy) - z_mean(p_smooth)).mean()), 6
            ),
            "tv_nrgan_vs_real_mean": round(float(total_variation(p_noisy, p_real).mean()), 5),
        },
        "added_noise": {},
    }

    # The probe's inputs are sign(x) log(1 + |x|) of the central crop: undo the scaling,
    # add noise in flux as the survey would, and scale again.
    raw = np.sign(real_inputs.x) * np.expm1(np.abs(real_inputs.x.astype(np.float64)))
    if spec.flux_columns:
        sys.exit("probe_noise: the probe divides by catalog fluxes; noise in flux is not modelled")
    sigma_inputs = sigma_real[[stack_bands.index(b) for b in bands]]  # the probe's band order
    rng = np.random.default_rng(args.seed)
    for factor in NOISE_FACTORS:
        noise = rng.normal(size=raw.shape) * (factor * sigma_inputs[None, :, None, None])
        noisy = NetworkInputs(
            scale_images(raw + noise), real_inputs.extra, real_inputs.z, real_inputs.ids
        )
        p = pdfs(noisy)
        result["added_noise"][f"{factor:g}_sky_sigma"] = {
            **metrics(p, z),
            "tv_vs_real_mean": round(float(total_variation(p, p_real).mean()), 5),
        }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
