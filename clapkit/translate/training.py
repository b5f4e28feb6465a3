"""Train a translation model on a mock survey: data, loop, checkpoints, model files.

:func:`train_translator` reads the ``train`` split of a GalaxySet holding both stacks of
a task, puts the source images on the target grid, scales both sides
(:mod:`clapkit.translate.pixels`), splits the galaxies into paired and unpaired pools by
``paired_fraction`` and trains in the loop every clapkit network shares
(:func:`clapkit.nets.training.train_epochs`: seeding, learning rate, checkpoint, stop
signal, progress), giving it the translation epoch: batches drawn from the pools, on
which each model updates its own optimisers (a GAN alternates two). A checkpoint
(``checkpoint.pt``) is written after every epoch, so a killed or stopped run resumes
where it stopped; the finished model is a state dict (``model.pt``) beside a JSON file
(``model.json``) holding everything needed to rebuild and apply it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clapkit.atomic import atomic_path, write_json
from clapkit.checks import check_int
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.nets.augment import random_dihedral
from clapkit.nets.checkpoint import CheckpointFile
from clapkit.nets.training import Epoch, train_epochs
from clapkit.translate.models import VARIANT_NAMES, family_of
from clapkit.translate.models.base import TranslationBatch, Translator, strict_from_dict
from clapkit.translate.pixels import PixelScaler, check_finite, resample, task_stacks
from clapkit.translate.registry import MODELS, build_model
from clapkit.translate.tasks import task

__all__ = [
    "MODEL_FORMAT",
    "TrainOptions",
    "TranslationSpec",
    "default_options",
    "load_translator",
    "read_spec",
    "to_target_grid",
    "train_translator",
    "training_images",
]

MODEL_FORMAT = "clapkit.translation"
MODEL_FORMAT_VERSION = 1
#: Galaxies read from a lazily loaded stack at once.
_READ_ROWS = 256


@dataclass
class TrainOptions:
    """How a translation model is trained (the model's own settings are its config).

    Attributes
    ----------
    epochs : int
    batch_size : int
        Galaxies per step: ``round(batch_size × paired_fraction)`` pairs, the rest
        unpaired source images and as many unpaired target images.
    learning_rate : float
        Held for the first half of the epochs, then decayed linearly to 5% (the
        CycleGAN schedule, kind to adversarial training).
    paired_fraction : float
        Fraction of the training galaxies whose two images are seen together; the rest are
        split into source-only and target-only halves, so no unpaired galaxy is seen by
        both instruments. Supervised models need 1.
    augment : bool
        Apply one random symmetry of the square per galaxy (the same to both its images).
    seed : int
    """

    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 2e-4
    paired_fraction: float = 1.0
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        self.epochs = check_int(self.epochs, "epochs")
        self.batch_size = check_int(self.batch_size, "batch_size")
        self.seed = check_int(self.seed, "seed", minimum=0)
        if not self.learning_rate > 0:
            raise ValidationError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.paired_fraction <= 1.0:
            raise ValidationError(f"paired_fraction must lie in [0, 1], got {self.paired_fraction}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        """Build from JSON data; unknown keys are refused."""
        return strict_from_dict(cls, data, "training")

    def lr(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based)."""
        half = self.epochs // 2
        if epoch < half:
            return self.learning_rate
        progress = (epoch - half + 1) / max(1, self.epochs - half)
        return self.learning_rate * (1.0 - 0.95 * progress)


#: Training options that differ from :class:`TrainOptions`' defaults, per model.
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "nrgan": {"paired_fraction": 0.5, "learning_rate": 2e-4},
    "swin": {"learning_rate": 5e-4},
    "srgan": {"learning_rate": 2e-4},
    "capsule": {"learning_rate": 1e-3},
    "diffusion": {"learning_rate": 5e-4},
}


