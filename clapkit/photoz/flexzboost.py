"""RAIL's FlexZBoost, the field's standard peer, as a clapkit method on the same bins.

FlexZBoost (Izbicki & Lee 2017; Schmidt et al. 2020) expands p(z | photometry) in a cosine
basis whose coefficients XGBoost regresses from the r magnitude and adjacent colours,
then tunes a bump threshold and a sharpening exponent on held-out galaxies. It is run
here through RAIL's own stages (``pz-rail-flexzboost``, the optional ``rail`` extra):
``FlexZBoostInformer`` trains with RAIL's defaults on the labelled galaxies clapkit's
methods see (training and validation splits: the informer holds out its own quarter for
the tuning and refits on all), and ``FlexZBoostEstimator`` returns a qp ensemble
(``interp`` on a grid of 4 points per clapkit bin), converted to clapkit's bins exactly
by differencing qp's CDF at the bin edges, which are grid points.

The trained model is stored without pickle: each XGBoost regressor in its own JSON form
plus the FlexCode settings (``model.h5``), and rebuilt for prediction. Non-detections
are replaced before RAIL sees the data, by the policy of the run
(:mod:`~clapkit.photoz.nondetections`), which is RAIL's own convention.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from clapkit.atomic import atomic_path
from clapkit.errors import ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header
from clapkit.photoz.nondetections import Nondetections, check_no_sentinels

FORMAT = "clapkit.FlexZBoost"
FORMAT_VERSION = 1
#: qp grid points per clapkit bin: every bin edge is a grid point.
GRID_PER_BIN = 4
#: The value RAIL is told marks a non-detection; none remain when it sees the data.
_RAIL_NONDETECT = 99.0
#: Informer settings a clapkit configuration may pass on (``{"flexzboost": {...}}``);
#: RAIL's defaults otherwise.
INFORMER_OPTIONS = (
    "trainfrac",
    "retrain_full",
    "bumpmin",
    "bumpmax",
    "nbump",
    "sharpmin",
    "sharpmax",
    "nsharp",
    "max_basis",
    "basis_system",
    "regression_params",
)


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Refuse informer settings RAIL's FlexZBoost does not have (before any work).

    Examples
    --------
    >>> check_options({"nbump": 5})
    {'nbump': 5}
    """
    unknown = sorted(set(options) - set(INFORMER_OPTIONS))
    if unknown:
        raise ValidationError(
            f"unknown FlexZBoost settings {unknown}; known: {list(INFORMER_OPTIONS)}"
        )
    return dict(options)


def require_rail() -> None:
    """Refuse, with the install command, when the optional RAIL packages are missing."""
    try:
        import rail.estimation.algos.flexzboost  # noqa: F401
    except ImportError as err:
        raise ValidationError(
            "the flexzboost method needs RAIL's FlexZBoost: pip install 'clapkit[rail]' "
            f"(pz-rail-flexzboost); {err}"
        ) from err


@contextlib.contextmanager
def _quiet_rail() -> Iterator[None]:
    """RAIL's stages log every step through structlog; keep only warnings meanwhile."""
    import structlog

    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**before)


def _rail_table(
    catalog: Table,
    bands: Sequence[str],
    policy: Nondetections | None,
    ids: Sequence,
    with_z: bool,
) -> dict[str, np.ndarray]:
    """The columns RAIL reads, as a dict of float64 arrays (RAIL's ``numpyDict``)."""
    mags = [f"mag_{b}" for b in bands]
    errs = [f"magerr_{b}" for b in bands]
    missing = [c for c in (*mags, *errs) if c not in catalog.colnames]
    if missing:
        raise ValidationError(f"FlexZBoost reads magnitudes and their errors; missing {missing}")
    if policy is not None:
        catalog = policy.apply(catalog, [*mags, *errs], ids)
    check_no_sentinels(catalog, [*mags, *errs], ids)
    data = {c: np.array(catalog[c], dtype=np.float64) for c in (*mags, *errs)}
    for column, values in data.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                f"column {column} is not finite for galaxy id {ids[row]} (row {row})"
            )
    if with_z:
        data["redshift"] = np.array(catalog["z"], dtype=np.float64)
    return data


