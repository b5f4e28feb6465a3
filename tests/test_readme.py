"""The README's Python example runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)  # whatever it might write lands here, not in the repo
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
    # The example's own products: PDFs of the test split that sum to one, and a summary.
    pdfs = namespace["pdfs"]
    assert np.allclose(pdfs.p.sum(axis=1), 1.0)
    assert 0 < pdfs.summary()["sigma_mad"] < 0.1
