"""Execute the tutorial notebooks and write the executed copies that readers see.

GitHub draws a committed ``.ipynb`` with its outputs, so an executed copy in
``docs/notebooks/`` shows a reader every figure without running anything. Each notebook
runs in a scratch folder (it never writes into the repository), in its quick setting as
written, and its copy is written atomically: a notebook that fails leaves the previous
copy in place.

What is kept and what is stripped: images (PNG), text and tables (HTML without scripts)
are kept. The HoloViews/Bokeh outputs are stripped — their JavaScript (the Bokeh
library loaders, ``application/javascript``, the ``application/vnd.holoviews_*`` and
``application/vnd.bokehjs_*`` payloads) and any HTML that carries a ``<script>``: they
weigh megabytes per plot and GitHub does not run them. A stripped plot shows the line
:data:`PLOT_NOTE` instead; a loader with nothing left is dropped. Widget state and
per-cell execution timestamps are dropped too, so that a copy changes only when its
content does.

Usage: ``python notebooks/render.py [NAME ...] [--out DIR] [--real]``. Without names,
every notebook in ``notebooks/``; a name may omit ``.ipynb``. ``--real`` runs the real
setting (the notebook's ``QUICK = True`` line set to ``False``), and then ``--out`` must
name a folder other than ``docs/notebooks`` (the committed copies are the quick ones).
``make notebooks`` renders them all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from clapkit.atomic import atomic_path
from clapkit.errors import ValidationError

NOTEBOOKS = Path(__file__).resolve().parent
RENDERED = NOTEBOOKS.parent / "docs" / "notebooks"
QUICK_LINE = "QUICK = True"
#: Output types of HoloViews and Bokeh: JavaScript that GitHub never runs.
SCRIPT_MIME_PREFIXES = (
    "application/javascript",
    "application/vnd.holoviews",
    "application/vnd.bokehjs",
    "application/vnd.jupyter.widget",
)
#: Output types that carry a HoloViews or Bokeh plot (not only its loader).
PLOT_MIME_PREFIXES = ("application/vnd.holoviews_exec", "application/vnd.bokehjs_exec")
#: What a stripped plot shows in the copy instead.
PLOT_NOTE = "[interactive HoloViews/Bokeh plot: run the notebook to see it]"


def strip_scripts(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop the JavaScript outputs, widget state and execution timestamps, in place.

    Parameters
    ----------
    notebook : NotebookNode
        An executed notebook.

    Returns
    -------
    NotebookNode
        The same notebook.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook()
    >>> cell = nbformat.v4.new_code_cell("plot")
    >>> cell.outputs = [nbformat.v4.new_output(
    ...     "display_data",
    ...     data={"text/html": "<table></table><script>big()</script>", "text/plain": "Table"},
    ... )]
    >>> nb.cells.append(cell)
    >>> dict(strip_scripts(nb).cells[0].outputs[0].data)
    {'text/plain': 'Table'}
    """
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if "data" in output:
                plot = any(mime.startswith(PLOT_MIME_PREFIXES) for mime in output.data)
                for mime in list(output.data):
                    html_script = mime == "text/html" and "<script" in output.data[mime]
                    if mime.startswith(SCRIPT_MIME_PREFIXES) or html_script:
                        del output.data[mime]
                if plot:
                    output.data = {"text/plain": PLOT_NOTE}
                output.metadata = {
                    mime: meta
                    for mime, meta in output.get("metadata", {}).items()
                    if mime in output.data
                }
                if not any(output.data.values()):
                    continue  # a loader with nothing left to show
            kept.append(output)
        cell.outputs = kept
    return notebook


def set_real(notebook: nbformat.NotebookNode, name: str) -> None:
    """Turn the notebook's one ``QUICK = True`` line into ``QUICK = False``."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and QUICK_LINE in c.source]
    if len(cells) != 1:
        raise ValidationError(
            f"{name}: expected one code cell with the line {QUICK_LINE!r}, found {len(cells)}"
        )
    cells[0].source = cells[0].source.replace(QUICK_LINE, "QUICK = False", 1)


def execute(path: Path, real: bool = False, timeout: int = 3600) -> nbformat.NotebookNode:
    """Run one notebook in a scratch folder and return it with its outputs, stripped."""
    notebook = nbformat.read(path, as_version=4)
    if real:
        set_real(notebook, path.name)
    with tempfile.TemporaryDirectory(prefix=f"render-{path.stem}-") as scratch:
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": scratch}},
        ).execute()
    return strip_scripts(notebook)


def notebook_paths(names: list[str]) -> list[Path]:
    """The notebooks named (all of them without names), each checked to exist."""
    if not names:
        return sorted(NOTEBOOKS.glob("*.ipynb"))
    paths = [NOTEBOOKS / (n if n.endswith(".ipynb") else f"{n}.ipynb") for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ValidationError(f"no notebook {missing} in {NOTEBOOKS}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to render (default: all)")
    parser.add_argument("--out", type=Path, default=RENDERED, help="default docs/notebooks")
    parser.add_argument("--real", action="store_true", help="run the real setting")
    args = parser.parse_args(argv)
    try:
        paths = notebook_paths(args.names)
        if args.real and args.out.resolve() == RENDERED.resolve():
            raise ValidationError("--real: give --out another folder than docs/notebooks")
        for path in paths:
            start = time.perf_counter()
            notebook = execute(path, real=args.real)
            with atomic_path(args.out / path.name, overwrite=True) as tmp:
                nbformat.write(notebook, tmp)
            print(f"{path.name}: {time.perf_counter() - start:.0f} s -> {args.out / path.name}")
    except ValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