def _stage_options(bands: Sequence[str], edges: np.ndarray) -> dict[str, Any]:
    mags = [f"mag_{b}" for b in bands]
    reference = "mag_r" if "r" in bands else mags[-1]
    return {
        "hdf5_groupname": "",
        "bands": mags,
        "err_bands": [f"magerr_{b}" for b in bands],
        "ref_band": reference,
        "nondetect_val": _RAIL_NONDETECT,
        # RAIL looks a band's limit up even when nothing is replaced; the values go unused.
        "mag_limits": {m: _RAIL_NONDETECT for m in mags},
        "nzbins": GRID_PER_BIN * (edges.size - 1) + 1,
    }


def train_flexzboost(
    folder: str | os.PathLike,
    catalog: Table,
    ids: Sequence,
    bands: Sequence[str],
    edges: np.ndarray,
    nondetect: dict[str, Any] | None = None,
    seed: int = 1138,
    options: dict[str, Any] | None = None,
):
    """Train FlexZBoost with RAIL's informer on ``catalog`` (with ``z``) and store it in
    ``folder/model.h5``, with RAIL's informer defaults unless ``options`` (see
    :data:`INFORMER_OPTIONS`) say otherwise. Returns the trained FlexCode model (its
    ``bump_threshold`` and ``sharpen_alpha`` are the tuned values).

    Parameters
    ----------
    folder : path-like
        Where ``model.h5`` is written.
    catalog : astropy.table.Table
        Catalog with ``id``, ``z`` and ``mag_<band>``, ``magerr_<band>``.
    ids : sequence
        The ids of the galaxies to train on.
    bands : sequence of str
        Bands whose magnitudes and colours FlexZBoost reads.
    edges : numpy.ndarray
        The redshift grid.
    nondetect : dict, optional
        The run's non-detection policy (:class:`~clapkit.photoz.nondetections.Nondetections`
        as a dict); None when the catalog has none.
    seed : int
        Seeds RAIL's informer.
    options : dict, optional
        Informer settings that replace RAIL's defaults (:data:`INFORMER_OPTIONS`).
    """
    require_rail()
    from rail.estimation.algos.flexzboost import FlexZBoostInformer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    policy = Nondetections.from_dict(nondetect)
    data = _rail_table(catalog, bands, policy, ids, with_z=True)
    # The informer keeps RAIL's own grid for its tuning (nzbins): only the estimator's
    # output grid is clapkit's.
    stage = {k: v for k, v in _stage_options(bands, edges).items() if k != "nzbins"}
    stage.update(check_options(options or {}))
    with _quiet_rail():
        informer = FlexZBoostInformer.make_stage(
            name="clapkit_flexzboost_inform",
            model=str(folder / ".rail_model.pkl"),
            zmin=float(edges[0]),
            zmax=float(edges[-1]),
            redshift_col="redshift",
            seed=int(seed),
            **stage,
        )
        informer.inform(data)
    # RAIL keeps a pickle of the model where it was told; clapkit keeps JSON instead.
    for leftover in folder.glob("*rail_model.pkl"):
        leftover.unlink()
    model = informer.model
    save_flexzboost(folder / "model.h5", model, bands, edges)
    return model


def save_flexzboost(path: Path, model, bands: Sequence[str], edges: np.ndarray) -> None:
    """A trained FlexCode model as HDF5: its settings and each XGBoost regressor's JSON.

    Parameters
    ----------
    path : pathlib.Path
        The HDF5 file to write.
    model : FlexCode model
        The trained model.
    bands : sequence of str
        Bands it reads.
    edges : numpy.ndarray
        The redshift grid.
    """
    regressors = model.model.models.estimators_
    settings = {
        "max_basis": int(model.max_basis),
        "basis_system": model.basis_system,
        "z_min": float(np.ravel(model.z_min)[0]),
        "z_max": float(np.ravel(model.z_max)[0]),
        "bump_threshold": None if model.bump_threshold is None else float(model.bump_threshold),
        "sharpen_alpha": None if model.sharpen_alpha is None else float(model.sharpen_alpha),
        "regression_params": model.model.params,
        "bands": list(bands),
    }
    with atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, FORMAT, FORMAT_VERSION)
        f.attrs["settings"] = json.dumps(settings, default=float)
        f.create_dataset("best_basis", data=np.asarray(model.best_basis, dtype=np.int64))
        f.create_dataset("edges", data=np.asarray(edges, dtype=np.float64))
        group = f.create_group("regressors")
        for i, regressor in enumerate(regressors):
            raw = bytes(regressor.get_booster().save_raw(raw_format="json"))
            group.create_dataset(f"{i:03d}", data=np.frombuffer(raw, dtype=np.uint8))
        mark_complete(f)


