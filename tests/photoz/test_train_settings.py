"""The settings of ``train_run``: bad settings refused by name, before anything is read."""

from __future__ import annotations

import json

import pytest

from clapkit.cli import main
from clapkit.errors import ValidationError
from clapkit.photoz.pipeline import PhotoZTrainSettings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": "clap,bogus"}, "unknown methods"),
        ({"config": {"epochs": 3}}, "unknown configuration keys"),
        ({"config": {"preset": "huge"}}, "unknown photo-z preset 'huge'"),
        ({"config": "tiny"}, "config must be a dict"),
        ({"features": ["mag_r", "z"]}, "features: column 'z' is the redshift"),
        ({"instrument": 3}, "instrument must be a name"),
        ({"z_max": 0}, "z_max must be a number > 0, got 0"),
        ({"n_bins": 1}, "n_bins must be an integer >= 2, got 1"),
        ({"n_bins": 20.0}, "n_bins must be an integer"),
        ({"nondetect": "99"}, "nondetect must be a finite number"),
        ({"mag_limits": {"mag_u": 24.0}}, "--mag-limits needs --nondetect"),
        ({"nondetect": 99, "mag_limits": {"mag_u": "deep"}}, r"mag_limits\['mag_u'\] must be"),
    ],
)
def test_a_bad_setting_is_refused_by_name(changes, message):
    with pytest.raises(ValidationError, match=message):
        PhotoZTrainSettings(**changes)


def test_settings_normalise_and_round_trip_through_json():
    settings = PhotoZTrainSettings(
        "softmax, clap",
        config={"preset": "tiny"},
        features=["mag_g", "mag_r"],
        z_max=0.4,
        nondetect=99,
        mag_limits={"mag_u": 24},
    )
    assert settings.methods == ("softmax", "clap") and settings.features == ("mag_g", "mag_r")
    assert settings.resolved_config()["preset"] == "tiny"
    assert PhotoZTrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert PhotoZTrainSettings().methods == ("clap",)


def test_the_settings_keep_their_own_copy_of_the_config():
    config = {"preset": "tiny", "train": {"epochs": 2}}
    settings = PhotoZTrainSettings(config=config)
    config["train"]["epochs"] = 50
    assert settings.config["train"]["epochs"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bins", "1"], "n_bins must be an integer >= 2, got 1"),
        (["--zmax", "-1"], "z_max must be a number > 0"),
        (["--method", "bogus"], "unknown methods"),
    ],
)
def test_the_command_line_refuses_a_bad_setting_before_reading_or_writing(
    tmp_path, capsys, argv, message
):
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "missing.h5"), "--run", str(run), "--quiet"]
    assert main([*args, *argv]) == 2
    assert message in capsys.readouterr().err  # the setting, not the missing file
    assert not run.exists()
