"""How photo-z networks train: their settings, their data, their epoch, their weights.

The epochs themselves (seeding, learning rate, checkpoints, stop signal, progress) run
in the loop every clapkit network shares, :func:`clapkit.nets.training.train_epochs`.
:func:`fit` gives it the photo-z epoch: AdamW steps over the training batches in an
order fixed by ``(seed, epoch)``, then the validation loss, by which the best weights
are kept. A run killed after epoch ``e`` and resumed from its checkpoint repeats exactly
the epochs an uninterrupted run would have done.

Weights are state dicts, loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clapkit.atomic import atomic_path
from clapkit.checks import check_int
from clapkit.errors import FileFormatError, ValidationError
from clapkit.nets.checkpoint import CheckpointFile, load_weights_only
from clapkit.nets.device import resolve_device
from clapkit.nets.training import Epoch, train_epochs

#: A batch: inputs, extra scalars, target (bin index or soft label), as tensors.
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
#: ``step(net, batch, generator) -> (loss, parts)``: the loss of one training batch.
StepFn = Callable[[nn.Module, Batch, torch.Generator], tuple[torch.Tensor, dict[str, float]]]
#: ``score(net, batch) -> summed loss``: validation loss of a batch (lower is better).
ScoreFn = Callable[[nn.Module, Batch], float]


@dataclass
class TrainConfig:
    """How a network is optimised (AdamW with a cosine learning-rate decay).

    Attributes
    ----------
    epochs : int
    batch_size : int
    learning_rate : float
        Peak learning rate, reached after ``warmup_epochs`` and decayed to 5% of it.
    weight_decay : float
    warmup_epochs : int
    seed : int
    """

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        self.epochs = check_int(self.epochs, "epochs")
        self.batch_size = check_int(self.batch_size, "batch_size")
        self.warmup_epochs = check_int(self.warmup_epochs, "warmup_epochs", minimum=0)
        self.seed = check_int(self.seed, "seed", minimum=0)
        if not self.learning_rate > 0:
            raise ValidationError(f"learning_rate must be > 0, got {self.learning_rate}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from JSON data; unknown keys are refused."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValidationError(f"unknown training options {sorted(unknown)}")
        return cls(**data)

    def lr_scale(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based) over ``learning_rate``: linear warm-up,
        then cosine decay to 5%."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        span = max(1, self.epochs - self.warmup_epochs)
        progress = (epoch - self.warmup_epochs) / span
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    def lr(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based)."""
        return self.learning_rate * self.lr_scale(epoch)