def default_options(model: str, **overrides: Any) -> TrainOptions:
    """The training options of ``model``: its defaults, then ``overrides`` (None ignored).

    A variant (``nrgan_clapkit``, ...) takes its family's.

    Examples
    --------
    >>> default_options("nrgan", epochs=3).paired_fraction
    0.5
    >>> default_options("nrgan_clapkit").paired_fraction
    0.5
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    return TrainOptions.from_dict({**MODEL_OPTIONS.get(family_of(model), {}), **given})


@dataclass
class TranslationSpec:
    """Everything needed to apply a trained model to new images (``model.json``)."""

    model: str
    config: dict[str, Any]
    training: dict[str, Any]
    task: str
    bands: list[str]
    source: dict[str, Any]
    target: dict[str, Any]
    history: list[dict[str, float]]

    @property
    def size(self) -> int:
        """Side of the target grid, the grid the network works on."""
        return int(self.target["size"])

    def scalers(self) -> tuple[PixelScaler, PixelScaler]:
        """The source and target pixel scalers."""
        return PixelScaler(tuple(self.source["noise"])), PixelScaler(tuple(self.target["noise"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, tagged with the file format."""
        return {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION, **asdict(self)}


def _read(images, rows: np.ndarray) -> np.ndarray:
    parts = [
        np.asarray(images[np.sort(rows[i : i + _READ_ROWS])], dtype=np.float32)
        for i in range(0, len(rows), _READ_ROWS)
    ]
    return np.concatenate(parts) if parts else np.empty((0, *images.shape[1:]), np.float32)


def to_target_grid(images: np.ndarray, size: int) -> torch.Tensor:
    """``(N, C, H, W)`` flux images resampled onto the ``size`` × ``size`` target grid."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if len(x) == 0:
        return x.new_zeros((0, x.shape[1], size, size))
    return torch.cat([resample(chunk, size) for chunk in x.split(_READ_ROWS)])


def _stack_info(stack, instrument: str, scaler: PixelScaler) -> dict[str, Any]:
    return {
        "instrument": instrument,
        "pixel_scale": float(stack.pixel_scale),
        "size": int(stack.shape[-1]),
        "zero_points": [float(z) for z in stack.zero_points],
        "units": stack.units,
        "noise": scaler.to_list(),
    }


def training_images(
    galaxies: GalaxySet, task_name: str, *, what: str = "data"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Scaled source (on the target grid) and target images of ``galaxies``, and their grids.

    Returns
    -------
    source, target : Tensor, shape (N, C, S, S)
    grids : dict
        ``{"bands", "source", "target"}``: per side the instrument, pixel scale, stamp
        size, zero points, units and the fitted sky noise of its :class:`PixelScaler`.
    """
    spec = task(task_name)
    source_stack, target_stack = task_stacks(galaxies, task_name, what=what)
    rows = np.arange(len(galaxies))
    raw_source = _read(source_stack.images, rows)
    check_finite(raw_source, f"{what}: {spec.source} images", galaxies.ids)
    raw_target = _read(target_stack.images, rows)
    check_finite(raw_target, f"{what}: {spec.target} images", galaxies.ids)
    size = int(target_stack.shape[-1])
    source = to_target_grid(raw_source, size)
    target = torch.from_numpy(raw_target)
    source_scaler, target_scaler = PixelScaler.fit(source.numpy()), PixelScaler.fit(raw_target)
    grids = {
        "bands": list(source_stack.bands),
        "source": _stack_info(source_stack, spec.source, source_scaler),
        "target": _stack_info(target_stack, spec.target, target_scaler),
    }
    return source_scaler.forward(source), target_scaler.forward(target), grids


@dataclass
class _Pools:
    """Row indices of the paired galaxies and of the source-only and target-only ones."""

    paired: np.ndarray
    source_only: np.ndarray
    target_only: np.ndarray


def _pools(n: int, paired_fraction: float, seed: int) -> _Pools:
    order = np.random.default_rng([seed, 0x9A1]).permutation(n)
    n_paired = round(paired_fraction * n)
    n_source = (n - n_paired + 1) // 2
    return _Pools(
        np.sort(order[:n_paired]),
        np.sort(order[n_paired : n_paired + n_source]),
        np.sort(order[n_paired + n_source :]),
    )


