"""Training, resuming, loading and applying translation models on a tiny paired survey."""

import json
import signal

import numpy as np
import pytest
import torch

from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.nets.training import TrainingStopped
from clapkit.testing import synthetic_translation_survey
from clapkit.translate.apply import ApplySettings, apply_translator
from clapkit.translate.registry import MODELS
from clapkit.translate.training import (
    TrainOptions,
    _batches,
    _pools,
    default_options,
    load_translator,
    read_spec,
    train_translator,
)
from clapkit.translate.training import build_model as real_build_model


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("survey") / "survey.h5"
    synthetic_translation_survey(40, seed=1).save(path)
    return path


def _options(model, **kw):
    return default_options(model, **{"epochs": 2, "batch_size": 8, **kw})


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_trains_and_translates_onto_the_target_grid(tmp_path, survey_file, model):
    model_dir = tmp_path / model
    spec = train_translator(
        survey_file, model_dir, model, "s2c", preset="tiny", options=_options(model)
    )
    assert len(spec.history) == 2 and all(np.isfinite(v) for v in spec.history[-1].values())
    assert (model_dir / "model.pt").is_file() and not (model_dir / "checkpoint.pt").exists()
    assert read_spec(model_dir).model == model and spec.size == 32
    out = apply_translator(model_dir, survey_file, tmp_path / "out.h5", ApplySettings(model=model))
    with GalaxySet.load(out) as translated, GalaxySet.load(survey_file) as galaxies:
        stack = translated.stacks["cfhtls"]
        assert stack.shape == (len(galaxies.split("test")), 5, 32, 32)
        assert list(translated.ids) == list(galaxies.split("test").ids)
        assert np.isfinite(stack.images[:]).all()
        assert translated.meta["translation"]["model"] == model


def test_training_resumes_from_the_checkpoint_to_the_same_weights(tmp_path, survey_file):
    options = _options("swin", epochs=3)
    whole = tmp_path / "whole"
    train_translator(survey_file, whole, "swin", "s2c", preset="tiny", options=options)
    split = tmp_path / "split"
    with pytest.raises(TrainingStopped):
        train_translator(
            survey_file, split, "swin", "s2c", preset="tiny", options=options, stop_after=1
        )
    assert (split / "checkpoint.pt").is_file() and not (split / "model.pt").exists()
    spec = train_translator(survey_file, split, "swin", "s2c", preset="tiny", options=options)
    assert [r["epoch"] for r in spec.history] == [0, 1, 2]
    a = torch.load(whole / "model.pt", weights_only=True)
    b = torch.load(split / "model.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_a_gan_stopped_by_a_signal_resumes_to_the_same_weights(tmp_path, survey_file, monkeypatch):
    # SRGAN steps two optimisers per batch; SIGTERM arrives in the middle of epoch 1.
    options = _options("srgan", epochs=3)
    whole = tmp_path / "whole"
    train_translator(survey_file, whole, "srgan", "s2c", preset="tiny", options=options)

    def signalled_model(*args, **kwargs):
        net = real_build_model(*args, **kwargs)
        step = net.train_step
        signalled = []

        def train_step(batch, optimizers, epoch, generator):
            if epoch == 1 and not signalled:
                signalled.append(True)  # once: a second signal would stop at once
                signal.raise_signal(signal.SIGTERM)
            return step(batch, optimizers, epoch, generator)

        net.train_step = train_step
        return net

    import clapkit.translate.training as training

    monkeypatch.setattr(training, "build_model", signalled_model)
    stopped = tmp_path / "stopped"
    with pytest.raises(TrainingStopped, match="after epoch 1"):
        train_translator(survey_file, stopped, "srgan", "s2c", preset="tiny", options=options)
    assert (stopped / "checkpoint.pt").is_file() and not (stopped / "model.pt").exists()
    monkeypatch.setattr(training, "build_model", real_build_model)
    spec = train_translator(survey_file, stopped, "srgan", "s2c", preset="tiny", options=options)
    assert [r["epoch"] for r in spec.history] == [0, 1, 2]
    a = torch.load(whole / "model.pt", weights_only=True)
    b = torch.load(stopped / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path, survey_file):
    with pytest.raises(TrainingStopped):
        train_translator(
            survey_file,
            tmp_path,
            "swin",
            "s2c",
            preset="tiny",
            options=_options("swin", epochs=3),
            stop_after=1,
        )
    with pytest.raises(ValidationError, match="different model"):
        train_translator(
            survey_file, tmp_path, "swin", "s2c", preset="tiny", options=_options("swin", epochs=4)
        )


def test_finished_models_and_outputs_are_not_overwritten(tmp_path, survey_file):
    options = _options("capsule", epochs=1)
    train_translator(survey_file, tmp_path, "capsule", "s2s", preset="tiny", options=options)
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(OverwriteError, match="--overwrite"):
        train_translator(survey_file, tmp_path, "capsule", "s2s", preset="tiny", options=options)
    assert (tmp_path / "model.pt").read_bytes() == before
    out = apply_translator(tmp_path, survey_file, tmp_path / "t.h5")
    with pytest.raises(OverwriteError):
        apply_translator(tmp_path, survey_file, out)
    apply_translator(tmp_path, survey_file, out, overwrite=True)


def test_loading_refuses_another_model_type_and_foreign_weights(tmp_path, survey_file):
    train_translator(
        survey_file, tmp_path, "swin", "s2c", preset="tiny", options=_options("swin", epochs=1)
    )
    with pytest.raises(ValidationError, match="holds a 'swin' model, not 'srgan'"):
        load_translator(tmp_path, "srgan")
    spec = json.loads((tmp_path / "model.json").read_text())
    spec["model"] = "capsule"
    spec["config"] = MODELS["capsule"].config_class.preset("tiny").to_dict()
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ValidationError, match="do not fit"):
        load_translator(tmp_path)
    with pytest.raises(FileFormatError, match="no trained translation model"):
        load_translator(tmp_path / "nothing")