def load_flexzboost(path: str | os.PathLike):
    """The FlexCode model of :func:`save_flexzboost`, its bands and the bin edges."""
    require_rail()
    import flexcode
    import sklearn.multioutput
    import xgboost
    from flexcode.regression_models import XGBoost

    with open_checked(Path(path), FORMAT, FORMAT_VERSION, "a FlexZBoost model") as f:
        settings = json.loads(f.attrs["settings"])
        best_basis = f["best_basis"][()]
        edges = f["edges"][()]
        raws = [bytearray(f["regressors"][name][()].tobytes()) for name in sorted(f["regressors"])]
    model = flexcode.FlexCodeModel(
        XGBoost,
        max_basis=settings["max_basis"],
        basis_system=settings["basis_system"],
        z_min=settings["z_min"],
        z_max=settings["z_max"],
        regression_params=dict(settings["regression_params"]),
    )
    regressors = []
    for raw in raws:
        regressor = xgboost.XGBRegressor()
        regressor.load_model(raw)
        regressors.append(regressor)
    wrapper = sklearn.multioutput.MultiOutputRegressor(xgboost.XGBRegressor(**model.model.params))
    wrapper.estimators_ = regressors
    model.model.models = wrapper
    model.best_basis = best_basis
    model.bump_threshold = settings["bump_threshold"]
    model.sharpen_alpha = settings["sharpen_alpha"]
    return model, settings["bands"], edges


def predict_flexzboost(
    folder: str | os.PathLike,
    catalog: Table,
    ids: Sequence,
    nondetect: dict[str, Any] | None = None,
) -> np.ndarray:
    """PDFs (N, B) on the model's bins, from RAIL's estimator and qp's CDF at the edges.

    Parameters
    ----------
    folder : path-like
        Folder written by :func:`train_flexzboost`.
    catalog : astropy.table.Table
        Catalog with ``id`` and the bands' magnitudes and errors.
    ids : sequence
        The ids of the galaxies to predict, in the order of the rows returned.
    nondetect : dict, optional
        The run's non-detection policy (:class:`~clapkit.photoz.nondetections.Nondetections`
        as a dict); None when the catalog has none.

    Returns
    -------
    numpy.ndarray, shape (N, B)
    """
    require_rail()
    from rail.estimation.algos.flexzboost import FlexZBoostEstimator

    folder = Path(folder)
    model, bands, edges = load_flexzboost(folder / "model.h5")
    data = _rail_table(catalog, bands, Nondetections.from_dict(nondetect), ids, with_z=False)
    with _quiet_rail():
        estimator = FlexZBoostEstimator.make_stage(
            name="clapkit_flexzboost_estimate",
            model=model,
            output=str(folder / ".rail_estimate.hdf5"),
            **_stage_options(bands, edges),
        )
        try:
            ensemble = estimator.estimate(data).data
        finally:
            for leftover in folder.glob("*rail_estimate.hdf5"):
                leftover.unlink()
    return ensemble_to_bins(ensemble, edges)


def ensemble_to_bins(ensemble, edges: np.ndarray) -> np.ndarray:
    """Bin probabilities of a qp ensemble: its CDF differenced at the edges, renormalised
    over the grid (probability outside it is dropped)."""
    cdf = np.atleast_2d(np.asarray(ensemble.cdf(np.asarray(edges, dtype=np.float64)), np.float64))
    p = np.clip(np.diff(cdf, axis=1), 0.0, None)
    totals = p.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        row = int(np.flatnonzero(totals[:, 0] <= 0)[0])
        raise ValidationError(f"the qp PDF of row {row} has no probability on the grid")
    return p / totals