def _cycle(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows drawn without replacement until ``rows`` is exhausted, then again."""
    if count == 0 or len(rows) == 0:
        return rows[:0]
    repeats = math.ceil(count / len(rows))
    return np.concatenate([rng.permutation(rows) for _ in range(repeats)])[:count]


def _batches(
    source: torch.Tensor,
    target: torch.Tensor,
    pools: _Pools,
    options: TrainOptions,
    rng: np.random.Generator,
    generator: torch.Generator,
):
    """One epoch of batches: ``ceil(N / batch_size)`` steps, every pool cycled through."""
    n = len(pools.paired) + len(pools.source_only) + len(pools.target_only)
    steps = max(1, math.ceil(n / options.batch_size))
    n_pairs = round(options.batch_size * options.paired_fraction) if len(pools.paired) else 0
    n_unpaired = options.batch_size - n_pairs if len(pools.source_only) else 0
    n_unpaired_target = n_unpaired if len(pools.target_only) else 0
    paired = _cycle(pools.paired, steps * n_pairs, rng)
    source_only = _cycle(pools.source_only, steps * n_unpaired, rng)
    target_only = _cycle(pools.target_only, steps * n_unpaired_target, rng)
    for step in range(steps):
        rows = torch.from_numpy(paired[step * n_pairs : (step + 1) * n_pairs])
        pair = torch.cat([source[rows], target[rows]], dim=1)  # (b, 2C, S, S)
        src = source[torch.from_numpy(source_only[step * n_unpaired : (step + 1) * n_unpaired])]
        tgt = target[
            torch.from_numpy(target_only[step * n_unpaired_target : (step + 1) * n_unpaired_target])
        ]
        if options.augment:
            # Both images of a pair get the same symmetry, so the pair stays aligned.
            pair = random_dihedral(pair, generator) if len(pair) else pair
            src = random_dihedral(src, generator) if len(src) else src
            tgt = random_dihedral(tgt, generator) if len(tgt) else tgt
        bands = source.shape[1]
        yield TranslationBatch(pair[:, :bands], pair[:, bands:], src, tgt)


def train_translator(
    data: str | os.PathLike | GalaxySet,
    model_dir: str | os.PathLike,
    model: str,
    task_name: str,
    *,
    config: dict[str, Any] | None = None,
    preset: str = "cpu",
    options: TrainOptions | None = None,
    split: str | None = "train",
    overwrite: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
) -> TranslationSpec:
    """Train ``model`` on ``task_name`` and write ``model.pt`` + ``model.json`` in ``model_dir``.

    Parameters
    ----------
    data : path or GalaxySet
        A GalaxySet (file) holding both stacks of the task.
    model_dir : path
        Output folder; ``checkpoint.pt`` there is resumed from when its configuration
        matches, and refused otherwise.
    model : str
        One of :data:`clapkit.translate.models.MODEL_NAMES`, or a variant
        (:data:`~clapkit.translate.models.VARIANT_NAMES`), recorded under that name.
    task_name : str
        ``"s2s"`` or ``"s2c"``.
    config : dict, optional
        Overrides of the model's ``preset`` config.
    preset : str
        ``"tiny"``, ``"cpu"`` or ``"paper"`` (:mod:`clapkit.presets`).
    options : TrainOptions, optional
    split : str or None
        Train on this split (None: every galaxy).
    overwrite : bool
        Replace a finished model; without it a finished model raises
        :class:`~clapkit.errors.OverwriteError` before anything is read. It also starts
        again over a checkpoint of another configuration instead of refusing it.
    stop_after : int, optional
        Stop (raise :class:`~clapkit.nets.training.TrainingStopped`) after this many
        epochs of this call, as a stop signal would (tests).

    Returns
    -------
    TranslationSpec
    """
    model_dir = Path(model_dir)
    options = options or TrainOptions()
    if family_of(model) not in MODELS:
        raise ValidationError(
            f"unknown translation model {model!r}; expected one of "
            f"{sorted(MODELS)} or a variant {list(VARIANT_NAMES)}"
        )
    if MODELS[family_of(model)].supervised and options.paired_fraction < 1.0:
        raise ValidationError(
            f"{model} is supervised and trains on paired images only; "
            f"paired_fraction must be 1, got {options.paired_fraction}"
        )
    for name in ("model.pt", "model.json"):
        if (model_dir / name).exists() and not overwrite:
            raise OverwriteError(
                f"{model_dir / name} already exists; pass overwrite=True (--overwrite) to "
                "train again"
            )
    galaxies = GalaxySet.load(data) if not isinstance(data, GalaxySet) else data
    what = str(data) if not isinstance(data, GalaxySet) else "data"
    if split is not None:
        galaxies = galaxies.split(split)
    if len(galaxies) == 0:
        raise ValidationError(f"{what}: no galaxies in split {split!r} to train on")
    source, target, grids = training_images(galaxies, task_name, what=what)
    torch.manual_seed(options.seed)
    net = build_model(
        model, preset=preset, config=config or {}, n_bands=source.shape[1], size=source.shape[-1]
    )
    optimizers = net.make_optimizers(options.learning_rate)
    spec = TranslationSpec(
        model=model,
        config=net.config.to_dict(),
        training=asdict(options),
        task=task_name,
        bands=grids["bands"],
        source=grids["source"],
        target=grids["target"],
        history=[],
    )
    identity = json.dumps({**spec.to_dict(), "history": None}, sort_keys=True)
    pools = _pools(len(galaxies), options.paired_fraction, options.seed)
    checkpoint = CheckpointFile(
        model_dir / "checkpoint.pt",
        identity,
        what="model, task, data or configuration",
        replace_foreign=overwrite,
    )

    def run_epoch(epoch: Epoch) -> dict[str, float]:
        # One pass over the pools, in an order fixed by (seed, epoch).
        net.train()
        totals: dict[str, float] = {}
        steps = 0
        for batch in _batches(source, target, pools, options, epoch.rng, epoch.generator):
            losses = net.train_step(batch, optimizers, epoch.index, epoch.generator)
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value
            steps += 1
        return {"lr": options.lr(epoch.index), **{k: v / steps for k, v in totals.items()}}

    spec.history = train_epochs(
        run_epoch,
        {"model": net},
        optimizers,
        epochs=options.epochs,
        seed=options.seed,
        lr_scale=lambda epoch: options.lr(epoch) / options.learning_rate,
        checkpoint=checkpoint,
        description=f"{task_name} {model}",
        progress=progress,
        stop_after=stop_after,
    )
    net.eval()
    with atomic_path(model_dir / "model.pt", overwrite=True) as tmp:
        torch.save(net.state_dict(), tmp)
    write_json(model_dir / "model.json", spec.to_dict(), overwrite=True)
    checkpoint.remove()
    return spec


def read_spec(model_dir: str | os.PathLike) -> TranslationSpec:
    """The :class:`TranslationSpec` of a trained model folder, checked."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise FileFormatError(f"{path}: no trained translation model here (model.json missing)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FileFormatError(f"{path}: not readable JSON ({err})") from err
    if data.get("format") != MODEL_FORMAT:
        raise FileFormatError(
            f"{path}: not a clapkit translation model (format {data.get('format')!r})"
        )
    if data.get("version") != MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"{path}: translation model format version {data.get('version')}; "
            f"this clapkit reads version {MODEL_FORMAT_VERSION}"
        )
    if family_of(str(data.get("model"))) not in MODELS:
        raise FileFormatError(f"{path}: unknown model type {data.get('model')!r}")
    keys = {f.name for f in fields(TranslationSpec)}
    return TranslationSpec(**{k: v for k, v in data.items() if k in keys})


