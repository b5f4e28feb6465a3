"""Train and predict every photo-z method through a run directory.

``train_run`` reads a GalaxySet file (its ``split`` column: ``train``, ``valid``), freezes
the inputs (:class:`~clapkit.photoz.network_inputs.InputSpec`) and the redshift grid, and
trains the methods that :class:`PhotoZTrainSettings` names into ``<run>/models/<method>/``. ``predict_run`` applies them
to the galaxies of a data file (its ``test`` split by default) and writes
``<run>/pdfs/<method>.h5`` — CLAP as ``clap_scl``, ``clap_raw``, ``clap_recal``,
``clap_refit`` and ``clap``, each with the galaxies' ``novelty`` percentile — plus ``<run>/clap/knn.h5``, what the dashboards show of CLAP's neighbours.

``<run>/train.json`` records the clapkit version, the configuration, the input spec and,
per method, whether it finished and how long it took: a second ``train_run`` with the
same settings skips finished methods and resumes unfinished ones from their checkpoints;
different settings are refused unless ``overwrite``, which sets the old training aside
and deletes it only once the new one has finished (:mod:`~clapkit.photoz.training_state`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import vstack

from clapkit.atomic import atomic_path, check_writable, write_json
from clapkit.checks import check_int, check_names, check_number
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header
from clapkit.metrics import PDFs
from clapkit.nets.device import resolve_device
from clapkit.photoz.baselines import KNNPhotoZ, select_k
from clapkit.photoz.clap import STAGES, CLAPConfig, check_targets, predict_clap, train_clap
from clapkit.photoz.details import write_clap_details
from clapkit.photoz.features import default_edges, photometry_features
from clapkit.photoz.flexzboost import check_options as check_flexzboost_options
from clapkit.photoz.flexzboost import predict_flexzboost, require_rail, train_flexzboost
from clapkit.photoz.neighbours import check_neighbour_search
from clapkit.photoz.network_baselines import (
    NETWORK_BASELINES,
    BaselineConfig,
    predict_baseline,
    train_baseline,
)
from clapkit.photoz.network_inputs import (
    InputSpec,
    NetworkInputs,
    check_compatible,
    make_input_spec,
    network_inputs,
)
from clapkit.photoz.nondetections import Nondetections, check_no_sentinels
from clapkit.photoz.projection import PROJECTIONS, project_latent
from clapkit.photoz.training_state import TrainingRun, replacing_training
from clapkit.presets import DEFAULT_PRESET, check_preset, current_preset_name
from clapkit.runs import RunDir
from clapkit.settings import Settings

#: Every method ``--method`` knows; ``all`` is clapkit's own (the peers need their extras).
METHODS = ("clap", *NETWORK_BASELINES, "knn_photometry", "flexzboost")
OWN_METHODS = ("clap", *NETWORK_BASELINES, "knn_photometry")
#: The column photo-z estimates: refused among the features.
TARGET_COLUMN = "z"

#: Settings of the three sizes of :mod:`clapkit.presets`; a ``--config`` file overrides any
#: part of them. ``tiny`` trains the whole pipeline in seconds (tests, smoke runs); ``cpu``
#: (the default) uses the compact CNN; ``paper`` the published inception encoder and
#: network sizes, though it trains by epochs kept at the best validation loss rather than
#: the published 150,000 batches of 64 (see :mod:`clapkit.photoz.clap_config`).
#: ``clap.loss`` weighs the SCL terms on images (the paper's c = 100 for the
#: reconstruction of sign-log pixels, mostly sky near 0); ``mlp_loss`` overrides it for
#: catalog features, which are standardised to unit variance: there a reconstruction
#: weight of 100 drowns the redshift terms (measured: validation cross-entropy no better
#: than uniform after 10 epochs, against 1.1 with a weight of 1).
#:
#: The compact CNN (``cpu``) uses batch norm (the ``paper`` inception network does not, as
#: published). In the 30 epochs a CPU affords, the published SCL loss — three image
#: reconstructions weighted 100 — leaves the plain network under-trained: on 3,000 mock
#: galaxies one CLAP realisation's SCL softmax had σ_MAD 0.0317 and 20% outliers without
#: batch norm, 0.0189 and 5% with it; the softmax baseline (same encoder) 0.0205 and 0.0179.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "crop": 12,
        "seed": 0,
        "net": {
            "kind": "compact",
            "width": 4,
            "rest_dim": 8,
            "batch_norm": True,
            "estimator_hidden": 32,
        },
        "mlp": {"hidden": [32], "rest_dim": 4, "estimator_hidden": 32},
        "mlp_loss": {"reconstruction": 1.0},
        "train": {"epochs": 3, "batch_size": 32, "learning_rate": 3e-3},
        "clap": {
            "n_realisations": 2,
            "k_min": 3,
            "k_max": 40,
            "n_k": 8,
            "max_k_fraction": 0.25,
            "n_pit_bins": 10,
            "refit": {"epochs": 3, "batch_size": 32},
        },
        "baselines": {"ensemble_size": 2, "mc_samples": 4},
        "knn_photometry": {"candidates": [5, 10, 20, 40, 80]},
        # RAIL's FlexZBoost with a small search and small trees: seconds, not minutes.
        "flexzboost": {
            "nbump": 3,
            "nsharp": 3,
            "max_basis": 15,
            "regression_params": {
                "max_depth": 3,
                "n_estimators": 30,
                "objective": "reg:squarederror",
            },
        },
        "projection": "pca",
    },
    "cpu": {
        "crop": 32,
        "seed": 0,
        "net": {"kind": "compact", "width": 32, "rest_dim": 64, "batch_norm": True},
        "mlp": {"hidden": [256, 256], "rest_dim": 32},
        "mlp_loss": {"reconstruction": 1.0},
        "train": {"epochs": 30, "batch_size": 128, "learning_rate": 2e-3},
        "clap": {"n_realisations": 3, "refit": {"epochs": 60, "batch_size": 64}},
        "baselines": {"ensemble_size": 3},
        "knn_photometry": {"candidates": [5, 10, 20, 40, 80]},
        # RAIL's FlexZBoost informer: its own defaults (see clapkit.photoz.flexzboost).
        "flexzboost": {},
        "projection": "umap",
    },
    "paper": {
        "crop": 64,
        "seed": 0,
        "net": {"kind": "paper", "width": 64, "rest_dim": 512},
        "mlp": {"hidden": [512, 512, 512], "rest_dim": 64},
        "mlp_loss": {"reconstruction": 1.0},
        "train": {"epochs": 60, "batch_size": 128, "learning_rate": 1e-3},
        "clap": {"n_realisations": 10, "refit": {"epochs": 50, "batch_size": 128}},
        "baselines": {"ensemble_size": 5},
        "knn_photometry": {"candidates": [5, 10, 20, 40, 80]},
        "flexzboost": {},
        "projection": "umap",
    },
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` applied recursively (dicts merge, other values replace).

    Examples
    --------
    >>> merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}, 'b': 1}
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_config(override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration: the preset named in ``override`` (default ``cpu``, see
    :mod:`clapkit.presets`) with ``override`` applied; unknown top-level keys are refused."""
    override = dict(override or {})
    preset = check_preset(override.pop("preset", DEFAULT_PRESET), "photo-z")
    unknown = set(override) - set(PRESETS[preset])
    if unknown:
        raise ValidationError(
            f"unknown configuration keys {sorted(unknown)}; known: {sorted(PRESETS[preset])}"
        )
    config = {"preset": preset, **merge(PRESETS[preset], override)}
    if config["projection"] not in PROJECTIONS:
        raise ValidationError(
            f"projection must be one of {PROJECTIONS}, got {config['projection']!r}"
        )
    _method_configs(config, "images")  # validate early
    _method_configs(config, "features")
    check_flexzboost_options(config["flexzboost"])
    knn_photometry_search(config["knn_photometry"])
    return config


