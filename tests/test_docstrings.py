"""House rule: every public function of clapkit with more than three parameters documents them.

Public means a name without a leading underscore, in a module without one, at module level
or in a public class. ``self`` and ``cls`` do not count; ``*args`` and ``**kwargs`` do. A
method that overrides one documented in a base class of the package (a translator's
``train_step``, say) inherits its Parameters, as numpydoc readers expect: it need only say
what it does differently.
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


def _has_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return "Parameters\n----------" in (ast.get_docstring(node) or "")


def documented_methods(sources: list[str]) -> set[tuple[str, str]]:
    """``(class, method)`` of every method with a Parameters section in ``sources``."""
    return {
        (cls.name, node.name)
        for source in sources
        for cls in ast.walk(ast.parse(source))
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _has_parameters(node)
    }


def undocumented(source: str, inherited: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Public functions of ``source`` with more than three parameters and no Parameters,
    unless a base class's method of that name has them (``inherited``)."""
    found = []

    def walk(body: list[ast.stmt], prefix: str, bases: list[str] | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                names = [
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                ]
                walk(node.body, f"{prefix}{node.name}.", names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("_"):
                    continue
                if len(_parameters(node, bases is not None)) <= MAX_UNDOCUMENTED:
                    continue
                if _has_parameters(node):
                    continue
                if any((base, node.name) in inherited for base in bases or ()):
                    continue
                found.append(f"{prefix}{node.name} (line {node.lineno})")

    walk(ast.parse(source).body, "", None)
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

class Base:
    def step(self, a, b, c, d):
        """Documented once.

        Parameters
        ----------
        a, b, c, d : int
        """

class Child(Base):
    def step(self, a, b, c, d):
        """Overrides a documented method."""

class Stranger:
    def step(self, a, b, c, d):
        """Same name, but not a subclass of Base."""
'''
    inherited = documented_methods([source])
    assert inherited == {("Base", "step")}
    assert undocumented(source, inherited) == [
        "four (line 2)",
        "Thing.wide (line 23)",
        "Stranger.step (line 40)",
    ]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _is_public_module(p))
INHERITED = documented_methods([p.read_text(encoding="utf-8") for p in MODULES])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_functions_with_more_than_three_parameters_have_a_parameters_section(path):
    missing = undocumented(path.read_text(encoding="utf-8"), INHERITED)
    assert not missing, f"{path.relative_to(PACKAGE)}: add numpydoc Parameters to {missing}"
