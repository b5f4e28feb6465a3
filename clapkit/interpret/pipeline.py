"""The stellar-mass analysis through a run directory: train, causal, pid, attribute.

Every stage reads the GalaxySet and what earlier stages left in ``RUN/interpret/``, and
writes its results there (atomically, each file stamped with the clapkit version; the
paths are :class:`~clapkit.runs.RunDir`'s, the readers :mod:`clapkit.interpret.results`).
Each stage takes its settings as one object of :mod:`clapkit.interpret.settings`, checked
before the stage reads or writes anything. What they write:

- ``mass/<input set>/``: the model (:mod:`clapkit.interpret.mass`) and
  ``prediction.h5`` (PDFs, point estimates and latent vectors of *every* galaxy, the
  latent space being what the local tests search); ``mass/metrics.json``: σ, median offset and
  the PDF metrics of each input set on the test split;
- ``causal/local_tests.json``: the :class:`~clapkit.interpret.local_tests.CausalGraph`
  of the local tests in one model's latent space (each test with how z was regressed
  out, quadratic by default, and its raw and Benjamini–Hochberg adjusted p-values); ``causal/pc.json``: the PC graph over
  catalog columns with bootstrap edge confidences and, on the mock survey, its score
  against :func:`clapkit.sim.graph.true_graph`, which ``causal/true_graph.json`` records
  (with its selection node); ``causal/fci.json``: the FCI PAG over the same columns and,
  on the mock, the true PAG and its score; ``causal/local_tests_truth.json`` (mock
  only): the local tests' verdicts against what the true graph implies;
- ``pid/pid.json``: the MI decomposition of every input pair (sample means, by galaxy
  type, with bootstrap intervals over the test galaxies) and ``pid/per_galaxy.h5`` (the
  per-galaxy terms);
- ``attributions/attributions.h5`` and ``attributions/summary.json``: per-band maps of
  test galaxies from each attribution method, their radial profiles and each method's
  model-randomisation check (which methods pass, in the summary).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from numpy.typing import NDArray

import clapkit
from clapkit.atomic import atomic_path, check_writable, write_json
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import mark_complete, write_header
from clapkit.interpret.galaxy_types import galaxy_types
from clapkit.interpret.information.decomposition import Decomposition
from clapkit.interpret.input_sets import InputSet, input_set
from clapkit.interpret.mass import (
    mass_edges,
    mass_metric_draws,
    mass_metrics,
    predict_mass,
    read_model,
    train_mass_model,
)
from clapkit.interpret.mass_metric_names import upgrade_mass_metrics
from clapkit.interpret.results import (
    ATTRIBUTION_FORMAT,
    ATTRIBUTION_VERSION,
    PID_FORMAT,
    MassPrediction,
    clapkit_json,
    mass_dir,
    read_mass_prediction,
    read_prediction,
    write_true_graph,
)
from clapkit.interpret.settings import (
    IMAGE_SOURCES,
    PAIRS,
    SOURCES,
    AttributionSettings,
    CausalSettings,
    MassTrainSettings,
    PIDSettings,
)
from clapkit.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    bootstrap_draws,
    percentile_interval,
)
from clapkit.nets.device import resolve_device
from clapkit.runs import RunDir

#: ``GalaxySet.meta["source"]`` of the mock survey, whose true graph is known.
MOCK_SURVEY = "clapkit mock survey"
#: Magnitude columns of the mock survey's true graph that PC may be run over.
TRUE_GRAPH_BANDS = ("sdss", "wise")


def load_data(path: str | os.PathLike) -> GalaxySet:
    """The GalaxySet at ``path`` (lazy), with a clear error when it is missing."""
    if not Path(path).is_file():
        raise FileFormatError(f"{path}: no such GalaxySet file")
    return GalaxySet.load(path)


def _quiet(_: str) -> None:
    pass


def _check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse, before any work, to replace results unless ``overwrite``."""
    for path in paths:
        check_writable(path, overwrite)


# ----------------------------------------------------------------------------- train


