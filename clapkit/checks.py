"""Checks of single settings, shared so that every bad setting is reported the same way.

A setting that must be a whole number (a size, a count, a seed) is checked by
:func:`check_int`, whose message names the setting, the smallest value allowed and what
was given: ``epochs must be an integer >= 1, got 0``.
"""

from __future__ import annotations

import numbers
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
