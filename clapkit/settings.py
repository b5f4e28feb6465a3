"""The settings of a stage as one frozen, validated object.

A stage that takes many settings (``clapkit interpret causal``, ``clapkit train``,
``clapkit evaluate``, ...) takes them as one frozen dataclass derived from
:class:`Settings` rather than as a dozen keyword arguments: the settings are checked
together when the object is made, before the stage reads or writes anything, and they
travel (to a notebook, a benchmark, a JSON file) as one value. What is not a setting of
the result — the run directory, the data file, the device, progress bars, ``overwrite`` —
stays an argument of the stage function.

``*Config`` classes elsewhere in clapkit configure one model or algorithm and are stored
with it (:class:`~clapkit.photoz.clap_config.CLAPConfig`,
:class:`~clapkit.interpret.information.ClassifierConfig`); a stage's ``*Settings`` may hold
one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from clapkit.errors import ValidationError

S = TypeVar("S", bound="Settings")


def _json_ready(value: Any) -> Any:
    """``value`` with tuples as lists and nested dataclasses as dicts, recursively."""
    if isinstance(value, Settings):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the frozen settings of a stage: ``to_dict`` and ``from_dict`` for JSON.

    A subclass is a ``@dataclass(frozen=True)`` whose ``__post_init__`` checks every
    field (with :mod:`clapkit.checks`) and raises a
    :class:`~clapkit.errors.ValidationError` naming the setting. Sequences are stored as
    tuples, so that ``from_dict(to_dict())`` gives back an equal object.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from clapkit.checks import check_int
    >>> @dataclass(frozen=True)
    ... class ToySettings(Settings):
    ...     k: int = 30
    ...
    ...     def __post_init__(self):
    ...         check_int(self.k, "k")
    >>> ToySettings.from_dict(ToySettings(k=5).to_dict())
    ToySettings(k=5)
    >>> ToySettings.from_dict({"kk": 5})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown ToySettings settings ['kk']; known: ['k']
    """

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (tuples as lists, nested configs as dicts)."""
        return {f.name: _json_ready(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Settings from :meth:`to_dict`'s data; unknown keys are refused by name."""
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"{cls.__name__} must be read from a JSON object, got {type(data).__name__}"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValidationError(f"unknown {cls.__name__} settings {unknown}; known: {known}")
        return cls(**data)

    def _set(self, name: str, value: Any) -> None:
        """Store a normalised value in a frozen field (for ``__post_init__``)."""
        object.__setattr__(self, name, value)
