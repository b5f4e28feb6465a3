"""Every tutorial notebook runs from top to bottom, in a scratch folder, and shows what a
student should see.

A code cell that should draw a figure carries the tag ``figure`` in its metadata
(``cell.metadata.tags``); once executed it must show an image (or a HoloViews / Bokeh
rendering), never only the text ``<Figure size ...>`` of a figure nobody displayed.
Notebooks end with a section of exercises whose solutions hide in ``<details>`` blocks.

Each notebook is a test class of its own, so that ``make test`` (pytest-xdist,
``--dist loadscope``) runs the notebooks on both workers rather than one after another.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

FIGURE_TAG = "figure"


IMAGE_TYPES = ("image/png", "image/svg+xml", "application/vnd.holoviews_exec.v0+json")


def figure_cells(notebook: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged ``figure``."""
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if FIGURE_TAG in cell.get("metadata", {}).get("tags", [])
    ]


def shows_an_image(cell: nbformat.NotebookNode) -> bool:
    """Whether an executed cell displays a picture: an image, or a HoloViews / Bokeh plot."""
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if any(kind in data for kind in IMAGE_TYPES):
            return True
        if "bokeh" in str(data.get("text/html", "")).lower():
            return True
    return False


def undisplayed_figures(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell shows a matplotlib figure as the text ``<Figure size ...>`` alone,
    as a Figure does when no inline backend renders it (or inside a tuple)."""
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "<Figure size" in str(data.get("text/plain", "")) and not any(
            kind in data for kind in IMAGE_TYPES
        ):
            return True
    return False


def check_executed(notebook: nbformat.NotebookNode, name: str) -> list[str]:
    """What a student would find wrong in an executed notebook, one line per problem."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{name} cell {index}: {out.ename}: {out.evalue}")
        if undisplayed_figures(cell):
            problems.append(f"{name} cell {index}: shows '<Figure size ...>' text, no image")
    for index in figure_cells(notebook):
        if not shows_an_image(notebook.cells[index]):
            problems.append(f"{name} cell {index}: tagged '{FIGURE_TAG}' but shows no figure")
    return problems


def exercise_problems(notebook: nbformat.NotebookNode, name: str) -> list[str]:
    """Empty when the notebook ends with its exercises: a markdown cell titled
    "Exercises", followed by markdown cells only, with at least one hidden solution."""
    starts = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown" and "Exercises" in cell.source
    ]
    if not starts:
        return [f"{name}: no markdown cell with an 'Exercises' section"]
    section = notebook.cells[starts[-1] :]
    problems = []
    code = [starts[-1] + i for i, cell in enumerate(section) if cell.cell_type != "markdown"]
    if code:
        problems.append(f"{name}: code cells {code} follow the exercises; they must end it")
    if not any("<details>" in cell.source for cell in section):
        problems.append(f"{name}: the exercises have no hidden solution (<details>)")
    return problems


def run_notebook(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    # The scratch folder is the working directory: a notebook never writes into the repo.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    return notebook


def _notebook_class(path: Path) -> type:
    @pytest.mark.notebook
    def test_runs(self, tmp_path):
        notebook = run_notebook(path, tmp_path)
        problems = check_executed(notebook, path.name)
        assert not problems, "\n".join(problems)

    def test_declares_its_figures(self):
        # Without a tagged cell the figure check above would pass on a notebook that
        # draws nothing; a tag on a markdown cell could never be satisfied.
        notebook = nbformat.read(path, as_version=4)
        tagged = figure_cells(notebook)
        assert tagged, f"{path.name}: no cell tagged '{FIGURE_TAG}'"
        markdown = [i for i in tagged if notebook.cells[i].cell_type != "code"]
        assert not markdown, f"{path.name}: cells {markdown} are tagged but hold no code"

    def test_ends_with_exercises(self):
        problems = exercise_problems(nbformat.read(path, as_version=4), path.name)
        assert not problems, "\n".join(problems)

    members = {
        "test_runs": test_runs,
        "test_declares_its_figures": test_declares_its_figures,
        "test_ends_with_exercises": test_ends_with_exercises,
    }
    return type(f"TestNotebook_{path.stem}", (), members)


for _path in NOTEBOOKS:
    globals()[f"TestNotebook_{_path.stem}"] = _notebook_class(_path)


def test_the_notebooks_are_found():
    # Without it, a wrong notebooks path would run no notebook and pass.
    assert NOTEBOOKS, "no notebooks found"


def _cell(cell_type: str, source: str, outputs=(), tags=()) -> nbformat.NotebookNode:
    if cell_type == "markdown":
        cell = nbformat.v4.new_markdown_cell(source)
    else:
        cell = nbformat.v4.new_code_cell(source, outputs=[nbformat.from_dict(o) for o in outputs])
    cell.metadata["tags"] = list(tags)
    return cell


PNG = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBO"}}
TEXT_FIGURE = {
    "output_type": "execute_result",
    "execution_count": 1,
    "metadata": {},
    "data": {"text/plain": "<Figure size 1000x400 with 2 Axes>"},
}


def test_the_figure_check_catches_a_figure_shown_as_text():
    notebook = nbformat.v4.new_notebook(
        cells=[
            _cell("code", "fig", [PNG], tags=[FIGURE_TAG]),
            _cell("code", "fig", [TEXT_FIGURE], tags=[FIGURE_TAG]),
            _cell("code", "x = 1", [], tags=[FIGURE_TAG]),
        ]
    )
    problems = check_executed(notebook, "toy.ipynb")
    assert [p.split(":")[0] for p in problems] == [
        "toy.ipynb cell 1",  # the text of an undisplayed figure
        "toy.ipynb cell 1",  # and no image
        "toy.ipynb cell 2",  # no output at all
    ]


def test_the_exercises_check():
    solution = "<details><summary>Solution</summary>\n\nx\n</details>"
    good = nbformat.v4.new_notebook(
        cells=[
            _cell("code", "x = 1"),
            _cell("markdown", "## Exercises\n1. Try"),
            _cell("markdown", solution),
        ]
    )
    assert exercise_problems(good, "good") == []
    no_solution = nbformat.v4.new_notebook(cells=[_cell("markdown", "## Exercises\n1. Try")])
    assert "hidden solution" in exercise_problems(no_solution, "n")[0]
    code_after = nbformat.v4.new_notebook(
        cells=[_cell("markdown", "## Exercises\n" + solution), _cell("code", "x = 1")]
    )
    assert "code cells [1]" in exercise_problems(code_after, "c")[0]
    assert "no markdown cell" in exercise_problems(nbformat.v4.new_notebook(), "e")[0]