def _method_configs(config: dict[str, Any], kind: str) -> tuple[CLAPConfig, BaselineConfig]:
    net = config["net"] if kind == "images" else {"kind": "mlp", **config["mlp"]}
    clap_options = dict(config["clap"])
    if kind == "features":
        clap_options["loss"] = {**clap_options.get("loss", {}), **config["mlp_loss"]}
    clap = CLAPConfig(**{"train": config["train"], **clap_options, "net": net})
    base = BaselineConfig(**{"train": config["train"], **config["baselines"], "net": net})
    return clap, base


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``--config`` JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileFormatError(f"{path}: config file not found") from err
    except IsADirectoryError as err:
        raise FileFormatError(f"{path}: a directory; the config is a JSON file") from err
    except UnicodeDecodeError as err:
        raise FileFormatError(f"{path}: not a text file ({err.reason})") from err
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: the config must be a JSON object")
    return data


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """A comma-separated string or a list of methods, checked against :data:`METHODS`;
    ``all`` stands for clapkit's own methods (:data:`OWN_METHODS`).

    Examples
    --------
    >>> parse_methods("all,flexzboost")[-2:], parse_methods("softmax, clap,softmax")
    (['knn_photometry', 'flexzboost'], ['softmax', 'clap'])
    """
    if isinstance(methods, str):
        methods = methods.split(",")
    names: list[str] = []
    for name in (m.strip() for m in methods):
        expanded = OWN_METHODS if name == "all" else [name]
        names += [m for m in expanded if m and m not in names]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ValidationError(f"unknown methods {unknown}; choose from {list(METHODS)} or 'all'")
    return names


