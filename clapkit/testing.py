"""Synthetic run directories, for tests and benchmarks of the dashboards.

Training CLAP on 100,000 galaxies takes hours; serving the dashboards on that many
galaxies takes a run of that size, not a trained one. :func:`synthetic_run` writes a run
directory with every artefact the app reads, through the library's own writers, in
seconds to minutes: a GalaxySet of blob images whose colours encode the redshift, 16-d
latent vectors that do too, CLAP's KNN stages computed for real by
:class:`~clapkit.photoz.adaptive_knn.AdaptiveKNN` on those latents (chosen k, neighbours,
local PIT histograms, recalibration, harmonic ensemble), Gaussian PDFs standing in for
the network baselines (over-confident softmax, wider ensembles), and the evaluation
(``metrics.json``, ``galaxies.h5``). Only the network training is skipped.

:func:`synthetic_translation_survey` is the paired two-instrument survey of the
translation tests: tiny stamps of the same galaxies on an SDSS-like and a finer,
deeper CFHTLS-like grid.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from clapkit.data import GalaxySet, ImageStack
from clapkit.data.hdf5 import GalaxySetWriter
from clapkit.evaluation import EvaluationSettings, evaluate_run
from clapkit.metrics import PDFs, gaussian_pdfs
from clapkit.photoz.adaptive_knn import AdaptiveKNN, log_k_grid
from clapkit.photoz.clap import CLAPPrediction
from clapkit.photoz.details import write_clap_details
from clapkit.photoz.ensemble import ensemble_pdfs
from clapkit.photoz.novelty import novelty_percentile
from clapkit.photoz.projection import project_latent
from clapkit.photoz.recalibrate import recalibrate
from clapkit.runs import RunDir

BANDS = ("u", "g", "r", "i", "z")
#: Colour of each band relative to r, at z = 0 and its change per unit redshift.
_COLOUR = {"u": (1.6, 6.0), "g": (0.6, 4.0), "r": (0.0, 0.0), "i": (-0.3, -1.5), "z": (-0.5, -2.0)}
#: Stand-ins for the network baselines: (bias, scatter of the mean, width / scatter).
BASELINES = {
    "softmax": (0.002, 0.02, 0.6),
    "mcdropout": (0.002, 0.02, 0.8),
    "ensemble": (0.001, 0.018, 0.9),
    "temperature": (0.002, 0.02, 1.0),
    "knn_photometry": (0.0, 0.017, 1.1),
}


@dataclass(frozen=True)
class SyntheticRunConfig:
    """Sizes of a synthetic run.

    ``n_test`` galaxies get PDFs (the galaxies the dashboards show); ``n_train`` are
    the KNN's training set (the neighbours); images are ``image_size`` pixels square.
    """

    n_test: int = 200
    n_train: int = 400
    image_size: int = 16
    n_bins: int = 40
    z_max: float = 0.4
    latent_dim: int = 16
    projection: str = "pca"
    seed: int = 0
    block: int = 2048


def synthetic_run(
    root: str | os.PathLike,
    config: SyntheticRunConfig | None = None,
    *,
    progress: bool = False,
) -> RunDir:
    """Write a synthetic run directory (see the module docstring) and return it.

    The galaxy file is ``<root>/galaxies_data.h5`` (recorded in ``predict.json``); the
    run holds ``pdfs/*.h5`` for CLAP's five stages and the five baselines,
    ``clap/knn.h5``, ``metrics.json`` and ``galaxies.h5``.

    Examples
    --------
    >>> import tempfile
    >>> run = synthetic_run(tempfile.mkdtemp(), SyntheticRunConfig(n_test=60, n_train=90))
    >>> sorted(run.methods())[:3], run.galaxy_table_path.is_file()
    (['clap', 'clap_raw', 'clap_recal'], True)
    """
    config = config or SyntheticRunConfig()
    run = RunDir(root)
    run.root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    n = config.n_test + config.n_train
    z = rng.uniform(0.02, 0.95 * config.z_max, n)
    split = np.array(["test"] * config.n_test + ["train"] * config.n_train)
    ids = np.arange(1, n + 1) * 7 + 100_000  # not row numbers, as in real catalogs
    catalog = Table({"id": ids, "z": z, "split": split, "ebv": rng.uniform(0, 0.1, n)})
    mag_r = rng.uniform(14.5, 17.7, n)
    for band in BANDS:
        zero, slope = _COLOUR[band]
        catalog[f"mag_{band}"] = mag_r + zero + slope * z + rng.normal(0, 0.03, n)
        catalog[f"magerr_{band}"] = rng.uniform(0.01, 0.05, n)
    data = run.data_file("galaxies_data")
    _write_images(data, catalog, config, rng, progress)

    test, train = slice(0, config.n_test), slice(config.n_test, n)
    direction = rng.normal(size=config.latent_dim)
    latent = (z[:, None] * direction * 20.0 + rng.normal(0, 1.0, (n, config.latent_dim))).astype(
        np.float32
    )
    edges = np.linspace(0.0, config.z_max, config.n_bins + 1)
    k_max = min(2000, max(20, config.n_train // 50), config.n_train - 1)
    knn = AdaptiveKNN(edges, log_k_grid(2, k_max, min(30, k_max - 1)), n_pit_bins=20)
    knn.fit(latent[train], z[train], progress=progress)
    result = knn.predict(latent[test], progress=progress)
    stages = {
        "clap_scl": gaussian_pdfs(
            z[test] + rng.normal(0, 0.02, config.n_test), np.full(config.n_test, 0.01), edges
        ),
        "clap_raw": result.p,
    }
    with warnings.catch_warnings():
        # Tiny neighbourhoods make some PIT polynomials vanish; recalibrate keeps those
        # galaxies' raw PDFs and says so, which is expected here.
        warnings.simplefilter("ignore", UserWarning)
        stages["clap_recal"] = recalibrate(result.p, edges, result.local_pit_hist)
    stages["clap_refit"] = ensemble_pdfs([stages["clap_recal"]], edges)
    stages["clap"] = ensemble_pdfs([stages["clap_raw"], stages["clap_recal"]], edges)
    test_ids, z_test = ids[test], z[test]
    novelty = novelty_percentile(
        knn.neighbour_distance(latent[test], result.neighbours), knn.train_distance_
    )
    for name, p in stages.items():
        run.save_pdfs(
            name,
            PDFs(p, edges, z_true=z_test, ids=test_ids),
            {"synthetic": True},
            columns={"novelty": novelty},
        )
    for name, (bias, scatter, width) in BASELINES.items():
        mean = z_test + bias + rng.normal(0, scatter, config.n_test) * (1 + z_test)
        p = gaussian_pdfs(mean, np.full(config.n_test, width * scatter) * (1 + z_test), edges)
        run.save_pdfs(name, PDFs(p, edges, z_true=z_test, ids=test_ids), {"synthetic": True})
    prediction = CLAPPrediction(
        pdfs=stages,
        knn=result,
        latent=latent[test],
        train_latent=latent[train],
        train_z=z[train],
        train_ids=ids[train],
        novelty=novelty,
    )
    projection = project_latent(latent[test], config.projection, seed=config.seed)
    write_clap_details(run.clap_details_path, prediction, test_ids, projection)
    run.write_json(
        run.predict_record_path,
        {"data": run.relative_data_path(data), "split": "test", "synthetic": True},
        overwrite=True,
    )
    evaluate_run(run, EvaluationSettings(z_bins=4, extra_bins=4), catalog=catalog, overwrite=True)
    return run


def _write_images(
    path: Path, catalog: Table, config: SyntheticRunConfig, rng, progress: bool
) -> None:
    """Round blobs with the catalog's fluxes plus sky noise, block by block."""
    size, n = config.image_size, len(catalog)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    template = ImageStack(
        np.zeros((1, len(BANDS), size, size), np.float32), BANDS, 0.396, (22.5,) * 5, "nanomaggy"
    )
    fluxes = 10 ** (-0.4 * (np.column_stack([catalog[f"mag_{b}"] for b in BANDS]) - 22.5))
    with GalaxySetWriter(path, n, {"sdss": template}, overwrite=True) as writer:
        for start in tqdm(range(0, n, config.block), desc="images", disable=not progress):
            stop = min(n, start + config.block)
            radius = rng.uniform(1.0, size / 8, stop - start)[:, None, None, None]
            blob = np.exp(-(xx**2 + yy**2) / (2 * radius**2)) / (2 * np.pi * radius**2)
            block = fluxes[start:stop, :, None, None] * blob
            block += rng.normal(0, 0.01, block.shape)
            writer.write_rows(start, {"sdss": block.astype(np.float32)})
        writer.finish(catalog, {"source": "clapkit.testing.synthetic_run"})


def synthetic_translation_survey(
    n: int = 60, seed: int = 0, *, sdss_size: int = 16, cfhtls_size: int = 32
) -> GalaxySet:
    """A tiny paired survey for tests of translation: the same galaxies in two instruments.

    Each galaxy is an elliptical Gaussian whose band fluxes follow :data:`_COLOUR` at its
    redshift, drawn on an ``sdss`` grid (coarse pixels, wide PSF, noisy) and a ``cfhtls``
    grid covering the same field (``cfhtls_size`` pixels, sharper and deeper), in
    nanomaggies, and again on the ``sdss`` grid with new noise (``sdss_repeat``, as in
    :data:`clapkit.sim.survey.REPEATS`). Splits: 60% train, 20% valid, 20% test.

    Parameters
    ----------
    n : int
        Galaxies.
    seed : int
        Seeds the galaxies and the noise.
    sdss_size, cfhtls_size : int
        Image sides (pixels) of the two instruments.

    Returns
    -------
    GalaxySet

    Examples
    --------
    >>> survey = synthetic_translation_survey(10)
    >>> survey.stacks["sdss"].shape, survey.stacks["cfhtls"].shape
    ((10, 5, 16, 16), (10, 5, 32, 32))
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.02, 0.35, n)
    mag_r = rng.uniform(15.0, 17.5, n)
    size = rng.uniform(1.0, 2.5, n)  # arcsec
    q = rng.uniform(0.5, 1.0, n)
    angle = rng.uniform(0, np.pi, n)
    split = np.array(["train", "valid", "test"])[
        np.searchsorted([0.6, 0.8], np.arange(n) / n, side="right")
    ]
    catalog = Table({"id": np.arange(n) * 3 + 11, "z": z, "split": split})
    flux = {b: 10 ** (-0.4 * (mag_r + _COLOUR[b][0] + _COLOUR[b][1] * z - 22.5)) for b in BANDS}
    field = sdss_size * 0.396
    stacks = {}
    for name, pixels, psf, noise in (
        ("sdss", sdss_size, 1.3, 0.25),
        ("cfhtls", cfhtls_size, 0.7, 0.03),
        # A second SDSS exposure: the same galaxies, another noise draw (the s2s target).
        ("sdss_repeat", sdss_size, 1.3, 0.25),
    ):
        scale = field / pixels
        centre = (np.arange(pixels) - (pixels - 1) / 2) * scale
        yy, xx = np.meshgrid(centre, centre, indexing="ij")
        images = np.empty((n, len(BANDS), pixels, pixels), np.float32)
        for i in range(n):
            c, s = np.cos(angle[i]), np.sin(angle[i])
            u, v = c * xx + s * yy, (-s * xx + c * yy) / q[i]
            width2 = size[i] ** 2 + (psf / 2.355) ** 2
            profile = np.exp(-0.5 * (u**2 + v**2) / width2)
            profile /= profile.sum()
            for b, band in enumerate(BANDS):
                images[i, b] = flux[band][i] * profile + rng.normal(0, noise, profile.shape)
        stacks[name] = ImageStack(images, BANDS, scale, (22.5,) * len(BANDS), units="nanomaggy")
    return GalaxySet(catalog, stacks, {"synthetic": "translation"})


@contextlib.contextmanager
def single_thread_torch() -> Iterator[None]:
    """Run the block with PyTorch on one thread, then restore the previous setting.

    Tiny test models are all per-operation overhead; a second thread only adds waiting,
    and on a busy machine two spinning threads can be ten times slower than one.
    """
    from clapkit.nets.threads import torch_threads

    with torch_threads(1):
        yield


def synthetic_translation_run(
    root: str | os.PathLike,
    *,
    n: int = 60,
    seed: int = 0,
    tasks: tuple[str, ...] = ("s2c",),
    models: tuple[str, ...] | None = None,
    epochs: int = 1,
    progress: bool = False,
) -> Path:
    """A run directory with every translation artefact, from tiny models trained for real.

    Writes the :func:`synthetic_translation_survey` to ``<root>/survey.h5``, trains every
    model (``"tiny"`` preset, ``epochs`` epochs) on each task, translates the test split
    (NR-GAN also without its noise, as ``nrgan_smooth``) and evaluates it with a small
    photo-z probe: what the translation dashboard reads, in under a minute.

    Parameters
    ----------
    root : path-like
        The run directory to fill.
    n : int
        Galaxies of the survey.
    seed : int
        Seeds the survey and the models.
    tasks : tuple of str
        Translation tasks (``"s2c"``, ``"s2s"``).
    models : tuple of str, optional
        Models to train; every registered model when None.
    epochs : int
        Training epochs of each model.
    progress : bool
        Show progress bars.

    Returns
    -------
    Path
        The run directory ``root``.
    """
    # Imported here: the photo-z side of this module does not need the translation models.
    from clapkit.translate.models import MODEL_NAMES

    root = Path(root)
    data = RunDir(root).data_file("survey")
    if not data.exists():
        synthetic_translation_survey(n, seed).save(data)
    with single_thread_torch():
        _train_translation_run(root, data, seed, tasks, models or MODEL_NAMES, epochs, progress)
    return root


def _train_translation_run(root, data, seed, tasks, models, epochs, progress) -> None:
    from clapkit.translate.apply import ApplySettings, apply_translator
    from clapkit.translate.evaluate import evaluate_task
    from clapkit.translate.probe import ProbeConfig
    from clapkit.translate.training import default_options, train_translator

    run = RunDir(root)
    for task in tasks:
        for model in tqdm(models, desc=f"translate {task}", disable=not progress):
            model_dir = run.translation_dir(task, model)
            options = default_options(model, epochs=epochs, batch_size=8, seed=seed)
            train_translator(data, model_dir, model, task, preset="tiny", options=options)
            apply_translator(
                model_dir, data, run.translated_path(task, model), ApplySettings(seed=seed)
            )
            if model == "nrgan":
                apply_translator(
                    model_dir,
                    data,
                    run.translated_path(task, "nrgan_smooth"),
                    ApplySettings(overrides={"add_noise": False}, seed=seed),
                )
        probe = ProbeConfig(epochs=2, n_bins=20, crop=None, batch_size=16, seed=seed)
        evaluate_task(root, task, data, probe=probe)


def synthetic_mass_survey(n: int = 120, seed: int = 0, *, size: int = 16) -> GalaxySet:
    """A tiny survey for tests of the stellar-mass analysis, with known dependences.

    Masses are uniform in log M* = 9–11.5 and redshifts in 0.02–0.25. Massive galaxies
    are redder (rest-frame u − r), more bulge-dominated and larger; disks are seen at
    random inclinations, and their dust (``disk_av``) grows with the inclination. The
    magnitudes follow from the mass, colour, dust, distance (Planck18) and a
    k-correction-like reddening with redshift, with WISE
    W1–W3 tracing the mass more closely than the optical bands; the ``sdss`` images are
    elliptical Gaussians with those fluxes, sizes and axis ratios, plus noise. The
    position angle is independent of everything by construction. Splits: 60/20/20 %.

    Examples
    --------
    >>> survey = synthetic_mass_survey(20)
    >>> survey.stacks["sdss"].shape, "mag_w1" in survey.catalog.colnames
    ((20, 5, 16, 16), True)
    """
    from astropy.cosmology import Planck18

    rng = np.random.default_rng(seed)
    log_mstar = rng.uniform(9.0, 11.5, n)
    z = rng.uniform(0.02, 0.25, n)
    u_r = np.clip(1.3 + 0.5 * (log_mstar - 10.0) + rng.normal(0, 0.3, n), 0.8, 3.2)
    bulge_fraction = 1 / (1 + np.exp(-3.0 * (u_r - 2.2)))
    inclination = np.degrees(np.arccos(rng.uniform(0, 1, n)))
    disk_q = np.sqrt(np.cos(np.radians(inclination)) ** 2 * (1 - 0.2**2) + 0.2**2)
    disk_av = 0.8 * (np.log10(1 / disk_q) - 0.25) * (1 - bulge_fraction)
    hlr_kpc = 10 ** (0.3 * (log_mstar - 10.0) + 0.5 + rng.normal(0, 0.1, n))
    hlr = hlr_kpc / Planck18.kpc_proper_per_arcmin(z).value * 60.0
    position_angle = rng.uniform(0, 180, n)
    ebv = rng.uniform(0.01, 0.08, n)
    distance_modulus = Planck18.distmod(z).value
    absolute_r = -20.8 - 2.5 * (log_mstar - 10.5) + 0.8 * (u_r - 2.0)
    columns: dict[str, np.ndarray] = {
        "id": np.arange(n) + 1,
        "z": z,
        "log_mstar": log_mstar,
        "ebv": ebv,
        "restframe_u_r": u_r,
        "bulge_fraction": bulge_fraction,
        "hlr": hlr,
        "disk_q": disk_q,
        "inclination": inclination,
        "disk_av": disk_av,
        "position_angle": position_angle,
    }
    colour_to_r = {"u": 1.0, "g": 0.4, "r": 0.0, "i": -0.15, "z": -0.25}  # per unit u - r
    dust_per_av = {"u": 1.5, "g": 1.2, "r": 0.9, "i": 0.7, "z": 0.5, "w1": 0.05, "w2": 0.03}
    # Observed colours redden with redshift (a k-correction), so photometry constrains z.
    k_correction = {"u": 4.0, "g": 2.5, "r": 0.0, "i": -1.0, "z": -1.5}
    bands = {b: colour_to_r[b] * u_r + k_correction[b] * z for b in BANDS}
    bands["w1"] = -0.9 - 0.1 * u_r - 2.0 * z
    bands |= {"w2": bands["w1"] - 0.1, "w3": bands["w1"] - 0.5 + 0.3 * (2.2 - u_r)}
    fluxes = {}
    for band, colour in bands.items():
        true_mag = absolute_r + distance_modulus + colour + dust_per_av.get(band, 0.0) * disk_av
        error = 0.02 if band in BANDS else 0.05
        columns[f"mag_{band}"] = true_mag + rng.normal(0, error, n)
        columns[f"magerr_{band}"] = np.full(n, error)
        fluxes[band] = 10 ** (-0.4 * (true_mag - 22.5))
    split = np.array(["train", "valid", "test"])[
        np.searchsorted([0.6, 0.8], np.arange(n) / n, side="right")
    ]
    columns["split"] = split
    scale = 0.396
    centre = (np.arange(size) - (size - 1) / 2) * scale
    yy, xx = np.meshgrid(centre, centre, indexing="ij")
    images = np.empty((n, len(BANDS), size, size), np.float32)
    for i in range(n):
        angle = np.radians(position_angle[i])
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * xx + s * yy, (-s * xx + c * yy) / disk_q[i]
        profile = np.exp(-0.5 * (u**2 + v**2) / (hlr[i] ** 2 + 0.6**2))
        profile /= profile.sum()
        for b, band in enumerate(BANDS):
            images[i, b] = fluxes[band][i] * profile + rng.normal(0, 0.1, profile.shape)
    stack = ImageStack(images, BANDS, scale, (22.5,) * len(BANDS), units="nanomaggy")
    return GalaxySet(Table(columns), {"sdss": stack}, {"synthetic": "stellar mass"})


def synthetic_interpret_run(
    root: str | os.PathLike, *, n: int = 400, seed: int = 0, progress: bool = False
) -> Path:
    """A run directory with every stellar-mass artefact, from tiny models trained for real.

    Writes the :func:`synthetic_mass_survey` to ``<root>/interpret_survey.h5`` and runs
    the stages of :mod:`clapkit.interpret.pipeline` on it: ``train`` (the
    ``photometry`` and ``images`` models, ``"tiny"`` preset), ``causal``, ``pid`` (two
    input pairs) and ``attribute`` (six test galaxies): what the stellar-mass dashboard
    reads, in about 20 s on one thread. Stages whose results exist are skipped, so the
    same ``root`` may also hold a photo-z or translation run.

    Parameters
    ----------
    root : path-like
        The run directory to fill.
    n : int
        Galaxies of the survey.
    seed : int
        Seeds the survey and the models.
    progress : bool
        Show progress bars.

    Returns
    -------
    Path
        The run directory ``root``.
    """
    from clapkit.interpret import pipeline
    from clapkit.interpret.settings import (
        AttributionSettings,
        CausalSettings,
        MassTrainSettings,
        PIDSettings,
    )

    root = Path(root)
    run = RunDir(root)
    data = run.data_file("interpret_survey")
    if not data.exists():
        root.mkdir(parents=True, exist_ok=True)
        synthetic_mass_survey(n, seed).save(data)
    with single_thread_torch():
        if not run.mass_metrics_path.is_file():
            sets = ("photometry", "images", "images_normalised")
            settings = MassTrainSettings(sets, preset="tiny", seed=seed)
            pipeline.train_stage(data, root, settings, progress=progress)
        if not run.pc_path.is_file():
            settings = CausalSettings(k=8, n_permutations=99, n_bootstrap=2, seed=seed)
            pipeline.causal_stage(data, root, settings, progress=progress)
        if not run.pid_path.is_file():
            pairs = ("photometry_images", "optical_wise")
            settings = PIDSettings(pairs, classifier={"epochs": 15}, seed=seed)
            pipeline.pid_stage(data, root, settings, progress=progress)
        if not run.attribution_summary_path.is_file():
            settings = AttributionSettings(n_galaxies=6, n_steps=8, seed=seed)
            pipeline.attribute_stage(data, root, settings, progress=progress)
    return root


def single_method_attributions(root: str | os.PathLike, method: str | None = None) -> Path:
    """Rewrite a run's attribution results as clapkit wrote them before it checked several
    methods: format version 1, one method's arrays at the root of ``attributions.h5`` and
    its verdict directly under ``randomisation`` in ``summary.json``.

    Parameters
    ----------
    root : path-like
        A run directory with attribution results (``clapkit interpret attribute``).
    method : str, optional
        The method kept; the first stored by default.

    Returns
    -------
    Path
        The run directory ``root``.
    """
    import json

    import h5py

    from clapkit.h5files import mark_complete, write_header
    from clapkit.interpret import results

    run = RunDir(root)
    arrays = results.read_attributions(root)
    method = arrays["method"] if method is None else method
    own = arrays["per_method"][method]
    path = run.attributions_path
    path.unlink()
    with h5py.File(path, "w") as f:
        write_header(f, results.ATTRIBUTION_FORMAT, 1)
        f.attrs["method"] = method
        f.attrs["model"] = arrays["model"]
        for key in ("ids", "images", "edges", "radii", "log_mstar", "predicted_bin"):
            f.create_dataset(key, data=arrays[key])
        for key in ("bands", "galaxy_type"):
            f.create_dataset(key, data=arrays[key].astype("S"))
        for key in results.METHOD_ARRAYS:
            f.create_dataset(key, data=own[key])
        mark_complete(f)
    summary = json.loads(run.attribution_summary_path.read_text())
    check = summary["randomisation"]
    old = {
        "clapkit_version": summary["clapkit_version"],
        "model": summary["model"],
        "method": method,
        "bands": summary["bands"],
        "n_galaxies": summary["n_galaxies"],
        "centre_radius_pixels": summary["centre_radius_pixels"],
        "centre_fraction_by_type": summary["centre_fraction_by_method"][method],
        "randomisation": {**check["per_method"][method], "threshold": check["threshold"]},
    }
    run.attribution_summary_path.write_text(json.dumps(old, indent=2))
    return Path(root)
