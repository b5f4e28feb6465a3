"""Every figure a run directory holds the data for, read through the library's readers.

:func:`plan_figures` looks at a run (without drawing) and returns the figures it can
make and the pillars it lacks, each with the command that makes it;
:func:`figures_from_run` draws them for a notebook, :func:`write_figures` writes them for
a paper (``clapkit figures``). Paths come from :class:`~clapkit.runs.RunDir` and results
are read by the library's torch-free readers (:mod:`clapkit.translate.results`,
:mod:`clapkit.interpret.results`), so making figures never loads torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from clapkit.atomic import check_writable
from clapkit.errors import ClapkitError, FileFormatError, ValidationError
from clapkit.evaluation import ordered_methods, read_galaxy_table
from clapkit.plots.calibration import (
    plot_calibration_by_bin,
    plot_coverage_curves,
    plot_pit_histograms,
)
from clapkit.plots.neighbours import plot_galaxy
from clapkit.plots.stellar_mass import (
    plot_causal_graph,
    plot_mass_vs_truth,
    plot_mi_bars,
    plot_pc_graph,
)
from clapkit.plots.style import (
    DEFAULT_FORMATS,
    check_formats,
    figure_width,
    output_paths,
    save_figure,
)
from clapkit.plots.translation import REAL, plot_noise_spectra, plot_translation_grid
from clapkit.runs import RunDir

#: Galaxies in a translation grid (rows).
GRID_GALAXIES = 3
#: Translation tasks in the order their figures are made (others follow, sorted).
TASK_ORDER = ("s2s", "s2c")

Maker = Callable[[str | float], tuple[Figure, Table]]


@dataclass(frozen=True)
class PlannedFigure:
    """A figure the run has the data for: its file name (no extension), its pillar and
    the function that draws it at a given width."""

    name: str
    pillar: str
    make: Maker = field(repr=False)


@dataclass
class FigurePlan:
    """What :func:`plan_figures` found: the figures to make, and what is skipped and why
    (each with the command that makes the missing results)."""

    run: RunDir
    figures: list[PlannedFigure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [figure.name for figure in self.figures]


def plan_figures(run: RunDir | str | os.PathLike, *, galaxy: Any = None) -> FigurePlan:
    """The figures ``run`` has data for, checked but not drawn.

    Parameters
    ----------
    run : RunDir or path
    galaxy : optional
        The galaxy of the ``galaxy`` figure (an id of the run's PDF files, as stored or
        as text); default: the galaxy whose true redshift is the sample's median.

    Raises
    ------
    ValidationError
        If the run does not exist, holds nothing to plot, or ``galaxy`` is not in it.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.root.is_dir():
        raise ValidationError(f"run {run.root} does not exist; give a run directory (--run)")
    plan = FigurePlan(run)
    _plan_photoz(plan, galaxy)
    _plan_translation(plan)
    _plan_stellar_mass(plan)
    if not plan.figures:
        raise ValidationError(
            f"{run.root} holds nothing to plot: " + " ".join(_sentence(s) for s in plan.skipped)
        )
    return plan


def figures_from_run(
    run: RunDir | str | os.PathLike, *, width: str | float = "single", galaxy: Any = None
) -> dict[str, tuple[Figure, Table]]:
    """Draw every figure ``run`` has data for: ``{name: (figure, table)}``.

    What the run lacks is left out (see :func:`plan_figures` for what and why).
    """
    figure_width(width)
    plan = plan_figures(run, galaxy=galaxy)
    return {figure.name: figure.make(width) for figure in plan.figures}