# ----------------------------------------------------------------------------- data


def load_galaxies(path: str | os.PathLike) -> GalaxySet:
    """Open a GalaxySet file, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: data file not found")
    return GalaxySet.load(path)


def _split(galaxies: GalaxySet, name: str, path: Any) -> GalaxySet:
    if "split" not in galaxies.catalog.colnames:
        raise ValidationError(
            f"{path}: the catalog has no 'split' column (train/valid/test); "
            "assign one with GalaxySet.with_splits or `clapkit simulate`"
        )
    labels = np.asarray(galaxies.catalog["split"]).astype(str)
    return galaxies[np.flatnonzero(labels == name)]


@dataclass(frozen=True)
class PhotoZTrainSettings(Settings):
    """What ``clapkit train`` trains, on which inputs and on which redshift grid.

    Checked when made, before any file is read; :meth:`resolved_config` is the full
    configuration that ``train.json`` records.

    Parameters
    ----------
    methods : str or sequence of str
        Names from :data:`METHODS`, comma-separated, or ``"all"``; stored as a tuple.
    config : dict, optional
        Settings that override the preset's (``{"preset": "paper"}`` picks the preset;
        see :data:`PRESETS`).
    features : sequence of str, optional
        Catalog columns to use instead of images (never ``z``).
    instrument : str, optional
        The image stack (default: ``sdss`` or the only one).
    z_max : float, optional
        Upper edge of the redshift grid; by default the largest training redshift rounded
        up to 0.1.
    n_bins : int
        Bins of the redshift grid.
    nondetect : float, optional
        The catalog's non-detection magnitude (e.g. 99): such magnitudes of catalog
        features are replaced by the band's limit, as RAIL does
        (:mod:`~clapkit.photoz.nondetections`); without it they are refused.
    mag_limits : dict of str to float, optional
        Limiting magnitude of each band (``{"mag_u": 22.0}``), for ``nondetect``.

    Examples
    --------
    >>> PhotoZTrainSettings("clap,softmax", config={"preset": "tiny"}).methods
    ('clap', 'softmax')
    >>> PhotoZTrainSettings(features=["mag_r", "z"])
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: features: column 'z' is the redshift being estimated; it cannot be a feature
    """

    methods: tuple[str, ...] = ("clap",)
    config: dict[str, Any] | None = None
    features: tuple[str, ...] | None = None
    instrument: str | None = None
    z_max: float | None = None
    n_bins: int = 180
    nondetect: float | None = None
    mag_limits: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self._set("methods", tuple(parse_methods(self.methods)))
        if self.config is not None and not isinstance(self.config, dict):
            raise ValidationError(f"config must be a dict of settings, got {self.config!r}")
        self._set("config", copy.deepcopy(self.config))
        self.resolved_config()  # unknown keys and bad values refused now
        if self.features is not None:
            features = check_names(self.features, "features")
            if TARGET_COLUMN in features:
                raise ValidationError(
                    f"features: column {TARGET_COLUMN!r} is the redshift being estimated; it "
                    "cannot be a feature"
                )
            self._set("features", features)
        if self.instrument is not None and not isinstance(self.instrument, str):
            raise ValidationError(f"instrument must be a name, got {self.instrument!r}")
        if self.z_max is not None:
            self._set("z_max", check_number(self.z_max, "z_max", above=0))
        self._set("n_bins", check_int(self.n_bins, "n_bins", 2))
        if self.nondetect is not None:
            self._set("nondetect", check_number(self.nondetect, "nondetect"))
        if self.mag_limits and self.nondetect is None:
            raise ValidationError("--mag-limits needs --nondetect (the catalog's sentinel value)")
        if self.mag_limits is not None:
            limits = {
                str(k): check_number(v, f"mag_limits[{k!r}]") for k, v in self.mag_limits.items()
            }
            self._set("mag_limits", limits)

    def resolved_config(self) -> dict[str, Any]:
        """The preset named in :attr:`config` with :attr:`config` applied
        (:func:`resolve_config`)."""
        return resolve_config(self.config)

    def nondetections(self) -> Nondetections | None:
        """How non-detections are replaced, or None when they are refused."""
        if self.nondetect is None:
            return None
        return Nondetections(self.nondetect, dict(self.mag_limits or {}))


@dataclass
class _TrainingData:
    """What every method trains on: the splits, the grid, the inputs (read and checked)."""

    train: GalaxySet
    valid: GalaxySet
    edges: np.ndarray
    spec: InputSpec
    train_inputs: NetworkInputs
    valid_inputs: NetworkInputs


def train_run(
    data: str | os.PathLike,
    run: str | os.PathLike | RunDir,
    settings: PhotoZTrainSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
    device: str | None = None,
) -> dict[str, Any]:
    """Train the settings' methods on the ``train`` split of ``data`` into the run directory.

    Every input is read and checked before the run directory is touched. A finished
    method of the same settings is kept; an unfinished one resumes from its checkpoints.

    Parameters
    ----------
    data : path-like
        GalaxySet file with ``z`` and a ``split`` column.
    run : path-like or RunDir
        The run directory.
    settings : PhotoZTrainSettings, optional
        Methods, configuration, inputs and grid; the defaults (CLAP, ``cpu`` preset,
        images) when None.
    overwrite : bool
        Replace a different training in ``run``.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step.
    device : str, optional
        Where the networks train (``"cpu"`` by default, ``"cuda"``, ``"auto"``); not a
        setting of the run, so a killed run may resume elsewhere.

    Returns
    -------
    dict
        The ``train.json`` record.

    Examples
    --------
    >>> settings = PhotoZTrainSettings("clap,softmax", config={"preset": "tiny"})
    >>> train_run("survey.h5", "runs/photoz", settings)  # doctest: +SKIP
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    settings = PhotoZTrainSettings() if settings is None else settings
    config = settings.resolved_config()
    if device is not None:
        resolve_device(device)  # refused before anything is read or written
    if "flexzboost" in settings.methods:
        require_rail()
    inputs = _training_data(data, settings, config, progress, log)
    clap_config, base_config = _method_configs(config, inputs.spec.kind)
    if "clap" in settings.methods:
        clap_config.check_sizes(len(inputs.train_inputs), len(inputs.valid_inputs))
    recorded = {"config": config, "input_spec": inputs.spec.to_dict()}
    tracker = TrainingRun(run)
    record, replace = _earlier_training(run, tracker, recorded, overwrite)
    with replacing_training(run, replace):
        if record is None:
            run.root.mkdir(parents=True, exist_ok=True)
            record = {"data": str(data), **recorded, "methods": {}}
            tracker.write(record)
        for method in _with_dependencies(list(settings.methods)):
            if record["methods"].get(method, {}).get("status") == "done":
                log(f"{method}: already trained, kept")
                continue
            start = time.perf_counter()
            _train_method(method, run, inputs, config, (clap_config, base_config), progress, device)
            seconds = time.perf_counter() - start
            record["methods"][method] = {"status": "done", "train_seconds": seconds}
            tracker.write(record)
            log(f"{method}: trained in {seconds:.0f} s")
    return record


