"""The one resumable training loop of clapkit: photo-z, stellar mass and translation.

:func:`train_epochs` owns what every training shares, in one explicit order per epoch
(as in nanoGPT):

1. randomness fixed by ``(seed, epoch)`` (:func:`seed_epoch`): a numpy generator for the
   data order, a torch generator for augmentations and noise, and torch's global
   generator (dropout) reseeded;
2. learning rate: every optimiser group at its initial rate × ``lr_scale(epoch)``;
3. the model's own epoch, ``run_epoch(epoch)``: batches, forward/backward, its
   optimiser steps (one optimiser, or a GAN's two in turn), validation; it returns the
   epoch's numbers;
4. best weights, kept when the record's ``keep_best`` entry is the lowest so far;
5. checkpoint (:class:`~clapkit.nets.checkpoint.CheckpointFile`, written atomically);
6. log, on the progress bar;
7. stop: after the last epoch, once ``keep_best`` has not improved for ``patience``
   epochs (early stopping, a normal end), or when a stop signal or ``stop_after`` asked
   for it (:class:`TrainingStopped`).

Torch's global generator, reseeded every epoch for dropout, is given back to the caller
as it was: training leaves no trace on the randomness of what runs after it.

Because every random draw of an epoch derives from ``(seed, epoch)``, a run killed after
epoch ``e`` and resumed from its checkpoint repeats exactly the epochs an uninterrupted
run would have done.

The stop signal: while a loop with a checkpoint runs, Ctrl-C (SIGINT) or SIGTERM asks
it to finish the current epoch, write its checkpoint and raise :class:`TrainingStopped`;
a second signal stops at once (:class:`KeyboardInterrupt`), leaving the previous
epoch's checkpoint. Either way, the same call resumes. Without a checkpoint the signals
keep their usual effect; a stop request recorded in :mod:`clapkit.stopping` (the
``clapkit`` command records one with every Ctrl-C or SIGTERM, in case the
:class:`KeyboardInterrupt` it raised was lost in a ``__del__``) also ends the loop after
the current epoch, with :class:`TrainingStopped`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from clapkit.checks import check_int
from clapkit.errors import FileFormatError, ValidationError
from clapkit.nets.checkpoint import CheckpointFile, TrainingState
from clapkit.stopping import stop_requested

__all__ = ["Epoch", "TrainingStopped", "seed_epoch", "stop_on_signal", "train_epochs"]

#: Signals that ask a training to checkpoint and stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Where the answer to a stop signal goes (the standard error file descriptor).
STDERR = 2


class TrainingStopped(KeyboardInterrupt):
    """A training stopped on request (stop signal or ``stop_after``) after writing its
    checkpoint. An interruption, not an error: what the run wrote so far is kept."""


@dataclass(frozen=True)
class Epoch:
    """One epoch's index and its own sources of randomness.

    Attributes
    ----------
    index : int
        0-based.
    rng : numpy.random.Generator
        For the data order (``rng.permutation(n)``).
    generator : torch.Generator
        For augmentations and noise drawn in torch.
    """

    index: int
    rng: np.random.Generator
    generator: torch.Generator


def seed_epoch(seed: int, index: int) -> Epoch:
    """The randomness of epoch ``index`` of a training seeded with ``seed``.

    Also reseeds torch's global generator, which dropout draws from.

    Examples
    --------
    >>> a, b = seed_epoch(0, 3), seed_epoch(0, 3)
    >>> bool((a.rng.permutation(5) == b.rng.permutation(5)).all())
    True
    >>> torch.equal(torch.rand(2, generator=a.generator), torch.rand(2, generator=b.generator))
    True
    """
    torch.manual_seed(seed * 100_019 + index)
    return Epoch(
        index=index,
        rng=np.random.default_rng([seed, index]),
        generator=torch.Generator().manual_seed(seed * 100_003 + index),
    )


class StopRequest:
    """Whether a stop signal has arrived (see :func:`stop_on_signal`)."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_signal(enabled: bool = True) -> Iterator[StopRequest]:
    """Turn the first SIGINT/SIGTERM of the ``with`` body into a request, the second into
    :class:`KeyboardInterrupt`; the previous handlers come back afterwards.

    Handlers can only be set in the main thread: elsewhere (or without ``enabled``) the
    signals keep their usual effect and the request is never set. An ignored signal
    stays ignored.
    """
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: Any) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True
        # Someone pressed Ctrl-C or a scheduler wants the machine: say what happens next.
        # os.write, not print: the handler may interrupt a write to sys.stderr (the
        # progress bar), and a buffered stream refuses to be re-entered.
        message = (
            f"\nclapkit: {signal.Signals(signum).name}: finishing this epoch, writing its "
            "checkpoint, then stopping (a second signal stops at once)\n"
        )
        os.write(STDERR, message.encode())

    # A signal the process was told to ignore (nohup, a shell's background job) stays so.
    previous = {
        sig: handler
        for sig in STOP_SIGNALS
        if (handler := signal.getsignal(sig)) is not signal.SIG_IGN
    }
    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            # None: a handler not set from Python; the default is the closest we can give.
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _copy_state(modules: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {k: v.detach().clone() for k, v in module.state_dict().items()}
        for name, module in modules.items()
    }