def load_translator(
    model_dir: str | os.PathLike,
    model: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Translator, TranslationSpec]:
    """Rebuild a trained model from ``model.json`` and load ``model.pt`` into it.

    ``model`` (optional) is the type the caller expects: a folder holding another type
    is refused, as is a state dict that does not fit the recorded configuration.
    ``overrides`` change inference-time config fields (e.g. NR-GAN's ``add_noise``); the
    returned spec records them.
    """
    model_dir = Path(model_dir)
    spec = read_spec(model_dir)
    if model is not None and spec.model != model:
        raise ValidationError(f"{model_dir}: holds a {spec.model!r} model, not {model!r}")
    if overrides:
        spec.config = {**spec.config, **overrides}
    net = build_model(
        spec.model, preset=None, config=spec.config, n_bands=len(spec.bands), size=spec.size
    )
    path = model_dir / "model.pt"
    try:
        state = torch.load(path, weights_only=True)
    except FileNotFoundError as err:
        raise FileFormatError(f"{path}: missing; train the model first") from err
    except Exception as err:  # torch raises many types for a corrupt file
        raise FileFormatError(f"{path}: not a readable state dict ({err})") from err
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValidationError(
            f"{path}: the weights do not fit a {spec.model!r} model with the recorded config "
            f"(a checkpoint of another model?): {str(err).splitlines()[0]}"
        ) from err
    net.eval()
    return net, spec