def _training_data(
    data: str | os.PathLike,
    settings: PhotoZTrainSettings,
    config: dict[str, Any],
    progress: bool,
    log: Callable[[str], None],
) -> _TrainingData:
    """The train and valid splits of ``data``, the redshift grid and the network inputs."""
    galaxies = load_galaxies(data)
    train, valid = _split(galaxies, "train", data), _split(galaxies, "valid", data)
    if len(train) == 0:
        raise ValidationError(f"{data}: the training split is empty")
    if "z" not in galaxies.catalog.colnames:
        raise ValidationError(f"{data}: the catalog has no redshift column 'z'")
    train_z = np.asarray(train.catalog["z"], dtype=np.float64)
    if not np.all(np.isfinite(train_z)):
        raise ValidationError(f"{data}: column z is not finite in the training split")
    z_max = settings.z_max
    if z_max is None:  # the grid holds every training redshift
        z_max = max(0.1, float(np.ceil(train_z.max() * 10) / 10))
    edges = default_edges(train_z, n_bins=settings.n_bins, z_max=z_max)
    spec = make_input_spec(
        train,
        edges,
        features=None if settings.features is None else list(settings.features),
        instrument=settings.instrument,
        crop=config["crop"],
        nondetect=settings.nondetections(),
    )
    log(f"inputs: {_describe(spec)}; train {len(train)}, valid {len(valid)} galaxies")
    train_inputs = network_inputs(spec, train, require_z=True, progress=progress)
    valid_inputs = network_inputs(spec, valid, require_z=True, progress=progress)
    return _TrainingData(train, valid, edges, spec, train_inputs, valid_inputs)


