"""CLAP and the photometry KNN as RAIL stages: ``inform`` a model, ``estimate`` qp PDFs.

RAIL users run clapkit's catalog CLAP (``CLAPInformer`` / ``CLAPEstimator``) and its
photometry KNN (``KNNPhotometryInformer`` / ``KNNPhotometryEstimator``) as they run any
RAIL estimator::

    from rail.core.data import DataStore
    from clapkit.interop.rail import CLAPEstimator, CLAPInformer

    DataStore.allow_overwrite = True  # to make a stage of the same name again
    bands = [f"mag_{b}_lsst" for b in "ugrizy"]
    common = dict(
        bands=bands,
        err_bands=[f"mag_err_{b}_lsst" for b in "ugrizy"],
        ref_band="mag_i_lsst",
        nondetect_val=99.0,
        mag_limits={"mag_u_lsst": 27.79, ...},
        zmax=3.0,
        nzbins=300,
        hdf5_groupname="photometry",
    )
    informer = CLAPInformer.make_stage(name="inform_clap", model="clap.pkl", **common)
    informer.inform(training_data)
    estimator = CLAPEstimator.make_stage(
        name="estimate_clap", model=informer.get_handle("model"), **common
    )
    ensemble = estimator.estimate(test_data).data  # a qp.Ensemble

In a RAIL pipeline the stages are built and connected as RAIL's own::

    from rail.core.stage import RailPipeline

    pipe = RailPipeline()
    pipe.inform_clap = CLAPInformer.build(aliases={"input": "input_train"}, **common)
    pipe.estimate_clap = CLAPEstimator.build(
        aliases={"input": "input_test"},
        connections={"model": pipe.inform_clap.io.model},
        **common,
    )
    inputs = {"input_train": "train.hdf5", "input_test": "test.hdf5"}
    pipe.initialize(inputs, {"output_dir": ".", "log_dir": ".", "resume": False}, None)
    pipe.save("clap.yml")  # and clap_config.yml, the stages' settings

and ``ceci clap.yml`` runs them, each as ``python3 -m clapkit CLAPInformer --config=...``
(:mod:`clapkit.__main__` hands the stage names to ceci); ``python3`` must be the
environment's that has clapkit and RAIL.

**The configuration** is RAIL's usual one — ``bands``, ``err_bands``, ``ref_band``,
``nondetect_val``, ``mag_limits``, ``zmin``, ``zmax``, ``nzbins``, ``hdf5_groupname``,
``redshift_col``, ``id_col`` — plus clapkit's: ``preset`` (``tiny``, ``cpu``, ``paper``,
:mod:`clapkit.presets`), ``seed``, ``valid_fraction`` (the labelled galaxies held out
for clapkit's validation split), ``clapkit_config`` (any setting of ``clapkit train
--config``), and for CLAP ``realisations`` and ``refit_on``. The inputs are the adjacent
colours of ``bands`` (in the order given), the ``ref_band`` magnitude and every error,
as clapkit's ``colours`` features; the KNN reads the colours and clapkit's reference
magnitude (``r`` if a band is named so, else the last band) as ``clapkit train`` does.

**The redshift grid** is ``nzbins`` bins of equal width from ``zmin`` to ``zmax``: the
estimators return qp histograms (:func:`~clapkit.interop.qp_ensembles.to_qp`), exactly
clapkit's PDFs, with the mode of each (the centre of its most probable bin) as ancillary
``zmode``, as RAIL's estimators provide. clapkit's grids start at 0, so ``zmin`` must be
0; training redshifts must lie on the grid.

**Non-detections** follow RAIL's convention: a magnitude equal to ``nondetect_val``
(within 0.01; NaN when ``nondetect_val`` is NaN) becomes its band's ``mag_limits`` value
and its error 1.0, through the run's :class:`~clapkit.photoz.nondetections.Nondetections`
policy, so the sentinel never reaches a network or a distance. A measured magnitude
fainter than its limit is a measurement and is kept, as RAIL's estimators keep it.

**Training** goes through clapkit's own pipeline (:func:`~clapkit.photoz.pipeline.train_run`
on a temporary GalaxySet and run directory); the estimators apply the trained method as
``clapkit predict`` does, chunk by chunk (the default ``refit_on="valid"`` trains CLAP's
refitted head once at training, so a galaxy's PDF does not depend on the other galaxies
of its chunk, as it would with the published refit on the targets).

**The model** RAIL hands from informer to estimator, and pickles to its ``model`` file, is
a plain dict: the run directory's files as bytes (``train.json``, and the method's state
dicts, JSON settings and HDF5 indexes) with the RAIL settings it was informed with. A
pickle of builtins names no clapkit class, so a stored model does not break when clapkit's
classes change, and the files inside are clapkit's own versioned formats, read back
through their checked readers: the model is exactly what ``clapkit train`` writes.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from astropy.table import Table

import clapkit
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.interop.qp_ensembles import to_qp
from clapkit.metrics import PDFs
from clapkit.photoz.nondetections import SENTINEL_ABOVE, Nondetections
from clapkit.presets import DEFAULT_PRESET

try:
    import tables_io
    from ceci.config import StageParameter as Param
    from rail.core import common_params
    from rail.estimation.estimator import CatEstimator
    from rail.estimation.informer import CatInformer
except ImportError as err:  # an optional extra
    raise ImportError(
        f"clapkit.interop.rail needs RAIL: pip install 'clapkit[rail]' (pz-rail-base); {err}"
    ) from err

__all__ = [
    "CLAPEstimator",
    "CLAPInformer",
    "KNNPhotometryEstimator",
    "KNNPhotometryInformer",
    "check_model",
    "pack_run",
    "unpack_run",
]

MODEL_FORMAT = "clapkit.rail_model"
MODEL_FORMAT_VERSION = 1
#: The policy's sentinel when RAIL marks non-detections by NaN: clapkit's policy always
#: counts NaN as a non-detection, and no magnitude is this value.
_NO_SENTINEL = -1.0e30
#: RAIL settings every clapkit stage reads (their defaults are RAIL's shared ones).
_RAIL_KEYS = ("bands", "err_bands", "ref_band", "nondetect_val", "mag_limits", "zmin", "zmax")


# ----------------------------------------------------------------------------- settings


def check_rail_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """RAIL's catalog settings of a stage, checked: the bands, the grid, the limits.

    Parameters
    ----------
    config : mapping
        The stage's configuration (``bands``, ``err_bands``, ``ref_band``,
        ``nondetect_val``, ``mag_limits``, ``zmin``, ``zmax``, ``nzbins``).

    Returns
    -------
    dict
        The same settings as plain values, ``mag_limits`` kept for ``bands`` only.

    Examples
    --------
    >>> settings = dict(bands=["mag_g", "mag_r"], err_bands=["magerr_g", "magerr_r"],
    ...                 ref_band="mag_r", nondetect_val=99.0, mag_limits={"mag_g": 24.0},
    ...                 zmin=0.0, zmax=0.4, nzbins=40)
    >>> check_rail_settings(settings)["mag_limits"]
    {'mag_g': 24.0}
    >>> check_rail_settings({**settings, "zmax": 0.0})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: zmax (0.0) must be above zmin (0.0)
    """
    bands = [str(b) for b in config["bands"]]
    err_bands = [str(b) for b in config["err_bands"]]
    if len(bands) < 2:
        raise ValidationError(f"bands: colours need at least two bands, got {bands}")
    if len(set(bands)) != len(bands):
        raise ValidationError(f"bands: a band is named twice in {bands}")
    if len(err_bands) != len(bands):
        raise ValidationError(
            f"err_bands must name one error column per band: {len(bands)} bands {bands}, "
            f"{len(err_bands)} err_bands {err_bands}"
        )
    if config["ref_band"] not in bands:
        raise ValidationError(f"ref_band {config['ref_band']!r} is not among bands {bands}")
    names = [clapkit_band(b) for b in bands]
    if len(set(names)) != len(names):
        raise ValidationError(f"bands {bands} do not give distinct clapkit band names {names}")
    zmin, zmax, nzbins = float(config["zmin"]), float(config["zmax"]), int(config["nzbins"])
    if not (math.isfinite(zmax) and zmax > zmin):
        raise ValidationError(f"zmax ({zmax}) must be above zmin ({zmin})")
    if zmin != 0.0:
        raise ValidationError(f"zmin must be 0: clapkit's redshift grids start at 0 (got {zmin})")
    if nzbins < 2:
        raise ValidationError(f"nzbins must be at least 2, got {nzbins}")
    limits = {}
    for band, limit in dict(config["mag_limits"] or {}).items():
        if band not in bands:
            continue  # RAIL's default limits name the LSST bands, whatever the data's
        if not (math.isfinite(float(limit)) and abs(float(limit)) < SENTINEL_ABOVE):
            raise ValidationError(f"mag_limits[{band!r}] must be a magnitude, got {limit}")
        limits[band] = float(limit)
    return {
        "bands": bands,
        "err_bands": err_bands,
        "ref_band": str(config["ref_band"]),
        "nondetect_val": float(config["nondetect_val"]),
        "mag_limits": limits,
        "zmin": zmin,
        "zmax": zmax,
        "nzbins": nzbins,
    }


def clapkit_band(column: str) -> str:
    """clapkit's band name of a RAIL magnitude column (its ``mag_<band>`` is the column).

    Examples
    --------
    >>> clapkit_band("mag_u_lsst"), clapkit_band("HSC-G")
    ('u_lsst', 'HSC_G')
    """
    name = column[len("mag_") :] if column.startswith("mag_") else column
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def grid_edges(settings: Mapping[str, Any]) -> np.ndarray:
    """Bin edges of the ``nzbins`` bins from ``zmin`` to ``zmax``.

    Examples
    --------
    >>> grid_edges({"zmin": 0.0, "zmax": 1.0, "nzbins": 4}).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return np.linspace(settings["zmin"], settings["zmax"], int(settings["nzbins"]) + 1)


