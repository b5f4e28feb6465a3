"""NR-GAN's named variants: clapkit's earlier design, the publication's ablations, old records."""

import json
import math

import numpy as np
import pytest
import torch

from clapkit.data import GalaxySet
from clapkit.errors import ValidationError
from clapkit.testing import synthetic_translation_survey
from clapkit.translate.apply import ApplySettings, apply_translator
from clapkit.translate.models import TRAINABLE_NAMES, VARIANT_NAMES, family_of
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.nrgan import (
    CLAPKIT_DESIGN,
    DESIGN_FIELDS,
    NRGANConfig,
    NRGANTranslator,
)
from clapkit.translate.registry import build_model
from clapkit.translate.training import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    default_options,
    load_translator,
    read_spec,
    train_translator,
)

BANDS = 5
ABLATIONS = ("nrgan_pix2pix", "nrgan_cyclegan", "nrgan_cyclegan_id")


def _build(name: str, seed: int = 0, **config) -> NRGANTranslator:
    torch.manual_seed(seed)
    return build_model(name, preset="tiny", config=config, n_bands=BANDS, size=16)


def _batch(seed: int = 0) -> TranslationBatch:
    g = torch.Generator().manual_seed(seed)
    source, target = (
        torch.rand(6, BANDS, 16, 16, generator=g),
        torch.rand(6, BANDS, 16, 16, generator=g),
    )
    return TranslationBatch(source[:2], 1.5 * source[:2], source[2:], target[2:])


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before, strict=True))


@pytest.mark.parametrize("name", ["nrgan", *VARIANT_NAMES])
def test_every_variant_builds_trains_a_step_and_translates(name):
    model = _build(name)
    assert isinstance(model, NRGANTranslator) and family_of(name) == "nrgan"
    optimizers = model.make_optimizers(1e-3)
    steps = [0, 1] if model.config.pretrain_epochs else [0]
    for epoch in steps:
        losses = model.train_step(_batch(epoch), optimizers, epoch, torch.Generator())
        assert all(type(v) is float and math.isfinite(v) for v in losses.values())
    with torch.no_grad():
        out = model.eval().translate(torch.rand(2, BANDS, 16, 16), torch.Generator())
    assert out.shape == (2, BANDS, 16, 16) and bool(torch.isfinite(out).all())


def test_variant_settings_go_over_the_preset_and_under_the_overrides():
    clapkit = _build("nrgan_clapkit", ae_width=6).config
    assert clapkit == NRGANConfig.preset("tiny", **{**CLAPKIT_DESIGN, "ae_width": 6})
    assert _build("nrgan").config == NRGANConfig.preset("tiny")
    assert _build("nrgan_cyclegan").config.pretrain_epochs == 0  # over the tiny preset's 1
    with pytest.raises(ValidationError, match="unknown translation model"):
        _build("nrgan_cycle")
    assert set(TRAINABLE_NAMES) >= {"nrgan", *VARIANT_NAMES}


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablations_train_the_generators_in_one_adversarial_step_without_noise(name):
    model = _build(name)
    before = {key: _snapshot(module) for key, module in model.named_children()}
    losses = model.train_step(_batch(), model.make_optimizers(1e-3), 0, torch.Generator())
    assert _unchanged(model.autoencoders, before["autoencoders"])
    assert _unchanged(model.emulators, before["emulators"])
    assert not _unchanged(model.generators, before["generators"])
    assert not _unchanged(model.discriminators, before["discriminators"])
    assert losses["adversarial"] > 0 and losses["discriminator"] > 0
    assert (losses["identity"] > 0) == (name != "nrgan_cyclegan")  # paired identity loss
    # Generators that start as the identity cycle exactly; the cycle is off in pix2pix.
    second = model.train_step(_batch(), model.make_optimizers(1e-3), 0, torch.Generator())
    assert (second["cycle"] > 0) == (name != "nrgan_pix2pix")
    x = torch.rand(2, BANDS, 16, 16)
    with torch.no_grad():
        a = model.eval().translate(x, torch.Generator().manual_seed(0))
        b = model.translate(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # no emulated noise


# --- older records ----------------------------------------------------------------------


def _old_record(config: NRGANConfig) -> dict:
    """A config as recorded before the published design: none of its fields."""
    return {k: v for k, v in config.to_dict().items() if k not in DESIGN_FIELDS}


def test_a_record_without_the_new_fields_loads_as_clapkit_design():
    clapkit = NRGANConfig.variant("nrgan_clapkit", "tiny")
    assert NRGANConfig.from_record(_old_record(clapkit)) == clapkit
    published = NRGANConfig.preset("tiny")
    assert NRGANConfig.from_record(published.to_dict()) == published


def _write_old_model(folder, model: NRGANTranslator) -> None:
    """``model.json`` and ``model.pt`` as clapkit wrote them before the published design."""
    folder.mkdir()
    torch.save(model.state_dict(), folder / "model.pt")
    side = {"size": 16, "pixel_scale": 0.2, "zero_points": [30.0] * BANDS, "units": "flux"}
    spec = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "model": "nrgan",
        "config": _old_record(model.config),
        "training": {},
        "task": "s2c",
        "bands": list("ugriz"),
        "source": {**side, "instrument": "sdss", "noise": [1.0] * BANDS},
        "target": {**side, "instrument": "cfhtls", "noise": [1.0] * BANDS},
        "history": [],
    }
    (folder / "model.json").write_text(json.dumps(spec))


