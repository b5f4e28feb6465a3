"""Packages that re-export their modules' names but import each module on first use.

A package ``__init__`` that imports every module makes ``import clapkit.sim.cli`` load
GalSim, and ``clapkit --help`` take seconds; one that imports only on first use keeps
``from clapkit.sim import simulate`` working while a command line or a dashboard loads only
what it touches.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` that import ``exports`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Each public name and the module of ``package`` that defines it.

    Returns
    -------
    (callable, callable)
        ``__getattr__`` and ``__dir__`` for the package (PEP 562).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("clapkit", {"ClapkitError": "errors"})
    >>> getattr_("ClapkitError").__name__, "ClapkitError" in dir_()
    ('ClapkitError', True)
    >>> getattr_("nonsense")
    Traceback (most recent call last):
    ...
    AttributeError: module 'clapkit' has no attribute 'nonsense'
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
