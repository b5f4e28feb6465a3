"""The stellar-mass dashboard: how well each input set estimates log M*, and why.

Four parts, each what one stage of ``clapkit interpret`` stored (see
:mod:`clapkit_app.stellar_mass_store`):

- estimated against true log M* for a chosen input set, with every input set's σ, median
  offset and PDF metrics on the test split (``train``);
- the causal graph of the local tests (input X_in → latent S → mass Y, and each external
  variable X_ex → Y with the width of its effect and the colour of its verdict) with
  every test in a table, and the PC graph over catalog columns beside the mock survey's
  true graph; the FCI PAG beside the true PAG and the local tests' confusion against
  the truth (:mod:`clapkit_app.stellar_mass_truth`) (``causal``);
- the MI decomposition of every input pair as stacked bars per galaxy type, and the
  per-galaxy terms of a chosen pair (``pid``);
- a chosen galaxy's input bands, attribution maps and those of the randomised model for
  a chosen attribution method, their radial profiles, and a table of which methods pass
  the randomisation check (``attribute``).

The figures (:mod:`clapkit_app.stellar_mass_plots`) are plain Bokeh figures built once
per session and sent new data on each change, as in the other dashboards.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from clapkit.interpret.attribution_names import LABELS
from clapkit.interpret.results import randomisation_by_method
from clapkit.metrics.bootstrap import stored_interval
from clapkit.metrics.definitions import MASS, MI, tooltips
from clapkit_app.downloads import download_buttons, frame_table
from clapkit_app.formatting import interval_text
from clapkit_app.page import problems_alert
from clapkit_app.stellar_mass_plots import (
    AGREES,
    DEPENDENT,
    DISAGREES,
    INDEPENDENT,
    ROLE_COLOURS,
    STRUCTURAL,
    TERMS,
    UNSCORED,
    AttributionGrid,
    GraphPlot,
    MassScatter,
    PIDBars,
    PIDHistograms,
    ProfilePlot,
    circle_layout,
    role_layout,
    source_label,
)
from clapkit_app.stellar_mass_store import StellarMassData, command
from clapkit_app.stellar_mass_truth import truth_section
from clapkit_app.store import plain_id
from clapkit_app.tables import WITHIN_WIDTH
from clapkit_app.urlstate import UrlField, UrlState, choice_field, unknown_id_message

#: Columns of the input-set table: metric key, title, number format.
MASS_COLUMNS = (
    ("sigma", "σ (dex)", "0.000"),
    ("median_offset", "median offset (dex)", "0.000"),
    ("rms", "rms (dex)", "0.000"),
    ("outlier_fraction", "outliers", "0.000"),
    ("crps", "CRPS (dex)", "0.000"),
    ("pit_w1", "PIT W1", "0.000"),
)
#: Columns of the local-test table: key, title, number format (None: text).
TEST_COLUMNS = (
    ("source", "variable", None),
    ("given", "given", None),
    ("fit", "fit of the given", None),
    ("effect", "effect", "0.000"),
    ("effect_err", "±", "0.000"),
    ("effect_permuted", "permuted", "0.000"),
    ("p_value", "p", "0.000"),
    ("p_adjusted", "p (BH)", "0.000"),
    ("verdict", "verdict", None),
    ("pred_efficiency", "pred. efficiency", "0.000"),
    ("pred_efficiency_spread", "± (spread)", "0.000"),
    ("k", "k", "0"),
    ("n_centres", "centres", "0"),
    ("neighbourhoods", "neighbourhoods", None),
)
#: Columns that results stored before them lack: shown blank there.
OPTIONAL_COLUMNS = ("p_adjusted", "pred_efficiency", "pred_efficiency_spread", "effect_permuted")
#: How the caption names each neighbourhood scheme.
_SCHEMES = {
    "disjoint": "disjoint ",
    "overlapping": "overlapping (around every galaxy, as published; p from a latent-cell "
    "permutation) ",
}
#: The label of an unconditional test.
UNCONDITIONAL = "—"


def given(conditioned_on: list[str] | tuple[str, ...]) -> str:
    """How the dashboard names a test's conditioning variables.

    Examples
    --------
    >>> given([]), given(["z"]), given(["z", "ebv"])
    ('—', 'z', 'z, ebv')
    """
    return ", ".join(conditioned_on) if conditioned_on else UNCONDITIONAL


def mass_frame(data: StellarMassData) -> pd.DataFrame:
    """One row per input set: its stored test-split metrics.

    Where ``clapkit interpret train`` stored bootstrap intervals, σ is followed by its
    interval (``sigma_ci``) and by the interval of σ minus the reference input set's σ
    on the same resampled galaxies (``sigma_paired``), marked ``*`` where it excludes
    zero. Results stored before the intervals show neither column.
    """
    names = list(data.mass)
    frame: dict[str, list] = {"input set": names}
    for key, _, _ in MASS_COLUMNS:
        frame[key] = [data.mass[n].metrics.get(key, np.nan) for n in names]
    if any(data.mass[n].intervals for n in names):
        frame["sigma_ci"] = [
            interval_text(data.mass[n].intervals.get("sigma"), "0.000", None) for n in names
        ]
        paired = [data.mass[n].paired.get("sigma") for n in names]
        frame["sigma_paired"] = [
            interval_text(p, "0.000", p is not None and not (p[0] <= 0.0 <= p[1]))
            if p is not None
            else ("reference" if n == data.paired_reference else "—")
            for n, p in zip(names, paired, strict=True)
        ]
    return pd.DataFrame(frame)


#: Columns of the MI table: the stored mean of each term and its title.
PID_COLUMNS = (
    ("mi_1", "MI₁"),
    ("mi_2", "MI₂"),
    ("mi_12", "MI₁₂"),
    ("redundancy", "redundancy"),
    ("unique_1", "unique₁"),
    ("unique_2", "unique₂"),
    ("synergy", "synergy"),
)


def pid_frame(pid: dict[str, Any]) -> pd.DataFrame:
    """One row per input pair of ``pid.json``: each term's mean over the test galaxies
    and, where stored (``<term>_ci``), its bootstrap interval as text (``<term>_ci``)."""
    pairs = list(pid["pairs"])
    frame: dict[str, list] = {"pair": [_pair_label(pid, p) for p in pairs]}
    for key, _ in PID_COLUMNS:
        rows = [pid["pairs"][p] for p in pairs]
        frame[key] = [float(row.get(key, np.nan)) for row in rows]
        if any(f"{key}_ci" in row for row in rows):
            frame[f"{key}_ci"] = [
                interval_text(stored_interval(row, key), "0.000", None) for row in rows
            ]
    return pd.DataFrame(frame)


def local_tests_frame(data: StellarMassData) -> pd.DataFrame:
    """One row per local test, in the order they were run.

    ``fit`` says how the conditioning variables were regressed out (``quadratic`` or
    ``linear``; empty for an unconditional test); ``p_adjusted`` is the
    Benjamini–Hochberg adjusted p-value and ``pred_efficiency`` (with its spread over
    neighbourhoods) the share of the mass variance a quadratic fit on the variable
    explains within a neighbourhood, each NaN (shown blank) in results stored before it;
    ``effect_permuted``, the published baseline of overlapping neighbourhoods, is NaN
    (blank) for disjoint ones.
    """
    rows = data.causal.edges if data.causal is not None else []

    def cell(row: dict[str, Any], key: str) -> Any:
        if key == "given":
            return given(row["conditioned_on"])
        if key == "fit":
            return row["regression"] if row["conditioned_on"] else ""
        if key in OPTIONAL_COLUMNS:
            return np.nan if row[key] is None else row[key]
        return row[key]

    return pd.DataFrame({key: [cell(r, key) for r in rows] for key, _, _ in TEST_COLUMNS})


def chosen_tests(rows: list[dict[str, Any]], conditioning: str) -> list[dict[str, Any]]:
    """Per tested variable, its test with ``conditioning`` (as :func:`given` names it),
    else the one with the most conditioning variables (as ``CausalGraph.to_networkx``).

    Examples
    --------
    >>> rows = [{"source": "hlr", "conditioned_on": []}, {"source": "hlr",
    ...         "conditioned_on": ["z"]}, {"source": "z", "conditioned_on": []}]
    >>> [(r["source"], r["conditioned_on"]) for r in chosen_tests(rows, "—")]
    [('hlr', []), ('z', [])]
    >>> [(r["source"], r["conditioned_on"]) for r in chosen_tests(rows, "z")]
    [('hlr', ['z']), ('z', [])]
    """
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    out = []
    for tests in by_source.values():
        exact = [r for r in tests if given(r["conditioned_on"]) == conditioning]
        out.append(exact[0] if exact else max(tests, key=lambda r: len(r["conditioned_on"])))
    return out


def _interval_columns(data: StellarMassData) -> tuple:
    """Titles of the mass table's interval columns (:func:`mass_frame`)."""
    reference = data.paired_reference or "reference"
    return (
        ("sigma_ci", "σ interval", None),
        ("sigma_paired", f"σ − σ({reference})", None),
    )


