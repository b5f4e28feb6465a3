"""The MI estimator: classifiers over bins, one per input set.

As published, the target is binned and a classifier is trained per input; averaged over
galaxies, its pointwise MI (:func:`~clapkit.interpret.information.pointwise.pointwise_information`)
estimates I(bin; input), on average from below, short by how far the classifier is from the
true p(bin | input). :func:`estimate_information` trains three (input 1, input 2, both) and
returns their per-galaxy :class:`~clapkit.interpret.information.decomposition.Decomposition`.

A classifier reads what its input is (:class:`~clapkit.interpret.information.inputs.ClassifierInputs`):
catalog columns through an MLP, images through a small CNN whose pooled output is joined
by the catalog columns before the MLP — as the published MI networks read images with the
auxiliary columns beside them (``InterpretSM_scl_mi.py``, ``texp == 0``; not the latent of
a network trained for another task).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import nn

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.interpret.information.decomposition import Decomposition
from clapkit.interpret.information.inputs import ClassifierInputs, as_classifier_inputs
from clapkit.interpret.information.pointwise import (
    _as_bins,
    bin_prior,
    pointwise_information,
)
from clapkit.nets.threads import torch_threads
from clapkit.nets.training import Epoch, train_epochs


@dataclass(frozen=True)
class ClassifierConfig:
    """How a :class:`BinClassifier` is built and trained (Adam, cross-entropy).

    Attributes
    ----------
    hidden : tuple of int
        Widths of the hidden ReLU layers.
    conv_channels : tuple of int
        Channels of the CNN's 3×3 convolutions (each followed by ReLU and 2×2 max
        pooling, then a global average) for image inputs; unused without images.
    epochs : int
        At most this many passes over the training data.
    patience : int
        Stop once the validation loss has not improved for this many epochs; the weights
        of the best epoch are kept.
    learning_rate, weight_decay : float
    batch_size : int
    seed : int
        Seeds the initial weights and, with the epoch, each epoch's batch order
        (:func:`~clapkit.nets.training.seed_epoch`).
    num_threads : int or None
        PyTorch threads while training (restored after); None leaves the current setting.
        One by default: a small MLP is all per-operation overhead, and on a busy 2-core
        machine PyTorch's default of 2 threads trained :func:`gaussian_check`'s three
        classifiers in 158 s against 2.6 s on one, with identical results.
    """

    hidden: tuple[int, ...] = (64, 64)
    conv_channels: tuple[int, ...] = (16, 32)
    epochs: int = 200
    patience: int = 10
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    seed: int = 0
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        hidden = tuple(check_int(h, "hidden widths") for h in self.hidden)
        object.__setattr__(self, "hidden", hidden)
        channels = tuple(check_int(c, "conv_channels") for c in self.conv_channels)
        if not channels:
            raise ValidationError("conv_channels must name at least one convolution")
        object.__setattr__(self, "conv_channels", channels)
        for name in ("epochs", "patience", "batch_size", "num_threads"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_int(value, name))
        object.__setattr__(self, "seed", check_int(self.seed, "seed", minimum=0))
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValidationError(
                f"learning_rate must be > 0 and weight_decay >= 0, got "
                f"{self.learning_rate}, {self.weight_decay}"
            )


class BinClassifier(nn.Module):
    """Logits over bins from standardised catalog features, images, or both.

    Images (when ``image_shape`` is given) pass through a CNN — per entry of
    ``conv_channels`` a 3×3 convolution, ReLU and 2×2 max pooling, then a global average
    over the stamp — whose output is joined by the standardised features before the MLP
    of ``hidden`` widths. The standardisation (training mean and scale) is stored as
    buffers, so the state dict alone reproduces predictions. The initial weights are
    drawn from ``generator`` (seed 0 when not given), never from PyTorch's global
    generator. ``history`` holds one record per trained epoch.
    """

    def __init__(
        self,
        n_features: int,
        n_bins: int,
        hidden: Sequence[int],
        mean: NDArray,
        scale: NDArray,
        generator: torch.Generator | None = None,
        *,
        image_shape: tuple[int, int, int] | None = None,
        conv_channels: Sequence[int] = (16, 32),
    ) -> None:
        super().__init__()
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.cnn: nn.Sequential | None = None
        n_image_features = 0
        if self.image_shape is not None:
            layers: list[nn.Module] = []
            widths = [self.image_shape[0], *conv_channels]
            for n_in, n_out in itertools.pairwise(widths):
                conv = nn.utils.skip_init(nn.Conv2d, n_in, n_out, 3, padding=1)
                layers += [conv, nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.cnn = nn.Sequential(*layers)
            n_image_features = widths[-1]
        widths = [n_features + n_image_features, *hidden, n_bins]
        layers = []
        for n_in, n_out in itertools.pairwise(widths):
            # skip_init: nn.Linear would otherwise initialise from the global generator
            layers += [nn.utils.skip_init(nn.Linear, n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.n_bins = n_bins
        self.history: list[dict[str, float]] = []
        self.reset_parameters(torch.Generator().manual_seed(0) if generator is None else generator)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default initialisation, U(±1/√fan_in), drawn from ``generator``."""
        layers = [*(self.cnn or []), *self.net]
        for layer in layers:
            if isinstance(layer, nn.Linear | nn.Conv2d):
                bound = 1 / math.sqrt(layer.weight[0].numel())
                with torch.no_grad():
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """(N, F) raw features and, for an image classifier, (N, C, H, W) images → (N, B)
        logits."""
        parts = [(x - self.mean) / self.scale]
        if self.cnn is not None:
            if images is None:
                raise ValidationError("this classifier reads images; none were given")
            parts.insert(0, self.cnn(images))  # (N, C) → (N, conv_channels[-1])
        return self.net(torch.cat(parts, dim=1))

    @torch.no_grad()
    def predict_proba(self, inputs: ArrayLike | ClassifierInputs) -> NDArray[np.float64]:
        """Probabilities over the bins, shape (N, B), rows summing to 1."""
        x, images = self._tensors(as_classifier_inputs(inputs, "features"))
        self.eval()
        logits = torch.cat(
            [
                self(x[rows], None if images is None else images[rows])
                for rows in _chunks(len(x), PREDICT_CHUNK)
            ]
        )
        # float64 softmax so rows sum to 1 well inside ROW_SUM_TOLERANCE for any B
        return torch.softmax(logits.double(), dim=1).numpy()

    def _tensors(self, inputs: ClassifierInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check ``inputs`` against what the classifier was trained on; as tensors."""
        if inputs.n_features != self.mean.numel():
            raise ValidationError(
                f"features has {inputs.n_features} features; the classifier was trained on "
                f"{self.mean.numel()}"
            )
        if inputs.image_shape != self.image_shape:
            raise ValidationError(
                f"the images are {inputs.image_shape} (channels, height, width); the "
                f"classifier was trained on {self.image_shape}"
            )
        features = inputs.features if inputs.features is not None else np.zeros((len(inputs), 0))
        images = None if inputs.images is None else torch.from_numpy(inputs.images)
        return torch.from_numpy(features).float(), images


#: Galaxies per forward pass when predicting (bounds the memory of image classifiers).
PREDICT_CHUNK = 2048


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, max(n, 1), size)]


def fit_classifier(
    features_train: ArrayLike,
    bins_train: ArrayLike,
    n_bins: int,
    *,
    features_valid: ArrayLike,
    bins_valid: ArrayLike,
    config: ClassifierConfig | None = None,
    progress: bool = False,
) -> BinClassifier:
    """Train a :class:`BinClassifier` with cross-entropy, stopping early on validation loss.

    The epochs run in the loop every clapkit network shares,
    :func:`clapkit.nets.training.train_epochs` (seeding per epoch, best weights, early
    stopping, progress bar, the stop request of :mod:`clapkit.stopping`); torch's global
    generator is left as it was.

    Parameters
    ----------
    features_train : array, shape (N, F) or (N,)
    bins_train : array of int, shape (N,)
    n_bins : int
    features_valid, bins_valid : arrays
        The validation split: its mean cross-entropy picks the epoch whose weights are
        kept, so the classifier's probabilities are not over-confident on unseen galaxies
        (which would bias MI).
    config : ClassifierConfig, optional
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    BinClassifier
        In eval mode, with the best validation epoch's weights and the training
        ``history`` (one record per epoch: ``epoch``, ``train_loss``, ``valid_loss``).

    Raises
    ------
    clapkit.nets.training.TrainingStopped
        When the command was asked to stop (Ctrl-C, SIGTERM) during training.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> bins = (x > 0).astype(int)
    >>> clf = fit_classifier(x[:300], bins[:300], 2, features_valid=x[300:],
    ...                      bins_valid=bins[300:], config=ClassifierConfig(hidden=(8,)))
    >>> clf.predict_proba([-2.0, 2.0]).argmax(axis=1).tolist()
    [0, 1]
    """
    config = ClassifierConfig() if config is None else config
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    train = as_classifier_inputs(features_train, "features_train")
    valid = as_classifier_inputs(features_valid, "features_valid")
    if (valid.n_features, valid.image_shape) != (train.n_features, train.image_shape):
        raise ValidationError(
            f"features_valid has {valid.n_features} features and images {valid.image_shape}; "
            f"the training inputs have {train.n_features} and {train.image_shape}"
        )
    y_train = _as_bins(bins_train, n_bins, "bins_train")
    y_valid = _as_bins(bins_valid, n_bins, "bins_valid")
    for name, x, y in (("train", train, y_train), ("valid", valid, y_valid)):
        if len(x) != y.size:
            raise ValidationError(f"features_{name} has {len(x)} rows but bins_{name} has {y.size}")
        if y.size == 0:
            raise ValidationError(f"the {name} split is empty")

    x_train = train.features if train.features is not None else np.zeros((len(train), 0))
    scale = x_train.std(axis=0)
    # a constant feature carries no information; dividing by 1 keeps it harmless
    scale = np.where(scale > 0, scale, 1.0)
    generator = torch.Generator().manual_seed(config.seed)
    net = BinClassifier(
        train.n_features,
        n_bins,
        config.hidden,
        x_train.mean(axis=0),
        scale,
        generator,
        image_shape=train.image_shape,
        conv_channels=config.conv_channels,
    )
    optimizer = torch.optim.Adam(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    train_tensors = (*net._tensors(train), torch.from_numpy(y_train))
    valid_tensors = (*net._tensors(valid), torch.from_numpy(y_valid))

    with torch_threads(config.num_threads):
        net.history = _train(net, optimizer, train_tensors, valid_tensors, config, progress)
    net.eval()
    return net


def _train(
    net: BinClassifier,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
    config: ClassifierConfig,
    progress: bool,
) -> list[dict[str, float]]:
    """The epoch of :func:`fit_classifier`, run by the shared loop; leaves ``net`` with
    its best weights and returns the history. ``train`` and ``valid`` are (features,
    images or None, bins)."""
    (xt, it, yt), (xv, iv, yv) = train, valid

    def run_epoch(epoch: Epoch) -> dict[str, float]:
        # one pass over the training data in an order fixed by (seed, epoch)
        net.train()
        order = torch.from_numpy(epoch.rng.permutation(len(yt)))
        total = 0.0
        for start in range(0, len(yt), config.batch_size):
            rows = order[start : start + config.batch_size]
            logits = net(xt[rows], None if it is None else it[rows])
            loss = F.cross_entropy(logits, yt[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        # the validation loss: the loop keeps the best weights and stops when it stalls
        net.eval()
        with torch.no_grad():
            logits = torch.cat(
                [
                    net(xv[rows], None if iv is None else iv[rows])
                    for rows in _chunks(len(yv), PREDICT_CHUNK)
                ]
            )
            valid_loss = F.cross_entropy(logits, yv).item()
        return {"train_loss": total / len(yt), "valid_loss": valid_loss}

    return train_epochs(
        run_epoch,
        {"classifier": net},
        {"adam": optimizer},
        epochs=config.epochs,
        seed=config.seed,
        keep_best="valid_loss",
        patience=config.patience,
        description="bin classifier",
        progress=progress,
    )


def estimate_information(
    x1_train: ArrayLike,
    x2_train: ArrayLike,
    bins_train: ArrayLike,
    x1_test: ArrayLike,
    x2_test: ArrayLike,
    bins_test: ArrayLike,
    n_bins: int,
    *,
    config: ClassifierConfig | None = None,
    valid_fraction: float = 0.2,
    prior_pseudocount: float = 0.0,
    progress: bool = False,
) -> Decomposition:
    """Per-galaxy MI of two inputs and both together, on a test sample, from classifiers.

    Three :class:`BinClassifier` are trained — on input 1, input 2 and the two
    concatenated — on the same training rows, with the same random ``valid_fraction`` of
    them held out for early stopping. The prior is the bin frequencies of the whole
    training sample (:func:`bin_prior`).

    Parameters
    ----------
    x1_train, x2_train : arrays, shape (N, F₁), (N, F₂) (or (N,))
        The two inputs of the training galaxies.
    bins_train : array of int, shape (N,)
    x1_test, x2_test, bins_test : arrays
        The same for the galaxies the MI is reported on.
    n_bins : int
    config : ClassifierConfig, optional
        Shared by the three classifiers; its seed also draws the validation rows.
    valid_fraction : float
    prior_pseudocount : float
        See :func:`bin_prior`.
    progress : bool

    Returns
    -------
    Decomposition
        Over the test galaxies.

    Examples
    --------
    Two equally likely bins; input 1 is the bin plus a little noise, input 2 pure noise,
    so MI₁ ≈ log 2 ≈ 0.69 nats, all of it unique, and MI₂ ≈ 0:

    >>> rng = np.random.default_rng(3)
    >>> bins = rng.integers(0, 2, size=1000)
    >>> x1, x2 = bins + 0.2 * rng.normal(size=1000), rng.normal(size=1000)
    >>> d = estimate_information(x1[:600], x2[:600], bins[:600], x1[600:], x2[600:],
    ...     bins[600:], 2, config=ClassifierConfig(hidden=(8,), learning_rate=0.03))
    >>> m = d.mean()
    >>> round(m["mi_1"], 1), round(m["unique_1"], 1), round(abs(m["mi_2"]), 1)
    (0.7, 0.7, 0.0)
    """
    config = ClassifierConfig() if config is None else config
    a_train = as_classifier_inputs(x1_train, "x1_train")
    b_train = as_classifier_inputs(x2_train, "x2_train")
    a_test = as_classifier_inputs(x1_test, "x1_test")
    b_test = as_classifier_inputs(x2_test, "x2_test")
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    y_train = _as_bins(bins_train, n_bins, "bins_train")
    y_test = _as_bins(bins_test, n_bins, "bins_test")
    lengths = {"x1_train": len(a_train), "x2_train": len(b_train), "bins_train": y_train.size}
    if len(set(lengths.values())) != 1:
        raise ValidationError(f"training inputs differ in length: {lengths}")
    lengths = {"x1_test": len(a_test), "x2_test": len(b_test), "bins_test": y_test.size}
    if len(set(lengths.values())) != 1:
        raise ValidationError(f"test inputs differ in length: {lengths}")
    if not 0 < valid_fraction < 1:
        raise ValidationError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    n_valid = round(valid_fraction * y_train.size)
    if not 0 < n_valid < y_train.size:
        raise ValidationError(
            f"{y_train.size} training galaxies are too few to hold out a valid_fraction "
            f"of {valid_fraction}"
        )

    order = np.random.default_rng(config.seed).permutation(y_train.size)
    valid, train = order[:n_valid], order[n_valid:]
    prior = bin_prior(y_train, n_bins, pseudocount=prior_pseudocount)
    empty = np.flatnonzero(prior[y_test] == 0)
    if empty.size:  # refuse before training rather than after
        raise ValidationError(
            f"test galaxies {empty[:5].tolist()} fall in bins {y_test[empty[:5]].tolist()} "
            "that no training galaxy is in, so their MI is infinite; "
            "pass prior_pseudocount=0.5 or use wider bins"
        )
    inputs = {
        "mi_1": (a_train, a_test),
        "mi_2": (b_train, b_test),
        "mi_12": (
            ClassifierInputs.union(a_train, b_train),
            ClassifierInputs.union(a_test, b_test),
        ),
    }
    information = {}
    for name, (x_train, x_test) in inputs.items():
        net = fit_classifier(
            x_train.take(train),
            y_train[train],
            n_bins,
            features_valid=x_train.take(valid),
            bins_valid=y_train[valid],
            config=config,
            progress=progress,
        )
        information[name] = pointwise_information(net.predict_proba(x_test), y_test, prior)
    return Decomposition(**information)
