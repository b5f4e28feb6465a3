"""CLAP end to end: SCL training, adaptive KNN, recalibration, refit and the ensemble.

For each of ``n_realisations`` (different seeds), as in the published code (CLAP-I) with
the options of :class:`~clapkit.photoz.clap_config.CLAPConfig`:

1. **SCL**: the encoder/estimator/decoder network is trained on the training split with
   the published SCL loss (:func:`clapkit.nets.scl_loss_published`; the validation
   cross-entropy keeps the best epoch).
2. **Adaptive KNN**: the training galaxies' latent vectors v_A and spec-z index an
   :class:`~clapkit.photoz.AdaptiveKNN`, with the validation PIT table of the published
   recalibration option 2.
3. **Recalibration** of each KNN PDF by the polynomial fit of its local PIT histogram.
4. **Refit**: a fresh estimator head, the encoder frozen, learns the recalibrated KNN
   PDFs as soft labels (:mod:`clapkit.photoz.refit`) — of the target galaxies at
   prediction (published), or once at training of the validation or training galaxies.

At prediction the stages of the first realisation are reported — the SCL network's own
softmax (``clap_scl``), the raw KNN PDFs (``clap_raw``), their recalibration
(``clap_recal``), the refitted head (``clap_refit``) — and the refitted PDFs of all
realisations, each smoothed, are combined with the harmonic mean (``clap``).

A realisation lives in ``<model_dir>/r<i>/``: ``net.pt`` and (unless the refit is on the
targets) ``refit.pt`` (state dicts), ``knn.h5`` (the index: training latents, redshifts,
ids and PIT tables) and ``history_scl.json``/``history_refit.json``. A realisation whose
files exist is not trained again, and one killed mid-way resumes from ``*.ckpt``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
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
    feature_jitter,
    random_dihedral,
    scl_loss,
    scl_loss_published,
)
from clapkit.nets.device import resolve_device
from clapkit.photoz.adaptive_knn import AdaptiveKNN, AdaptiveKNNResult
from clapkit.photoz.clap_config import MIN_TARGET_REFIT, CLAPConfig
from clapkit.photoz.ensemble import ensemble_pdfs
from clapkit.photoz.network_inputs import InputSpec, NetworkInputs
from clapkit.photoz.novelty import novelty_percentile
from clapkit.photoz.recalibrate import recalibrate
from clapkit.photoz.refit import train_refit_head
from clapkit.photoz.training import TensorData, TrainConfig, fit, load_state, save_state

__all__ = ["STAGES", "CLAPConfig", "CLAPPrediction", "predict_clap", "train_clap"]

KNN_FORMAT = "clapkit.AdaptiveKNN"
KNN_FORMAT_VERSION = 2
STAGES = ("clap_scl", "clap_raw", "clap_recal", "clap_refit", "clap")


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
    (None: where the network is); the network is left where it was.

    Parameters
    ----------
    net : SCLNet
        A trained network.
    data : TensorData
        The rows to encode.
    batch_size : int
        Rows per forward pass.
    device : str or torch.device, optional
        Where to encode.

    Returns
    -------
    numpy.ndarray, shape (N, latent_dim)
    """
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
        write_header(f, KNN_FORMAT, KNN_FORMAT_VERSION)
        for key, value in knn.state().items():
            f.create_dataset(key, data=np.asarray(value))
        f.create_dataset("train_id", data=np.asarray(train_ids))
        mark_complete(f)


def load_knn(
    path: str | os.PathLike, neighbour_search: str = "exact", neighbour_options: dict | None = None
) -> tuple[AdaptiveKNN, np.ndarray]:
    """Read an index written by :func:`save_knn`: the model (searching neighbours by
    ``neighbour_search``, as the run's configuration says) and the training ids."""
    with open_checked(Path(path), KNN_FORMAT, KNN_FORMAT_VERSION, "an adaptive-KNN index") as f:
        state = {key: f[key][()] for key in f if key != "train_id"}
        train_ids = f["train_id"][()]
    model = AdaptiveKNN.from_state(
        state, neighbour_search=neighbour_search, neighbour_options=neighbour_options
    )
    return model, train_ids


# ----------------------------------------------------------------------------- training


def scl_step(spec: InputSpec, config: CLAPConfig):
    """The training step of the SCL network: ``step(net, batch, generator)``."""
    weights = SCLLossWeights(**config.loss)
    augment = augmenter(spec)

    def view(t, generator):
        return augment(t, generator=generator)

    if config.scl_loss == "project":

        def step(model, batch, generator):
            x, extra, target = batch
            return scl_loss(model, x, extra, target, lambda t: view(t, generator), weights)

        return step

    def step_published(model, batch, generator):
        x, extra, target = batch
        if spec.kind == "images":  # every training image in a random orientation
            x = random_dihedral(x, generator=generator, include_identity=True)
        return scl_loss_published(
            model, x, extra, target, lambda t: view(t, generator), weights, generator
        )

    return step_published