def _row_table(frame: pd.DataFrame, columns: tuple, css_class: str) -> pn.widgets.Tabulator:
    """A read-only table whose one selectable row picks what the figures show;
    ``columns`` gives (key, title, number format) per column."""
    return pn.widgets.Tabulator(
        frame,
        disabled=True,
        selectable=1,
        show_index=False,
        titles={key: title for key, title, _ in columns},
        formatters={
            # A value missing from older results is left blank.
            key: NumberFormatter(format=fmt, nan_format="" if key in OPTIONAL_COLUMNS else "—")
            for key, _, fmt in columns
            if fmt
        },
        css_classes=[css_class],
        **WITHIN_WIDTH,
    )


class StellarMass(pn.viewable.Viewer):
    """Stellar-mass estimates from every input set and what explains them: the causal
    graph of the local tests and PC, the MI decomposition, the attribution maps.

    Pick an input set (or a row of its table), the conditioning of the tests drawn (or a
    row of the tests), an input pair and a galaxy with attribution maps. Create one per
    session: ``data`` is shared with other sessions and never modified.
    """

    data = param.ClassSelector(class_=StellarMassData, doc="the run's stellar-mass results")
    galaxy_id = param.Parameter(default=None, doc="id of the galaxy whose maps are shown")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._quiet = False  # set while one change updates several widgets
        data = self.data
        alert = problems_alert(data) if data is not None else None
        if data is None or not data.ok:
            alert = alert or pn.pane.Alert("No run to show.", alert_type="warning")
            self._layout = pn.Column(alert, sizing_mode="stretch_width")
            return
        if self.galaxy_id is None and data.attribution_ids:
            self._quiet = True
            self.galaxy_id = data.attribution_ids[0]
            self._quiet = False
        sections = [self._mass_section(), self._causal_section()]
        sections += [self._pid_section(), self._attribution_section()]
        self._layout = pn.Column(
            *([alert] if alert is not None else []),
            *sections,
            sizing_mode="stretch_width",
            css_classes=["ck-stellar-mass"],
        )
        self._bind_url()

    def __panel__(self) -> pn.Column:
        return self._layout

    # ------------------------------------------------------------------ mass estimates

    def _mass_section(self) -> pn.Column:
        data = self.data
        heading = pn.pane.Markdown("## Stellar mass estimated from each input set")
        if not data.mass:
            return pn.Column(heading, _missing("mass", "train", data))
        names = list(data.mass)
        self.input_select = pn.widgets.Select(
            label="Input set",
            options={f"{n} ({data.mass[n].description})": n for n in names},
            # The images model is the one the causal tests and attributions look inside.
            value="images" if "images" in names else names[-1],
            css_classes=["ck-input-set"],
            width=260,
        )
        self._scatter = MassScatter()
        self.mass_caption = pn.pane.Markdown(css_classes=["ck-mass-caption"])
        self.mass_table = _row_table(
            mass_frame(data), (*MASS_COLUMNS, *_interval_columns(data)), "ck-mass-table"
        )
        self.mass_table.header_tooltips = tooltips(list(MASS), "mass")
        self._show_mass()
        self.input_select.param.watch(_held(lambda event: self._show_mass()), "value")
        self.mass_table.param.watch(_held(self._on_mass_row), "selection")
        return pn.Column(
            heading,
            self.input_select,
            pn.Row(
                _pane(self._scatter.figure, "ck-mass-scatter"),
                pn.Column(
                    pn.pane.Markdown(
                        f"#### Every input set on the {data.split} split — select a row to show it"
                    ),
                    self.mass_table,
                    download_buttons(
                        lambda: self._download(self.mass_table.value, MASS, "input sets"),
                        lambda: "stellar mass input sets",
                        "ck-mass-download",
                    ),
                    self.mass_caption,
                    sizing_mode="stretch_width",
                ),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def _show_mass(self) -> None:
        data, name = self.data, self.input_select.value
        estimates = data.mass[name]
        rows = estimates.test_rows
        if rows is None:
            rows = np.arange(len(estimates.ids))
            shown = (
                f"all {len(rows)} galaxies the model predicted (training, validation and "
                "test: these predictions do not store the split)"
            )
        else:
            shown = f"the {len(rows)} {data.split}-split galaxies"
        metrics = estimates.metrics
        self.mass_caption.object = (
            f"The scatter shows {shown}; dashed: 1:1; ★ the galaxy of the attribution maps. "
            f"σ, the median offset and the PDF metrics are those `clapkit interpret train` stored for "
            f"the {data.split} split."
            + (
                " Intervals are bootstrap intervals over the test galaxies (the models are not "
                "retrained per draw); σ − σ(reference) is computed on the same draws, and * "
                "marks a difference whose interval excludes 0."
                if estimates.intervals
                else ""
            )
        )
        ids = estimates.ids[rows]
        chosen = None
        if self.galaxy_id is not None:
            found = np.flatnonzero(ids == self.galaxy_id)
            chosen = int(found[0]) if found.size else None
        sigma = metrics.get("sigma", np.nan)
        offset = metrics.get("median_offset", np.nan)
        self._scatter.update(
            ids,
            estimates.true[rows],
            estimates.point[rows],
            chosen,
            f"{name}: σ = {sigma:.3f} dex, median offset = {offset:+.3f} dex ({data.split} split)",
        )
        self._select_row(self.mass_table, "input set", name)

    def _on_mass_row(self, event: param.parameterized.Event) -> None:
        if self._quiet or not event.new:
            return
        self.input_select.value = self.mass_table.value["input set"].iat[event.new[0]]

    def _select_row(self, table: pn.widgets.Tabulator, column: str, value: Any) -> None:
        values = table.value[column].tolist()
        selection = [values.index(value)] if value in values else []
        if table.selection != selection:
            self._quiet = True
            try:
                table.selection = selection
            finally:
                self._quiet = False

    # ------------------------------------------------------------------ causal graph

    def _causal_section(self) -> pn.Column:
        data = self.data
        heading = pn.pane.Markdown("## Causal graph")
        items: list = [heading]
        if data.causal is None:
            items.append(_missing("causal", "causal", data))
        else:
            items.append(self._local_tests())
        if data.pc is not None:
            items.append(self._pc_graphs())
        found_against_truth = truth_section(data)  # FCI and the local tests vs the truth
        if found_against_truth is not None:
            items.append(found_against_truth)
        return pn.Column(*items, sizing_mode="stretch_width")

    def _local_tests(self) -> pn.Column:
        graph = self.data.causal
        rows = graph.edges
        conditionings = sorted({given(r["conditioned_on"]) for r in rows}, key=_by_length)
        self.conditioning = pn.widgets.Select(
            label="Draw the tests conditioned on",
            options=conditionings,
            value=conditionings[-1] if conditionings else None,
            css_classes=["ck-conditioning"],
            width=220,
        )
        self._causal = GraphPlot("Local tests", (-2.6, 3.2), (-1.9, 1.9), 500)
        self.tests_table = _row_table(local_tests_frame(self.data), TEST_COLUMNS, "ck-local-tests")
        self._tests_downloads = download_buttons(
            self._tests_table, lambda: "local causal tests", "ck-tests-download"
        )
        self._show_causal()
        self.conditioning.param.watch(_held(lambda event: self._show_causal()), "value")
        self.tests_table.param.watch(_held(self._on_test_row), "selection")
        nodes = graph.nodes
        k = rows[0]["k"] if rows else "?"
        scheme = _SCHEMES.get(rows[0]["neighbourhoods"] if rows else "", "")
        caption = (
            f"Within {scheme}neighbourhoods of {k} galaxies in the latent space S of the "
            f"`{nodes['X_in']}` model, the correlation of {nodes['Y']} with each external "
            "variable, against a permutation baseline. Edge width: |effect|; "
            f"<span style='color:{DEPENDENT}'>red: dependent</span>, "
            f"<span style='color:{INDEPENDENT}'>grey: independent</span> (p < α = "
            f"{_alpha(graph)}, after Benjamini–Hochberg adjustment across the tests: "
            "column p (BH); blank for results stored before it, whose verdicts read the raw "
            "p). The fit of the given variable: quadratic as published, or linear. "
            "Predictive efficiency: the share of the mass variance (given the same "
            "variables) a quadratic fit on the variable explains within a neighbourhood, "
            "mean and spread over neighbourhoods, as published; blank for older results. "
            "Permuted (overlapping neighbourhoods only): the published baseline, the mean "
            "correlation after one shuffle within each neighbourhood. "
            "A dependence that survives in S means the variable carries "
            "information about the mass that the input lacks. A variable without a test "
            "of the chosen conditioning is drawn with its most conditioned test."
        )
        return pn.Column(
            pn.pane.Markdown(f"### Local tests in the latent space of `{nodes['X_in']}`"),
            self.conditioning,
            pn.Row(
                _pane(self._causal.figure, "ck-causal-graph"),
                pn.Column(
                    self.tests_table,
                    self._tests_downloads,
                    pn.pane.Markdown(caption, css_classes=["ck-causal-caption"]),
                    sizing_mode="stretch_width",
                ),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def _show_causal(self) -> None:
        graph = self.data.causal
        nodes = graph.nodes
        conditioning = self.conditioning.value
        roles = {nodes[role]: role for role in ("X_in", "S", "Y")}
        roles.update({name: "X_ex" for name in nodes["X_ex"]})
        edges = [
            {
                "source": source,
                "target": target,
                "width": 2.0,
                "colour": STRUCTURAL,
                "directed": True,
                "info": f"{source} → {target} (structural)",
            }
            for source, target in ((nodes["X_in"], nodes["S"]), (nodes["S"], nodes["Y"]))
        ]
        for row in chosen_tests(graph.edges, conditioning):
            edges.append(
                {
                    "source": row["source"],
                    "target": row["target"],
                    "width": 1.5 + 10.0 * abs(row["effect"]),
                    "colour": DEPENDENT if row["significant"] else INDEPENDENT,
                    "directed": True,
                    "info": (
                        f"{row['source']}: effect {row['effect']:+.3f} ± "
                        f"{row['effect_err']:.3f}, p = {row['p_value']:.3g}"
                        f"{_adjusted(row['p_adjusted'])}, {row['verdict']} "
                        f"(conditioned on {given(row['conditioned_on'])})"
                    ),
                }
            )
        # The target's label clear of the edges that converge on it from the right.
        placement = {nodes["X_in"]: "below", nodes["S"]: "below", nodes["Y"]: "below_left"}
        placement.update({name: "right" for name in nodes["X_ex"]})
        self._causal.update(
            role_layout(nodes),
            {name: ROLE_COLOURS[role] for name, role in roles.items()},
            edges,
            f"Local tests conditioned on {conditioning}",
            placement,
        )
        table = self.tests_table.value
        selected = [table.index[i] for i in self.tests_table.selection]
        if selected and table["given"].iat[selected[0]] != conditioning:
            self._quiet = True
            try:
                self.tests_table.selection = []
            finally:
                self._quiet = False

    def _on_test_row(self, event: param.parameterized.Event) -> None:
        if self._quiet or not event.new:
            return
        self.conditioning.value = self.tests_table.value["given"].iat[event.new[0]]

    def _pc_graphs(self) -> pn.Column:
        data = self.data
        pc, truth = data.pc, data.truth
        positions = circle_layout(pc.columns)
        self._pc = GraphPlot("", (-2.2, 2.2), (-1.5, 1.5), 520)
        self._pc.update(
            positions,
            {name: "white" for name in positions},
            pc_edges(pc, truth),
            f"PC over {len(pc.columns)} catalog columns (α = {pc.alpha:g}, "
            f"{pc.test}, {pc.n_rows} galaxies)",
        )
        panes = [_pane(self._pc.figure, "ck-pc-graph")]
        if truth is not None:
            self._truth = GraphPlot("", (-2.2, 2.2), (-1.5, 1.5), 520)
            self._truth.update(
                positions,
                {name: "white" for name in positions},
                true_edges(truth, pc),
                "True graph of the mock survey over the same columns",
            )
            panes.append(_pane(self._truth.figure, "ck-true-graph"))
        return pn.Column(
            pn.pane.Markdown("### PC causal discovery over catalog columns"),
            pn.Row(*panes),
            pn.pane.Markdown(pc_caption(pc, truth, data.pc_score), css_classes=["ck-pc-caption"]),
            sizing_mode="stretch_width",
        )

    # ------------------------------------------------------------------ MI decomposition

    def _pid_section(self) -> pn.Column:
        data = self.data
        heading = pn.pane.Markdown("## Mutual information between log M* and pairs of inputs")
        if data.pid is None:
            return pn.Column(heading, _missing("pid", "pid", data))
        pid = data.pid
        self._bars = PIDBars()
        self._bars.update(pid["pairs"])
        pairs = data.pid_pairs()
        self.pair_select = pn.widgets.Select(
            label="Input pair of the per-galaxy terms",
            options={_pair_label(pid, p): p for p in pairs},
            value=pairs[0],
            css_classes=["ck-pair"],
            width=300,
        )
        self._histograms = PIDHistograms()
        self.pid_caption = pn.pane.Markdown(css_classes=["ck-pid-caption"])
        self._show_pid()
        self.pair_select.param.watch(_held(lambda event: self._show_pid()), "value")
        units = pid.get("units", "nats")
        return pn.Column(
            heading,
            _pane(self._bars.figure, "ck-pid-bars", sizing_mode="stretch_width"),
            pn.pane.Markdown(
                f"Means over the test galaxies, in {units}, over all of them and by galaxy "
                "type (early: rest-frame u − r ≥ 2.22). Each MI comes from a classifier "
                f"over {pid.get('n_bins', '?')} mass bins (MI = −log p_prior − cross-entropy)"
                f"{_pid_inputs_note(pid)}; "
                "redundancy = min(MI₁, MI₂), unique = MI − redundancy, synergy = MI₁₂ − "
                "redundancy − unique₁ − unique₂. Estimated terms can be negative: those "
                "segments hang below zero."
            ),
            self._pid_table(pid),
            self.pair_select,
            pn.Row(
                *(_pane(fig, f"ck-pid-{term}") for term, fig in self._histograms.figures.items()),
                css_classes=["ck-pid-galaxies"],
            ),
            self.pid_caption,
            sizing_mode="stretch_width",
        )

    def _pid_table(self, pid: dict[str, Any]) -> pn.Column:
        frame = pid_frame(pid)
        titles = {"pair": "input pair", **dict(PID_COLUMNS)}
        titles.update({f"{key}_ci": f"{title} interval" for key, title in PID_COLUMNS})
        bootstrap = pid.get("bootstrap") or {}
        note = (
            f"{bootstrap.get('confidence', 0.95):.0%} bootstrap intervals over the test "
            "galaxies (the classifiers are not retrained per draw)."
            if any(key.endswith("_ci") for key in frame)
            else "These results were stored before intervals were."
        )
        table = pn.widgets.Tabulator(
            frame,
            disabled=True,
            selectable=False,
            show_index=False,
            titles=titles,
            formatters={
                key: NumberFormatter(format="0.000", nan_format="—") for key, _ in PID_COLUMNS
            },
            css_classes=["ck-pid-table"],
            **WITHIN_WIDTH,
        )
        table.header_tooltips = tooltips(list(MI), "mi")
        downloads = download_buttons(
            lambda: self._download(frame, MI, "MI decomposition"),
            lambda: "mutual information pairs",
            "ck-pid-download",
        )
        return pn.Column(
            pn.pane.Markdown(f"Means, {pid.get('units', 'nats')}: {note}"), table, downloads
        )

    def _show_pid(self) -> None:
        pid, galaxies = self.data.pid, self.data.pid_galaxies
        pair = self.pair_select.value
        inputs = pid["pairs"][pair].get("inputs", pair.split("_", 1))
        terms = galaxies.get(pair)
        if terms is None:
            self.pid_caption.object = f"*`per_galaxy.h5` holds no terms of `{pair}`.*"
            return
        types = np.asarray(galaxies["galaxy_type"])
        self._histograms.update({t: terms[t] for t in TERMS}, types, inputs)
        counts = ", ".join(f"{np.sum(types == t)} {t}" for t in np.unique(types))
        self.pid_caption.object = (
            f"Per-galaxy terms of {_pair_label(pid, pair)} for the {len(types)} test "
            f"galaxies ({counts}), {pid.get('units', 'nats')}; one bin width for all four."
        )

    # ------------------------------------------------------------------ attributions

    def _attribution_section(self) -> pn.Column:
        data = self.data
        summary = data.attribution_summary
        if data.attributions is None:
            heading = pn.pane.Markdown("## Attribution maps")
            return pn.Column(heading, _missing("attributions", "attribute", data))
        arrays = data.attributions
        methods = list(arrays["methods"])
        heading = pn.pane.Markdown(
            f"## Attribution maps of the `{arrays['model']}` model "
            f"({', '.join(attribution_label(m) for m in methods)})"
        )
        bands = list(arrays["bands"])
        self.galaxy_select = pn.widgets.Select(
            label="Galaxy",
            options={
                f"{galaxy_id} · {arrays['galaxy_type'][i]} · log M* "
                f"{arrays['log_mstar'][i]:.2f}": galaxy_id
                for i, galaxy_id in enumerate(data.attribution_ids)
            },
            value=self.galaxy_id,
            css_classes=["ck-attribution-galaxy"],
            width=260,
        )
        # A run of one method (every run before SmoothGrad) has nothing to choose.
        self.method_select = pn.widgets.Select(
            label="Attribution method",
            options={attribution_label(m): m for m in methods},
            value=methods[0],
            css_classes=["ck-attribution-method"],
            width=220,
            visible=len(methods) > 1,
        )
        self.attribution_title = pn.pane.Markdown(css_classes=["ck-attribution-title"])
        self.centre_fractions = pn.pane.Markdown(css_classes=["ck-centre-fractions"])
        self._grid = AttributionGrid(len(bands))
        self._profiles = ProfilePlot(bands)
        self._show_attributions()
        self.galaxy_select.param.watch(self._on_galaxy_select, "value")
        self.method_select.param.watch(self._on_method_select, "value")
        return pn.Column(
            heading,
            pn.Row(self.galaxy_select, self.method_select),
            self.attribution_title,
            pn.Row(
                _pane(self._grid.figure, "ck-attribution-grid"),
                pn.Column(
                    _pane(self._profiles.figure, "ck-attribution-profiles"),
                    pn.pane.Markdown(
                        randomisation_table(summary), css_classes=["ck-randomisation"]
                    ),
                    self.centre_fractions,
                    width=420,
                ),
            ),
            sizing_mode="stretch_width",
        )

    # ------------------------------------------------------------------ URL, downloads

    def _bind_url(self) -> None:
        """The input set, conditioning, pair, galaxy and attribution method in the page's
        URL (:mod:`clapkit_app.urlstate`); only those the run's results have."""
        fields = []
        for name, widget, what in (
            ("input", "input_select", "input set"),
            ("given", "conditioning", "conditioning"),
            ("pair", "pair_select", "input pair"),
            ("attribution", "method_select", "attribution method"),
        ):
            if hasattr(self, widget):
                fields.append(choice_field(name, getattr(self, widget), what))
        if self.data.attributions is not None:
            fields.append(
                UrlField(
                    "galaxy",
                    lambda: None if self.galaxy_id is None else str(self.galaxy_id),
                    self._show_url_galaxy,
                    [(self, "galaxy_id")],
                )
            )
        self.url = UrlState(fields)
        self._layout.insert(0, self.url.message)
        self.url.bind()

    def _show_url_galaxy(self, text: str) -> str | None:
        ids = list(self.data.attribution_ids)
        found = [i for i in ids if str(i) == text.strip()]
        if not found:
            return unknown_id_message(text, ids, "with attribution maps")
        self.select(found[0])
        return None

    def _download(self, frame: pd.DataFrame, definitions: dict, what: str) -> Any:
        units = {key: item.unit for key, item in definitions.items()}
        descriptions = {key: item.tooltip() for key, item in definitions.items()}
        meta = {"TABLE": what, "SPLIT": str(self.data.split)}
        return frame_table(frame, units=units, descriptions=descriptions, meta=meta)

    def _tests_table(self) -> Any:
        frame = self.tests_table.value
        return frame_table(frame, meta={"TABLE": "local causal tests", "SPLIT": self.data.split})

    def _on_method_select(self, event: param.parameterized.Event) -> None:
        with pn.io.hold():
            self._show_attributions()

    def _on_galaxy_select(self, event: param.parameterized.Event) -> None:
        if event.new is not None:
            self.select(event.new)

    def select(self, galaxy_id: Any) -> None:
        """Show galaxy ``galaxy_id``'s maps and star it (one message to the browser)."""
        with pn.io.hold():
            self.galaxy_id = galaxy_id

    @param.depends("galaxy_id", watch=True)
    def _on_galaxy(self) -> None:
        if self._quiet or self.data is None or not self.data.ok:
            return
        with pn.io.hold():
            if self.data.attributions is not None:
                if self.galaxy_select.value != self.galaxy_id:
                    self.galaxy_select.value = self.galaxy_id
                self._show_attributions()
            if self.data.mass:
                self._show_mass()

    def _show_attributions(self) -> None:
        data = self.data
        arrays = data.attributions
        method = self.method_select.value
        self.centre_fractions.object = centre_fractions(data.attribution_summary, arrays, method)
        row = data.attribution_row(self.galaxy_id) if self.galaxy_id is not None else None
        if row is None:
            self.attribution_title.object = (
                f"Galaxy {html.escape(str(self.galaxy_id))} has no attribution maps."
            )
            return
        bands = list(arrays["bands"])
        own = arrays["per_method"][method]
        self.attribution_title.object = (
            f"### Galaxy {plain_id(arrays['ids'][row])} · {arrays['galaxy_type'][row]} type · "
            f"true log M* = {arrays['log_mstar'][row]:.2f} · {attribution_label(method)}"
        )
        self._grid.update(
            bands,
            arrays["images"][row],
            own["maps"][row],
            own["randomised_maps"][row],
            label=attribution_label(method),
        )
        self._profiles.update(bands, own["profiles"][row], arrays["radii"])


def attribution_label(method: str) -> str:
    """How the dashboard names an attribution method.

    Examples
    --------
    >>> attribution_label("smoothgrad"), attribution_label("deeplift")
    ('SmoothGrad', 'deeplift')
    """
    return LABELS.get(method, method)


def randomisation_table(summary: dict[str, Any]) -> str:
    """Markdown: every method's median |ρ| and whether it passes the randomisation check.

    Examples
    --------
    >>> old = {"method": "saliency", "n_galaxies": 6, "randomisation": {
    ...     "median_abs_rho": 0.12, "threshold": 0.5, "verdict": "passed"}}
    >>> print(randomisation_table(old).splitlines()[4])
    | saliency | 0.12 | <span style='color:#2ca02c'>passed</span> |
    """
    rows = randomisation_by_method(summary)
    thresholds = {row["threshold"] for row in rows.values()}
    threshold = thresholds.pop() if len(thresholds) == 1 else None
    lines = [
        "#### Randomisation check",
        "",
        "| method | median \\|ρ\\| | passes |",
        "|---|---|---|",
        *(
            f"| {attribution_label(method)} | {_fmt(row['median_abs_rho'])} | "
            f"{_verdict(row['verdict'])} |"
            for method, row in rows.items()
        ),
    ]
    if not rows:
        lines.append("| — | — | not run |")
    lines += [
        "",
        f"Median |ρ| between each galaxy's maps from the trained and from a randomised "
        f"model, over {summary.get('n_galaxies', '?')} galaxies; a method passes below "
        f"{_fmt(threshold)}. Maps that survive randomisation show the input more than the "
        "model (integrated gradients keep the image's bright pixels whatever the weights).",
    ]
    return "\n".join(lines)


def centre_fractions(summary: dict[str, Any], arrays: dict[str, Any], method: str) -> str:
    """Markdown: ``method``'s share of |attribution| near the centre, by galaxy type."""
    by_method = summary.get("centre_fraction_by_method")
    if by_method is not None:
        fractions = by_method.get(method, {})
    else:  # one method, in summaries written before several
        fractions = summary.get("centre_fraction_by_type", {})
    if not fractions:
        return ""
    bands = list(arrays["bands"])
    rows = [
        f"Share of {attribution_label(method)}'s |attribution| within "
        f"{summary.get('centre_radius_pixels', '?')} pixels of the centre, by galaxy type:",
        "",
        "| type | " + " | ".join(bands) + " |",
        "|---" * (len(bands) + 1) + "|",
        *(
            f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |"
            for label, values in fractions.items()
        ),
    ]
    return "\n".join(rows)


def _verdict(verdict: str) -> str:
    colour = {"passed": "#2ca02c", "failed": "#d62728"}.get(verdict, "#7f7f7f")
    return f"<span style='color:{colour}'>{verdict}</span>"


def _pid_inputs_note(pid: dict[str, Any]) -> str:
    """How the stored MI classifiers read their inputs (empty for older results).

    Examples
    --------
    >>> _pid_inputs_note({"image_features": "pixels", "auxiliary": ["ebv"]})
    ', reading images as pixels through their own CNN, with ebv beside both inputs'
    >>> _pid_inputs_note({})
    ''
    """
    how = {
        "pixels": "images as pixels through their own CNN",
        "latent": "images through the latent vectors of their stellar-mass model",
    }.get(pid.get("image_features"))
    if how is None:
        return ""
    auxiliary = ", ".join(pid.get("auxiliary") or [])
    beside = f", with {auxiliary} beside both inputs" if auxiliary else ""
    return f", reading {how}{beside}"


def _pair_label(pid: dict[str, Any], pair: str) -> str:
    inputs = pid["pairs"][pair].get("inputs")
    return f"{source_label(inputs[0])} vs {source_label(inputs[1])}" if inputs else pair


def _alpha(graph: Any) -> str:
    rows = graph.edges
    if not rows:
        return "?"
    return f"{graph.result(rows[0]['source'], rows[0]['conditioned_on']).alpha:g}"


def _adjusted(p_adjusted: float | None) -> str:
    """The adjusted p-value for an edge's hover text (nothing in older results)."""
    return "" if p_adjusted is None else f" (BH {p_adjusted:.3g})"


def _by_length(conditioning: str) -> tuple[int, str]:
    return (0 if conditioning == UNCONDITIONAL else conditioning.count(",") + 1, conditioning)


def _fmt(value: Any) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.2f}"


def _missing(section: str, stage: str, data: StellarMassData) -> pn.pane.Markdown:
    return pn.pane.Markdown(
        f"*Not in this run: `{command(stage, data.root)}` makes it (see the warning above).*",
        css_classes=[f"ck-missing-{section}"],
    )


def _held(callback: Callable[[Any], None]) -> Callable[[Any], None]:
    """``callback`` run inside ``pn.io.hold()``: its figure updates reach the browser as
    one message, sent with the document lock held (a table's selection event arrives
    without it)."""

    def run(event: Any) -> None:
        with pn.io.hold():
            callback(event)

    return run


def pc_edges(pc: Any, truth: Any) -> list[dict[str, Any]]:
    """The edges PC found, as drawn: width from the bootstrap support, colour from
    agreement with the true graph (when there is one), hover text saying both."""
    true_pairs = {frozenset(e) for e in truth.edges} if truth is not None else set()
    edges = []
    for a, b, oriented, confidence in pc.edges():
        agrees = frozenset((a, b)) in true_pairs
        arrow = "→" if oriented else "—"
        support = "" if confidence is None else f", in {confidence:.0%} of bootstrap resamples"
        verdict = ""
        if truth is not None:
            verdict = " · in the true graph" if agrees else " · not in the true graph"
        edges.append(
            {
                "source": a,
                "target": b,
                "width": 1.0 + 5.0 * (confidence if confidence is not None else 0.5),
                "colour": (AGREES if agrees else DISAGREES) if truth is not None else UNSCORED,
                "directed": oriented,
                "info": f"{a} {arrow} {b}{support}{verdict}",
            }
        )
    return edges


def true_edges(truth: Any, pc: Any) -> list[dict[str, Any]]:
    """The true graph's edges, as drawn: coloured by whether PC found the adjacency."""
    found = {frozenset((a, b)) for a, b, _, _ in pc.edges()}
    return [
        {
            "source": a,
            "target": b,
            "width": 2.5,
            "colour": AGREES if frozenset((a, b)) in found else DISAGREES,
            "directed": True,
            "info": f"{a} → {b}"
            + (" · found by PC" if frozenset((a, b)) in found else " · missed by PC"),
        }
        for a, b in truth.edges
    ]


def pc_caption(pc: Any, truth: Any, score: dict[str, Any] | None) -> str:
    """What the PC graphs show, and the stored score against the true graph."""
    score = score or {}
    n_boot = pc.edge_confidence.n_bootstrap if pc.edge_confidence is not None else 0
    width = (
        f"Edge width: share of {n_boot} bootstrap resamples that found the adjacency. "
        if n_boot
        else ""
    )
    if truth is None:
        return (
            f"{width}Arrows: edges PC could orient; plain lines: left undirected. There "
            "is no true graph recorded in this run (real data, or a run made before "
            "clapkit recorded it), so none to compare with."
        )
    return (
        f"{width}<span style='color:{AGREES}'>Green</span>: an adjacency in both "
        f"graphs; <span style='color:{DISAGREES}'>orange</span>: PC's extra edges "
        "(left) and the true edges it missed (right). The true graph is the one the "
        "run recorded, restricted to these columns. Stored score "
        f"against its pattern: SHD {score.get('shd')} ({score.get('n_missing')} "
        f"missing, {score.get('n_extra')} extra, {score.get('n_misoriented')} "
        f"misoriented); adjacency precision {_fmt(score.get('precision'))}, recall "
        f"{_fmt(score.get('recall'))}; orientation precision "
        f"{_fmt(score.get('orientation_precision'))}, recall "
        f"{_fmt(score.get('orientation_recall'))}."
    )


def _pane(fig: Any, css_class: str, **params: Any) -> pn.pane.Bokeh:
    """``fig`` in a pane with the CSS class ``css_class``, on the figure itself too."""
    fig.css_classes = [css_class]
    return pn.pane.Bokeh(fig, css_classes=[css_class], **params)
