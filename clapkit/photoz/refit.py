"""CLAP's refit: a fresh estimator head that learns KNN PDFs from latent vectors.

The encoder stays fixed; the head (v_A → 1024 ReLU → bins, as the SCL estimator) is
trained on soft labels — the (recalibrated) KNN PDFs of some galaxies — with the loss
W1(CDF) × cross-entropy (:func:`clapkit.nets.cdf_w1_times_ce`). A fifth of the galaxies
(when there are at least ten) is held out to keep the best epoch. The head then gives
the KNN's calibrated PDFs for any galaxy in one forward pass, without the neighbours.

The published loss is the same product times 100 · (z_max − z_min), a constant that
Adam's step size does not see.
"""

from __future__ import annotations

import numpy as np
import torch

from clapkit.nets import SCLNet, cdf_w1_times_ce
from clapkit.photoz.training import TensorData, TrainConfig, fit

#: Below this many galaxies the refit keeps its last epoch (no hold-out).
_MIN_HOLD_OUT = 10


class HeadOnly(torch.nn.Module):
    """An estimator head called as ``module(v_a)`` (the training loop's ``net``)."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, v_a: torch.Tensor) -> torch.Tensor:
        return self.head(v_a)


def train_refit_head(
    net: SCLNet,
    latent: np.ndarray,
    soft_labels: np.ndarray,
    config: TrainConfig,
    *,
    description: str = "CLAP refit",
    progress: bool = False,
    device: str | torch.device | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """A new estimator head of ``net`` trained on (``latent`` (N, D), ``soft_labels`` (N, B)).

    Returns the head (on the CPU, in eval mode) and the training history. The hold-out is
    drawn with ``config.seed``.

    Parameters
    ----------
    net : SCLNet
        The trained network whose estimator head is refitted.
    latent : numpy.ndarray, shape (N, D)
        Latent vectors of the training galaxies.
    soft_labels : numpy.ndarray, shape (N, B)
        Their KNN PDFs, the targets.
    config : TrainConfig
        Training settings.
    description : str
        Label of the progress bar.
    progress : bool
        Show a progress bar.
    device : str or torch.device, optional
        Where the head trains.
    """
    n = latent.shape[0]
    order = np.random.default_rng(config.seed).permutation(n)
    n_hold = max(1, n // 5) if n >= _MIN_HOLD_OUT else 0
    hold, fit_rows = order[:n_hold], order[n_hold:]
    latent_t = torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32))
    labels_t = torch.from_numpy(np.ascontiguousarray(soft_labels, dtype=np.float32))
    empty = torch.zeros((n, 0))

    def rows(index: np.ndarray) -> TensorData:
        index_t = torch.from_numpy(index)
        return TensorData(latent_t[index_t], empty[index_t], labels_t[index_t])

    head = net.new_estimator()

    def step(model, batch, generator):
        v_a, _, target = batch
        loss = cdf_w1_times_ce(model(v_a), target)
        return loss, {"refit_loss": loss.item()}

    def score(model, batch):
        v_a, _, target = batch
        return float(cdf_w1_times_ce(model(v_a), target)) * v_a.shape[0]

    history = fit(
        HeadOnly(head),
        step,
        score,
        rows(fit_rows),
        rows(hold) if n_hold else None,
        config,
        description=description,
        progress=progress,
        device=device,
    )
    return head.eval(), history