def features(settings: Mapping[str, Any]) -> list[str]:
    """clapkit's feature columns for the RAIL bands: adjacent colours, the reference
    magnitude, every error (clapkit's ``colours`` set).

    Examples
    --------
    >>> features({"bands": ["mag_g", "mag_r"], "ref_band": "mag_r"})
    ['mag_g-mag_r', 'mag_r', 'magerr_g', 'magerr_r']
    """
    names = [clapkit_band(b) for b in settings["bands"]]
    colours = [f"mag_{a}-mag_{b}" for a, b in itertools.pairwise(names)]
    return [*colours, f"mag_{clapkit_band(settings['ref_band'])}", *(f"magerr_{b}" for b in names)]


def nondetections(settings: Mapping[str, Any]) -> Nondetections:
    """The clapkit policy of RAIL's ``nondetect_val`` and ``mag_limits``.

    Examples
    --------
    >>> nondetections({"nondetect_val": 99.0, "mag_limits": {"mag_u_lsst": 26.0}})
    Nondetections(value=99.0, mag_limits={'mag_u_lsst': 26.0})
    """
    value = float(settings["nondetect_val"])
    limits = {f"mag_{clapkit_band(b)}": v for b, v in settings["mag_limits"].items()}
    return Nondetections(value if math.isfinite(value) else _NO_SENTINEL, limits)


