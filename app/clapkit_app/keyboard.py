"""Arrow keys in the dashboards' tables: up and down move the selected row.

Tabulator moves between cells with the keyboard only while a cell is edited, and every
table here is read-only. :func:`table_keys` adds one listener to the page (once, however
many components ask): with the focus in a table (Tab to it), or after a click in a
table while no input has the focus, ArrowDown and ArrowUp click the next or previous
row, which selects it exactly as a mouse click does, so the page follows. Tables without a selected row and keys pressed
elsewhere are left alone (the arrows still scroll the page there).
"""

from __future__ import annotations

import panel as pn


class TableKeys(pn.custom.JSComponent):
    """An empty element whose script listens for the arrow keys in tables."""

    _esm = """
export function render({ el }) {
  window.__clapkitTableKeys = true;
  if (window.__clapkitTableKeysBound) { return; }
  window.__clapkitTableKeysBound = true;
  let last = null;  // the table of the last click: its rows move with the arrows
  const tableOf = (event) => event.composedPath().find(
    (node) => node.classList && node.classList.contains("tabulator"));
  document.addEventListener("pointerdown", (event) => { last = tableOf(event) || null; }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") { return; }
    // The focus in a table (Tab), else the table clicked last while nothing has focus.
    const path = event.composedPath();
    const inField = path.some((node) => node.tagName === "INPUT" || node.tagName === "SELECT");
    const table = tableOf(event) || (inField ? null : last);
    if (!table || !table.isConnected) { return; }
    const rows = [...table.querySelectorAll(".tabulator-row")];
    const current = rows.findIndex((row) => row.classList.contains("tabulator-selected"));
    const next = current + (event.key === "ArrowDown" ? 1 : -1);
    if (current < 0 || next < 0 || next >= rows.length) { return; }
    event.preventDefault();
    const cell = rows[next].querySelector(".tabulator-cell") || rows[next];
    cell.click();
    rows[next].scrollIntoView({ block: "nearest" });
  }, true);
}
"""


def table_keys() -> TableKeys:
    """The component to add to a page (it shows nothing)."""
    return TableKeys(width=1, height=1, margin=0)
