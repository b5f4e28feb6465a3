"""``clapkit translate train|apply|evaluate`` from the command line."""

import json

import pytest

from clapkit.cli import main
from clapkit.testing import synthetic_translation_survey


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("survey") / "survey.h5"
    synthetic_translation_survey(40, seed=2).save(path)
    return path


def test_train_apply_evaluate_through_the_command_line(tmp_path, survey_file, capsys):
    run = tmp_path / "run"
    base = ["--task", "s2c", "--data", str(survey_file), "--run", str(run), "--quiet"]
    assert (
        main(["translate", "train", "--model", "nrgan", *base, "--preset", "tiny", "--epochs", "2"])
        == 0
    )
    assert "trained nrgan (s2c)" in capsys.readouterr().out
    assert main(["translate", "apply", "--model", "nrgan", "--samples", "3", *base]) == 0
    assert main(["translate", "apply", "--model", "nrgan", "--no-noise", *base]) == 0
    # The smooth set is deterministic: several samples of it are refused in one line.
    args = ["translate", "apply", "--model", "nrgan", "--no-noise", "--name", "x", *base]
    assert main([*args, "--samples", "2"]) == 2
    assert "deterministic" in capsys.readouterr().err
    assert main([*args, "--samples", "0"]) == 2
    assert "n_samples must be an integer >= 1, got 0" in capsys.readouterr().err
    folder = run / "translate" / "s2c"
    assert (folder / "nrgan" / "translated.h5").is_file()
    assert (folder / "nrgan_smooth" / "translated.h5").is_file()
    spec = json.loads((folder / "nrgan" / "model.json").read_text())
    assert spec["training"]["paired_fraction"] == 0.5 and spec["training"]["epochs"] == 2
    capsys.readouterr()
    assert main(["translate", "evaluate", *base, "--bootstrap", "50", "--confidence", "0.9"]) == 0
    table = capsys.readouterr().out
    assert "nrgan_smooth" in table and "real" in table
    assert "90% bootstrap intervals over galaxies" in table
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert set(evaluation["models"]) == {"nrgan", "nrgan_smooth", "real"}
    assert evaluation["bootstrap"]["n_resamples"] == 50
    assert evaluation["bootstrap"]["confidence"] == 0.9
    lo, hi = evaluation["models"]["nrgan"]["photoz_sigma_mad_ci"]
    assert lo <= evaluation["models"]["nrgan"]["photoz_sigma_mad"] <= hi
    assert set(evaluation["paired_differences"]["models"]) == {"nrgan", "nrgan_smooth"}
    assert evaluation["models"]["nrgan"]["n_samples"] == 3
    assert "sample_pixel_spread" in evaluation["models"]["nrgan"]
    assert "sample_pixel_spread" not in evaluation["models"]["nrgan_smooth"]
    assert "KS flux" in table and "pix spread" in table


def test_bad_requests_exit_2_with_one_line(tmp_path, survey_file, capsys):
    run = tmp_path / "run"
    base = ["--task", "s2c", "--data", str(survey_file), "--run", str(run), "--quiet"]
    # Nothing trained yet.
    assert main(["translate", "apply", "--model", "swin", *base]) == 2
    assert "no trained translation model" in capsys.readouterr().err
    # A supervised model cannot train semi-supervised.
    args = [
        "translate",
        "train",
        "--model",
        "swin",
        *base,
        "--preset",
        "tiny",
        "--paired-fraction",
        "0.5",
    ]
    assert main(args) == 2
    assert "paired_fraction must be 1" in capsys.readouterr().err
    # An unknown model option in the JSON config names the option.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"embed_dimension": 8}))
    assert main(["translate", "train", "--model", "swin", *base, "--config", str(config)]) == 2
    assert "embed_dimension" in capsys.readouterr().err
    # Only NR-GAN has emulated noise to leave out.
    assert main(["translate", "apply", "--model", "swin", "--no-noise", *base]) == 2
    assert "--no-noise applies to nrgan only" in capsys.readouterr().err
    # A set name is one folder of the task: nothing is written outside the run.
    assert main(["translate", "apply", "--model", "swin", "--name", "../elsewhere", *base]) == 2
    assert "translation name '../elsewhere'" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()
