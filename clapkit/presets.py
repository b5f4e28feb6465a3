"""One vocabulary of network sizes for every pillar: ``tiny``, ``cpu`` and ``paper``.

Photo-z (:data:`clapkit.photoz.pipeline.PRESETS`), image translation (each model
config's ``PRESETS``, :mod:`clapkit.translate.models`) and stellar mass
(:data:`clapkit.interpret.mass.MASS_PRESETS`) each map these three names to their own
settings, and every ``--preset`` option offers exactly these. A preset is a size, not an
architecture: the photo-z encoder ``kind`` (``"compact"``, ``"paper"``, ``"mlp"`` of
:class:`clapkit.nets.NetConfig`) is a separate setting that the presets fill in.

Examples
--------
>>> check_preset("cpu", "photo-z")
'cpu'
>>> check_preset("gpu", "stellar-mass")
Traceback (most recent call last):
...
clapkit.errors.ValidationError: stellar-mass preset 'gpu' is now called 'paper' (presets: tiny, cpu, paper)
"""

from __future__ import annotations

import argparse
from typing import Any

from clapkit.errors import ValidationError

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "PRESET_NAMES",
    "RENAMED_PRESETS",
    "add_preset_argument",
    "check_preset",
    "current_preset_name",
]

#: The presets, smallest first, with what each is for.
PRESETS: dict[str, str] = {
    "tiny": "tests and smoke runs: trains in seconds",
    "cpu": "the default: trains on a laptop CPU in minutes",
    "paper": "the published sizes, meant for a GPU",
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
DEFAULT_PRESET = "cpu"
#: Names the pillars used before they shared one scheme (photo-z ``compact``,
#: translation and stellar-mass ``gpu``): refused with the new name, except where a stored
#: run records them (see :func:`current_preset_name`).
RENAMED_PRESETS: dict[str, str] = {"compact": "cpu", "gpu": "paper"}

_LISTED = ", ".join(PRESET_NAMES)


def check_preset(name: Any, what: str) -> str:
    """``name`` if it is a preset; otherwise a one-line error naming the accepted ones.

    Parameters
    ----------
    name : str
        The preset asked for.
    what : str
        Whose preset it is (``"photo-z"``, ``"SwinConfig"``, ...), for the message.

    Returns
    -------
    str
        ``name``.

    Examples
    --------
    >>> check_preset("huge", "photo-z")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown photo-z preset 'huge'; expected one of tiny, cpu, paper
    """
    if name in PRESETS:
        return name
    if name in RENAMED_PRESETS:
        raise ValidationError(
            f"{what} preset {name!r} is now called {RENAMED_PRESETS[name]!r} (presets: {_LISTED})"
        )
    raise ValidationError(f"unknown {what} preset {name!r}; expected one of {_LISTED}")


def current_preset_name(name: Any) -> Any:
    """The current name of a preset that a stored run recorded as ``name``.

    Runs trained before the shared scheme record ``"compact"`` (photo-z ``train.json``)
    or ``"gpu"`` (stellar-mass ``model.json``); their settings are those of ``cpu`` and
    ``paper``, so resuming such a run with the new name is not "other settings".

    Examples
    --------
    >>> current_preset_name("compact"), current_preset_name("tiny")
    ('cpu', 'tiny')
    """
    return RENAMED_PRESETS.get(name, name) if isinstance(name, str) else name


def _preset_type(what: str):
    def parse(text: str) -> str:
        # argparse turns this message into "argument --preset: ..."; unknown names go on
        # to ``choices``, whose message lists the presets.
        if text in RENAMED_PRESETS:
            raise argparse.ArgumentTypeError(
                f"{what} preset {text!r} is now called {RENAMED_PRESETS[text]!r}"
            )
        return text

    parse.__name__ = "preset"
    return parse


def add_preset_argument(
    parser: argparse.ArgumentParser,
    what: str,
    default: str | None = DEFAULT_PRESET,
    default_help: str | None = None,
) -> None:
    """Add the ``--preset`` option every training command shares.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    what : str
        Whose sizes the preset sets (``"photo-z"``, ...), for the messages.
    default : str or None
        The default preset; None where another source (a ``--config`` file) may name it.
    default_help : str, optional
        What the help says the default is (default: ``default``).
    """
    described = "; ".join(f"{name}: {text}" for name, text in PRESETS.items())
    fallback = default_help or default
    parser.add_argument(
        "--preset",
        default=default,
        type=_preset_type(what),
        choices=PRESET_NAMES,
        help=f"network and training size ({described}) (default: {fallback})",
    )