def train_stage(
    data: str | os.PathLike,
    run: str | os.PathLike,
    settings: MassTrainSettings | None = None,
    *,
    progress: bool = False,
    log: Callable[[str], None] = _quiet,
    device: str | None = None,
) -> dict[str, dict[str, float]]:
    """Train (or resume) each input set's model, predict every galaxy, score the test split.

    Parameters
    ----------
    data : path-like
        GalaxySet file of the mock survey (with ``log_mstar`` and splits).
    run : path-like
        Run directory; the models go to ``interpret/mass/<input_set>/``.
    settings : MassTrainSettings, optional
        Input sets, preset, overrides and seed; the defaults when None.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step (the command line prints them).
    device : str, optional
        Where the networks train and encode (``"cpu"`` by default, ``"cuda"``,
        ``"auto"``); not a setting of the results.

    Returns
    -------
    dict
        ``{input_set: metrics}`` as written to ``mass/metrics.json``.

    Examples
    --------
    >>> settings = MassTrainSettings(("photometry",), preset="tiny")
    >>> train_stage("survey.h5", "runs/mass", settings)  # doctest: +SKIP
    """
    settings = MassTrainSettings() if settings is None else settings
    names, preset = settings.input_sets, settings.preset
    if device is not None:
        resolve_device(device)  # refused before the data is read
    galaxies = load_data(data)
    test_rows = np.flatnonzero(np.asarray(galaxies.catalog["split"]) == "test")
    if test_rows.size == 0:
        raise ValidationError(f"{data}: the stellar-mass models are scored on a test split")
    path = RunDir(run).mass_metrics_path
    metrics: dict[str, dict[str, float]] = {}
    if path.is_file():
        stored = clapkit_json(path).get("input_sets", {})
        metrics = {name: upgrade_mass_metrics(row) for name, row in stored.items()}
    for name in names:
        log(f"stellar mass from {name}: training ({preset})")
        folder = train_mass_model(
            galaxies,
            name,
            mass_dir(run, name),
            preset=preset,
            overrides=settings.overrides,
            seed=settings.seed,
            progress=progress,
            device=device,
        )
        prediction = predict_mass(folder, galaxies, progress=progress, device=device)
        prediction.save(RunDir(run).mass_prediction_path(name), overwrite=True)
        metrics[name] = mass_metrics(
            prediction.pdfs[test_rows], prediction.edges, prediction.true[test_rows]
        )
        log(
            f"stellar mass from {name}: σ {metrics[name]['sigma']:.3f} dex, median offset "
            f"{metrics[name]['median_offset']:+.3f} dex"
        )
    stored = {"clapkit_version": clapkit.__version__, "split": "test", "input_sets": metrics}
    if settings.n_bootstrap:
        stored.update(_mass_intervals(run, galaxies, metrics, test_rows, settings))
    write_json(path, stored, overwrite=True)
    return metrics


#: The input set whose σ the others are compared with, draw by draw, when it is trained.
REFERENCE_INPUT_SET = "photometry"


def _mass_intervals(
    run: str | os.PathLike,
    galaxies: GalaxySet,
    metrics: dict[str, dict[str, Any]],
    test_rows: NDArray,
    settings: MassTrainSettings,
) -> dict[str, Any]:
    """Add ``<metric>_ci`` to every input set whose predictions match ``galaxies``, from
    one set of bootstrap draws of the test galaxies shared by all of them (so the input
    sets are paired), and return the ``bootstrap`` and ``paired_differences`` blocks:
    each input set minus :data:`REFERENCE_INPUT_SET`, draw by draw."""
    draws = bootstrap_draws(test_rows.size, settings.n_bootstrap, settings.seed)
    drawn: dict[str, dict[str, NDArray]] = {}
    for name in metrics:
        path = RunDir(run).mass_prediction_path(name)
        if not path.is_file():
            continue
        prediction = read_prediction(path)
        if len(prediction.ids) != len(galaxies):
            continue  # trained on other data: its stored metrics stay without intervals
        drawn[name] = mass_metric_draws(
            prediction.pdfs[test_rows], prediction.edges, prediction.true[test_rows], draws
        )
        for key, values in drawn[name].items():
            metrics[name][f"{key}_ci"] = list(percentile_interval(values, settings.confidence))
    block: dict[str, Any] = {
        "bootstrap": {
            "n_resamples": settings.n_bootstrap,
            "confidence": settings.confidence,
            "seed": settings.seed,
            "resampled": "test galaxies; models not retrained per draw",
        }
    }
    reference = drawn.get(REFERENCE_INPUT_SET)
    if reference is not None:
        block["paired_differences"] = {
            "reference": REFERENCE_INPUT_SET,
            "input_sets": {
                name: {
                    key: list(
                        percentile_interval(values[key] - reference[key], settings.confidence)
                    )
                    for key in values
                }
                for name, values in drawn.items()
                if name != REFERENCE_INPUT_SET
            },
        }
    return block


