"""A training checkpoint on disk: what a killed training resumes from.

A checkpoint holds state dicts, numbers and JSON strings only, so it loads with
``torch.load(..., weights_only=True)``; it is written atomically after every epoch by
:func:`clapkit.nets.training.train_epochs`. It is tagged with :data:`CHECKPOINT_FORMAT`
and records an *identity*, a JSON string of everything that must not change between the
killed run and its resumption (training settings, model, data). A checkpoint of another
identity, of another program or of an older clapkit is refused by name rather than
loaded into the wrong network.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clapkit.atomic import atomic_path
from clapkit.errors import FileFormatError, ValidationError

__all__ = ["CHECKPOINT_FORMAT", "CheckpointFile", "TrainingState", "load_weights_only"]

CHECKPOINT_FORMAT = "clapkit.checkpoint"
CHECKPOINT_VERSION = 1


def load_weights_only(path: str | os.PathLike) -> Any:
    """A torch file of state dicts, numbers and strings, on the CPU whatever device wrote
    it; an unreadable file raises :class:`~clapkit.errors.FileFormatError`."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many types for a corrupt file
        raise FileFormatError(f"{path}: not a readable checkpoint ({err})") from err


@dataclass
class TrainingState:
    """Where a training stands after an epoch.

    Attributes
    ----------
    epoch : int
        The last finished epoch (0-based).
    modules, optimizers : dict
        State dicts by name.
    history : list of dict
        One record per finished epoch.
    best_score : float
        The lowest score seen so far (``inf`` when best weights are not kept).
    best_modules : dict
        State dicts of the modules at that score (empty when none).
    """

    epoch: int
    modules: dict[str, dict[str, Any]]
    optimizers: dict[str, dict[str, Any]]
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = math.inf
    best_modules: dict[str, dict[str, Any]] = field(default_factory=dict)


class CheckpointFile:
    """The checkpoint of one training at ``path``, for the training of ``identity``.

    Parameters
    ----------
    path : path-like
    identity : str
        What must match to resume, e.g. ``json.dumps(asdict(config), sort_keys=True)``.
    what : str
        What the identity covers, for the refusal: ``"training config"`` gives
        "checkpoint of a different training config".
    replace_foreign : bool
        Treat a checkpoint of another identity or format as absent (training starts
        again and the next write replaces it) instead of refusing it (``--overwrite``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.ckpt"
    >>> CheckpointFile(path, '{"epochs": 3}').read() is None  # nothing to resume
    True
    """

    def __init__(
        self,
        path: str | os.PathLike,
        identity: str,
        what: str = "configuration",
        replace_foreign: bool = False,
    ) -> None:
        self.path = Path(path)
        self.identity = identity
        self.what = what
        self.replace_foreign = replace_foreign

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> TrainingState | None:
        """The state to resume from, or None when there is none (or it is replaced)."""
        if not self.path.exists():
            return None
        data = load_weights_only(self.path)
        start_again = "remove it (or use --overwrite) to start again"
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            if self.replace_foreign:
                return None
            raise FileFormatError(
                f"{self.path}: not a clapkit training checkpoint, or one written by an "
                f"older clapkit; {start_again}"
            )
        if data.get("version") != CHECKPOINT_VERSION:
            if self.replace_foreign:
                return None
            raise FileFormatError(
                f"{self.path}: checkpoint format version {data.get('version')}; this "
                f"clapkit reads version {CHECKPOINT_VERSION}; {start_again}"
            )
        if data.get("identity") != self.identity:
            if self.replace_foreign:
                return None
            raise ValidationError(
                f"{self.path}: checkpoint of a different {self.what}; {start_again}"
            )
        try:
            return TrainingState(
                epoch=int(data["epoch"]),
                modules=data["modules"],
                optimizers=data["optimizers"],
                history=json.loads(data["history"]),
                best_score=float(data["best_score"]),
                best_modules=data["best_modules"],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise FileFormatError(f"{self.path}: incomplete checkpoint ({err!r})") from err

    def write(self, state: TrainingState) -> None:
        """Replace the checkpoint with ``state``, atomically."""
        with atomic_path(self.path, overwrite=True) as tmp:
            torch.save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": CHECKPOINT_VERSION,
                    "identity": self.identity,
                    "epoch": state.epoch,
                    "modules": state.modules,
                    "optimizers": state.optimizers,
                    "history": json.dumps(state.history),
                    "best_score": state.best_score,
                    "best_modules": state.best_modules,
                },
                tmp,
            )

    def remove(self) -> None:
        """Delete the checkpoint (once the training it belongs to has finished)."""
        self.path.unlink(missing_ok=True)