def rail_catalog(
    data: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    redshift_col: str | None = None,
    id_col: str | None = None,
    first_row: int = 0,
) -> Table:
    """A RAIL table (dict of columns) as a clapkit catalog: ``id``, ``z``, ``mag_<band>``,
    ``magerr_<band>``, non-detections left as they are for the run's policy to replace.

    Parameters
    ----------
    data : mapping of str to array
        RAIL's ``numpyDict``.
    settings : mapping
        The stage's checked RAIL settings (:func:`check_rail_settings`).
    redshift_col : str, optional
        The column of the redshifts to train on; without it ``z`` is a placeholder 0
        (prediction reads no redshift).
    id_col : str, optional
        The ids' column, used when present; the row numbers otherwise.
    first_row : int
        Row number of the first row (RAIL's chunks).

    Returns
    -------
    astropy.table.Table

    Examples
    --------
    >>> data = {"mag_g": np.array([20.0, 99.0]), "mag_r": np.array([19.0, 21.0]),
    ...         "magerr_g": np.array([0.1, 99.0]), "magerr_r": np.array([0.1, 0.2])}
    >>> settings = check_rail_settings(dict(
    ...     bands=["mag_g", "mag_r"], err_bands=["magerr_g", "magerr_r"], ref_band="mag_r",
    ...     nondetect_val=99.0, mag_limits={"mag_g": 24.0}, zmin=0.0, zmax=1.0, nzbins=10))
    >>> rail_catalog(data, settings, first_row=5)["id"].tolist()
    [5, 6]
    """
    columns = [*settings["bands"], *settings["err_bands"]]
    if redshift_col is not None:
        columns.append(redshift_col)
    missing = [c for c in columns if c not in data]
    if missing:
        raise ValidationError(
            f"RAIL input: no column {missing[0]!r} (settings bands, err_bands, redshift_col); "
            f"the table has {sorted(data)}"
        )
    n = len(np.asarray(data[settings["bands"][0]]))
    if id_col is not None and id_col in data:
        ids = np.asarray(data[id_col]).reshape(-1)
        if len(np.unique(ids)) != n:
            raise ValidationError(f"RAIL input: column {id_col} (id_col) holds repeated ids")
    else:
        ids = np.arange(first_row, first_row + n)
    catalog = Table({"id": ids})
    if redshift_col is None:
        catalog["z"] = np.zeros(n)
    else:
        catalog["z"] = _training_redshifts(data[redshift_col], redshift_col, settings)
    policy = nondetections(settings)
    for band, error in zip(settings["bands"], settings["err_bands"], strict=True):
        name = clapkit_band(band)
        magnitudes = np.array(data[band], dtype=np.float64).reshape(-1)
        gone = policy.missing(magnitudes, None)
        if gone.any() and band not in settings["mag_limits"]:
            raise ValidationError(
                f"RAIL input: column {band} has {int(gone.sum())} non-detections "
                f"(nondetect_val {settings['nondetect_val']}) and mag_limits has no limit for it"
            )
        catalog[f"mag_{name}"] = magnitudes
        catalog[f"magerr_{name}"] = np.array(data[error], dtype=np.float64).reshape(-1)
    return catalog


