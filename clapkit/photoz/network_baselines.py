"""The conventional network estimators CLAP is compared with, on the same inputs and bins.

- ``softmax``: the encoder and estimator head of CLAP trained with cross-entropy alone
  (Pasquet et al. 2019): the miscalibrated reference.
- ``mcdropout``: as published (CLAP-I code): dropout at rate 0.5 before the last layer of
  the encoder and of the estimator, kept active at prediction; the PDF combines
  ``mc_samples`` = 100 stochastic passes with the harmonic mean
  (``mc_combine="arithmetic"``: their mean, as in Gal & Ghahramani 2016;
  ``mc_dropout_in="head"``: dropout in the estimator only).
- ``gmm``: the published Gaussian-mixture network (5 components) trained on the CRPS
  (:mod:`clapkit.nets.mixture`).
- ``ensemble``: ``ensemble_size`` softmax networks from different seeds, averaged
  arithmetically (Lakshminarayanan et al. 2017); member 0 is the ``softmax`` network.
- ``temperature``: the softmax network's logits divided by one temperature fitted on the
  validation split by minimising the negative log-likelihood (Guo et al. 2017).

Each network lives in its method's model folder as ``<name>.pt`` (state dict); a killed
training resumes from ``<name>.ckpt``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

from clapkit.atomic import write_json
from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.nets import SCLNet, build_net
from clapkit.nets.mixture import (
    initialise_mixture_head,
    mixture_bin_probabilities,
    mixture_crps_loss,
)
from clapkit.photoz.clap import augmenter, cross_entropy_score, net_config, tensors
from clapkit.photoz.network_inputs import InputSpec, NetworkInputs
from clapkit.photoz.training import (
    ScoreFn,
    TensorData,
    TrainConfig,
    fit,
    load_state,
    predict_logits,
    save_state,
)

NETWORK_BASELINES = ("softmax", "mcdropout", "gmm", "ensemble", "temperature")
MC_COMBINE = ("harmonic", "arithmetic")
MC_DROPOUT_IN = ("encoder_and_head", "head")


@dataclass
class BaselineConfig:
    """Settings of the network baselines.

    Attributes
    ----------
    net : dict
        :class:`clapkit.nets.NetConfig` fields other than the sizes (shared with CLAP so
        only the method differs).
    train : dict
        :class:`~clapkit.photoz.training.TrainConfig`.
    dropout : float
        Dropout rate of the MC-dropout network (0.5 as published).
    mc_samples : int
        Stochastic passes per galaxy (100 as published).
    mc_dropout_in : {"encoder_and_head", "head"}
        Where MC dropout acts: as published, or in the estimator only.
    mc_combine : {"harmonic", "arithmetic"}
        How the passes combine: the harmonic mean of the published code, or their mean.
    gmm_components : int
        Components of the Gaussian-mixture network (5 as published).
    ensemble_size : int
    augment : bool
        Train on rotated/flipped (or jittered) copies, as CLAP's SCL stage sees them.
    """

    net: dict[str, Any] = field(default_factory=lambda: {"kind": "compact"})
    train: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.5
    mc_samples: int = 100
    mc_dropout_in: str = "encoder_and_head"
    mc_combine: str = "harmonic"
    gmm_components: int = 5
    ensemble_size: int = 3
    augment: bool = True

    def __post_init__(self) -> None:
        TrainConfig.from_dict(self.train)
        if not 0 < self.dropout < 1:
            raise ValidationError(f"dropout must be in (0, 1), got {self.dropout}")
        for name in ("mc_samples", "ensemble_size", "gmm_components"):
            setattr(self, name, check_int(getattr(self, name), name))
        if self.mc_combine not in MC_COMBINE:
            raise ValidationError(
                f"mc_combine must be one of {MC_COMBINE}, got {self.mc_combine!r}"
            )
        if self.mc_dropout_in not in MC_DROPOUT_IN:
            raise ValidationError(
                f"mc_dropout_in must be one of {MC_DROPOUT_IN}, got {self.mc_dropout_in!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _build(spec: InputSpec, config: BaselineConfig, dropout: float = 0.0) -> SCLNet:
    encoder_dropout = dropout if config.mc_dropout_in == "encoder_and_head" else 0.0
    return build_net(
        net_config(
            spec, config.net, decoder=False, dropout=dropout, encoder_dropout=encoder_dropout
        )
    )


def _build_gmm(spec: InputSpec, config: BaselineConfig) -> SCLNet:
    """The encoder with an estimator of 3 K outputs (mixture weights, widths, means)."""
    return build_net(net_config(spec, config.net, decoder=False, n_bins=3 * config.gmm_components))


def _train_network(
    path: Path,
    net: SCLNet,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    score: ScoreFn,
    train_data: TensorData,
    valid: NetworkInputs,
    *,
    loss_name: str,
    spec: InputSpec,
    config: BaselineConfig,
    seed: int,
    **fit_options: Any,
) -> SCLNet:
    """Train ``net`` on ``loss(outputs, target)`` of (augmented) batches, then write its
    history and weights beside ``path``; a killed training resumes from ``<path>.ckpt``.
    ``fit_options``: ``progress``, ``stop_after``, ``device`` of
    :func:`~clapkit.photoz.training.fit`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    augment = augmenter(spec)

    def step(model, batch, generator):
        x, extra, target = batch
        if config.augment:
            x = augment(x, generator=generator)
        value = loss(model(x, extra), target)
        return value, {loss_name: value.item()}

    history = fit(
        net,
        step,
        score,
        train_data,
        tensors(valid, spec) if len(valid) else None,
        TrainConfig.from_dict({**config.train, "seed": seed}),
        checkpoint=path.with_suffix(".ckpt"),
        description=f"{path.parent.name} {path.stem}",
        **fit_options,
    )
    write_json(path.with_suffix(".history.json"), {"epochs": history}, overwrite=True)
    save_state(path, net)
    return net