def knn_stage_pdfs(
    result: AdaptiveKNNResult, edges: np.ndarray, config: CLAPConfig
) -> dict[str, np.ndarray]:
    """``clap_raw`` and ``clap_recal`` from a KNN prediction, as ``config`` says."""
    if config.recalibration == "none":
        return {"clap_raw": result.p, "clap_recal": result.p}
    hist = result.recalibration_hist(config.recalibration)
    recal = recalibrate(result.p, edges, hist, cdf_at=config.recalibration_cdf)
    return {"clap_raw": result.p, "clap_recal": recal}


def refit_labels(result: AdaptiveKNNResult, edges: np.ndarray, config: CLAPConfig) -> np.ndarray:
    """The refit's soft labels: the recalibrated or the raw KNN PDFs."""
    if config.refit_labels == "raw":
        return result.p
    return knn_stage_pdfs(result, edges, config)["clap_recal"]


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

    Parameters
    ----------
    folder : path-like
        The realisation's folder (``model_dir/r<i>``).
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : CLAPConfig
        CLAP's settings.
    train, valid : NetworkInputs
        The training and validation galaxies.
    seed : int
        Seeds the network's weights and its training.
    progress : bool
        Show progress bars.
    stop_after : int, optional
        Stop the SCL training after this many epochs, as a killed process would (tests of
        resuming).
    device : str or torch.device, optional
        Where the networks train and encode.
    """
    folder = Path(folder)
    if realisation_complete(folder, config):
        return
    config.check_sizes(len(train), len(valid))
    folder.mkdir(parents=True, exist_ok=True)
    edges = np.asarray(spec.edges)
    train_data, valid_data = tensors(train, spec), tensors(valid, spec)
    torch.manual_seed(seed)
    net = build_net(net_config(spec, config.net, decoder=True))

    if not (folder / "net.pt").is_file():
        history = fit(
            net,
            scl_step(spec, config),
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
    valid_latent = encode(net, valid_data, device=device)
    knn = AdaptiveKNN(
        edges,
        k_grid=config.k_grid(len(train)),
        n_pit_bins=config.n_pit_bins,
        pit_includes_self=config.pit_includes_self,
        neighbour_search=config.neighbour_search,
        neighbour_options=config.neighbour_options,
    )
    with_valid = config.recalibration == "train_valid"
    knn.fit(
        train_latent,
        train.z,
        valid_latent if with_valid else None,
        valid.z if with_valid else None,
        progress=progress,
    )
    save_knn(folder / "knn.h5", knn, train.ids)
    if config.refit_on == "target":
        return  # the refit learns the targets' PDFs at prediction

    # The refit reads KNN PDFs only: the redshifts of its own galaxies are not used.
    if config.refit_on == "valid":
        latent, result = valid_latent, knn.predict(valid_latent, progress=progress)
    else:
        latent, result = train_latent, knn.predict_training(progress=progress)
    head, history = train_refit_head(
        net,
        latent,
        refit_labels(result, edges, config),
        TrainConfig.from_dict({**config.refit, "seed": seed}),
        description=f"CLAP refit {folder.name}",
        progress=progress,
        device=device,
    )
    write_json(folder / "history_refit.json", {"epochs": history}, overwrite=True)
    save_state(folder / "refit.pt", head)


def realisation_complete(folder: Path, config: CLAPConfig) -> bool:
    """Whether ``folder`` holds a finished realisation (network, index and, unless the
    refit is on the targets, the refit head)."""
    needed = ["net.pt", "knn.h5"] + ([] if config.refit_on == "target" else ["refit.pt"])
    return all((folder / name).is_file() for name in needed)


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
    ``device`` (see :func:`train_realisation`).

    Parameters
    ----------
    model_dir : path-like
        CLAP's folder in the run directory.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : CLAPConfig
        CLAP's settings.
    train, valid : NetworkInputs
        The training and validation galaxies.
    seed : int
        Realisation ``r`` is seeded with ``seed + r``.
    progress : bool
        Show progress bars.
    device : str or torch.device, optional
        Where the networks train and encode.
    """
    if len(train) == 0:
        raise ValidationError("the training split is empty")
    config.check_sizes(len(train), len(valid))
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
        ``clap_scl``, ``clap_raw``, ``clap_recal``, ``clap_refit`` (first realisation)
        and ``clap`` (harmonic-mean ensemble of the refitted PDFs), each (N, B).
    knn : AdaptiveKNNResult or None
        Chosen k, neighbours (indices into ``train_ids``), local PIT histograms; None
        when the KNN stages were skipped.
    latent : ndarray, shape (N, latent_dim)
        Targets' v_A in the first realisation.
    train_latent, train_z, train_ids : ndarray
        The training galaxies of that realisation's index.
    novelty : ndarray, shape (N,), or None
        :func:`~clapkit.photoz.novelty.novelty_percentile` of each target in the first
        realisation's latent space (None without the KNN stages).
    """

    pdfs: dict[str, np.ndarray]
    knn: AdaptiveKNNResult | None
    latent: np.ndarray
    train_latent: np.ndarray
    train_z: np.ndarray
    train_ids: np.ndarray
    novelty: np.ndarray | None = None


def load_realisation(folder: Path, spec: InputSpec, config: CLAPConfig):
    """The trained network, refit head (None when the refit is on the targets) and KNN
    index of one realisation."""
    if not folder.is_dir():
        raise FileFormatError(f"{folder}: missing CLAP realisation")
    net = load_state(folder / "net.pt", build_net(net_config(spec, config.net, decoder=True)))
    head = None
    if config.refit_on != "target":
        head = load_state(folder / "refit.pt", net.new_estimator())
    knn, train_ids = load_knn(folder / "knn.h5", config.neighbour_search, config.neighbour_options)
    return net, head, knn, train_ids


def check_targets(config: CLAPConfig, n_targets: int) -> None:
    """Refuse, before any work, a prediction this configuration cannot make."""
    if config.refit_on == "target" and n_targets < MIN_TARGET_REFIT:
        raise ValidationError(
            f"CLAP's refit learns the targets' own KNN PDFs (refit_on='target'), which needs "
            f"at least {MIN_TARGET_REFIT} galaxies; got {n_targets}. Predict more galaxies "
            "at once, or train with refit_on 'valid' or 'train_loo'"
        )


@torch.no_grad()
def _probabilities(logits: torch.Tensor) -> np.ndarray:
    return F.softmax(logits.double(), dim=1).numpy()


def predict_clap(
    model_dir: str | os.PathLike,
    spec: InputSpec,
    config: CLAPConfig,
    inputs: NetworkInputs,
    progress: bool = False,
    knn_stages: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    realisations: Sequence[tuple] | None = None,
) -> CLAPPrediction:
    """PDFs of every CLAP stage for ``inputs``; the networks encode on ``device``.

    ``knn_stages=False`` skips the first realisation's KNN search and recalibration
    (``clap_raw``, ``clap_recal`` and ``knn`` are then absent / None), for callers that
    read only the network stages and the latent vectors; it cannot be combined with a
    refit on the targets, which needs their KNN PDFs. ``seed`` seeds a refit on the
    targets (realisation ``r`` with ``seed + r``, as at training).

    Parameters
    ----------
    model_dir : path-like
        CLAP's folder, as written by :func:`train_clap`.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : CLAPConfig
        CLAP's settings.
    inputs : NetworkInputs
        The galaxies to predict.
    progress : bool
        Show progress bars.
    knn_stages : bool
        Compute the first realisation's KNN stages.
    device : str or torch.device, optional
        Where the networks encode.
    seed : int
        Seeds a refit on the targets.
    realisations : sequence of tuple, optional
        Every realisation as :func:`load_realisation` returns it, loaded once by a caller
        that predicts many partitions (:mod:`clapkit.photoz.dask_predict`); by default
        each is read from ``model_dir``.

    Returns
    -------
    CLAPPrediction
    """
    check_targets(config, len(inputs))
    if config.refit_on == "target" and not knn_stages:
        raise ValidationError("a refit on the targets needs their KNN PDFs (knn_stages=True)")
    # Encoding reads no redshift: the targets are placeholders (z may be unknown).
    data = TensorData(
        torch.from_numpy(inputs.x),
        torch.from_numpy(inputs.extra),
        torch.zeros(len(inputs), dtype=torch.long),
    )
    edges = np.asarray(spec.edges)
    refits, first = [], None
    for r in range(config.n_realisations):
        folder = Path(model_dir) / f"r{r}"
        if realisations is None:
            net, head, knn, train_ids = load_realisation(folder, spec, config)
        else:
            net, head, knn, train_ids = realisations[r]
        latent = encode(net, data, device=device)
        result = None
        if knn_stages and (r == 0 or head is None):
            result = knn.predict(latent, progress=progress)
        if head is None:  # the published refit: learn the targets' own KNN PDFs
            head, _ = train_refit_head(
                net,
                latent,
                refit_labels(result, edges, config),
                TrainConfig.from_dict({**config.refit, "seed": seed + r}),
                description=f"CLAP refit {folder.name} on the targets",
                progress=progress,
                device=device,
            )
        with torch.no_grad():
            refits.append(_probabilities(head(torch.from_numpy(latent))))
        if r == 0:
            with torch.no_grad():
                scl = _probabilities(net.estimate(torch.from_numpy(latent)))
            stages = {"clap_scl": scl}
            novelty = None
            if result is not None:
                stages.update(knn_stage_pdfs(result, edges, config))
                distance = knn.neighbour_distance(latent, result.neighbours)
                novelty = novelty_percentile(distance, knn.train_distance_)
            first = CLAPPrediction(
                pdfs={**stages, "clap_refit": refits[0]},
                knn=result,
                latent=latent,
                train_latent=knn.state()["train_latent"],
                train_z=knn.z_train_,
                train_ids=train_ids,
                novelty=novelty,
            )
    first.pdfs["clap"] = ensemble_pdfs(
        refits,
        edges,
        smoothing=config.smoothing,
        alpha=config.smoothing_alpha,
        sigma_bins=config.smoothing_bins,
    )
    return first
