"""Stellar-mass estimation with CLAP's machinery, for every input set of the analysis.

The published analysis trains the SCL model with log M* as its target instead of the
redshift, once per input set, and asks why some inputs estimate mass better than others.
Everything of :mod:`clapkit.photoz.clap` carries over unchanged: the target is one scalar
per galaxy binned on a grid (520 bins over log M* = 6–12.5 as published in the ``paper``
preset, 130 on a CPU-sized training set; see :data:`MASS_PRESETS`), the
latent space v_A orders galaxies by it, the adaptive KNN and the refit build calibrated
PDFs from neighbours' known masses, and the harmonic mean combines realisations. So this
module takes *which inputs* each set reads from :mod:`~clapkit.interpret.input_sets`, puts
the catalog's ``log_mstar`` where CLAP reads its target, and stores one model folder per
input set:

``<model_dir>/model.json`` (input set, :class:`~clapkit.photoz.network_inputs.InputSpec`
with the mass grid as its edges, CLAP configuration) and ``r<i>/`` (the realisations).

Input sets (catalog columns of the mock survey; Milky Way reddening E(B−V) always, as in
the paper): ``photometry`` (SDSS ugriz magnitudes and errors), ``photometry_wise`` (+ WISE
W1–W3), ``images`` (the SDSS ugriz stamps), ``images_normalised`` (each band divided by
the galaxy's catalog flux in it: shape without brightness or colour, the images of the
photometry-vs-images decomposition), ``images_wise`` (+ W1–W3 as scalars beside the
images), ``images_wise_z`` (+ the redshift); and, when asked for, the single-band
ablations ``images_band_<b>`` and ``photometry_band_<b>``. The photometry MLP of the paper is CLAP's
MLP encoder on the ``photometry`` columns (``kind="features"``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

import clapkit
from clapkit.atomic import write_json
from clapkit.checks import check_int
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.interpret.input_sets import InputSet, input_set
from clapkit.interpret.mass_metric_names import MASS_METRICS
from clapkit.interpret.results import MassPrediction
from clapkit.metrics import bin_centers, crps, pit, wasserstein_to_uniform
from clapkit.metrics.point import MAD_TO_SIGMA
from clapkit.nets.device import resolve_device
from clapkit.photoz.clap import CLAPConfig, predict_clap, train_clap
from clapkit.photoz.clap_config import PROJECT_VARIANT
from clapkit.photoz.network_inputs import (
    InputSpec,
    NetworkInputs,
    make_input_spec,
    network_inputs,
)
from clapkit.photoz.pipeline import merge
from clapkit.presets import check_preset, current_preset_name

__all__ = [
    "MASS_PRESETS",
    "mass_edges",
    "mass_metric_draws",
    "mass_metrics",
    "predict_mass",
    "train_mass_model",
]

#: The published mass grid: log M* from 6 to 12.5 in 520 bins.
MASS_RANGE = (6.0, 12.5)
N_MASS_BINS = 520
TARGET = "log_mstar"
MODEL_FORMAT = "clapkit.interpret.mass_model"

#: Network and training sizes, named as in :mod:`clapkit.presets`. ``cpu`` is the photo-z
#: ``cpu`` preset with one realisation; ``paper`` the paper's network sizes and grid, but
#: with batch norm in the image encoder, which the published network has not (below);
#: ``tiny`` is for tests.
#:
#: Two departures from the photo-z presets, both measured on 3,000 mock galaxies:
#:
#: - The image encoders use batch norm. Mass needs the absolute flux combined with the
#:   colours (in the mock survey log M* correlates with r at only 0.15, with z at 0.77);
#:   without batch norm the encoder sits on the prior for tens of epochs (validation
#:   σ_MAD stayed at the prior's 0.42 dex for 20 epochs, against 0.19 dex after 9 with it).
#: - ``cpu`` bins the mass in 130 bins of 0.05 dex, not the published 520 of 0.0125. With a
#:   few thousand training galaxies (a handful per fine bin) the validation cross-entropy
#:   that picks the kept epoch rises from the first epochs on, as the estimator grows
#:   overconfident, while the masses still improve: with 520 bins the kept image model
#:   was an untrained one (test σ 0.42 dex), with 130 bins it reaches 0.16.
MASS_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "crop": 16,
        "n_bins": 40,
        "net": {
            "kind": "compact",
            "batch_norm": True,
            "width": 8,
            "rest_dim": 8,
            "latent_dim": 4,
            "estimator_hidden": 16,
        },
        "mlp": {"hidden": [16], "rest_dim": 4, "latent_dim": 4, "estimator_hidden": 16},
        "train": {"epochs": 2, "batch_size": 32},
        # The refit learns from ~100 validation galaxies: small batches, a high rate.
        "clap": {
            "n_realisations": 1,
            "k_min": 3,
            "n_k": 8,
            "refit": {"epochs": 20, "batch_size": 16, "learning_rate": 1e-2},
        },
    },
    "cpu": {
        "crop": 32,
        "n_bins": 130,
        "net": {"kind": "compact", "width": 32, "rest_dim": 64, "batch_norm": True},
        "mlp": {"hidden": [256, 256], "rest_dim": 32},
        "train": {"epochs": 30, "batch_size": 128, "learning_rate": 2e-3},
        "clap": {"n_realisations": 1, "refit": {"epochs": 40, "batch_size": 64}},
    },
    "paper": {
        "crop": 64,
        "n_bins": N_MASS_BINS,
        "net": {"kind": "paper", "width": 64, "rest_dim": 512, "batch_norm": True},
        "mlp": {"hidden": [512, 512, 512], "rest_dim": 64},
        "train": {"epochs": 60, "batch_size": 128, "learning_rate": 1e-3},
        "clap": {"n_realisations": 5, "refit": {"epochs": 50, "batch_size": 128}},
    },
}
#: SCL loss weights by input kind: the paper's reconstruction weight c = 100 suits
#: sign-log pixels; on standardised catalog features it drowns the target terms (see
#: :data:`clapkit.photoz.pipeline.PRESETS`).
_LOSS = {"images": {}, "features": {"reconstruction": 1.0}}


def mass_edges(n_bins: int = N_MASS_BINS, mass_range: tuple[float, float] = MASS_RANGE):
    """Bin edges of the log M* grid.

    Examples
    --------
    >>> e = mass_edges()
    >>> e.size, float(e[0]), float(e[-1]), round(float(e[1] - e[0]), 4)
    (521, 6.0, 12.5, 0.0125)
    """
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    lo, hi = (float(v) for v in mass_range)
    if not lo < hi:
        raise ValidationError(f"mass_range must be increasing, got {mass_range}")
    return np.linspace(lo, hi, n_bins + 1)


def resolve_settings(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> dict:
    """A preset of :data:`MASS_PRESETS` with ``overrides`` merged in (unknown keys refused)."""
    check_preset(preset, "stellar-mass")
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(MASS_PRESETS[preset])
    if unknown:
        raise ValidationError(
            f"unknown stellar-mass settings {sorted(unknown)}; known: {sorted(MASS_PRESETS[preset])}"
        )
    return {"preset": preset, **merge(MASS_PRESETS[preset], overrides)}


def _clap_config(settings: dict[str, Any], kind: str) -> CLAPConfig:
    net = settings["mlp"] if kind == "features" else settings["net"]
    # The mass models keep the CLAP their numbers were measured with (refit on the
    # validation galaxies, so a trained model predicts any galaxies without retraining).
    return CLAPConfig(
        **{
            **PROJECT_VARIANT,
            **settings["clap"],
            "net": {**net, "kind": "mlp" if kind == "features" else net["kind"]},
            "train": settings["train"],
            "loss": _LOSS[kind],
        }
    )


def check_masses(galaxies: GalaxySet, edges: NDArray, *, what: str = "data") -> NDArray:
    """The catalog's ``log_mstar``, refused if missing, not finite or off the grid."""
    if TARGET not in galaxies.catalog.colnames:
        raise ValidationError(f"{what}: the catalog has no {TARGET!r} column to train on")
    mass = np.asarray(galaxies.catalog[TARGET], dtype=np.float64)
    bad = ~np.isfinite(mass) | (mass < edges[0]) | (mass > edges[-1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"{what}: {TARGET} of galaxy id {galaxies.ids[row]} (row {row}) is {mass[row]}, "
            f"outside the grid [{edges[0]}, {edges[-1]}] ({int(bad.sum())} such galaxies)"
        )
    return mass


def _inputs(spec: InputSpec, galaxies: GalaxySet, mass: NDArray | None) -> NetworkInputs:
    """Network inputs whose target slot (``z``, as CLAP calls it) holds the mass."""
    inputs = network_inputs(spec, galaxies)
    target = np.full(len(galaxies), np.nan) if mass is None else mass
    return NetworkInputs(inputs.x, inputs.extra, target, inputs.ids)


def _check_columns(galaxies: GalaxySet, chosen: InputSet, what: str) -> None:
    missing = [
        c for c in (*chosen.columns, *chosen.flux_columns) if c not in galaxies.catalog.colnames
    ]
    if missing:
        raise ValidationError(
            f"{what}: input set {chosen.name!r} reads catalog columns {missing}, which are missing"
        )
    if chosen.flux_columns and chosen.instrument in galaxies.stacks:
        bands = galaxies.stacks[chosen.instrument].bands
        expected = tuple(f"mag_{band}" for band in bands)
        if chosen.flux_columns != expected:
            raise ValidationError(
                f"{what}: input set {chosen.name!r} divides the {chosen.instrument!r} bands "
                f"{list(bands)} by the fluxes {list(chosen.flux_columns)}; expected {list(expected)}"
            )
    if chosen.kind == "images" and chosen.instrument not in galaxies.stacks:
        raise ValidationError(
            f"{what}: input set {chosen.name!r} reads {chosen.instrument!r} images; the data "
            f"has stacks {sorted(galaxies.stacks)}"
        )


def train_mass_model(
    galaxies: GalaxySet,
    name: str,
    model_dir: str | os.PathLike,
    *,
    preset: str = "cpu",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    device: str | None = None,
) -> Path:
    """Train the stellar-mass model of input set ``name`` on ``galaxies``' train split.

    Parameters
    ----------
    galaxies : GalaxySet
        With ``train`` and ``valid`` splits (the refit learns from the validation
        galaxies' KNN PDFs, as for redshifts) and a ``log_mstar`` column.
    name : str
        One of :data:`~clapkit.interpret.input_sets.INPUT_SETS`.
    model_dir : path-like
        Where the model goes; a model folder already there resumes (finished
        realisations are kept), one of another input set or settings is refused.
    preset, overrides : see :data:`MASS_PRESETS`
    seed : int
    device : str, optional
        Where the networks train: ``"cpu"`` (the default), ``"cuda"`` or ``"auto"``. It is
        not a setting of the model: training may resume on another device.

    Returns
    -------
    pathlib.Path
        ``model_dir``.

    Examples
    --------
    >>> import tempfile
    >>> from clapkit.testing import synthetic_mass_survey
    >>> folder = train_mass_model(synthetic_mass_survey(80), "photometry",
    ...                           tempfile.mkdtemp(), preset="tiny")
    >>> sorted(p.name for p in folder.iterdir())
    ['model.json', 'r0']
    """
    chosen = input_set(name)
    settings = resolve_settings(preset, overrides)
    if device is not None:
        resolve_device(device)  # refused before anything is written
    _check_columns(galaxies, chosen, "training data")
    edges = mass_edges(settings["n_bins"])
    train, valid = galaxies.split("train"), galaxies.split("valid")
    if len(train) == 0 or len(valid) == 0:
        raise ValidationError(
            f"training data: a stellar-mass model needs train and valid galaxies; the splits "
            f"hold {len(train)} and {len(valid)}"
        )
    train_mass = check_masses(train, edges, what="train split")
    valid_mass = check_masses(valid, edges, what="valid split")
    if chosen.kind == "features":
        spec = make_input_spec(train, edges, features=list(chosen.columns))
    else:
        spec = make_input_spec(
            train,
            edges,
            instrument=chosen.instrument,
            crop=settings["crop"],
            extra_columns=chosen.columns,
            flux_columns=chosen.flux_columns,
            bands=chosen.bands or None,
        )
    config = _clap_config(settings, chosen.kind)
    model_dir = Path(model_dir)
    record = {
        "format": MODEL_FORMAT,
        "version": 1,
        "clapkit_version": clapkit.__version__,
        "input_set": chosen.name,
        "target": TARGET,
        "settings": settings,
        "seed": seed,
        "spec": spec.to_dict(),
        "clap": config.to_dict(),
    }
    path = model_dir / "model.json"
    if path.is_file():
        previous = read_model(model_dir)
        # Models trained before clapkit.presets record the preset "gpu" (now "paper").
        recorded = {**previous["settings"]}
        recorded["preset"] = current_preset_name(recorded.get("preset"))
        same = recorded == settings and all(
            previous[key] == record[key] for key in ("input_set", "seed")
        )
        if not same:
            raise ValidationError(
                f"{model_dir} holds a {previous['input_set']!r} model with other settings; "
                "choose another folder or remove it"
            )
    else:
        model_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, record)
    train_clap(
        model_dir,
        spec,
        config,
        _inputs(spec, train, train_mass),
        _inputs(spec, valid, valid_mass),
        seed=seed,
        progress=progress,
        device=device,
    )
    return model_dir