def train_softmax_net(
    path: str | os.PathLike,
    spec: InputSpec,
    config: BaselineConfig,
    train: NetworkInputs,
    valid: NetworkInputs,
    seed: int,
    dropout: float = 0.0,
    progress: bool = False,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
) -> SCLNet:
    """Train (or load, when ``path`` exists) one cross-entropy network, on ``device``
    (see :func:`clapkit.photoz.training.fit`; it comes back on the CPU).

    Parameters
    ----------
    path : path-like
        The network's state file.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : BaselineConfig
        The baselines' settings.
    train, valid : NetworkInputs
        The training and validation galaxies.
    seed : int
        Seeds the weights and the training.
    dropout : float
        Dropout rate of the estimator head.
    progress : bool
        Show a progress bar.
    stop_after : int, optional
        Stop after this many epochs, as a killed process would (tests of resuming).
    device : str or torch.device, optional
        Where the network trains.

    Returns
    -------
    SCLNet
    """
    path = Path(path)
    if path.is_file():
        return load_state(path, _build(spec, config, dropout))
    torch.manual_seed(seed)
    net = _build(spec, config, dropout)
    return _train_network(
        path,
        net,
        F.cross_entropy,
        cross_entropy_score,
        tensors(train, spec),
        valid,
        loss_name="cross_entropy",
        spec=spec,
        config=config,
        seed=seed,
        progress=progress,
        stop_after=stop_after,
        device=device,
    )


def train_gmm_net(
    path: str | os.PathLike,
    spec: InputSpec,
    config: BaselineConfig,
    train: NetworkInputs,
    valid: NetworkInputs,
    seed: int,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> SCLNet:
    """Train (or load) the Gaussian-mixture network on the published CRPS loss.

    Parameters
    ----------
    path : path-like
        The network's state file.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : BaselineConfig
        The baselines' settings.
    train, valid : NetworkInputs
        The training and validation galaxies.
    seed : int
        Seeds the weights and the training.
    progress : bool
        Show a progress bar.
    device : str or torch.device, optional
        Where the network trains.

    Returns
    -------
    SCLNet
    """
    path = Path(path)
    if path.is_file():
        return load_state(path, _build_gmm(spec, config))
    torch.manual_seed(seed)
    net = _build_gmm(spec, config)
    n_bins, k = spec.n_bins, config.gmm_components
    train_data = tensors(train, spec)
    initialise_mixture_head(net.estimator.out, train_data.target.numpy(), n_bins, k)

    def crps(outputs, target):
        return mixture_crps_loss(outputs, target, n_bins, k)

    def score(model, batch):
        x, extra, target = batch
        return float(crps(model(x, extra), target)) * x.shape[0]

    return _train_network(
        path,
        net,
        crps,
        score,
        train_data,
        valid,
        loss_name="crps",
        spec=spec,
        config=config,
        seed=seed,
        progress=progress,
        device=device,
    )


def fit_temperature(logits: torch.Tensor, target: torch.Tensor) -> float:
    """The temperature T > 0 minimising the mean NLL of ``softmax(logits / T)``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> target = torch.randint(0, 5, (4000,), generator=g)
    >>> sharp = 3.0 * F.one_hot(target, 5).float()  # right, but too confident by 3x
    >>> noisy = sharp + torch.randn(4000, 5, generator=g) * 3.0
    >>> 1.5 < fit_temperature(noisy, target) < 6
    True
    """
    if logits.shape[0] == 0:
        raise ValidationError("temperature scaling needs a non-empty validation split")
    logits = logits.double()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / np.exp(log_t), target))

    best = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(best.x))


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    return F.softmax(logits.double(), dim=1).numpy()


def _mc_forward(net: SCLNet, samples: int, seed: int, combine: str = "harmonic"):
    """A forward pass combining ``samples`` dropout masks (only dropout layers in train
    mode): their harmonic mean or their arithmetic mean, as probabilities.

    The harmonic mean M / Σ 1/p_i is accumulated in log space, log Σ exp(−log p_i), so that
    no pass's tiny probability overflows its inverse.
    """

    def forward(x, extra):
        net.eval()
        for module in net.modules():
            if isinstance(module, torch.nn.Dropout):
                module.train()
        torch.manual_seed(seed)
        total = None
        for _ in range(samples):
            log_p = F.log_softmax(net(x, extra).double(), dim=1)  # (B, n_bins)
            if combine == "harmonic":
                term = -log_p
                total = term if total is None else torch.logaddexp(total, term)
            else:
                total = log_p.exp() if total is None else total + log_p.exp()
        net.eval()
        if combine == "harmonic":
            return F.softmax(-total, dim=1)  # ∝ 1 / Σ 1/p_i, normalised
        return total / samples

    return forward


