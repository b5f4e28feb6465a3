"""Apply a trained translation model to a GalaxySet and store the translated images.

The output is itself a GalaxySet file: the catalog rows of the translated galaxies and
one image stack named after the *target* instrument, on its pixel grid and in its flux
units. Everything that reads survey images (photo-z networks, the morphology and noise
measurements, the dashboards) therefore reads translated images unchanged.

A stochastic model (:attr:`~clapkit.translate.models.base.Translator.stochastic`:
diffusion, NR-GAN with its noise) draws ``n_samples`` translations per galaxy (default
:data:`~clapkit.translate.sampling.DEFAULT_SAMPLES`); the stack holds sample 0 and the
others go to ``/samples/<target>`` (:mod:`clapkit.translate.sampling`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from clapkit.atomic import atomic_path, check_writable
from clapkit.checks import check_choice, check_int
from clapkit.data import GalaxySet
from clapkit.data.stack import ImageStack
from clapkit.errors import ValidationError
from clapkit.settings import Settings
from clapkit.translate.models import TRAINABLE_NAMES
from clapkit.translate.models.base import Translator
from clapkit.translate.pixels import FIELD_TOLERANCE, check_finite
from clapkit.translate.sampling import DEFAULT_SAMPLES, SAMPLES_GROUP, sample_seed
from clapkit.translate.tasks import task
from clapkit.translate.training import TranslationSpec, load_translator, to_target_grid

__all__ = ["ApplySettings", "apply_translator", "check_source", "translate_images"]


def check_source(galaxies: GalaxySet, spec: TranslationSpec, *, what: str = "data") -> ImageStack:
    """The stack of ``galaxies`` the model translates, refused unless it matches training.

    The instrument, band set, stamp size and field of view must equal those the model was
    trained on; the message names the difference.
    """
    instrument = spec.source["instrument"]
    stack = galaxies.stacks.get(instrument)
    if stack is None:
        raise ValidationError(
            f"{what}: the {spec.model} model translates {instrument!r} images; the data has "
            f"stacks {sorted(galaxies.stacks)}"
        )
    if list(stack.bands) != list(spec.bands):
        raise ValidationError(
            f"{what}: the model was trained on bands {spec.bands} of {instrument!r}; this data "
            f"has {list(stack.bands)}"
        )
    size, scale = int(spec.source["size"]), float(spec.source["pixel_scale"])
    field, trained_field = stack.shape[-1] * stack.pixel_scale, size * scale
    if abs(field - trained_field) > FIELD_TOLERANCE * trained_field:
        raise ValidationError(
            f"{what}: the {instrument!r} images cover {field:.2f}″; the model was trained on a "
            f"{trained_field:.2f}″ field"
        )
    if tuple(stack.shape[-2:]) != (size, size):
        raise ValidationError(
            f"{what}: the model was trained on {size}×{size} {instrument!r} images; this data "
            f"has {stack.shape[-2]}×{stack.shape[-1]}"
        )
    return stack


@torch.no_grad()
def translate_images(
    net: Translator,
    spec: TranslationSpec,
    galaxies: GalaxySet,
    *,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
    what: str = "data",
) -> np.ndarray:
    """Translated images of every galaxy, ``(N, C, S, S)`` float32 in target flux units.

    Galaxies are read, resampled, scaled, translated and unscaled ``batch_size`` at a time,
    so memory stays bounded for any number of galaxies.

    Parameters
    ----------
    net : Translator
        A trained model.
    spec : TranslationSpec
        What it was trained on (instruments, bands, scaling).
    galaxies : GalaxySet
        Galaxies with the source instrument's images.
    batch_size : int
        Galaxies translated at a time.
    seed : int
        Seeds the model's randomness (NR-GAN's noise, diffusion sampling).
    progress : bool
        Show a progress bar.
    what : str
        How error messages name ``galaxies``.

    Returns
    -------
    numpy.ndarray, shape (N, C, S, S)
    """
    if batch_size < 1:
        raise ValidationError(f"batch_size must be >= 1, got {batch_size}")
    stack = check_source(galaxies, spec, what=what)
    source_scaler, target_scaler = spec.scalers()
    size = spec.size
    out = np.empty((len(galaxies), len(spec.bands), size, size), np.float32)
    generator = torch.Generator().manual_seed(seed)
    net.eval()
    starts = range(0, len(galaxies), batch_size)
    for start in tqdm(starts, desc=f"translate {spec.model}", disable=not progress):
        rows = slice(start, start + batch_size)
        raw = np.asarray(stack.images[rows], dtype=np.float32)
        check_finite(raw, f"{what}: {spec.source['instrument']} images", galaxies.ids[rows])
        source = source_scaler.forward(to_target_grid(raw, size))
        translated = net.translate(source, generator)  # (b, C, S, S), scaled
        out[rows] = target_scaler.inverse(translated).numpy()
    return out


@dataclass(frozen=True)
class ApplySettings(Settings):
    """Which galaxies :func:`apply_translator` translates, and how.

    Parameters
    ----------
    model : str, optional
        The model's (or variant's) name, checked against the one stored in the model
        folder.
    overrides : dict, optional
        Inference-time config fields to change (NR-GAN's ``{"add_noise": False}`` gives the
        smooth variant).
    split : str or None
        The split to translate; None for every galaxy.
    batch_size : int
        Galaxies translated at a time.
    seed : int
        Seeds the model's randomness; sample ``k`` uses
        :func:`~clapkit.translate.sampling.sample_seed` ``(seed, k)``.
    n_samples : int or None
        Translations drawn per galaxy. None: :data:`~clapkit.translate.sampling.DEFAULT_SAMPLES`
        (8) for a stochastic model, 1 for a deterministic one. More than 1 for a
        deterministic model is refused by :func:`apply_translator` (its samples would be
        identical copies).

    Examples
    --------
    >>> ApplySettings(overrides={"add_noise": False}, split=None).batch_size
    32
    >>> ApplySettings(n_samples=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: n_samples must be an integer >= 1, got 0
    >>> ApplySettings(batch_size=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: batch_size must be an integer >= 1, got 0
    """

    model: str | None = None
    overrides: dict[str, Any] | None = None
    split: str | None = "test"
    batch_size: int = 32
    seed: int = 0
    n_samples: int | None = None

    def __post_init__(self) -> None:
        if self.model is not None:
            check_choice(self.model, "model", TRAINABLE_NAMES)
        if self.overrides is not None and not isinstance(self.overrides, dict):
            raise ValidationError(
                f"overrides must be a dict of config fields, got {self.overrides!r}"
            )
        if self.split is not None and (not isinstance(self.split, str) or not self.split):
            raise ValidationError(f"split must name a split (or be None), got {self.split!r}")
        self._set("batch_size", check_int(self.batch_size, "batch_size"))
        self._set("seed", check_int(self.seed, "seed", 0))
        if self.n_samples is not None:
            self._set("n_samples", check_int(self.n_samples, "n_samples"))


def apply_translator(
    model_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    settings: ApplySettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Translate the ``settings.split`` galaxies of ``data`` with the model in ``model_dir``.

    Writes a GalaxySet file ``out`` (refused if it exists, unless ``overwrite``) holding
    the split's catalog and the translated images as the target instrument's stack; its
    metadata records the model, task, data file, seed and number of samples (a stochastic
    model draws several per galaxy: see :class:`ApplySettings`).

    Parameters
    ----------
    model_dir : path-like
        The trained model's folder.
    data : path-like
        GalaxySet file with the source instrument's images.
    out : path-like
        The GalaxySet file to write.
    settings : ApplySettings, optional
        Model check, inference overrides, split, batch size and seed; the defaults when
        None.
    overwrite : bool
        Replace an existing ``out``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> smooth = ApplySettings(model="nrgan", overrides={"add_noise": False})
    >>> apply_translator("run/translate/s2c/nrgan", "survey.h5", "smooth.h5", smooth)  # doctest: +SKIP
    """
    settings = ApplySettings() if settings is None else settings
    split, seed = settings.split, settings.seed
    out = check_writable(out, overwrite)
    net, spec = load_translator(model_dir, settings.model, settings.overrides)
    n_samples = _n_samples(net, settings.n_samples)
    target = spec.target
    with GalaxySet.load(data) as galaxies:
        part = galaxies.split(split) if split is not None else galaxies
        if len(part) == 0:
            raise ValidationError(f"{data}: no galaxies in split {split!r} to translate")

        def draw(k: int) -> np.ndarray:
            return translate_images(
                net,
                spec,
                part,
                batch_size=settings.batch_size,
                seed=sample_seed(seed, k),
                progress=progress,
                what=str(data),
            )

        stack = ImageStack(
            draw(0),
            tuple(spec.bands),
            float(target["pixel_scale"]),
            tuple(target["zero_points"]),
            units=target["units"],
        )
        meta: dict[str, Any] = {
            "translation": {
                "model": spec.model,
                "task": spec.task,
                "source": spec.source["instrument"],
                "target": task(spec.task).target,
                "model_dir": str(model_dir),
                "data": str(data),
                "split": split,
                "seed": seed,
                "n_samples": n_samples,
                "config": spec.config,
            }
        }
        translated = GalaxySet(part.catalog.copy(), {target["instrument"]: stack}, meta)
        # One atomic write: the set, then samples 1 … S−1 drawn one at a time into it, so
        # memory holds one sample and a reader never sees a set without its samples.
        with atomic_path(out, overwrite) as tmp:
            translated.save(tmp, overwrite=True)
            if n_samples > 1:
                with h5py.File(tmp, "a") as f:
                    extra = f.require_group(SAMPLES_GROUP).create_dataset(
                        target["instrument"],
                        shape=(n_samples - 1, *stack.shape),
                        dtype=np.float32,
                        chunks=(1, 1, *stack.shape[1:]),
                    )
                    extra.attrs["n_samples"] = n_samples
                    for k in range(1, n_samples):
                        extra[k - 1] = draw(k)
    return out


def _n_samples(net: Translator, asked: int | None) -> int:
    """Samples to draw: ``asked``, or the default for the model; refused where pointless."""
    if asked is None:
        return DEFAULT_SAMPLES if net.stochastic else 1
    if asked > 1 and not net.stochastic:
        raise ValidationError(
            f"n_samples={asked}: the {net.name} model as configured is deterministic (every "
            "sample would be the same image); use n_samples=1 or leave it unset"
        )
    return asked
