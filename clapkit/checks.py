"""Checks of single settings, shared so that every bad setting is reported the same way.

A setting that must be a whole number (a size, a count, a seed) is checked by
:func:`check_int`, whose message names the setting, the smallest value allowed and what
was given: ``epochs must be an integer >= 1, got 0``. :func:`check_number` does the same
for real numbers with open bounds, :func:`check_choice` for one of a few values and
:func:`check_names` for a list of names; the stage settings of
:class:`clapkit.settings.Settings` are built from them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from clapkit.errors import ValidationError


def check_int(value: Any, name: str, minimum: int | None = 1) -> int:
    """``value`` as a Python ``int``, if it is an integer of at least ``minimum``.

    Booleans and floats are refused, even ``3.0``: a setting given as a float is more
    likely a mistake (a fraction where a count was meant) than a count. NumPy integers
    are accepted and returned as ``int``, so the value can be written to JSON.

    Parameters
    ----------
    value : object
        The setting's value.
    name : str
        The setting's name as the user wrote it (``"epochs"``, ``"--workers"``,
        ``"SwinConfig.depth"``), used in the message.
    minimum : int or None
        Smallest value allowed; None allows any integer.

    Returns
    -------
    int

    Raises
    ------
    ValidationError
        ``"<name> must be an integer >= <minimum>, got <value>"``.

    Examples
    --------
    >>> import numpy as np
    >>> check_int(np.int64(3), "epochs")
    3
    >>> check_int(0, "seed", minimum=0)
    0
    >>> check_int(2.0, "epochs")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: epochs must be an integer >= 1, got 2.0
    """
    too_small = isinstance(value, numbers.Integral) and minimum is not None and value < minimum
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or too_small:
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValidationError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_number(
    value: Any, name: str, *, above: float | None = None, below: float | None = None
) -> float:
    """``value`` as a Python ``float``, if it is a finite real number strictly inside
    (``above``, ``below``).

    Booleans, strings and NaN are refused; integers are accepted (``span=4`` means 4.0).

    Parameters
    ----------
    value : object
        The setting's value.
    name : str
        The setting's name, used in the message.
    above, below : float or None
        Open bounds; None leaves that side unbounded.

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        ``"<name> must be a number in (<above>, <below>), got <value>"`` (or ``> above``,
        ``< below``).

    Examples
    --------
    >>> check_number(0.05, "alpha", above=0, below=1)
    0.05
    >>> check_number(1.5, "alpha", above=0, below=1)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: alpha must be a number in (0, 1), got 1.5
    """
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = real and math.isfinite(value)
    ok = ok and (above is None or value > above) and (below is None or value < below)
    if not ok:
        if above is not None and below is not None:
            expected = f"a number in ({above}, {below})"
        elif above is not None:
            expected = f"a number > {above}"
        elif below is not None:
            expected = f"a number < {below}"
        else:
            expected = "a finite number"
        raise ValidationError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value``, if it is one of ``choices``.

    Parameters
    ----------
    value : object
        The setting's value.
    name : str
        The setting's name, used in the message.
    choices : iterable
        The values allowed.

    Returns
    -------
    object
        ``value`` unchanged.

    Raises
    ------
    ValidationError
        ``"<name> must be one of [...], got <value>"``.

    Examples
    --------
    >>> check_choice("saliency", "method", ("integrated_gradients", "saliency"))
    'saliency'
    """
    choices = list(choices)
    if value not in choices:
        raise ValidationError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_names(value: Any, name: str) -> tuple[str, ...]:
    """A sequence of names (or one comma-separated string) as a tuple of str.

    Parameters
    ----------
    value : str or sequence of str
        ``"a,b"`` or ``["a", "b"]``; surrounding spaces and empty names are dropped.
    name : str
        The setting's name, used in the message.

    Returns
    -------
    tuple of str

    Raises
    ------
    ValidationError
        When an element is not a string.

    Examples
    --------
    >>> check_names("disk_q, hlr", "external")
    ('disk_q', 'hlr')
    """
    if isinstance(value, str):
        value = value.split(",")
    try:
        items = list(value)
    except TypeError:
        raise ValidationError(f"{name} must be a sequence of names, got {value!r}") from None
    if not all(isinstance(item, str) for item in items):
        raise ValidationError(f"{name} must hold names (strings), got {items!r}")
    return tuple(item.strip() for item in items if item.strip())