@dataclass
class TensorData:
    """Inputs, extra scalars and targets of N galaxies as tensors."""

    x: torch.Tensor
    extra: torch.Tensor
    target: torch.Tensor

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.extra.shape[0] != n or self.target.shape[0] != n:
            raise ValidationError(
                f"inputs, extra and targets differ in length: "
                f"{n}, {self.extra.shape[0]}, {self.target.shape[0]}"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def batches(
        self, size: int, order: np.ndarray | None = None, min_size: int = 1
    ) -> Iterator[Batch]:
        """Batches of ``size`` rows, in ``order`` when given; a last batch smaller than
        ``min_size`` is left out."""
        n = len(self)
        for start in range(0, n, size):
            if n - start < min_size:
                return
            if order is None:
                rows: slice | torch.Tensor = slice(start, start + size)
            else:
                rows = torch.from_numpy(order[start : start + size])
            yield self.x[rows], self.extra[rows], self.target[rows]


def fit(
    net: nn.Module,
    step: StepFn,
    score: ScoreFn,
    train_data: TensorData,
    valid_data: TensorData | None,
    config: TrainConfig,
    *,
    parameters: list[nn.Parameter] | None = None,
    checkpoint: str | os.PathLike | None = None,
    description: str = "train",
    progress: bool = False,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
) -> list[dict[str, float]]:
    """Train ``net`` in place and leave it with its best weights on the validation split.

    The epochs run in :func:`clapkit.nets.training.train_epochs`; this function supplies
    the photo-z epoch: AdamW steps over the training data, then the validation loss.

    Parameters
    ----------
    net : torch.nn.Module
    step, score : callables
        The training loss of a batch and the summed validation loss of a batch.
    train_data, valid_data : TensorData
        Without validation data the last epoch's weights are kept.
    config : TrainConfig
    parameters : list of Parameter, optional
        What to optimise (default: every parameter of ``net``).
    checkpoint : path, optional
        Written after every epoch; when it exists, training resumes from it (its config
        must equal ``config``) and it is removed once training ends. While it is set, a
        stop signal (Ctrl-C, SIGTERM) ends the epoch, writes it and raises
        :class:`~clapkit.nets.training.TrainingStopped`.
    stop_after : int, optional
        Stop (raise :class:`~clapkit.nets.training.TrainingStopped`) after this many
        epochs of this call, as a stop signal would: used to test resuming.
    device : str or torch.device, optional
        Train there (see :func:`clapkit.nets.device.resolve_device`), one batch moved
        at a time; the network comes back on the CPU. None: where it is.

    Returns
    -------
    list of dict
        One record per epoch: learning rate, mean training loss terms, validation loss.
    """
    if len(train_data) == 0:
        raise ValidationError("the training split is empty")
    train_device = resolve_device(device) if device is not None else None
    if train_device is not None:
        net.to(train_device)  # before the optimiser exists, so its state lands there too

    def moved(batch: Batch) -> Batch:
        return batch if train_device is None else tuple(t.to(train_device) for t in batch)

    parameters = list(net.parameters()) if parameters is None else parameters
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def run_epoch(epoch: Epoch) -> dict[str, float]:
        # One pass over the training data, in an order fixed by (seed, epoch).
        order = epoch.rng.permutation(len(train_data))
        net.train()
        totals: dict[str, float] = {}
        n_seen = 0
        # A last batch of one galaxy is left out: the contrastive loss needs two galaxies
        # and batch norm more than one value per channel. The order changes every epoch,
        # so no galaxy is left out for good.
        batches = train_data.batches(config.batch_size, order, min_size=min(2, len(train_data)))
        for batch in map(moved, batches):
            loss, parts = step(net, batch, epoch.generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            size = batch[0].shape[0]
            n_seen += size
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value * size
        record = {"lr": config.lr(epoch.index)}
        record.update({key: value / n_seen for key, value in totals.items()})
        if valid_data is not None and len(valid_data):
            net.eval()
            with torch.no_grad():
                batches = map(moved, valid_data.batches(4 * config.batch_size))
                total = sum(score(net, b) for b in batches)
            record["valid_loss"] = total / len(valid_data)
        return record

    saved = None
    if checkpoint is not None:
        identity = json.dumps(asdict(config), sort_keys=True)
        saved = CheckpointFile(checkpoint, identity, what="training config")
    history = train_epochs(
        run_epoch,
        {"model": net},
        {"optimizer": optimizer},
        epochs=config.epochs,
        seed=config.seed,
        lr_scale=config.lr_scale,
        checkpoint=saved,
        keep_best="valid_loss",
        description=description,
        progress=progress,
        stop_after=stop_after,
    )
    if train_device is not None:
        net.to("cpu")
    net.eval()
    if saved is not None:
        saved.remove()
    return history


@torch.no_grad()
def predict_logits(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    extra: torch.Tensor,
    batch_size: int = 512,
) -> torch.Tensor:
    """``forward(x, extra)`` over batches, concatenated: (N, ...).

    Parameters
    ----------
    forward : callable
        ``forward(x, extra)`` of a network.
    x : torch.Tensor, shape (N, ...)
        The inputs.
    extra : torch.Tensor, shape (N, E)
        The extra scalars.
    batch_size : int
        Rows per call.

    Returns
    -------
    torch.Tensor, shape (N, ...)
    """
    parts = [
        forward(x[s : s + batch_size], extra[s : s + batch_size])
        for s in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(parts) if parts else torch.empty(0)


def save_state(path: str | os.PathLike, module: nn.Module, overwrite: bool = True) -> Path:
    """Write a state dict atomically."""
    with atomic_path(path, overwrite) as tmp:
        torch.save(module.state_dict(), tmp)
    return Path(path)


def load_state(path: str | os.PathLike, module: nn.Module) -> nn.Module:
    """Load a state dict written by :func:`save_state` into ``module`` (weights only)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: missing model weights")
    state = load_weights_only(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise FileFormatError(f"{path}: weights do not fit the configured network ({err})") from err
    return module.eval()