def _earlier_training(
    run: RunDir, tracker: TrainingRun, recorded: dict[str, Any], overwrite: bool
) -> tuple[dict[str, Any] | None, bool]:
    """The record of an earlier training of the same settings to resume (or None), and
    whether an earlier training is to be replaced; refused unless ``overwrite`` when it
    differs."""
    if tracker.exists() and not overwrite:
        record = tracker.read()
        earlier = {k: record.get(k) for k in recorded}
        if isinstance(earlier["config"], dict):  # runs before clapkit.presets: "compact"
            preset = current_preset_name(earlier["config"].get("preset"))
            earlier["config"] = {**earlier["config"], "preset": preset}
        if earlier != recorded:
            raise OverwriteError(
                f"{run.root} holds a training with other settings (config or inputs); "
                "use --overwrite to replace it"
            )
        return record, False
    if run.pdfs_dir.is_dir() and any(run.pdfs_dir.iterdir()) and not overwrite:
        raise OverwriteError(f"{run.root} already holds PDFs; use --overwrite to replace them")
    return None, overwrite


def _train_method(
    method: str,
    run: RunDir,
    inputs: _TrainingData,
    config: dict[str, Any],
    method_configs: tuple[CLAPConfig, BaselineConfig],
    progress: bool,
    device: str | None,
) -> None:
    """Train one method into ``run.model_dir(method)``."""
    folder, spec, seed = run.model_dir(method), inputs.spec, int(config["seed"])
    clap_config, base_config = method_configs
    if method == "clap":
        train_clap(
            folder,
            spec,
            clap_config,
            inputs.train_inputs,
            inputs.valid_inputs,
            seed,
            progress,
            device,
        )
    elif method == "knn_photometry":
        _train_knn_photometry(folder, spec, config, inputs.train, inputs.valid, inputs.edges)
    elif method == "flexzboost":
        _train_flexzboost(folder, spec, config, inputs.train, inputs.valid, inputs.edges)
    else:
        train_baseline(
            method,
            folder,
            spec,
            base_config,
            inputs.train_inputs,
            inputs.valid_inputs,
            seed,
            softmax_dir=run.model_dir("softmax"),
            progress=progress,
            device=device,
        )


def _with_dependencies(names: list[str]) -> list[str]:
    # The ensemble and the temperature scaling reuse the softmax network.
    ordered = []
    for name in names:
        if name in ("ensemble", "temperature") and "softmax" not in ordered:
            ordered.append("softmax")
        if name not in ordered:
            ordered.append(name)
    return ordered


def _describe(spec: InputSpec) -> str:
    if spec.kind == "images":
        return (
            f"{spec.instrument} images {''.join(spec.bands)} cut to {spec.crop}x{spec.crop} "
            f"+ {spec.columns}, {spec.n_bins} bins on [{spec.edges[0]}, {spec.edges[-1]}]"
        )
    return f"catalog features {spec.columns}, {spec.n_bins} bins on [{spec.edges[0]}, {spec.edges[-1]}]"


# ----------------------------------------------------------------------------- KNN photometry


def _photometry_bands(spec: InputSpec, galaxies: GalaxySet) -> list[str]:
    if spec.kind == "images":
        bands = list(spec.bands)
    else:  # the bands of the magnitudes the features read (colours a-b read a and b)
        sources = [c for name in spec.columns for c in name.split("-")]
        bands = list(dict.fromkeys(c[len("mag_") :] for c in sources if c.startswith("mag_")))
    missing = [b for b in bands if f"mag_{b}" not in galaxies.catalog.colnames]
    if len(bands) < 2 or missing:
        raise ValidationError(
            "the photometry methods (knn_photometry, flexzboost) need mag_* columns of at "
            f"least two bands; missing {missing}"
        )
    return bands