def _load_state(
    state: TrainingState,
    checkpoint: CheckpointFile,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> None:
    if set(state.modules) != set(modules) or set(state.optimizers) != set(optimizers):
        raise FileFormatError(
            f"{checkpoint.path}: checkpoint of modules {sorted(state.modules)} and optimisers "
            f"{sorted(state.optimizers)}; this training has {sorted(modules)} and "
            f"{sorted(optimizers)}"
        )
    try:
        for name, module in modules.items():
            module.load_state_dict(state.modules[name])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state.optimizers[name])
    except (RuntimeError, ValueError, KeyError) as err:
        raise FileFormatError(
            f"{checkpoint.path}: the checkpoint does not fit this network "
            f"({str(err).splitlines()[0]})"
        ) from err


def _epochs_since_best(history: list[dict[str, float]], keep_best: str | None) -> int:
    """Epochs at the end of ``history`` that did not lower ``keep_best`` (all of them
    when none did), counted as :func:`train_epochs` counts them."""
    best, since = np.inf, 0
    for record in history:
        score = record.get(keep_best, np.inf) if keep_best is not None else np.inf
        best, since = (score, 0) if score < best else (best, since + 1)
    return since


@contextlib.contextmanager
def _keep_global_generator() -> Iterator[None]:
    """Give torch's global generators back as they were: the CPU one, and CUDA's where
    CUDA is already in use (reading them otherwise would start CUDA)."""
    devices = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield


def train_epochs(
    run_epoch: Callable[[Epoch], dict[str, float]],
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    epochs: int,
    seed: int,
    lr_scale: Callable[[int], float] | None = None,
    checkpoint: CheckpointFile | None = None,
    keep_best: str | None = None,
    patience: int | None = None,
    description: str = "train",
    progress: bool = False,
    stop_after: int | None = None,
) -> list[dict[str, float]]:
    """Run ``epochs`` epochs of ``run_epoch``, resuming from and writing ``checkpoint``.

    Parameters
    ----------
    run_epoch : callable
        ``run_epoch(epoch) -> record``: one pass over the data with the optimiser steps
        (and validation, if any), using only ``epoch``'s randomness; the record holds the
        epoch's numbers (losses, learning rate).
    modules, optimizers : dict
        What the checkpoint holds, by name; the optimisers are those ``run_epoch`` steps.
    epochs : int
        Total number of epochs, including those of a resumed run.
    seed : int
    lr_scale : callable, optional
        ``lr_scale(epoch)``: every optimiser group's learning rate is its rate at the
        start of this call times this factor (default: unchanged).
    checkpoint : CheckpointFile, optional
        Resumed from when it exists, written after every epoch; this function does not
        remove it (the caller does once the trained model is saved). Without it, signals
        keep their usual effect.
    keep_best : str, optional
        A record entry (e.g. ``"valid_loss"``); the modules end with the weights of the
        epoch where it was lowest. Epochs whose record lacks it are not candidates.
    patience : int, optional
        With ``keep_best``: end the training, normally, once ``keep_best`` has not been
        lowered for this many epochs in a row (early stopping); the modules end with the
        best epoch's weights. A resumed run counts from the epochs in its checkpoint.
        None trains all ``epochs``.
    description : str
        The progress bar's label.
    progress : bool
        Show a progress bar (on stderr); False is silent.
    stop_after : int, optional
        Stop after this many epochs of this call, as a stop signal would (tests).

    Returns
    -------
    list of dict
        One record per epoch, resumed ones included: ``epoch`` then ``run_epoch``'s keys.
        Fewer than ``epochs`` when ``patience`` ended the training early.

    Raises
    ------
    TrainingStopped
        When asked to stop before the last epoch (a stop signal with a checkpoint, a
        stop request of :mod:`clapkit.stopping`, ``stop_after``); the checkpoint holds the
        last one done.

    Examples
    --------
    >>> net = nn.Linear(2, 1)
    >>> optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> def run_epoch(epoch):
    ...     x = torch.randn(8, 2, generator=epoch.generator)
    ...     loss = net(x).pow(2).mean()
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     return {"loss": loss.item()}
    >>> history = train_epochs(run_epoch, {"net": net}, {"sgd": optimizer}, epochs=3, seed=0)
    >>> [record["epoch"] for record in history]
    [0, 1, 2]
    """
    epochs = check_int(epochs, "epochs")
    if patience is not None:
        patience = check_int(patience, "patience")
        if keep_best is None:
            raise ValidationError("patience needs keep_best, the record entry it watches")
    # Captured before a checkpoint overwrites them with a scaled rate.
    base_lr = {
        name: [group["lr"] for group in optimizer.param_groups]
        for name, optimizer in optimizers.items()
    }
    state = checkpoint.read() if checkpoint is not None else None
    if state is None:
        state = TrainingState(epoch=-1, modules={}, optimizers={})
    else:
        _load_state(state, checkpoint, modules, optimizers)
    first_epoch = state.epoch + 1
    since_best = _epochs_since_best(state.history, keep_best)

    def out_of_patience() -> bool:
        return patience is not None and since_best >= patience

    bar = tqdm(
        # a run that stopped early and is called again has nothing left to do
        range(first_epoch, epochs if not out_of_patience() else first_epoch),
        desc=description,
        unit="epoch",
        initial=first_epoch,
        total=epochs,
        disable=not progress,
    )
    with bar, _keep_global_generator(), stop_on_signal(enabled=checkpoint is not None) as stop:
        for done, index in enumerate(bar, start=1):
            # 1. randomness fixed by (seed, epoch)
            epoch = seed_epoch(seed, index)
            # 2. learning rate
            scale = lr_scale(index) if lr_scale is not None else 1.0
            for name, optimizer in optimizers.items():
                for group, lr in zip(optimizer.param_groups, base_lr[name], strict=True):
                    group["lr"] = lr * scale
            # 3. the model's epoch
            record = {"epoch": index, **run_epoch(epoch)}
            state.history.append(record)
            # 4. best weights
            if keep_best is not None and record.get(keep_best, np.inf) < state.best_score:
                state.best_score = float(record[keep_best])
                state.best_modules = _copy_state(modules)
                since_best = 0
            else:
                since_best += 1
            # 5. checkpoint
            state.epoch = index
            if checkpoint is not None:
                state.modules = {name: m.state_dict() for name, m in modules.items()}
                state.optimizers = {name: o.state_dict() for name, o in optimizers.items()}
                checkpoint.write(state)
            # 6. log
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
            # 7. stop: at the end, early, or when asked (after the end, nothing to stop)
            if index == epochs - 1 or out_of_patience():
                break
            asked = stop.requested or stop_requested()
            if asked or (stop_after is not None and done >= stop_after):
                where = f"; {checkpoint.path} resumes it" if checkpoint is not None else ""
                raise TrainingStopped(f"stopped after epoch {index}{where}")
    for name, best in state.best_modules.items():
        modules[name].load_state_dict(best)
    return state.history
