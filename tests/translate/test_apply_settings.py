"""The settings of ``apply_translator``: bad settings refused by name, before any work."""

from __future__ import annotations

import json

import pytest

from clapkit.errors import ValidationError
from clapkit.translate.apply import ApplySettings, apply_translator


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "unet"}, "model must be one of"),
        ({"overrides": "add_noise=False"}, "overrides must be a dict"),
        ({"split": ""}, "split must name a split"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
        ({"n_samples": 2.5}, r"n_samples must be an integer >= 1, got 2\.5"),
    ],
)
def test_a_bad_setting_is_refused_by_name(changes, message):
    with pytest.raises(ValidationError, match=message):
        ApplySettings(**changes)


def test_settings_round_trip_through_json():
    settings = ApplySettings(model="nrgan", overrides={"add_noise": False}, split=None)
    assert ApplySettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_apply_refuses_a_bad_setting_before_writing(tmp_path):
    out = tmp_path / "out.h5"
    with pytest.raises(ValidationError, match="batch_size"):
        apply_translator(tmp_path, tmp_path / "missing.h5", out, ApplySettings(batch_size=-2))
    assert not out.exists()