def _same(a: Any, b: Any) -> bool:
    """Settings equal, NaN (RAIL's ``nondetect_val`` for NaN sentinels) equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _training_redshifts(values: Any, column: str, settings: Mapping[str, Any]) -> np.ndarray:
    z = np.array(values, dtype=np.float64).reshape(-1)
    off = ~np.isfinite(z) | (z < settings["zmin"]) | (z > settings["zmax"])
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValidationError(
            f"RAIL input: column {column} (redshift_col) has {int(off.sum())} redshifts off the "
            f"grid [{settings['zmin']}, {settings['zmax']}] (first at row {row}: {z[row]}); "
            "raise zmax or select the galaxies first"
        )
    return z


# ----------------------------------------------------------------------------- the model


def pack_run(root: str | Path, method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The model RAIL stores: a trained run directory's files as bytes, and the settings.

    Parameters
    ----------
    root : path-like
        The run directory written by :func:`~clapkit.photoz.pipeline.train_run`.
    method : str
        The trained method.
    settings : mapping
        The RAIL settings of the informer (:func:`check_rail_settings`).

    Returns
    -------
    dict
    """
    root = Path(root)
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "clapkit_version": clapkit.__version__,
        "method": method,
        "rail_settings": dict(settings),
        "files": files,
    }