def write_figures(
    run: RunDir | str | os.PathLike,
    out: str | os.PathLike,
    *,
    formats: str | Sequence[str] = DEFAULT_FORMATS,
    width: str | float = "single",
    galaxy: Any = None,
    overwrite: bool = False,
    progress: bool = False,
) -> tuple[list[Path], FigurePlan]:
    """Draw every figure of ``run`` and write it to ``out`` in each format, with its CSV.

    Everything is checked before anything is written: the formats, the width, the run,
    the galaxy and every output file (none may exist without ``overwrite``); and every
    figure is drawn before the first file is written, so a run that cannot be read leaves
    ``out`` as it was.

    Parameters
    ----------
    run : RunDir or path
    out : path
        Folder of the figures (created).
    formats : str or sequence of str
        Matplotlib formats, e.g. ``"pdf,png"``.
    width : "single", "double" or float
        Journal column width (see :mod:`clapkit.plots.style`).
    galaxy : optional
        The galaxy of the ``galaxy`` figure.
    overwrite : bool
        Replace existing files.
    progress : bool
        A progress bar over the figures.

    Returns
    -------
    paths : list of Path
        Files written.
    plan : FigurePlan
        What was drawn and what was skipped.
    """
    formats = check_formats(formats)
    figure_width(width)
    plan = plan_figures(run, galaxy=galaxy)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"--out {out} is a file; give a folder for the figures")
    for name in plan.names:
        for path in output_paths(out, name, formats):
            check_writable(path, overwrite)
    drawn = {}
    for figure in tqdm(plan.figures, desc="figures", unit="figure", disable=not progress):
        drawn[figure.name] = figure.make(width)
    paths: list[Path] = []
    for name, (fig, table) in drawn.items():
        paths += save_figure(fig, table, out, name, formats, overwrite=overwrite)
    return paths, plan


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


# ----------------------------------------------------------------------------- photo-z


def _plan_photoz(plan: FigurePlan, galaxy: Any) -> None:
    run, root = plan.run, plan.run.root
    methods = ordered_methods(run.methods())
    if not methods:
        if galaxy is not None:
            raise ValidationError(f"--galaxy {galaxy}: {root} has no PDFs (pdfs/*.h5)")
        plan.skipped.append(
            f"photo-z figures: no PDFs in {root}/pdfs; make them with `clapkit train --data "
            f"DATA --run {root}` and `clapkit predict --run {root} --data DATA`"
        )
        return
    evaluated = _read_evaluation(run, methods)
    if isinstance(evaluated, str):
        plan.skipped.append(evaluated)
    else:
        metrics, galaxies = evaluated
        scored = [m for m in methods if m in metrics and f"{m}.pit" in galaxies.colnames]
        plan.figures.append(
            PlannedFigure(
                "pit_histograms",
                "photo-z",
                lambda width: plot_pit_histograms(
                    {m: np.asarray(galaxies[f"{m}.pit"]) for m in scored}, width=width
                ),
            )
        )
        plan.figures.append(
            PlannedFigure(
                "coverage_curves",
                "photo-z",
                lambda width: plot_coverage_curves(
                    {m: metrics[m]["coverage_curve"] for m in scored}, width=width
                ),
            )
        )
        variables = [
            key[3:]
            for key in metrics[scored[0]]
            if key.startswith("by_") and metrics[scored[0]][key]
        ]
        for variable in variables:
            plan.figures.append(
                PlannedFigure(
                    f"calibration_by_{variable}",
                    "photo-z",
                    lambda width, variable=variable: plot_calibration_by_bin(
                        {
                            m: metrics[m][f"by_{variable}"]
                            for m in scored
                            if f"by_{variable}" in metrics[m]
                        },
                        variable,
                        width=width,
                    ),
                )
            )
    galaxy_id = _galaxy_id(run, methods, galaxy)
    details = _read_details(plan)
    plan.figures.append(
        PlannedFigure(
            "galaxy",
            "photo-z",
            lambda width: _draw_galaxy(run, methods, galaxy_id, details, width),
        )
    )


def _read_evaluation(run: RunDir, methods: list[str]) -> tuple[dict, Table] | str:
    """``metrics.json``'s methods and ``galaxies.h5``, or why they cannot be used."""
    redo = f"make it with `clapkit evaluate --run {run.root} --overwrite`"
    try:
        metrics = run.read_json(run.metrics_path).get("methods")
        galaxies = read_galaxy_table(run.galaxy_table_path)
    except (ClapkitError, OSError, AttributeError) as err:
        return f"calibration figures: no usable evaluation ({err}); {redo}"
    if not isinstance(metrics, dict) or not any(
        m in metrics and "coverage_curve" in metrics[m] and f"{m}.pit" in galaxies.colnames
        for m in methods
    ):
        return f"calibration figures: metrics.json scores none of the run's methods; {redo}"
    return metrics, galaxies