def test_supervised_models_refuse_unpaired_training(tmp_path, survey_file):
    with pytest.raises(ValidationError, match="paired_fraction must be 1"):
        train_translator(
            survey_file,
            tmp_path,
            "swin",
            "s2c",
            preset="tiny",
            options=_options("swin", paired_fraction=0.5),
        )


def test_data_that_does_not_match_the_model_is_refused(tmp_path, survey_file):
    train_translator(
        survey_file, tmp_path, "swin", "s2c", preset="tiny", options=_options("swin", epochs=1)
    )
    with GalaxySet.load(survey_file) as galaxies:
        part = galaxies.split("test")
        sdss = part.stacks["sdss"]
        images, catalog = np.array(sdss.images[:]), part.catalog
    stack = type(sdss)
    bad = {
        "trained on bands": stack(images[:, :4], sdss.bands[:4], sdss.pixel_scale, (22.5,) * 4),
        "field": stack(images, sdss.bands, 2 * sdss.pixel_scale, sdss.zero_points),
        "trained on 16×16": stack(images[:, :, 2:14, 2:14], sdss.bands, 0.528, sdss.zero_points),
    }
    for message, bad_stack in bad.items():
        path = tmp_path / "bad.h5"
        GalaxySet(catalog, {"sdss": bad_stack}).save(path, overwrite=True)
        with pytest.raises(ValidationError, match=message):
            apply_translator(tmp_path, path, tmp_path / "out.h5")
        assert not (tmp_path / "out.h5").exists()
    # GalaxySet files cannot hold NaN; a tensor handed to a model directly is checked too.
    net, _ = load_translator(tmp_path)
    x = torch.zeros(1, 5, 32, 32)
    x[0, 2, 3, 3] = float("nan")
    with pytest.raises(ValidationError, match="NaN"):
        net.translate(x, torch.Generator())


def test_batches_mix_pairs_and_unpaired_images_by_the_paired_fraction():
    n = 40
    source = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 16, 16)
    target = -source
    pools = _pools(n, 0.25, seed=0)
    assert len(pools.paired) == 10 and len(pools.source_only) + len(pools.target_only) == 30
    assert not set(pools.source_only) & set(pools.target_only)
    options = TrainOptions(batch_size=8, paired_fraction=0.25, augment=False)
    batches = list(
        _batches(source, target, pools, options, np.random.default_rng(0), torch.Generator())
    )
    assert len(batches) == 5
    for batch in batches:
        assert batch.source.shape[0] == 2 and batch.unpaired_source.shape[0] == 6
        # Pairs are aligned: the target of a paired galaxy is its own image, negated.
        assert torch.equal(batch.target, -batch.source)
        assert set(batch.unpaired_source[:, 0, 0, 0].long().tolist()) <= set(
            pools.source_only.tolist()
        )
        assert set((-batch.unpaired_target[:, 0, 0, 0]).long().tolist()) <= set(
            pools.target_only.tolist()
        )


def test_options_refuse_bad_values():
    with pytest.raises(ValidationError, match="paired_fraction"):
        TrainOptions(paired_fraction=1.5)
    with pytest.raises(ValidationError, match="unknown training options"):
        TrainOptions.from_dict({"epoch": 3})
    with pytest.raises(ValidationError, match=r"epochs must be an integer >= 1, got 2\.5"):
        TrainOptions(epochs=2.5)
    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got 0"):
        TrainOptions(batch_size=0)
    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got True"):
        TrainOptions.from_dict({"batch_size": True})
    with pytest.raises(ValidationError, match="seed must be an integer >= 0, got -1"):
        TrainOptions(seed=-1)
    schedule = TrainOptions(epochs=10, learning_rate=1.0)
    assert schedule.lr(0) == schedule.lr(4) == 1.0 and schedule.lr(9) == pytest.approx(0.05)