def _aligned(prediction: MassPrediction, galaxies: GalaxySet, what: str) -> None:
    if not np.array_equal(np.asarray(prediction.ids), np.asarray(galaxies.ids)):
        raise ValidationError(
            f"the {what} predictions in the run were made for other galaxies than this data; "
            "run clapkit interpret train on this data again"
        )


# ----------------------------------------------------------------------------- causal


def causal_stage(
    data: str | os.PathLike,
    run: str | os.PathLike,
    settings: CausalSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = _quiet,
) -> dict[str, Any]:
    """Local tests in one model's latent space, and PC and/or FCI over catalog columns.

    On the mock survey the true graph (with its selection node) is recorded, PC is
    scored against both the induced subgraph's pattern and what a perfect test finds on
    the selected data, FCI against the true PAG (:mod:`clapkit.interpret.fci`), and the
    local tests' verdicts against what the graph implies given the latent
    (:mod:`clapkit.interpret.truth`).

    Parameters
    ----------
    data : path-like
        GalaxySet file with the catalog columns tested.
    run : path-like
        Run directory with the trained ``settings.latent_of`` model; the results go to
        ``interpret/causal/``.
    settings : CausalSettings, optional
        The local tests' and PC's settings; the defaults when None.
    overwrite : bool
        Replace this stage's existing outputs.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step (the command line prints them).

    Returns
    -------
    dict
        ``{"local_tests": CausalGraph.to_dict(), "pc": {...}, "fci": {...},
        "local_tests_truth": {...}}`` as written; ``pc`` or ``fci`` is None where it
        was not run, ``local_tests_truth`` None off the mock survey.

    Examples
    --------
    >>> settings = CausalSettings(k=8, n_permutations=99, n_bootstrap=2)
    >>> causal_stage("survey.h5", "runs/mass", settings)  # doctest: +SKIP
    """
    from clapkit.interpret.local_tests import run_local_tests
    from clapkit.interpret.truth import score_local_tests

    paths = RunDir(run)
    settings = CausalSettings() if settings is None else settings
    latent_of = settings.latent_of
    _check_outputs(
        (
            paths.local_tests_path,
            paths.pc_path,
            paths.fci_path,
            paths.true_graph_path,
            paths.local_tests_truth_path,
        ),
        overwrite,
    )
    galaxies = load_data(data)
    prediction = read_mass_prediction(run, latent_of)
    _aligned(prediction, galaxies, latent_of)
    log(
        f"local tests in the latent space of the {latent_of} model ({settings.neighbourhoods} "
        f"neighbourhoods of k = {settings.k}, weights {settings.weights}, "
        f"{settings.regression} in {settings.conditioning or 'nothing'})"
    )
    graph = run_local_tests(
        prediction.latent,
        galaxies.catalog,
        target="log_mstar",
        external=list(settings.external),
        conditioning=settings.conditioning,
        k=settings.k,
        n_permutations=settings.n_permutations,
        alpha=settings.alpha,
        regression=settings.regression,
        neighbourhoods=settings.neighbourhoods,
        weights=settings.weights,
        seed=settings.seed,
        input_name=latent_of,
    )
    paths.causal_dir.mkdir(parents=True, exist_ok=True)
    graph.save(paths.local_tests_path, overwrite=True)
    found = _discovery(galaxies.catalog, settings, progress, log)
    source = galaxies.meta.get("source")
    truth_scores = None
    if source == MOCK_SURVEY:
        from clapkit.sim.graph import true_graph

        # A survey with varying observing conditions records them (seeing and sky are
        # then parents of the magnitudes); a file without the key had fixed ones.
        truth = true_graph(TRUE_GRAPH_BANDS, observing=galaxies.meta.get("observing", "fixed"))
        _score_discovery(found, truth)
        truth_scores = score_local_tests(graph, truth, selection=truth.graph["selection"])
        # Recorded so that readers (the dashboard) need not know how the data was made.
        write_true_graph(run, truth, source, overwrite=True)
    else:
        # A true graph left by an earlier run on other data would be wrong for this one.
        paths.true_graph_path.unlink(missing_ok=True)
    stamp = {"clapkit_version": clapkit.__version__}
    for name, path in (("pc", paths.pc_path), ("fci", paths.fci_path)):
        if found[name] is None:
            path.unlink(missing_ok=True)  # not run this time: an older result would mislead
        else:
            write_json(path, {**stamp, **found[name]}, overwrite=True)
    if truth_scores is None:
        paths.local_tests_truth_path.unlink(missing_ok=True)
    else:
        write_json(paths.local_tests_truth_path, {**stamp, **truth_scores}, overwrite=True)
    return {"local_tests": graph.to_dict(), **found, "local_tests_truth": truth_scores}


