"""House rule: every public function of clapkit with more than three parameters documents them.

Public means a name without a leading underscore, in a module without one, at module level
or in a public class. ``self`` and ``cls`` do not count; ``*args`` and ``**kwargs`` do.
"""

import ast
from pathlib import Path

import pytest

import clapkit

PACKAGE = Path(clapkit.__file__).parent
MAX_UNDOCUMENTED = 3


def _is_public_module(path: Path) -> bool:
    parts = path.relative_to(PACKAGE).parts
    return not any(part.startswith("_") and part != "__init__.py" for part in parts)


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> list[str]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if in_class and names and names[0] in ("self", "cls"):
        names = names[1:]
    names += [f"*{a.arg}" for a in (args.vararg,) if a] + [f"**{a.arg}" for a in (args.kwarg,) if a]
    return names


def undocumented(source: str) -> list[str]:
    """Public functions of ``source`` with more than three parameters and no Parameters."""
    found = []

    def walk(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                walk(node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("_"):
                    continue
                if len(_parameters(node, in_class)) <= MAX_UNDOCUMENTED:
                    continue
                doc = ast.get_docstring(node) or ""
                if "Parameters\n----------" not in doc:
                    found.append(f"{prefix}{node.name} (line {node.lineno})")

    walk(ast.parse(source).body, "", False)
    return found


def test_the_rule_sees_a_missing_section_and_a_present_one():
    source = '''
def four(a, b, c, d):
    """No section."""

def documented(a, b, c, d):
    """Documented.

    Parameters
    ----------
    a, b, c, d : int
    """

def three(a, b, c):
    """Short enough."""

def _private(a, b, c, d):
    """Not public."""

class Thing:
    def method(self, a, b, c):
        """Three without self."""

    def wide(self, a, b, *args, **kwargs):
        """Four with the stars."""
'''
    assert undocumented(source) == ["four (line 2)", "Thing.wide (line 23)"]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _is_public_module(p))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_functions_with_more_than_three_parameters_have_a_parameters_section(path):
    missing = undocumented(path.read_text(encoding="utf-8"))
    assert not missing, f"{path.relative_to(PACKAGE)}: add numpydoc Parameters to {missing}"
