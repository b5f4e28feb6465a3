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


def links(text: str) -> list[str]:
    """Targets of Markdown links and images, bare web addresses, and paths in code spans
    that climb out of the folder (``../``)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    targets += re.findall(r"(?<![(\w])https?://[^\s)*>`]+", text)
    return targets + re.findall(r"`(\.\./[^`\s]*)`", text)


def test_links_finds_every_kind():
    text = "see [the app](app/README.md), ![shot](docs/a.png), https://example.org/x, `../up.md`"
    assert links(text) == ["app/README.md", "docs/a.png", "https://example.org/x,", "../up.md"]


def test_the_readmes_link_only_inside_the_repository():
    root = README.parent
    for readme in (README, root / "app" / "README.md"):
        for target in links(readme.read_text(encoding="utf-8")):
            if target.startswith(("http://localhost", "https://localhost")):
                continue  # where the dashboards are served
            assert "://" not in target, f"{readme.name} links outside the repository: {target}"
            path = (readme.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(root), f"{readme.name}: {target} is outside the repository"
            assert path.exists(), f"{readme.name}: {target} does not exist"