def _discovery(
    catalog: Any, settings: CausalSettings, progress: bool, log: Callable[[str], None]
) -> dict[str, dict[str, Any] | None]:
    """PC and/or FCI over catalog columns, as ``settings.discovery`` asks (scores unset)."""
    from clapkit.interpret.discovery import pc_discovery
    from clapkit.interpret.fci import fci_discovery

    columns = None if settings.pc_columns is None else list(settings.pc_columns)
    found: dict[str, dict[str, Any] | None] = {"pc": None, "fci": None}
    if settings.discovery in ("pc", "both"):
        log("PC causal discovery over catalog columns")
        result = pc_discovery(
            catalog,
            columns,
            alpha=settings.pc_alpha,
            depth=settings.pc_depth,
            max_rows=settings.max_rows,
            n_bootstrap=settings.n_bootstrap,
            seed=settings.seed,
            progress=progress,
        )
        found["pc"] = {"graph": result.to_dict(), "score": None, "reference": None}
        found["pc"] |= {"score_selection": None, "reference_selection": None}
    if settings.discovery in ("fci", "both"):
        log("FCI causal discovery over catalog columns")
        pag = fci_discovery(
            catalog,
            columns,
            alpha=settings.pc_alpha,
            depth=settings.pc_depth,
            max_rows=settings.max_rows,
            seed=settings.seed,
        )
        found["fci"] = {"graph": pag.to_dict(), "score": None, "reference": None}
    return found


def _score_discovery(found: dict[str, dict[str, Any] | None], truth: Any) -> None:
    """Fill in the scores of the found graphs against the truth, in place."""
    from clapkit.interpret.discovery import (
        DiscoveryResult,
        compare_adjacency,
        reference_graph,
        score_graph,
    )
    from clapkit.interpret.fci import PAGResult, compare_pags, selection_reference, true_pag

    selection = truth.graph.get("selection")
    if found["pc"] is not None:
        pc = found["pc"]
        result = DiscoveryResult.from_dict(pc["graph"])
        pc["score"] = score_graph(result, truth)
        # What PC finds with a perfect test: the pattern the score compares with.
        pc["reference"] = reference_graph(truth, result.columns).to_dict()
        # ... and with the left-out variables hidden and the selection conditioned on,
        # which is what the selected data can show.
        reference = selection_reference(truth, result.columns, selection)
        pc["reference_selection"] = reference.to_dict()
        pc["score_selection"] = compare_adjacency(result.adjacency, reference.adjacency)
    if found["fci"] is not None:
        fci = found["fci"]
        pag = PAGResult.from_dict(fci["graph"])
        reference = true_pag(truth, pag.columns, selection)
        fci["reference"] = reference.to_dict()
        fci["score"] = compare_pags(pag.marks, reference.marks)


