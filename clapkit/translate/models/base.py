"""What every translation model shares: the batch it trains on, its config, its calls.

A translation model maps images of one instrument onto the pixel grid and the look of
another. Every model here sees images that were already resampled onto the *target*
grid (flux-conserving, see :mod:`clapkit.translate.pixels`) and scaled band by band to
about unit sky noise, so a model only has to learn what differs between the surveys:
resolution, depth, noise texture and filter throughputs. The two stacks differ in pixel
scale by a non-integer factor (0.396″ → 0.187″ is ×2.12), which rules out the
pixel-shuffle upsamplers of super-resolution networks; resampling first keeps every
family on the same footing.

A model is a :class:`torch.nn.Module` subclass of :class:`Translator`. It owns its
optimisers' construction and the order of its own updates (a GAN alternates a
discriminator and a generator step), while :mod:`clapkit.translate.training` draws the
batches and the shared loop (:mod:`clapkit.nets.training`) owns the epochs: seeding,
learning rate, checkpoints, stop signal, progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn as nn

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.presets import check_preset

__all__ = ["ModelConfig", "TranslationBatch", "Translator", "check_size", "strict_from_dict"]

#: Every model accepts square images whose side is a multiple of this (64 and 136 are).
SIZE_MULTIPLE = 8

C = TypeVar("C")


@dataclass
class TranslationBatch:
    """One training batch; every tensor is ``(B, C, S, S)`` on the target grid, scaled.

    Attributes
    ----------
    source : Tensor
        Source images of galaxies that also have a target image (paired).
    target : Tensor
        The real target images of the same galaxies, row for row.
    unpaired_source : Tensor
        Source images of galaxies seen by the source instrument only (may have B = 0).
    unpaired_target : Tensor
        Target images of other galaxies, seen by the target instrument only (may be empty).

    Supervised models read ``source`` and ``target``; NR-GAN also reads the unpaired ones.
    """

    source: torch.Tensor
    target: torch.Tensor
    unpaired_source: torch.Tensor
    unpaired_target: torch.Tensor

    def __post_init__(self) -> None:
        if self.source.shape != self.target.shape:
            raise ValidationError(
                f"paired source and target differ in shape: "
                f"{tuple(self.source.shape)} vs {tuple(self.target.shape)}"
            )


def strict_from_dict(cls: type[C], data: dict[str, Any], what: str = "") -> C:
    """``cls(**data)`` for a dataclass, refusing keys that are not its fields by name.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Options:
    ...     epochs: int = 1
    >>> strict_from_dict(Options, {"epoch": 3}, "training")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown training options ['epoch']; expected some of ['epochs']
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(
            f"unknown {what or cls.__name__} options {unknown}; expected some of {sorted(known)}"
        )
    return cls(**data)


@dataclass
class ModelConfig:
    """Base of the model configs: JSON round trip that refuses unknown keys.

    Subclasses are dataclasses with defaults equal to their ``"cpu"`` preset and a class
    attribute ``PRESETS`` mapping each name of :data:`clapkit.presets.PRESET_NAMES`
    (``"tiny"``, ``"cpu"``, ``"paper"``) to overrides.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Named variants of the family: settings applied over a preset (none by default).
    VARIANTS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from JSON data; unknown keys raise :class:`ValidationError`."""
        return strict_from_dict(cls, data)

    @classmethod
    def from_record(cls: type[C], data: dict[str, Any]) -> C:
        """Build from the complete config recorded with a trained model.

        The same as :meth:`from_dict` unless a subclass knows how older records, written
        before some of its fields existed, were trained.
        """
        return cls.from_dict(data)

    @classmethod
    def preset(cls: type[C], name: str, **overrides: Any) -> C:
        """The ``"tiny"`` (tests), ``"cpu"`` or ``"paper"`` configuration, with overrides."""
        check_preset(name, cls.__name__)
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``from_dict(to_dict())`` gives an equal config)."""
        return asdict(self)


def check_size(size: int) -> int:
    """Refuse an image side that is not a positive multiple of :data:`SIZE_MULTIPLE`."""
    if int(size) != size or size < 2 * SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        raise ValidationError(
            f"image size must be a multiple of {SIZE_MULTIPLE} and >= {2 * SIZE_MULTIPLE}, got {size}"
        )
    return int(size)


class Translator(nn.Module):
    """Base class of the translation models.

    Parameters
    ----------
    config : ModelConfig
        The model's own config dataclass (``config_class``).
    n_bands : int
        Bands per image (same on both sides).
    size : int
        Side of the (target-grid) images, a multiple of :data:`SIZE_MULTIPLE`.

    Subclasses set ``name`` (the CLI's ``--model``), ``config_class`` and ``supervised``
    (True: trains on paired images only), and implement :meth:`make_optimizers`,
    :meth:`train_step` and :meth:`translate`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    supervised: ClassVar[bool] = True

    def __init__(self, config: ModelConfig, n_bands: int, size: int) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ValidationError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.n_bands = check_int(n_bands, "n_bands")
        self.size = check_size(size)

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`translate` draws from its ``generator``: other seeds, other images.

        False for the deterministic families (one image per galaxy says everything);
        stochastic models (diffusion; NR-GAN with its emulated noise) override it, and
        :func:`~clapkit.translate.apply.apply_translator` then draws several samples per
        galaxy by default.
        """
        return False

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by name (e.g. ``{"generator": ..., "discriminator": ...}``).

        The training loop sets every group's ``lr`` to ``learning_rate × schedule`` each
        epoch, keeping the ratio of each group's initial ``lr`` to ``learning_rate``.
        """
        raise NotImplementedError

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One update of every optimiser on ``batch``; returns the loss terms as floats.

        ``epoch`` lets multi-stage models (NR-GAN) choose their stage; ``generator`` is the
        only source of randomness (noise, diffusion times).

        Parameters
        ----------
        batch : TranslationBatch
            Source and target images of the batch.
        optimizers : dict of str to torch.optim.Optimizer
            The model's optimisers, by name.
        epoch : int
            The current epoch.
        generator : torch.Generator
            The only source of randomness.

        Returns
        -------
        dict of str to float
        """
        raise NotImplementedError

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Translate ``(B, C, S, S)`` scaled source images into scaled target images.

        Called under :func:`torch.no_grad` with the model in eval mode; the same
        ``generator`` state gives the same output.
        """
        raise NotImplementedError

    def check_images(self, x: torch.Tensor, what: str = "images") -> None:
        """Refuse a tensor that is not ``(B, n_bands, size, size)`` or holds NaN/inf."""
        expected = (self.n_bands, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValidationError(
                f"{self.name}: {what} must have shape (B, {self.n_bands}, {self.size}, {self.size}), "
                f"got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValidationError(f"{self.name}: {what} hold NaN or infinite pixels")
