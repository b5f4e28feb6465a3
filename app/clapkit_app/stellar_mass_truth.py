"""The parts of the stellar-mass page that set found causal structure beside the truth.

Two tables, both from what ``clapkit interpret causal`` stored (see
:mod:`clapkit_app.stellar_mass_store`):

- the FCI graph (a PAG, each edge end a tail ``-``, an arrowhead ``>`` or a circle ``o``)
  beside the true PAG of the mock survey, one row per pair adjacent in either, with
  the stored score;
- the local tests' verdicts against what the true graph implies given the latent and
  the selection: a confusion table per conditioning, with and without the selection.

Nothing is computed here beyond lining stored rows up.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from clapkit.interpret.fci import PAGResult, edge_string
from clapkit_app.stellar_mass_store import StellarMassData

#: Rows of the confusion table: which truth, and its label.
TRUTHS = (("with_selection", "given the selection"), ("without_selection", "ignoring it"))
#: Cells of a confusion table and their titles.
CELLS = (
    ("TP", "dependent, implied dependent"),
    ("FP", "dependent, implied independent"),
    ("TN", "independent, implied independent"),
    ("FN", "independent, implied dependent"),
)


def pag_frame(found: PAGResult, truth: PAGResult | None) -> pd.DataFrame:
    """One row per pair adjacent in the found or the true PAG: the edge as each has it.

    Examples
    --------
    >>> found = PAGResult(("a", "b", "c"), [[0, 2, 0], [3, 0, 0], [0, 0, 0]])
    >>> truth = PAGResult(("a", "b", "c"), [[0, 3, 3], [3, 0, 0], [3, 0, 0]])
    >>> pag_frame(found, truth).to_dict("records")[0]
    {'pair': 'a – b', 'found': 'a o-> b', 'true': 'a o-o b', 'agrees': False}
    """
    pairs = [(a, b) for a, _, _, b in found.edges()]
    if truth is not None:
        order = {name: k for k, name in enumerate(found.columns)}
        extra = [(a, b) for a, _, _, b in truth.edges() if (a, b) not in pairs]
        pairs = sorted([*pairs, *extra], key=lambda pair: (order[pair[0]], order[pair[1]]))
    rows = []
    for a, b in pairs:
        shown = edge_string(found, a, b) or "(none)"
        row: dict[str, Any] = {"pair": f"{a} – {b}", "found": shown}
        if truth is not None:
            true = edge_string(truth, a, b) or "(none)"
            row |= {"true": true, "agrees": true == shown}
        rows.append(row)
    return pd.DataFrame(rows, columns=["pair", "found", *(("true", "agrees") if truth else ())])


def confusion_frame(scored: dict[str, Any]) -> pd.DataFrame:
    """The stored confusion tables as rows: truth, conditioning and the names per cell.

    Examples
    --------
    >>> table = {"TP": ["hlr"], "FP": [], "TN": ["position_angle"], "FN": []}
    >>> scored = {"tables": {"with_selection": {"unconditional": table}}}
    >>> confusion_frame(scored).iloc[0].to_dict()["TN"]
    'position_angle'
    """
    rows = []
    for key, label in TRUTHS:
        for conditioning, table in scored.get("tables", {}).get(key, {}).items():
            row = {"truth": label, "tests": conditioning}
            row |= {cell: ", ".join(table.get(cell, [])) for cell, _ in CELLS}
            rows.append(row)
    return pd.DataFrame(rows, columns=["truth", "tests", *(cell for cell, _ in CELLS)])


def truth_section(data: StellarMassData) -> pn.Column | None:
    """The FCI table and the local tests' confusion, where the run has them; None if
    it has neither (real data, or a run made before clapkit stored them)."""
    items: list = []
    if data.fci is not None:
        items += _fci_items(data)
    if data.local_truth is not None:
        items += _confusion_items(data.local_truth)
    if not items:
        return None
    return pn.Column(*items, sizing_mode="stretch_width")


def _fci_items(data: StellarMassData) -> list:
    fci, truth, score = data.fci, data.fci_truth, data.fci_score or {}
    table = pn.widgets.Tabulator(
        pag_frame(fci, truth),
        disabled=True,
        show_index=False,
        layout="fit_data_table",
        titles={"pair": "pair", "found": "FCI", "true": "true PAG", "agrees": "same"},
        css_classes=["ck-fci-table"],
    )
    if truth is None:
        caption = (
            "FCI's marks: `-` a tail (an ancestor of the other end or of the selection), "
            "`>` an arrowhead (not one), `o` either. No true PAG is stored in this run."
        )
    else:
        caption = (
            "FCI's marks: `-` a tail (an ancestor of the other end or of the selection), "
            "`>` an arrowhead (not one), `o` either. The true PAG is what FCI finds with a "
            "perfect test: every column left out hidden, the survey's selection "
            f"conditioned on. Stored score: SHD {score.get('shd')} "
            f"({score.get('n_missing')} missing, {score.get('n_extra')} extra, "
            f"{score.get('n_misoriented')} with other marks); adjacency precision "
            f"{_fmt(score.get('precision'))}, recall {_fmt(score.get('recall'))}."
        )
        if data.pc_score_selection is not None:
            pc = data.pc_score_selection
            caption += (
                f" PC against what a perfect test finds on the selected data: SHD "
                f"{pc.get('shd')}, precision {_fmt(pc.get('precision'))}, recall "
                f"{_fmt(pc.get('recall'))}."
            )
    return [
        pn.pane.Markdown(
            f"### FCI over {len(fci.columns)} catalog columns (α = {fci.alpha:g}, "
            f"{fci.n_rows} galaxies)"
        ),
        table,
        pn.pane.Markdown(caption, css_classes=["ck-fci-caption"]),
    ]


def _confusion_items(scored: dict[str, Any]) -> list:
    proxy = scored.get("latent_proxy", {})
    ignored = ", ".join(proxy.get("invariant", [])) or "nothing"
    caption = (
        "Each tested variable by its verdict (after Benjamini–Hochberg) and by what the "
        "true graph implies: d-separation from the mass given a node standing for the "
        "latent (a child of everything that shapes the images, ignoring "
        f"{ignored}), the variables the test conditions on and, in the first rows, "
        "the survey's selection. Conditioning on a node with many parents makes them "
        "all dependent, so the truth says which dependences may remain, not how strong."
    )
    return [
        pn.pane.Markdown("### Local tests against the true graph"),
        pn.widgets.Tabulator(
            confusion_frame(scored),
            disabled=True,
            show_index=False,
            layout="fit_data_table",
            titles={"truth": "truth", "tests": "tests", **dict(CELLS)},
            css_classes=["ck-truth-confusion"],
        ),
        pn.pane.Markdown(caption, css_classes=["ck-truth-caption"]),
    ]


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"
