"""The translation models by name: NR-GAN and the four families it is compared with.

Every model subclasses :class:`~clapkit.translate.models.base.Translator` and is built by
name through :func:`build_model` from a preset (``"tiny"`` for tests, ``"cpu"``,
``"paper"``: see :mod:`clapkit.presets`) or a full config recorded with a trained model.
A *variant* (:data:`~clapkit.translate.models.VARIANT_NAMES`, e.g. ``nrgan_clapkit``) is
a family's class built with the settings its config class lists under that name.
"""

from __future__ import annotations

from typing import Any

from clapkit.errors import ValidationError
from clapkit.translate.models import MODEL_NAMES, VARIANT_NAMES, family_of
from clapkit.translate.models.base import Translator
from clapkit.translate.models.capsule import CapsuleConfig, CapsuleTranslator
from clapkit.translate.models.diffusion import DiffusionConfig, DiffusionTranslator
from clapkit.translate.models.nrgan import NRGANConfig, NRGANTranslator
from clapkit.translate.models.srgan import SRGANConfig, SRGANTranslator
from clapkit.translate.models.swin import SwinConfig, SwinTranslator

__all__ = [
    "MODELS",
    "CapsuleConfig",
    "CapsuleTranslator",
    "DiffusionConfig",
    "DiffusionTranslator",
    "NRGANConfig",
    "NRGANTranslator",
    "SRGANConfig",
    "SRGANTranslator",
    "SwinConfig",
    "SwinTranslator",
    "build_model",
]

#: Model classes by the name the CLI takes (``--model``), in the order tables list them.
MODELS: dict[str, type[Translator]] = {
    cls.name: cls
    for cls in (
        NRGANTranslator,
        SwinTranslator,
        SRGANTranslator,
        CapsuleTranslator,
        DiffusionTranslator,
    )
}
assert tuple(MODELS) == MODEL_NAMES, "the registry and MODEL_NAMES must list the same models"
assert set(VARIANT_NAMES) == set(NRGANConfig.VARIANTS), "VARIANT_NAMES must list NR-GAN's variants"


def build_model(
    name: str, *, preset: str | None, config: dict[str, Any], n_bands: int, size: int
) -> Translator:
    """A fresh model ``name``: ``preset`` with ``config`` overrides, or (``preset=None``) the
    complete ``config`` recorded with a trained model.

    Parameters
    ----------
    name : str
        A registered model (:data:`MODEL_NAMES`) or variant (:data:`VARIANT_NAMES`).
    preset : str or None
        The size preset (``"tiny"``, ``"cpu"``, ``"paper"``), to which a variant's settings
        are applied; or None for a complete recorded config (the variant's settings are
        in it already).
    config : dict
        Overrides of the preset, or the complete config.
    n_bands : int
        Bands of the images.
    size : int
        Side of the images, in pixels.

    Returns
    -------
    Translator

    Examples
    --------
    >>> net = build_model("swin", preset="tiny", config={}, n_bands=5, size=16)
    >>> net.name, net.size
    ('swin', 16)
    >>> build_model("nrgan_clapkit", preset="tiny", config={}, n_bands=5, size=16).config.pixel_loss
    'l1'
    """
    family = family_of(name)
    if family not in MODELS:
        raise ValidationError(
            f"unknown translation model {name!r}; expected one of {[*MODELS, *VARIANT_NAMES]}"
        )
    cls = MODELS[family]
    if preset is None:
        model_config = cls.config_class.from_record(config)
    else:
        variant = cls.config_class.VARIANTS.get(name, {}) if name != family else {}
        model_config = cls.config_class.preset(preset, **{**variant, **config})
    return cls(model_config, n_bands, size)