def unpack_run(model: Any, folder: str | Path, method: str) -> Path:
    """Write a :func:`pack_run` model's files under ``folder``; returns the run directory.

    Parameters
    ----------
    model : dict
        The model.
    folder : path-like
        An empty folder.
    method : str
        The method the stage applies; a model of another method is refused.
    """
    check_model(model, method)
    root = Path(folder) / "run"
    for name, content in model["files"].items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise FileFormatError(f"the RAIL model names a file outside its run: {name!r}")
        path = root.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def check_model(model: Any, method: str) -> None:
    """Refuse what is not a :func:`pack_run` model of ``method``.

    Examples
    --------
    >>> check_model({"format": "other"}, "clap")
    Traceback (most recent call last):
    ...
    clapkit.errors.FileFormatError: the RAIL model is not a clapkit model (format 'clapkit.rail_model' version 1); got format 'other'
    """
    if not isinstance(model, dict) or model.get("format") != MODEL_FORMAT:
        got = model.get("format") if isinstance(model, dict) else type(model).__name__
        raise FileFormatError(
            f"the RAIL model is not a clapkit model (format {MODEL_FORMAT!r} version "
            f"{MODEL_FORMAT_VERSION}); got format {got!r}"
        )
    if model.get("format_version") != MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"the RAIL model is version {model.get('format_version')} of {MODEL_FORMAT}; this "
            f"clapkit reads version {MODEL_FORMAT_VERSION}"
        )
    if model.get("method") != method:
        raise ValidationError(
            f"the RAIL model holds clapkit's {model.get('method')!r}, not {method!r}: pass it "
            "to that method's estimator"
        )


# ----------------------------------------------------------------------------- stages


def _rail_options(*names: str) -> dict[str, Any]:
    """RAIL's shared settings of these names (ceci resolves each by its key). The shared
    config is never a module global: it answers any attribute lookup with a KeyError,
    which breaks doctest's search of the module."""
    return {name: common_params.SHARED_PARAMS for name in names}


_CATALOG_SETTINGS = ("nondetect_val", "mag_limits", "bands", "err_bands", "ref_band")
_INFORMER_OPTIONS = dict(
    **_rail_options("zmin", "zmax", "nzbins", "redshift_col", "id_col", *_CATALOG_SETTINGS),
    preset=Param(str, DEFAULT_PRESET, msg="clapkit's preset: tiny, cpu or paper"),
    seed=Param(int, 0, msg="seeds clapkit's validation split and training"),
    valid_fraction=Param(
        float, 0.2, msg="fraction of the labelled galaxies held out as clapkit's validation split"
    ),
    clapkit_config=Param(
        dict, {}, msg="clapkit settings over the preset's, as in `clapkit train --config`"
    ),
)
_ESTIMATOR_OPTIONS = _rail_options(*_CATALOG_SETTINGS)