def _galaxy_id(run: RunDir, methods: list[str], galaxy: Any) -> Any:
    """Id of the galaxy figure's galaxy, as stored in the PDF files (checked now)."""
    pdfs, _ = run.load_pdfs(methods[0])
    ids = np.asarray(pdfs.ids)
    if galaxy is None:
        if pdfs.z_true is None:
            return ids[0].item()
        # The galaxy of median true redshift: typical, and the same every time.
        return ids[np.argsort(pdfs.z_true, kind="stable")[(pdfs.n - 1) // 2]].item()
    key = _as_id(galaxy, ids)
    found = np.flatnonzero(ids == key) if key is not None else np.empty(0, int)
    if found.size == 0:
        raise ValidationError(
            f"--galaxy {galaxy}: not among the {ids.size} galaxies of {run.pdf_path(methods[0])} "
            f"(ids such as {ids[0].item()!r})"
        )
    return ids[found[0]].item()


def _as_id(value: Any, ids: np.ndarray) -> Any:
    """``value`` (typed text, say) in the dtype of the stored ids; None if it cannot be."""
    if ids.dtype.kind in "iu":
        try:
            return int(str(value).strip())
        except ValueError:
            return None
    return str(value).strip()


def _read_details(plan: FigurePlan):
    """CLAP's neighbours (``clap/knn.h5``), or None with the reason among the skipped."""
    from clapkit.photoz.details import read_clap_details

    path = plan.run.clap_details_path
    try:
        return read_clap_details(path)
    except (ClapkitError, OSError) as err:
        plan.skipped.append(
            f"CLAP neighbours in the galaxy figure: {err}; make them with `clapkit train "
            f"--data DATA --run {plan.run.root} --method clap` and `clapkit predict`"
        )
        return None


def _draw_galaxy(run, methods, galaxy_id, details, width) -> tuple[Figure, Table]:
    rows, edges, z_true = {}, None, None
    for method in methods:
        pdfs, _ = run.load_pdfs(method)
        # By id: files of a run that was never evaluated need not share an order.
        found = np.flatnonzero(np.asarray(pdfs.ids) == galaxy_id)
        if found.size == 0 or (edges is not None and not np.array_equal(pdfs.edges, edges)):
            continue
        row = int(found[0])
        rows[method], edges = pdfs.p[row], pdfs.edges
        if z_true is None and pdfs.z_true is not None:
            z_true = float(pdfs.z_true[row])
    neighbour_z = None
    if details is not None:
        found = np.flatnonzero(np.asarray(details.ids) == galaxy_id)
        if found.size:
            neighbour_z = details.train_z[details.neighbours(int(found[0]))]
    return plot_galaxy(
        rows, edges, z_true=z_true, neighbour_z=neighbour_z, galaxy_id=galaxy_id, width=width
    )


# ----------------------------------------------------------------------------- translation


def _plan_translation(plan: FigurePlan) -> None:
    root = plan.run.root
    folder = plan.run.translate_dir
    evaluated = sorted(p.parent.name for p in folder.glob("*/evaluation.json"))
    tasks = [t for t in TASK_ORDER if t in evaluated] + [
        t for t in evaluated if t not in TASK_ORDER
    ]
    if not tasks:
        plan.skipped.append(
            f"translation figures: no evaluated translation in {root}/translate; make one with "
            f"`clapkit translate train|apply|evaluate --task s2c --data DATA --run {root}`"
        )
        return
    for task in tasks:
        plan.figures.append(
            PlannedFigure(
                f"translation_{task}",
                "translation",
                lambda width, task=task: _draw_translation_grid(root, task, width),
            )
        )
        plan.figures.append(
            PlannedFigure(
                f"noise_spectra_{task}",
                "translation",
                lambda width, task=task: _draw_noise_spectra(root, task, width),
            )
        )


def _evaluation(root: Path, task: str) -> dict[str, Any]:
    from clapkit.translate.results import read_evaluation

    return read_evaluation(root, task)


def _draw_noise_spectra(root: Path, task: str, width) -> tuple[Figure, Table]:
    spectra = dict(_evaluation(root, task)["noise_power"])
    k = spectra.pop("k")
    ordered = {REAL: spectra.pop(REAL)} if REAL in spectra else {}
    return plot_noise_spectra(k, {**ordered, **spectra}, width=width)


def _draw_translation_grid(root: Path, task: str, width) -> tuple[Figure, Table]:
    from clapkit.data import GalaxySet
    from clapkit.translate.tasks import task as task_spec

    evaluation = _evaluation(root, task)
    spec = task_spec(task)
    sets = [name for name in evaluation["models"] if name != REAL]
    band = "r" if "r" in evaluation["bands"] else evaluation["bands"][len(evaluation["bands"]) // 2]
    stamps: dict[str, np.ndarray] = {}
    with GalaxySet.load(evaluation["data"]) as data:
        test = data.split(evaluation.get("split", "test"))
        ids = np.asarray(test.ids)[:GRID_GALAXIES]
        chosen = test[np.arange(ids.size)]
        for label, instrument in (("source", spec.source), (REAL, spec.target)):
            stack = chosen.stacks[instrument]
            stamps[label] = np.asarray(stack.images[:, list(stack.bands).index(band)])
    for name in sets:
        path = RunDir(root).translated_path(task, name)
        with GalaxySet.load(path) as translated:
            if not np.array_equal(np.asarray(translated.ids)[: ids.size], ids):
                raise FileFormatError(f"{path}: its galaxies are not those of the evaluation")
            stack = translated[np.arange(ids.size)].stacks[spec.target]
            stamps[name] = np.asarray(stack.images[:, list(stack.bands).index(band)])
    return plot_translation_grid(stamps, [i.item() for i in ids], band, width=width)


# ----------------------------------------------------------------------------- stellar mass


def _plan_stellar_mass(plan: FigurePlan) -> None:
    run, root = plan.run, plan.run.root
    # Figure, the result file it reads, the stage that writes it, what it is, how to draw.
    figures = (
        ("mass_vs_truth", run.mass_metrics_path, "train", "no trained model", _draw_mass),
        ("causal_graph", run.local_tests_path, "causal", "no local tests", _draw_causal),
        ("pc_graph", run.pc_path, "causal", "no PC discovery", _draw_pc),
        ("mi_bars", run.pid_path, "pid", "no MI decomposition", _draw_mi),
    )
    for name, result, stage, lacking, draw in figures:
        if result.is_file():
            plan.figures.append(
                PlannedFigure(name, "stellar mass", lambda width, draw=draw: draw(run, width))
            )
        else:
            plan.skipped.append(
                f"{name}: {lacking}; make it with `clapkit interpret {stage} --data DATA "
                f"--run {root}`"
            )


def _draw_mass(run: RunDir, width) -> tuple[Figure, Table]:
    from clapkit.interpret.results import read_mass_prediction

    stored = run.read_json(run.mass_metrics_path)
    split = str(stored.get("split", "test"))
    metrics = stored.get("input_sets", {})
    estimates = {}
    for name in metrics:
        prediction = read_mass_prediction(run.root, name)
        rows = slice(None) if prediction.split is None else prediction.split == split
        estimates[name] = (np.asarray(prediction.true)[rows], np.asarray(prediction.point)[rows])
    return plot_mass_vs_truth(estimates, metrics=metrics, width=width)


def _draw_causal(run: RunDir, width) -> tuple[Figure, Table]:
    from clapkit.interpret.causal_graph import CausalGraph

    return plot_causal_graph(CausalGraph.load(run.local_tests_path), width=width)


def _draw_pc(run: RunDir, width) -> tuple[Figure, Table]:
    from clapkit.interpret.discovery import DiscoveryResult

    stored = run.read_json(run.pc_path)
    try:
        found = DiscoveryResult.from_dict(stored["graph"])
        reference = stored.get("reference")
        reference = None if reference is None else DiscoveryResult.from_dict(reference)
    except (KeyError, TypeError, ValidationError) as err:
        raise FileFormatError(f"{run.pc_path}: not a PC result ({err})") from err
    return plot_pc_graph(found, reference, width=width)


def _draw_mi(run: RunDir, width) -> tuple[Figure, Table]:
    pairs = run.read_json(run.pid_path).get("pairs")
    if not isinstance(pairs, dict):
        raise FileFormatError(f"{run.pid_path}: no 'pairs' mapping")
    return plot_mi_bars(pairs, width=width)