# ----------------------------------------------------------------------------- pid


def _source_inputs(
    source: str, galaxies: GalaxySet, run: str | os.PathLike, settings: PIDSettings
) -> Any:
    """What the MI classifiers of ``source`` read: its catalog columns and the
    auxiliary ones (E(B−V)), and for an image input its pixels (scaled as the stellar-mass
    networks read them) or the latent vectors of its trained mass model."""
    from clapkit.interpret.information.inputs import ClassifierInputs

    columns = [*SOURCES[source], *settings.auxiliary]
    images = None
    if source in IMAGE_SOURCES and settings.image_features == "latent":
        name = IMAGE_SOURCES[source]
        prediction = read_mass_prediction(run, name)
        _aligned(prediction, galaxies, name)
        latent = np.asarray(prediction.latent, dtype=np.float64)
        return ClassifierInputs(features=np.hstack([latent, _columns(columns, galaxies, source)]))
    if source in IMAGE_SOURCES:
        images = _pixels(input_set(IMAGE_SOURCES[source]), galaxies, settings.crop)
    features = _columns(columns, galaxies, source) if columns else None
    return ClassifierInputs(features=features, images=images)


def _columns(columns: Sequence[str], galaxies: GalaxySet, source: str) -> NDArray:
    """The catalog ``columns`` as an (N, F) array, refused by name where not finite."""
    parts = []
    for column in columns:
        if column not in galaxies.catalog.colnames:
            raise ValidationError(
                f"the {source!r} input reads catalog column {column!r}, which is missing"
            )
        values = np.asarray(galaxies.catalog[column], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValidationError(f"column {column!r} is not finite at row {row}")
        parts.append(values)
    return np.column_stack(parts) if parts else np.zeros((len(galaxies), 0))


def _pixels(chosen: InputSet, galaxies: GalaxySet, crop: int) -> NDArray[np.float32]:
    """The stamps of an image input set, cut and scaled as its mass model reads them
    (the scaling frozen on the training split)."""
    from clapkit.photoz.network_inputs import make_input_spec, network_inputs

    spec = make_input_spec(
        galaxies.split("train"),
        mass_edges(),
        instrument=chosen.instrument,
        crop=crop,
        extra_columns=(),
        flux_columns=chosen.flux_columns,
        bands=chosen.bands or None,
    )
    return network_inputs(spec, galaxies).x


def _pid_row(
    decomposition: Decomposition, inputs: Sequence[str], types: NDArray, seed: int
) -> dict[str, Any]:
    """One pair's entry of ``pid.json``: every mean term with its bootstrap interval
    (``<term>_ci``), the means by galaxy type, and the decomposition of the mean MIs
    (``mmi``) with its intervals, from the same draws."""
    intervals = decomposition.intervals(DEFAULT_RESAMPLES, DEFAULT_CONFIDENCE, seed)

    def with_intervals(values: dict[str, float], found: dict[str, tuple]) -> dict[str, Any]:
        return {**values, **{f"{term}_ci": list(found[term]) for term in values}}

    return {
        "inputs": list(inputs),
        **with_intervals(decomposition.mean(), intervals["mean"]),
        "by_type": decomposition.by_group(types),
        "mmi": with_intervals(decomposition.mmi(), intervals["mmi"]),
    }


def pid_stage(
    data: str | os.PathLike,
    run: str | os.PathLike,
    settings: PIDSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = _quiet,
) -> dict[str, Any]:
    """MI decomposition of each input pair; classifiers trained on the train split, the
    per-galaxy terms measured on the test split, in nats.

    The mass is binned in ``settings.n_bins`` equal bins over the training range, or over
    ``settings.mass_range`` (the MI of a classifier is that of the binned mass;
    :data:`~clapkit.interpret.settings.PUBLISHED_GRID` is the published grid). As published, each classifier reads its
    input itself — image inputs as pixels through a CNN, with the catalog columns beside
    them — and both inputs of a pair get the same auxiliary columns (E(B−V));
    ``settings.image_features="latent"`` reads the images through the latent vectors v_A
    of their trained stellar-mass model instead (which then must be trained).

    Parameters
    ----------
    data : path-like
        GalaxySet file with ``log_mstar``, splits and the inputs' columns.
    run : path-like
        Run directory (the ``images`` model gives the latent inputs); the results go to
        ``interpret/pid/``.
    settings : PIDSettings, optional
        Pairs, bins and classifier settings; the defaults when None.
    overwrite : bool
        Replace this stage's existing outputs.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step (the command line prints them).

    Returns
    -------
    dict
        The summary written to ``interpret/pid/pid.json``. Per pair: every term's mean
        over the test galaxies and its bootstrap interval ``<term>_ci`` (``[lo, hi]``,
        :meth:`~clapkit.interpret.information.Decomposition.intervals`), ``by_type``,
        and ``mmi``, the decomposition of the mean MIs with its intervals; the draws'
        settings under ``bootstrap``. The intervals are the sampling uncertainty of the
        test galaxies only: the classifiers are not retrained per draw. Files written
        before the intervals were added lack these keys.

    Examples
    --------
    >>> settings = PIDSettings(("optical_wise",), classifier={"epochs": 15})
    >>> pid_stage("survey.h5", "runs/mass", settings)  # doctest: +SKIP
    """
    from clapkit.interpret.information import estimate_information

    settings = PIDSettings() if settings is None else settings
    pairs, n_bins = settings.pairs, settings.n_bins
    paths = RunDir(run)
    _check_outputs((paths.pid_path, paths.pid_per_galaxy_path), overwrite)
    galaxies = load_data(data)
    split = np.asarray(galaxies.catalog["split"])
    train, test = split == "train", split == "test"
    if train.sum() < 10 or test.sum() < 10:
        raise ValidationError(
            f"{data}: the MI decomposition needs train and test galaxies (has {int(train.sum())} "
            f"and {int(test.sum())})"
        )
    mass = np.asarray(galaxies.catalog["log_mstar"], dtype=np.float64)
    lo, hi = settings.mass_range or (mass[train].min(), mass[train].max())
    bins = np.clip(((mass - lo) / (hi - lo) * n_bins).astype(np.int64), 0, n_bins - 1)
    types = galaxy_types(galaxies.catalog)[test]
    classifier = settings.classifier_config()
    summary: dict[str, Any] = {}
    per_galaxy: dict[str, dict[str, NDArray]] = {}
    inputs: dict[str, Any] = {}  # by source: several pairs share one
    for pair in pairs:
        first, second = PAIRS[pair]
        for source in (first, second):
            if source not in inputs:
                inputs[source] = _source_inputs(source, galaxies, run, settings)
        x1, x2 = inputs[first], inputs[second]
        log(f"MI decomposition: {first} vs {second}")
        decomposition = estimate_information(
            x1.take(train),
            x2.take(train),
            bins[train],
            x1.take(test),
            x2.take(test),
            bins[test],
            n_bins,
            config=classifier,
            prior_pseudocount=settings.prior_pseudocount,
            progress=progress,
        )
        summary[pair] = _pid_row(decomposition, (first, second), types, settings.seed)
        per_galaxy[pair] = {
            term: np.asarray(getattr(decomposition, term))
            for term in ("mi_1", "mi_2", "mi_12", "redundancy", "unique_1", "unique_2", "synergy")
        }
    paths.pid_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(paths.pid_per_galaxy_path, overwrite=True) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, PID_FORMAT, 1)
        f.create_dataset("ids", data=np.asarray(galaxies.ids)[test])
        f.create_dataset("galaxy_type", data=types.astype("S"))
        for pair, terms in per_galaxy.items():
            group = f.create_group(pair)
            for term, values in terms.items():
                group.create_dataset(term, data=values)
        mark_complete(f)
    result = {
        "clapkit_version": clapkit.__version__,
        "units": "nats",
        "n_bins": n_bins,
        "mass_range": [float(lo), float(hi)],
        "prior_pseudocount": settings.prior_pseudocount,
        "image_features": settings.image_features,
        "auxiliary": list(settings.auxiliary),
        "crop": settings.crop,
        "sources": {
            source: {
                "columns": [*SOURCES[source], *settings.auxiliary],
                **({"images": IMAGE_SOURCES[source]} if source in IMAGE_SOURCES else {}),
            }
            for source in inputs
        },
        "bootstrap": {
            "n_resamples": DEFAULT_RESAMPLES,
            "confidence": DEFAULT_CONFIDENCE,
            "seed": settings.seed,
            "resampled": "test galaxies; classifiers not retrained per draw",
        },
        "pairs": summary,
    }
    write_json(paths.pid_path, result, overwrite=True)
    return result