class _ClapkitInformer(CatInformer):
    """Trains one clapkit method through :func:`~clapkit.photoz.pipeline.train_run`."""

    name = "ClapkitInformer"
    method = ""

    def __init__(self, args: Any, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        self.settings = check_rail_settings(self.config)
        self.train_settings()  # bad clapkit settings are refused when the stage is made

    def clapkit_override(self) -> dict[str, Any]:
        """The clapkit configuration this stage's options make (see ``clapkit train``)."""
        return {
            **self.config.clapkit_config,
            "preset": self.config.preset,
            "seed": int(self.config.seed),
        }

    def train_settings(self) -> Any:
        """The :class:`~clapkit.photoz.pipeline.PhotoZTrainSettings` of this stage."""
        from clapkit.photoz.pipeline import PhotoZTrainSettings

        fraction = float(self.config.valid_fraction)
        if not 0.0 < fraction < 1.0:
            raise ValidationError(f"valid_fraction must be in (0, 1), got {fraction}")
        policy = nondetections(self.settings)
        return PhotoZTrainSettings(
            self.method,
            config=self.clapkit_override(),
            features=features(self.settings),
            z_max=self.settings["zmax"],
            n_bins=self.settings["nzbins"],
            nondetect=policy.value,
            mag_limits=policy.mag_limits or None,
        )

    def run(self) -> None:
        from clapkit.photoz.pipeline import train_run

        data = self.get_data("input")
        if self.config.hdf5_groupname:
            data = data[self.config.hdf5_groupname]
        if tables_io.types.table_type(data) != 1:
            data = self._convert_table_format(data, out_fmt_str="numpyDict")
        catalog = rail_catalog(
            data, self.settings, redshift_col=self.config.redshift_col, id_col=self.config.id_col
        )
        fraction = float(self.config.valid_fraction)
        galaxies = GalaxySet(catalog).with_splits(
            {"train": 1.0 - fraction, "valid": fraction}, seed=int(self.config.seed)
        )
        settings = self.train_settings()
        with tempfile.TemporaryDirectory(prefix="clapkit-rail-") as tmp:
            galaxies.save(Path(tmp) / "galaxies.h5")
            train_run(Path(tmp) / "galaxies.h5", Path(tmp) / "run", settings, log=self.log.info)
            self.model = pack_run(Path(tmp) / "run", self.method, self.settings)
        self.add_data("model", self.model)


class _ClapkitEstimator(CatEstimator):
    """Applies a model of :class:`_ClapkitInformer` chunk by chunk, as ``clapkit predict``."""

    name = "ClapkitEstimator"
    method = ""

    def __init__(self, args: Any, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        self.settings = check_rail_settings(self.config)
        self._workdir: Path | None = None
        self._predict: Callable[[GalaxySet], np.ndarray] | None = None

    def run(self) -> None:
        # The model's files live in a folder for the length of the run only.
        with tempfile.TemporaryDirectory(prefix="clapkit-rail-") as tmp:
            self._workdir = Path(tmp)
            try:
                super().run()
            finally:
                self._workdir, self._predict = None, None

    def open_model(self, **kwargs: Any) -> Any:
        """RAIL's model (a dict, see the module), unpacked into a run directory.

        Parameters
        ----------
        **kwargs
            The stage's configuration, ``model`` among it.
        """
        model = super().open_model(**kwargs)
        check_model(model, self.method)
        trained = model["rail_settings"]
        differ = [k for k in (*_RAIL_KEYS, "nzbins") if not _same(trained[k], self.settings[k])]
        if differ:
            raise ValidationError(
                f"the estimator's settings {differ} differ from the informer's "
                f"({ {k: trained[k] for k in differ} }); give the estimator the informer's"
            )
        if self._workdir is not None:  # within run(): the files are needed
            self._predict = self.predictor(unpack_run(model, self._workdir, self.method))
        return model

    def predictor(self, root: Path) -> Callable[[GalaxySet], np.ndarray]:
        """The function from galaxies to PDFs (N, nzbins) of the trained run ``root``."""
        raise NotImplementedError

    def _process_chunk(self, start: int, end: int, data: Any, first: bool) -> None:
        if tables_io.types.table_type(data) != 1:
            data = self._convert_table_format(data, "numpyDict")
        catalog = rail_catalog(data, self.settings, id_col=self.config.id_col, first_row=start)
        assert self._predict is not None
        p = self._predict(GalaxySet(catalog))
        edges = grid_edges(self.settings)
        ensemble = to_qp(PDFs(p, edges, ids=np.asarray(catalog["id"])))
        centres = 0.5 * (edges[:-1] + edges[1:])
        ensemble.add_to_ancil({"zmode": centres[np.argmax(p, axis=1)][:, None]})
        self._do_chunk_output(ensemble, start, end, first, data=data)


def _run_record(root: Path) -> tuple[Any, Any, dict[str, Any]]:
    from clapkit.photoz.network_inputs import InputSpec
    from clapkit.photoz.training_state import TrainingRun
    from clapkit.runs import RunDir

    run = RunDir(root)
    record = TrainingRun(run).read()
    return run, InputSpec.from_dict(record["input_spec"]), record["config"]


class CLAPInformer(_ClapkitInformer):
    """Trains clapkit's catalog CLAP on a RAIL table (see the module for the settings).

    ``realisations`` (0: the preset's) and ``refit_on`` (``valid`` by default: see the
    module) set CLAP's ``n_realisations`` and ``refit_on``.
    """

    name = "CLAPInformer"
    method = "clap"
    config_options = CatInformer.config_options.copy()
    config_options.update(
        **_INFORMER_OPTIONS,
        realisations=Param(int, 0, msg="CLAP realisations (different seeds); 0: the preset's"),
        refit_on=Param(
            str, "valid", msg="whose KNN PDFs CLAP's refitted head learns: valid, train_loo, target"
        ),
    )

    def clapkit_override(self) -> dict[str, Any]:
        """The clapkit configuration with CLAP's ``realisations`` and ``refit_on``."""
        override = super().clapkit_override()
        clap = {**override.get("clap", {}), "refit_on": str(self.config.refit_on)}
        if int(self.config.realisations) > 0:
            clap["n_realisations"] = int(self.config.realisations)
        return {**override, "clap": clap}


class CLAPEstimator(_ClapkitEstimator):
    """qp ensembles of clapkit's CLAP (``stage``: ``clap`` by default, or one of the first
    realisation's stages ``clap_scl``, ``clap_raw``, ``clap_recal``, ``clap_refit``)."""

    name = "CLAPEstimator"
    method = "clap"
    config_options = CatEstimator.config_options.copy()
    config_options.update(
        **_ESTIMATOR_OPTIONS,
        stage=Param(str, "clap", msg="which of CLAP's PDFs: clap (the ensemble) or a stage"),
    )

    def predictor(self, root: Path) -> Callable[[GalaxySet], np.ndarray]:
        """CLAP's PDFs, as :func:`~clapkit.photoz.pipeline.predict_run` computes them."""
        from clapkit.photoz.clap import STAGES, predict_clap
        from clapkit.photoz.network_inputs import network_inputs
        from clapkit.photoz.pipeline import _method_configs

        stage = str(self.config.stage)
        if stage not in STAGES:
            raise ValidationError(f"stage must be one of {list(STAGES)}, got {stage!r}")
        run, spec, config = _run_record(root)
        clap_config, _ = _method_configs(config, spec.kind)
        knn_stages = stage in ("clap_raw", "clap_recal") or clap_config.refit_on == "target"

        def predict(galaxies: GalaxySet) -> np.ndarray:
            inputs = network_inputs(spec, galaxies)
            prediction = predict_clap(
                run.model_dir("clap"),
                spec,
                clap_config,
                inputs,
                knn_stages=knn_stages,
                seed=int(config["seed"]),
            )
            return prediction.pdfs[stage]

        return predict


class KNNPhotometryInformer(_ClapkitInformer):
    """Trains clapkit's photometry KNN (``knn_photometry``: k chosen on the validation
    split) on a RAIL table (see the module for the settings)."""

    name = "KNNPhotometryInformer"
    method = "knn_photometry"
    config_options = CatInformer.config_options.copy()
    config_options.update(**_INFORMER_OPTIONS)


class KNNPhotometryEstimator(_ClapkitEstimator):
    """qp ensembles of clapkit's photometry KNN."""

    name = "KNNPhotometryEstimator"
    method = "knn_photometry"
    config_options = CatEstimator.config_options.copy()
    config_options.update(**_ESTIMATOR_OPTIONS)

    def predictor(self, root: Path) -> Callable[[GalaxySet], np.ndarray]:
        """The KNN's PDFs, as :func:`~clapkit.photoz.pipeline.predict_run` computes them."""
        from clapkit.photoz.pipeline import load_knn_photometry, predict_knn_photometry

        run, spec, _ = _run_record(root)
        # Loaded once: RAIL calls the predictor for every chunk of its input.
        model, bands = load_knn_photometry(run.model_dir("knn_photometry"), spec)
        return lambda galaxies: predict_knn_photometry(model, bands, spec, galaxies)