def knn_photometry_search(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The photometry KNN's neighbour search from its settings (``neighbour_search``,
    default ``exact``, and ``neighbour_options``), checked: (method, options).

    Examples
    --------
    >>> knn_photometry_search({"candidates": [5]})
    ('exact', {})
    """
    method = options.get("neighbour_search", "exact")
    try:
        return method, check_neighbour_search(method, options.get("neighbour_options"))
    except ValidationError as err:
        raise ValidationError(f"knn_photometry: {err}") from err


def _knn_features(galaxies: GalaxySet, bands: list[str], spec: InputSpec) -> np.ndarray:
    """Colours and the r magnitude, non-detections handled as the spec says."""
    reference = "r" if "r" in bands else bands[-1]
    columns = [f"mag_{b}" for b in bands]
    policy = Nondetections.from_dict(spec.nondetect)
    catalog = galaxies.catalog
    if policy is not None:
        catalog = policy.apply(catalog, columns, np.asarray(galaxies.ids))
    check_no_sentinels(catalog, columns, np.asarray(galaxies.ids))
    return photometry_features(catalog, bands=bands, reference=reference)[0]


def _train_knn_photometry(folder, spec, config, train, valid, edges) -> None:
    bands = _photometry_bands(spec, train)
    x_train, x_valid = _knn_features(train, bands, spec), _knn_features(valid, bands, spec)
    z_train = np.asarray(train.catalog["z"], dtype=np.float64)
    z_valid = np.asarray(valid.catalog["z"], dtype=np.float64)
    search = knn_photometry_search(config["knn_photometry"])
    k, scores = select_k(
        x_train, z_train, x_valid, z_valid, edges, config["knn_photometry"]["candidates"], *search
    )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "knn.h5", overwrite=True) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, "clapkit.KNNPhotoZ", 1)
        f.attrs["k"] = k
        f.attrs["bands"] = json.dumps(bands)
        f.attrs["validation_crps"] = json.dumps({str(key): v for key, v in scores.items()})
        f.attrs["neighbour_search"] = json.dumps(search)
        f.create_dataset("features", data=x_train)
        f.create_dataset("z", data=z_train)
        mark_complete(f)


def load_knn_photometry(folder: Path, spec: InputSpec) -> tuple[KNNPhotoZ, list[str]]:
    """The fitted photometry KNN of a run and the bands its features read."""
    with open_checked(folder / "knn.h5", "clapkit.KNNPhotoZ", 1, "a KNN model") as f:
        k, bands = int(f.attrs["k"]), json.loads(f.attrs["bands"])
        # Models written before the choice existed searched exactly.
        search = json.loads(f.attrs.get("neighbour_search", '["exact", {}]'))
        x_train, z_train = f["features"][()], f["z"][()]
    return KNNPhotoZ(spec.edges, k, *search).fit(x_train, z_train), bands


def predict_knn_photometry(
    model: KNNPhotoZ, bands: list[str], spec: InputSpec, galaxies: GalaxySet
) -> np.ndarray:
    """PDFs of the photometry KNN for ``galaxies``.

    Parameters
    ----------
    model : KNNPhotoZ
        The fitted model (:func:`load_knn_photometry`).
    bands : list of str
        The bands its features read.
    spec : InputSpec
        The run's inputs (the redshift grid and the non-detection policy).
    galaxies : GalaxySet or CatalogRows
        Anything with ``catalog`` and ``ids``: a GalaxySet, or rows of a catalog
        (:class:`~clapkit.photoz.catalog_source.CatalogRows`).

    Returns
    -------
    numpy.ndarray, shape (N, B)
    """
    return model.predict(_knn_features(galaxies, bands, spec))


def _predict_knn_photometry(folder: Path, spec: InputSpec, galaxies: GalaxySet) -> np.ndarray:
    return predict_knn_photometry(*load_knn_photometry(folder, spec), spec, galaxies)


# ----------------------------------------------------------------------------- FlexZBoost


def _train_flexzboost(folder, spec, config, train, valid, edges) -> None:
    """RAIL's informer on every labelled galaxy the other methods see (train + valid)."""
    bands = _photometry_bands(spec, train)
    labelled = vstack([train.catalog, valid.catalog], metadata_conflicts="silent")
    ids = np.concatenate([np.asarray(train.ids), np.asarray(valid.ids)])
    model = train_flexzboost(
        folder, labelled, ids, bands, edges, spec.nondetect, config["seed"], config["flexzboost"]
    )
    tuned = {"bump_threshold": model.bump_threshold, "sharpen_alpha": model.sharpen_alpha}
    write_json(folder / "tuning.json", tuned, overwrite=True)


