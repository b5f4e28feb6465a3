"""docs/architecture.md matches the code, and the layering it describes holds."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
#: What only the app may import.
APP_ONLY = ("panel", "holoviews", "bokeh", "clapkit_app")
#: The library's one door to the app: ``clapkit serve`` starts it (clapkit_app.serving,
#: which builds the ``panel serve`` command line without importing Panel).
SERVES_THE_APP = {"clapkit/serve_cli.py": {"clapkit_app"}}
#: The one library module that draws with HoloViews (issue 20): exploring a run in a
#: notebook wants composable, linked plots, which is what HoloViews is for. It imports
#: holoviews (and datashader through it) but never a backend: ``hv.extension("bokeh")``
#: imports Panel, so the notebook calls it (``test_explore_loads_no_panel_or_bokeh``).
EXPLORES = {"clapkit/explore.py": {"holoviews"}}
ALLOWED = {**SERVES_THE_APP, **EXPLORES}


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports (at any depth of the code)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_imported_modules_sees_nested_imports():
    source = "import os\ndef f():\n    from panel import widgets\n    import bokeh.models\n"
    assert imported_modules(source) == {"os", "panel", "bokeh"}


def test_the_library_never_imports_the_app_or_panel():
    offenders = []
    for path in sorted((ROOT / "clapkit").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        allowed = ALLOWED.get(name, set())
        bad = imported_modules(path.read_text(encoding="utf-8")) & set(APP_ONLY) - allowed
        if bad:
            offenders.append(f"{name} imports {sorted(bad)}")
    assert not offenders, offenders


def test_explore_loads_no_panel_or_bokeh():
    # In a fresh interpreter: this test process may have loaded them already.
    code = (
        "import sys, clapkit.explore; "
        "print(sorted(m for m in ('panel', 'bokeh') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def paths_named(text: str) -> set[str]:
    """Repository paths the document names in code spans."""
    spans = re.findall(r"`([^`\s]+)`", text)
    prefixes = ("clapkit/", "app/", "tests/", "benchmarks/", "docs/")
    return {span.rstrip("/") for span in spans if span.startswith(prefixes) and "<" not in span}


def test_every_path_the_architecture_names_exists():
    named = paths_named(DOC.read_text(encoding="utf-8"))
    assert len(named) > 20  # the document does name the code
    missing = sorted(
        p for p in named if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())
    )
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_package_of_the_library_is_described():
    text = DOC.read_text(encoding="utf-8")
    packages = sorted(p.parent.name for p in (ROOT / "clapkit").glob("*/__init__.py"))
    missing = [name for name in packages if f"clapkit/{name}/" not in text]
    assert not missing, f"docs/architecture.md does not describe {missing}"
