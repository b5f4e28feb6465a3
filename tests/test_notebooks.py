"""Every tutorial notebook runs from top to bottom, in a scratch folder.

Each notebook is a test class of its own, so that ``make test`` (pytest-xdist,
``--dist loadscope``) runs the notebooks on both workers rather than one after another.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def run_notebook(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    # The scratch folder is the working directory: a notebook never writes into the repo.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        out
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors


def _notebook_class(path: Path) -> type:
    @pytest.mark.notebook
    def test_runs(self, tmp_path):
        run_notebook(path, tmp_path)

    return type(f"TestNotebook_{path.stem}", (), {"test_runs": test_runs})


for _path in NOTEBOOKS:
    globals()[f"TestNotebook_{_path.stem}"] = _notebook_class(_path)


def test_the_notebooks_are_found():
    # Without it, a wrong notebooks path would run no notebook and pass.
    assert NOTEBOOKS, "no notebooks found"