# ----------------------------------------------------------------------------- prediction


def output_methods(trained: Sequence[str]) -> list[str]:
    """PDF files a prediction writes for these trained methods (CLAP writes 4 stages)."""
    out: list[str] = []
    for method in trained:
        out.extend(STAGES if method == "clap" else [method])
    return out


def predict_run(
    run: str | os.PathLike | RunDir,
    data: str | os.PathLike,
    *,
    split: str | None = "test",
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """PDFs of every trained method for the ``split`` galaxies of ``data`` (all galaxies
    when ``split`` is None or the file has no split column). Returns timings per method.

    Parameters
    ----------
    run : path-like or RunDir
        A run directory made by :func:`train_run`.
    data : path-like
        GalaxySet file.
    split : str or None
        The split to predict; None for every galaxy.
    overwrite : bool
        Replace existing PDF files.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step.

    Returns
    -------
    dict
        Seconds taken per method.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    tracker = TrainingRun(run)
    if not tracker.exists():
        raise FileFormatError(f"{run.root}: no train.json; run `clapkit train` first")
    record = tracker.read()
    trained = [m for m, s in record["methods"].items() if s.get("status") == "done"]
    if not trained:
        raise ValidationError(f"{run.root}: no method has finished training")
    spec = InputSpec.from_dict(record["input_spec"])
    config = record["config"]
    outputs = output_methods(trained)
    for method in outputs:
        check_writable(run.pdf_path(method), overwrite)
    if "clap" in trained:
        check_writable(run.clap_details_path, overwrite)

    galaxies = load_galaxies(data)
    if split is not None and "split" in galaxies.catalog.colnames:
        galaxies = _split(galaxies, split, data)
        if len(galaxies) == 0:
            raise ValidationError(f"{data}: the {split!r} split is empty")
    clap_config, base_config = _method_configs(config, spec.kind)
    check_compatible(spec, galaxies)
    if "clap" in trained:
        check_targets(clap_config, len(galaxies))
    inputs = network_inputs(spec, galaxies, progress=progress)
    z_true = inputs.z if np.all(np.isfinite(inputs.z)) else None
    seed = int(config["seed"])
    timings: dict[str, Any] = {}
    for method in trained:
        start = time.perf_counter()
        folder = run.model_dir(method)
        columns = None
        if method == "clap":
            prediction = predict_clap(folder, spec, clap_config, inputs, progress, seed=seed)
            results = prediction.pdfs
            projection = project_latent(
                prediction.latent, config.get("projection", "umap"), seed=seed
            )
            write_clap_details(run.clap_details_path, prediction, inputs.ids, projection)
            columns = {"novelty": prediction.novelty}
        elif method == "knn_photometry":
            results = {method: _predict_knn_photometry(folder, spec, galaxies)}
        elif method == "flexzboost":
            results = {
                method: predict_flexzboost(
                    folder, galaxies.catalog, np.asarray(galaxies.ids), spec.nondetect
                )
            }
        else:
            p = predict_baseline(
                method,
                folder,
                spec,
                base_config,
                inputs,
                seed,
                softmax_dir=run.model_dir("softmax"),
            )
            results = {method: p}
        seconds = time.perf_counter() - start
        for name, p in results.items():
            pdfs = PDFs(p, np.asarray(spec.edges), z_true=z_true, ids=inputs.ids)
            run.save_pdfs(
                name,
                pdfs,
                config={"method": method, **config},
                overwrite=overwrite,
                columns=columns,
            )
        timings[method] = {"seconds": seconds, "galaxies_per_second": len(inputs) / seconds}
        log(f"{method}: {len(inputs)} galaxies in {seconds:.1f} s")
    run.write_json(
        run.predict_record_path,
        {"data": run.relative_data_path(data), "split": split, "timings": timings},
        overwrite=True,
    )
    return timings