def test_an_old_saved_model_loads_and_translates_as_it_did(tmp_path):
    torch.manual_seed(0)
    old = NRGANTranslator(NRGANConfig.variant("nrgan_clapkit", "tiny"), BANDS, 16)
    optimizers = old.make_optimizers(1e-3)
    for epoch in (0, 1):  # move every network away from its initial state
        old.train_step(_batch(epoch), optimizers, epoch, torch.Generator().manual_seed(epoch))
    _write_old_model(tmp_path / "nrgan", old.eval())
    net, spec = load_translator(tmp_path / "nrgan", "nrgan")
    assert net.config == old.config and spec.model == "nrgan"
    x = torch.rand(3, BANDS, 16, 16)
    with torch.no_grad():
        expected = old.translate(x, torch.Generator().manual_seed(4))
        torch.testing.assert_close(net.translate(x, torch.Generator().manual_seed(4)), expected)
    smooth, _ = load_translator(tmp_path / "nrgan", "nrgan", {"add_noise": False})
    assert smooth.config.generator_input == "smooth" and not smooth.config.add_noise


def test_a_variant_trains_and_applies_under_its_own_name(tmp_path):
    survey = tmp_path / "survey.h5"
    synthetic_translation_survey(24, seed=3).save(survey)
    model_dir = tmp_path / "nrgan_clapkit"
    options = default_options("nrgan_clapkit", epochs=2, batch_size=8)
    spec = train_translator(
        survey, model_dir, "nrgan_clapkit", "s2c", preset="tiny", options=options
    )
    assert spec.model == read_spec(model_dir).model == "nrgan_clapkit"
    assert spec.config["generator_input"] == "smooth" and spec.config["pixel_loss"] == "l1"
    net, _ = load_translator(model_dir, "nrgan_clapkit")
    assert net.config == NRGANConfig.from_dict(spec.config)
    with pytest.raises(ValidationError, match="not 'nrgan'"):
        load_translator(model_dir, "nrgan")
    out = apply_translator(
        model_dir, survey, tmp_path / "out.h5", ApplySettings(model="nrgan_clapkit")
    )
    with GalaxySet.load(out) as translated:
        assert translated.meta["translation"]["model"] == "nrgan_clapkit"
        assert np.isfinite(translated.stacks["cfhtls"].images[:]).all()