def read_model(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a stellar-mass model folder, checked."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise FileFormatError(f"{path}: no stellar-mass model here (model.json missing)")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FileFormatError(f"{path}: not readable JSON ({err})") from err
    if record.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: not a clapkit stellar-mass model")
    return record


def predict_mass(
    model_dir: str | os.PathLike,
    galaxies: GalaxySet,
    *,
    progress: bool = False,
    device: str | None = None,
) -> MassPrediction:
    """PDFs, point estimates and latent vectors of ``galaxies`` from a trained model (the
    networks encode on ``device``, the CPU by default).

    Parameters
    ----------
    model_dir : path-like
        Folder written by :func:`train_mass_model`.
    galaxies : GalaxySet
        The galaxies to estimate, with the columns and images the model was trained on.
    progress : bool
        Show a progress bar.
    device : str, optional
        Where the networks encode (``"cpu"``, ``"cuda"``, ``"auto"``); the CPU by default.

    Returns
    -------
    MassPrediction

    Examples
    --------
    >>> import tempfile
    >>> from clapkit.testing import synthetic_mass_survey
    >>> survey = synthetic_mass_survey(80)
    >>> folder = train_mass_model(survey, "photometry", tempfile.mkdtemp(), preset="tiny")
    >>> prediction = predict_mass(folder, survey.split("test"))
    >>> prediction.pdfs.shape == (len(survey.split("test")), 40)
    True
    """
    record = read_model(model_dir)
    spec = InputSpec.from_dict(record["spec"])
    config = CLAPConfig(**record["clap"])
    chosen = input_set(record["input_set"])
    _check_columns(galaxies, chosen, "data")
    edges = np.asarray(spec.edges)
    mass = (
        np.asarray(galaxies.catalog[TARGET], dtype=np.float64)
        if TARGET in galaxies.catalog.colnames
        else np.full(len(galaxies), np.nan)
    )
    # The analysis reads only the final (refitted, ensembled) PDFs and the latent space.
    inputs = _inputs(spec, galaxies, None)
    result = predict_clap(
        model_dir, spec, config, inputs, progress, knn_stages=False, device=device
    )
    return MassPrediction(
        input_set=chosen.name,
        ids=np.asarray(galaxies.ids),
        edges=edges,
        pdfs=result.pdfs["clap"],
        latent=result.latent,
        true=mass,
        split=(
            np.asarray(galaxies.catalog["split"]).astype(str)
            if "split" in galaxies.catalog.colnames
            else None
        ),
    )


def mass_metrics(
    pdfs: ArrayLike, edges: ArrayLike, true: ArrayLike, *, outlier_dex: float = 0.3
) -> dict[str, float]:
    """Point and PDF metrics of stellar-mass estimates, in dex.

    With Δ = log M*_est − log M*_true (the PDF mean): ``sigma`` = 1.4826·median|Δ − median Δ|
    (σ_MAD, as for redshifts but without the 1 + z), ``median_offset`` = median Δ (not
    called bias: photo-z's bias is the mean of δz), ``rms``,
    ``outlier_fraction`` (|Δ| > ``outlier_dex``), mean ``crps`` (dex) and ``pit_w1`` (the
    1-Wasserstein distance of the PIT values to uniform).

    Parameters
    ----------
    pdfs : array, shape (N, B)
        Probabilities over the bins of log M*.
    edges : array, shape (B + 1,)
        The bin edges (dex).
    true : array, shape (N,)
        True log M*.
    outlier_dex : float
        |Δ| above which a galaxy is an outlier.

    Returns
    -------
    dict
        ``sigma``, ``median_offset``, ``rms``, ``outlier_fraction``, ``crps`` and
        ``pit_w1`` (see :mod:`clapkit.interpret.mass_metric_names`).

    Examples
    --------
    >>> edges = np.linspace(9.0, 12.0, 31)
    >>> p = np.zeros((2, 30)); p[:, 10] = 1.0  # both PDFs in the bin 10.0-10.1
    >>> m = mass_metrics(p, edges, [10.05, 10.25])
    >>> round(m["median_offset"], 3), m["outlier_fraction"]
    (-0.1, 0.0)
    """
    parts = _per_galaxy(pdfs, edges, true)
    return _summary(parts, np.arange(parts["delta"].size), outlier_dex)


def mass_metric_draws(
    pdfs: ArrayLike,
    edges: ArrayLike,
    true: ArrayLike,
    draws: ArrayLike,
    *,
    outlier_dex: float = 0.3,
) -> dict[str, NDArray[np.float64]]:
    """Every metric of :func:`mass_metrics` recomputed on each bootstrap draw of galaxies.

    The per-galaxy quantities (Δ, CRPS, PIT) are computed once and each draw picks its
    galaxies from them, so the same ``draws`` give paired values for two models scored on
    the same galaxies: their difference, draw by draw, is the paired bootstrap of the
    difference (:func:`clapkit.metrics.bootstrap.bootstrap_draws` makes the draws).

    Parameters
    ----------
    pdfs, edges, true
        As for :func:`mass_metrics`.
    draws : array of int, shape (R, N)
        Galaxy indices of R resamples.
    outlier_dex : float
        |Δ| above which a galaxy is an outlier.

    Returns
    -------
    dict
        ``{metric: array of shape (R,)}``.

    Examples
    --------
    >>> from clapkit.metrics.bootstrap import bootstrap_draws, percentile_interval
    >>> rng = np.random.default_rng(0)
    >>> edges = np.linspace(8.0, 12.0, 201)
    >>> true = rng.uniform(9.5, 10.5, 400)
    >>> p = np.zeros((400, 200)); p[np.arange(400), np.digitize(true, edges) - 1] = 1.0
    >>> values = mass_metric_draws(p, edges, true, bootstrap_draws(400, 200, seed=1))
    >>> values["sigma"].shape, bool(values["outlier_fraction"].max() == 0.0)
    ((200,), True)
    """
    parts = _per_galaxy(pdfs, edges, true)
    index = np.asarray(draws)
    n = parts["delta"].size
    if (
        index.ndim != 2
        or index.shape[1] != n
        or (index.size and (index.min() < 0 or index.max() >= n))
    ):
        raise ValidationError(
            f"draws of shape {index.shape} do not resample {n} galaxies: expected (R, {n}) "
            f"indices in 0..{n - 1}"
        )
    rows = [_summary(parts, one, outlier_dex) for one in index]
    return {key: np.array([row[key] for row in rows]) for key in MASS_METRICS}


def _per_galaxy(pdfs: ArrayLike, edges: ArrayLike, true: ArrayLike) -> dict[str, NDArray]:
    """Δ, CRPS and PIT of every galaxy: what the metrics summarise."""
    p = np.asarray(pdfs, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != true.size or p.shape[1] != edges.size - 1:
        raise ValidationError(
            f"pdfs {p.shape}, edges {edges.shape} and true {true.shape} do not match: expected "
            "(N, B), (B + 1,) and (N,)"
        )
    if not np.all(np.isfinite(true)):
        raise ValidationError("true masses must be finite to score the estimates")
    return {
        "delta": p @ bin_centers(edges) - true,
        "crps": np.asarray(crps(p, edges, true), dtype=np.float64),
        "pit": np.asarray(pit(p, edges, true), dtype=np.float64),
    }


def _summary(parts: dict[str, NDArray], rows: NDArray, outlier_dex: float) -> dict[str, float]:
    delta = parts["delta"][rows]
    median = float(np.median(delta))
    return {
        "sigma": float(MAD_TO_SIGMA * np.median(np.abs(delta - median))),
        "median_offset": median,
        "rms": float(np.sqrt(np.mean(delta**2))),
        "outlier_fraction": float(np.mean(np.abs(delta) > outlier_dex)),
        "crps": float(np.mean(parts["crps"][rows])),
        "pit_w1": float(wasserstein_to_uniform(parts["pit"][rows])),
    }