def train_baseline(
    method: str,
    model_dir: str | os.PathLike,
    spec: InputSpec,
    config: BaselineConfig,
    train: NetworkInputs,
    valid: NetworkInputs,
    seed: int = 0,
    softmax_dir: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> None:
    """Train ``method`` into ``model_dir`` (on ``device``); ``softmax_dir`` holds the shared
    softmax net.

    Parameters
    ----------
    method : str
        One of :data:`NETWORK_BASELINES`.
    model_dir : path-like
        The method's folder in the run directory.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : BaselineConfig
        The baselines' settings.
    train, valid : NetworkInputs
        The training and validation galaxies.
    seed : int
        Seeds the networks.
    softmax_dir : path-like, optional
        Folder of the softmax network that ``softmax``, ``ensemble`` and ``temperature``
        share (default: ``model_dir``).
    progress : bool
        Show progress bars.
    device : str or torch.device, optional
        Where the network trains.
    """
    if method not in NETWORK_BASELINES:
        raise ValidationError(f"unknown network baseline {method!r}; known: {NETWORK_BASELINES}")
    if len(train) == 0:
        raise ValidationError("the training split is empty")
    model_dir = Path(model_dir)
    softmax_path = Path(softmax_dir or model_dir) / "net.pt"
    kwargs = {"spec": spec, "config": config, "train": train, "valid": valid, "device": device}
    if method == "softmax":
        train_softmax_net(softmax_path, seed=seed, progress=progress, **kwargs)
    elif method == "mcdropout":
        train_softmax_net(
            model_dir / "net.pt", seed=seed, dropout=config.dropout, progress=progress, **kwargs
        )
    elif method == "gmm":
        train_gmm_net(model_dir / "net.pt", seed=seed, progress=progress, **kwargs)
    elif method == "ensemble":
        train_softmax_net(softmax_path, seed=seed, progress=progress, **kwargs)
        for member in range(1, config.ensemble_size):
            train_softmax_net(
                model_dir / f"member_{member}.pt", seed=seed + member, progress=progress, **kwargs
            )
    else:  # temperature
        net = train_softmax_net(softmax_path, seed=seed, progress=progress, **kwargs)
        data = tensors(valid, spec)
        logits = predict_logits(net, data.x, data.extra)
        write_json(
            model_dir / "temperature.json",
            {"temperature": fit_temperature(logits, data.target)},
            overwrite=True,
        )


@torch.no_grad()
def predict_baseline(
    method: str,
    model_dir: str | os.PathLike,
    spec: InputSpec,
    config: BaselineConfig,
    inputs: NetworkInputs,
    seed: int = 0,
    softmax_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """PDFs (N, B) of a trained baseline.

    Parameters
    ----------
    method : str
        The baseline's name.
    model_dir : path-like
        Its folder, as written by :func:`train_baseline`.
    spec : InputSpec
        What the networks read (bands, features, grid).
    config : BaselineConfig
        The baselines' settings.
    inputs : NetworkInputs
        The galaxies to predict.
    seed : int
        Seeds the sampling of stochastic methods (MC dropout).
    softmax_dir : path-like, optional
        Folder of the shared softmax network.

    Returns
    -------
    numpy.ndarray, shape (N, B)
    """
    model_dir = Path(model_dir)
    softmax_path = Path(softmax_dir or model_dir) / "net.pt"
    x, extra = torch.from_numpy(inputs.x), torch.from_numpy(inputs.extra)
    if method == "softmax":
        return _probabilities(
            predict_logits(load_state(softmax_path, _build(spec, config)), x, extra)
        )
    if method == "mcdropout":
        net = load_state(model_dir / "net.pt", _build(spec, config, config.dropout))
        forward = _mc_forward(net, config.mc_samples, seed, config.mc_combine)
        return predict_logits(forward, x, extra).numpy()
    if method == "gmm":
        net = load_state(model_dir / "net.pt", _build_gmm(spec, config))
        outputs = predict_logits(net, x, extra)
        return mixture_bin_probabilities(outputs, spec.n_bins, config.gmm_components)
    if method == "ensemble":
        paths = [softmax_path] + [
            model_dir / f"member_{m}.pt" for m in range(1, config.ensemble_size)
        ]
        members = [
            _probabilities(predict_logits(load_state(p, _build(spec, config)), x, extra))
            for p in paths
        ]
        return np.mean(members, axis=0)
    if method == "temperature":
        temperature = json.loads((model_dir / "temperature.json").read_text())["temperature"]
        logits = predict_logits(load_state(softmax_path, _build(spec, config)), x, extra)
        return _probabilities(logits / temperature)
    raise ValidationError(f"unknown network baseline {method!r}; known: {NETWORK_BASELINES}")