# ----------------------------------------------------------------------------- attribute


def _image_model(run: str | os.PathLike, name: str):
    """The first realisation's SCL network of an image model, and its input spec."""
    from clapkit.photoz.clap import CLAPConfig, load_realisation
    from clapkit.photoz.network_inputs import InputSpec

    folder = mass_dir(run, name)
    record = read_model(folder)
    spec = InputSpec.from_dict(record["spec"])
    if spec.kind != "images":
        raise ValidationError(f"attributions need an image model; {name!r} reads {spec.kind}")
    net, _, _, _ = load_realisation(folder / "r0", spec, CLAPConfig(**record["clap"]))
    return net.eval(), spec


def attribute_stage(
    data: str | os.PathLike,
    run: str | os.PathLike,
    settings: AttributionSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = _quiet,
) -> dict[str, Any]:
    """Attribution maps of test galaxies for an image model, per band and per method, with
    each method's randomisation check.

    The target of each galaxy is its true mass bin; the network is the first
    realisation's SCL encoder and estimator (the logits over mass bins). Every method of
    ``settings.methods`` maps the same galaxies and is checked against the same
    re-initialised network; the summary lists which methods pass.

    Parameters
    ----------
    data : path-like
        GalaxySet file with the images and ``log_mstar``.
    run : path-like
        Run directory with the trained image ``settings.model``; the results go to
        ``interpret/attributions/``.
    settings : AttributionSettings, optional
        Model, galaxies, methods and their steps; the defaults when None.
    overwrite : bool
        Replace this stage's existing outputs.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line per step (the command line prints them).

    Returns
    -------
    dict
        The summary written to ``interpret/attributions/summary.json``: ``methods``,
        the centre fractions by galaxy type of each (``centre_fraction_by_method``), and
        ``randomisation`` with the ``threshold``, the methods ``passed``, ``failed`` and
        ``inconclusive``, and ``per_method`` median ρ, median |ρ| and verdict. ``method``,
        ``centre_fraction_by_type`` and the verdict keys directly under
        ``randomisation`` are the first method's, as single-method summaries had them.

    Examples
    --------
    >>> settings = AttributionSettings(n_galaxies=6, n_steps=8)
    >>> attribute_stage("survey.h5", "runs/mass", settings)  # doctest: +SKIP
    """
    from clapkit.interpret.attributions import (
        centre_fraction,
        mean_by_group,
        radial_profiles,
        randomisation_check,
    )
    from clapkit.photoz.network_inputs import network_inputs

    settings = AttributionSettings() if settings is None else settings
    model, methods, seed = settings.model, settings.methods, settings.seed
    paths = RunDir(run)
    _check_outputs((paths.attributions_path, paths.attribution_summary_path), overwrite)
    net, spec = _image_model(run, model)
    galaxies = load_data(data)
    test_rows = np.flatnonzero(np.asarray(galaxies.catalog["split"]) == "test")
    if test_rows.size == 0:
        raise ValidationError(f"{data}: attributions are computed for test galaxies; none here")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(test_rows, min(settings.n_galaxies, test_rows.size), replace=False))
    chosen = galaxies[rows]
    inputs = network_inputs(spec, chosen)
    edges = np.asarray(spec.edges)
    mass = np.asarray(chosen.catalog["log_mstar"], dtype=np.float64)
    target = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, edges.size - 2)
    extra = inputs.extra if inputs.extra.shape[1] else None
    options = {
        "extra": extra,
        "n_steps": settings.n_steps,
        "internal_batch_size": settings.internal_batch_size,
        "n_samples": settings.smoothgrad_samples,
        "noise_fraction": settings.smoothgrad_noise,
        "seed": seed,
        "progress": progress,
    }
    with torch.no_grad():
        predicted = net(
            torch.from_numpy(inputs.x), None if extra is None else torch.from_numpy(extra)
        )
    types = galaxy_types(chosen.catalog)
    checks: dict[str, dict[str, Any]] = {}
    for method in methods:
        log(f"attributions ({method}) of {len(rows)} test galaxies, with the randomisation check")
        # The check attributes the trained network too: its maps are the ones stored. Every
        # method's check re-initialises the network from one seed: the same random weights.
        checks[method] = randomisation_check(net, inputs.x, target, method=method, **options)
    paths.attributions_dir.mkdir(parents=True, exist_ok=True)
    radii = None
    centre_by_method = {}
    with (
        atomic_path(paths.attributions_path, overwrite=True) as tmp,
        h5py.File(tmp, "w") as f,
    ):
        write_header(f, ATTRIBUTION_FORMAT, ATTRIBUTION_VERSION)
        f.attrs["method"] = methods[0]  # shown first
        f.attrs["methods"] = np.asarray(methods, dtype="S")
        f.attrs["model"] = model
        f.create_dataset("ids", data=np.asarray(chosen.ids))
        f.create_dataset("bands", data=np.asarray(spec.bands, dtype="S"))
        f.create_dataset("images", data=inputs.x)
        f.create_dataset("edges", data=edges)
        f.create_dataset("galaxy_type", data=types.astype("S"))
        f.create_dataset("log_mstar", data=mass)
        f.create_dataset("predicted_bin", data=predicted.argmax(dim=1).numpy())
        for method, check in checks.items():
            group = f.create_group(f"methods/{method}")
            maps = check["attributions"]
            profiles, radii = radial_profiles(maps)
            centre = centre_fraction(maps, settings.centre_radius)
            centre_by_method[method] = {
                label: [float(v) for v in np.atleast_1d(value)]
                for label, value in mean_by_group(centre, types).items()
            }
            group.create_dataset("maps", data=maps)
            group.create_dataset("randomised_maps", data=check["randomised"])
            group.create_dataset("profiles", data=profiles)
            randomised_profiles = radial_profiles(check["randomised"])[0]
            group.create_dataset("randomised_profiles", data=randomised_profiles)
            group.create_dataset("rho", data=np.asarray(check["rho"], dtype=np.float64))
            for key in ("median_rho", "median_abs_rho", "threshold", "verdict"):
                group.attrs[key] = check[key]
        f.create_dataset("radii", data=radii)
        mark_complete(f)
    per_method = {
        method: {key: check[key] for key in ("median_rho", "median_abs_rho", "verdict")}
        for method, check in checks.items()
    }
    first = checks[methods[0]]
    summary = {
        "clapkit_version": clapkit.__version__,
        "model": model,
        "method": methods[0],
        "methods": list(methods),
        "bands": list(spec.bands),
        "n_galaxies": len(rows),
        "n_steps": settings.n_steps,
        "centre_radius_pixels": settings.centre_radius,
        # The first method's, under the key single-method summaries had.
        "centre_fraction_by_type": centre_by_method[methods[0]],
        "centre_fraction_by_method": centre_by_method,
        "randomisation": {
            "threshold": first["threshold"],
            "passed": [m for m in methods if checks[m]["verdict"] == "passed"],
            "failed": [m for m in methods if checks[m]["verdict"] == "failed"],
            "inconclusive": [m for m in methods if checks[m]["verdict"] == "inconclusive"],
            "per_method": per_method,
            # The first method's verdict, where single-method summaries had it.
            **per_method[methods[0]],
        },
    }
    if "smoothgrad" in methods:
        summary["smoothgrad"] = {
            "n_samples": settings.smoothgrad_samples,
            "noise_fraction": settings.smoothgrad_noise,
            "noise": "Gaussian, sigma = noise_fraction x (max - min) of each image",
        }
    write_json(paths.attribution_summary_path, summary, overwrite=True)
    return summary
