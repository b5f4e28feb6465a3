"""CLAP end to end: SCL training, adaptive KNN, recalibration, refit and the ensemble.

For each of ``n_realisations`` (different seeds):

1. **SCL**: the encoder/estimator/decoder network is trained with the four-term loss of
   :func:`clapkit.nets.scl_loss` on the training split (validation cross-entropy keeps
   the best epoch).
2. **Adaptive KNN**: the training galaxies' latent vectors v_A and spec-z index an
   :class:`~clapkit.photoz.AdaptiveKNN`.
3. **Refit**: a fresh estimator head, the encoder frozen, is trained on the raw KNN PDFs
   of the validation galaxies as soft labels (loss: W1 between CDFs × cross-entropy).
   As in the published code the refit uses no spectroscopic redshift of its own
   training set: only the KNN PDFs (the validation redshifts are not read).

At prediction, every realisation gives raw KNN PDFs (``clap_raw``), their
recalibration by the local PIT histogram (``clap_recal``) and the refitted network's
PDFs (``clap_refit``) — the first realisation is reported for each stage — and the
refitted PDFs of all realisations, each lightly smoothed, are combined with the harmonic
mean (``clap``).

A realisation lives in ``<model_dir>/r<i>/``: ``net.pt`` and ``refit.pt`` (state dicts),
``knn.h5`` (the index: training latents, redshifts, ids and PIT table) and
``history_scl.json``/``history_refit.json``. A realisation whose files exist is not trained again, and one killed
mid-way resumes from ``*.ckpt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from clapkit.atomic import atomic_path, write_json
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header
from clapkit.nets import (
    NetConfig,
    SCLLossWeights,
    SCLNet,
    build_net,
    cdf_w1_times_ce,
    feature_jitter,
    random_dihedral,
    scl_loss,
)
from clapkit.nets.device import resolve_device
from clapkit.photoz.adaptive_knn import AdaptiveKNN, AdaptiveKNNResult, default_k_grid
from clapkit.photoz.ensemble import ensemble_pdfs
from clapkit.photoz.network_inputs import InputSpec, NetworkInputs
from clapkit.photoz.recalibrate import recalibrate
from clapkit.photoz.training import TensorData, TrainConfig, fit, load_state, save_state

KNN_FORMAT = "clapkit.AdaptiveKNN"
STAGES = ("clap_raw", "clap_recal", "clap_refit", "clap")


@dataclass
class CLAPConfig:
    """CLAP's settings beyond the network sizes (which come from the data).

    Attributes
    ----------
    net : dict
        :class:`clapkit.nets.NetConfig` fields other than the sizes (``kind``, ``width``,
        ``rest_dim``, ...).
    train, refit : dict
        :class:`~clapkit.photoz.training.TrainConfig` of the SCL stage and of the refit.
    loss : dict
        :class:`clapkit.nets.SCLLossWeights`.
    n_realisations : int
    k_min, k_max, n_k : int
        The k grid (5…2000, 120 values, as published).
    max_k_fraction : float
        ``k_max`` is also capped at this fraction of the training galaxies. The W1
        criterion degenerates when k approaches the training-set size: every neighbour's
        PIT is then its rank in the whole sample and the histogram is uniform by
        construction, so the largest k always wins and every PDF becomes the prior
        (measured on 2,100 mock training galaxies: k = 2000 chosen for all, σ_MAD 0.049
        against 0.025 at any fixed k ≤ 100). The paper's 2000 neighbours among ~10⁵–10⁶
        galaxies are a fraction of a per cent to two per cent.
    n_pit_bins : int
    smoothing_bins : float
        Gaussian smoothing of each member before the harmonic mean, in bins.
    """

    net: dict[str, Any] = field(default_factory=lambda: {"kind": "compact"})
    train: dict[str, Any] = field(default_factory=dict)
    refit: dict[str, Any] = field(default_factory=lambda: {"epochs": 30, "batch_size": 64})
    loss: dict[str, Any] = field(default_factory=dict)
    n_realisations: int = 3
    k_min: int = 5
    k_max: int = 2000
    n_k: int = 120
    max_k_fraction: float = 0.02
    n_pit_bins: int = 100
    smoothing_bins: float = 1.0

    def __post_init__(self) -> None:
        if self.n_realisations < 1:
            raise ValidationError(f"n_realisations must be >= 1, got {self.n_realisations}")
        if not 0 < self.max_k_fraction <= 1:
            raise ValidationError(f"max_k_fraction must be in (0, 1], got {self.max_k_fraction}")
        TrainConfig.from_dict(self.train)
        TrainConfig.from_dict(self.refit)
        SCLLossWeights(**self.loss)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def k_grid(self, n_train: int) -> np.ndarray:
        """The k grid for ``n_train`` training galaxies (k_max below ``n_train``)."""
        cap = max(self.k_min, int(self.max_k_fraction * n_train))
        k_max = min(self.k_max, cap, n_train - 1)
        if k_max < self.k_min:
            raise ValidationError(f"{n_train} training galaxies are too few for k_min={self.k_min}")
        return default_k_grid(self.k_min, k_max, min(self.n_k, k_max - self.k_min + 1))


# ----------------------------------------------------------------------------- tensors


def bin_index(z: np.ndarray, edges: np.ndarray) -> torch.Tensor:
    """Index of the redshift bin of every ``z`` (the last edge belongs to the last bin).

    Examples
    --------
    >>> bin_index(np.array([0.0, 0.15, 0.4]), np.linspace(0, 0.4, 5)).tolist()
    [0, 1, 3]
    """
    index = np.searchsorted(edges, z, side="right") - 1
    return torch.from_numpy(np.clip(index, 0, edges.size - 2).astype(np.int64))


def tensors(inputs: NetworkInputs, spec: InputSpec) -> TensorData:
    """Inputs and redshift-bin targets of ``inputs`` as tensors."""
    return TensorData(
        torch.from_numpy(inputs.x),
        torch.from_numpy(inputs.extra),
        bin_index(inputs.z, np.asarray(spec.edges)),
    )


def net_config(spec: InputSpec, options: dict[str, Any], **overrides: Any) -> NetConfig:
    """The network configuration: sizes from the input spec, the rest from ``options``."""
    options = dict(options)
    if spec.kind == "features":
        options["kind"] = "mlp"
    elif options.get("kind", "compact") == "mlp":
        raise ValidationError("an MLP encoder reads catalog features, but the input is images")
    return NetConfig.from_dict({**options, **spec.net_sizes(), **overrides})


def augmenter(spec: InputSpec):
    """The second view of the contrastive loss: a rotated/flipped image or jittered features."""
    return random_dihedral if spec.kind == "images" else feature_jitter


@torch.no_grad()
def encode(
    net: SCLNet, data: TensorData, batch_size: int = 512, device: str | torch.device | None = None
) -> np.ndarray:
    """Latent vectors v_A of every row, float32 (N, latent_dim), computed on ``device``
    (None: where the network is); the network is left where it was."""
    net.eval()
    home = next(net.parameters()).device
    run_on = resolve_device(device) if device is not None else home
    net.to(run_on)
    try:
        parts = [
            net.encode(x.to(run_on), extra.to(run_on))[0].cpu()
            for x, extra, _ in data.batches(batch_size)
        ]
    finally:
        net.to(home)
    return torch.cat(parts).numpy().astype(np.float32) if parts else np.empty((0, 0), np.float32)


def cross_entropy_score(net: torch.nn.Module, batch) -> float:
    """Summed cross-entropy of a batch's redshift bins: the validation score of the
    networks trained on spec-z bins."""
    x, extra, target = batch
    return float(F.cross_entropy(net(x, extra), target, reduction="sum"))


# ----------------------------------------------------------------------------- KNN index files


def save_knn(path: str | os.PathLike, knn: AdaptiveKNN, train_ids: np.ndarray) -> None:
    """Write an adaptive-KNN index (and the training ids) to HDF5, atomically."""
    with atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, KNN_FORMAT, 1)
        for key, value in knn.state().items():
            f.create_dataset(key, data=np.asarray(value))
        f.create_dataset("train_id", data=np.asarray(train_ids))
        mark_complete(f)


def load_knn(path: str | os.PathLike) -> tuple[AdaptiveKNN, np.ndarray]:
    """Read an index written by :func:`save_knn`: the model and the training ids."""
    with open_checked(Path(path), KNN_FORMAT, 1, "an adaptive-KNN index") as f:
        state = {key: f[key][()] for key in f if key != "train_id"}
        train_ids = f["train_id"][()]
    return AdaptiveKNN.from_state(state), train_ids


# ----------------------------------------------------------------------------- training


def train_realisation(
    folder: str | os.PathLike,
    spec: InputSpec,
    config: CLAPConfig,
    train: NetworkInputs,
    valid: NetworkInputs,
    seed: int,
    progress: bool = False,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
) -> None:
    """Train one CLAP realisation into ``folder`` (skipped if it is already complete).

    ``device`` is where the network and the refit head train and encode (see
    :func:`clapkit.nets.device.resolve_device`); the KNN stages run on the CPU.
    """
    folder = Path(folder)
    if (folder / "refit.pt").is_file() and (folder / "knn.h5").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    edges = np.asarray(spec.edges)
    train_data, valid_data = tensors(train, spec), tensors(valid, spec)
    torch.manual_seed(seed)
    net = build_net(net_config(spec, config.net, decoder=True))
    weights = SCLLossWeights(**config.loss)
    augment = augmenter(spec)

    def scl_step(model, batch, generator):
        x, extra, target = batch
        return scl_loss(model, x, extra, target, lambda t: augment(t, generator=generator), weights)

    if not (folder / "net.pt").is_file():
        history = fit(
            net,
            scl_step,
            cross_entropy_score,
            train_data,
            valid_data,
            TrainConfig.from_dict({**config.train, "seed": seed}),
            checkpoint=folder / "net.ckpt",
            description=f"CLAP SCL {folder.name}",
            progress=progress,
            stop_after=stop_after,
            device=device,
        )
        write_json(folder / "history_scl.json", {"epochs": history}, overwrite=True)
        save_state(folder / "net.pt", net)
    else:
        load_state(folder / "net.pt", net)

    train_latent = encode(net, train_data, device=device)
    knn = AdaptiveKNN(edges, k_grid=config.k_grid(len(train)), n_pit_bins=config.n_pit_bins)
    knn.fit(train_latent, train.z, progress=progress)
    save_knn(folder / "knn.h5", knn, train.ids)

    # Refit on the validation galaxies' raw KNN PDFs (their redshifts are not used).
    valid_latent = encode(net, valid_data, device=device)
    soft = knn.predict(valid_latent).p.astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(valid))
    n_hold = max(1, len(valid) // 5) if len(valid) >= 10 else 0
    hold, fit_rows = order[:n_hold], order[n_hold:]
    latent_t, soft_t = torch.from_numpy(valid_latent), torch.from_numpy(soft)
    empty = torch.zeros((len(valid), 0))

    def rows(index):
        index = torch.from_numpy(index)
        return TensorData(latent_t[index], empty[index], soft_t[index])

    head = net.new_estimator()

    def refit_step(model, batch, generator):
        v_a, _, target = batch
        loss = cdf_w1_times_ce(model(v_a), target)
        return loss, {"refit_loss": loss.item()}

    def refit_score(model, batch):
        v_a, _, target = batch
        return float(cdf_w1_times_ce(model(v_a), target)) * v_a.shape[0]

    refit_history = fit(
        _HeadOnly(head),
        refit_step,
        refit_score,
        rows(fit_rows),
        rows(hold) if n_hold else None,
        TrainConfig.from_dict({**config.refit, "seed": seed}),
        description=f"CLAP refit {folder.name}",
        progress=progress,
        device=device,
    )
    write_json(folder / "history_refit.json", {"epochs": refit_history}, overwrite=True)
    save_state(folder / "refit.pt", head)


class _HeadOnly(torch.nn.Module):
    """An estimator head called as ``module(v_a)`` (the training loop's ``net``)."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, v_a: torch.Tensor) -> torch.Tensor:
        return self.head(v_a)


def train_clap(
    model_dir: str | os.PathLike,
    spec: InputSpec,
    config: CLAPConfig,
    train: NetworkInputs,
    valid: NetworkInputs,
    seed: int = 0,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> None:
    """Train every realisation into ``model_dir/r<i>`` (completed ones are kept), on
    ``device`` (see :func:`train_realisation`)."""
    if len(train) == 0:
        raise ValidationError("the training split is empty")
    if len(valid) == 0:
        raise ValidationError("CLAP's refit needs a non-empty validation split")
    for r in range(config.n_realisations):
        folder = Path(model_dir) / f"r{r}"
        train_realisation(folder, spec, config, train, valid, seed + r, progress, device=device)


# ----------------------------------------------------------------------------- prediction


@dataclass
class CLAPPrediction:
    """CLAP's PDFs per stage and what the dashboards show of the first realisation.

    Attributes
    ----------
    pdfs : dict
        ``clap_raw``, ``clap_recal``, ``clap_refit`` (first realisation) and ``clap``
        (harmonic-mean ensemble of the refitted PDFs), each (N, B).
    knn : AdaptiveKNNResult or None
        Chosen k, neighbours (indices into ``train_ids``), local PIT histograms; None
        when the KNN stages were skipped.
    latent : ndarray, shape (N, latent_dim)
        Targets' v_A in the first realisation.
    train_latent, train_z, train_ids : ndarray
        The training galaxies of that realisation's index.
    """

    pdfs: dict[str, np.ndarray]
    knn: AdaptiveKNNResult | None
    latent: np.ndarray
    train_latent: np.ndarray
    train_z: np.ndarray
    train_ids: np.ndarray


def load_realisation(folder: Path, spec: InputSpec, config: CLAPConfig):
    """The trained network, refit head and KNN index of one realisation."""
    if not folder.is_dir():
        raise FileFormatError(f"{folder}: missing CLAP realisation")
    net = load_state(folder / "net.pt", build_net(net_config(spec, config.net, decoder=True)))
    head = load_state(folder / "refit.pt", net.new_estimator())
    knn, train_ids = load_knn(folder / "knn.h5")
    return net, head, knn, train_ids


@torch.no_grad()
def predict_clap(
    model_dir: str | os.PathLike,
    spec: InputSpec,
    config: CLAPConfig,
    inputs: NetworkInputs,
    progress: bool = False,
    knn_stages: bool = True,
    device: str | torch.device | None = None,
) -> CLAPPrediction:
    """PDFs of every CLAP stage for ``inputs``; the networks encode on ``device``.

    ``knn_stages=False`` skips the first realisation's KNN search and recalibration
    (``clap_raw``, ``clap_recal`` and ``knn`` are then absent / None), for callers that
    read only the refitted networks' PDFs and the latent vectors.
    """
    # Encoding reads no redshift: the targets are placeholders (z may be unknown).
    data = TensorData(
        torch.from_numpy(inputs.x),
        torch.from_numpy(inputs.extra),
        torch.zeros(len(inputs), dtype=torch.long),
    )
    edges = np.asarray(spec.edges)
    refits, first = [], None
    for r in range(config.n_realisations):
        net, head, knn, train_ids = load_realisation(Path(model_dir) / f"r{r}", spec, config)
        latent = encode(net, data, device=device)
        refits.append(F.softmax(head(torch.from_numpy(latent)).double(), dim=1).numpy())
        if r == 0:
            result = knn.predict(latent, progress=progress) if knn_stages else None
            knn_pdfs = {}
            if result is not None:
                knn_pdfs = {
                    "clap_raw": result.p,
                    "clap_recal": recalibrate(result.p, edges, result.local_pit_hist),
                }
            first = CLAPPrediction(
                pdfs={**knn_pdfs, "clap_refit": refits[0]},
                knn=result,
                latent=latent,
                train_latent=knn.state()["train_latent"],
                train_z=knn.z_train_,
                train_ids=train_ids,
            )
    first.pdfs["clap"] = ensemble_pdfs(refits, config.smoothing_bins)
    return first
