"""``clapkit simulate``: writes a mock survey, refuses to overwrite, rejects bad arguments.

The command runs in-process through :func:`clapkit.cli.main`, with chunks of 8 galaxies
(``small_chunks``) so that a run costs a fraction of a second; forked workers inherit
the chunk size.
"""

import numpy as np
import pytest

from clapkit.cli import main
from clapkit.data import GalaxySet
from clapkit.sim import simulate

pytestmark = pytest.mark.usefixtures("kcorrect_ready", "small_chunks")


def test_simulate_writes_a_loadable_survey_equal_to_the_library_one(
    tmp_path, capsys, assert_same_galaxies
):
    out = tmp_path / "mock.h5"
    args = ["simulate", "--n", "10", "--seed", "4", "--out", str(out)]
    assert main([*args, "--instruments", "sdss", "--workers", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out and "10 galaxies" in captured.out
    assert captured.err == ""  # --quiet: no progress bar
    with GalaxySet.load(out, lazy=False) as survey:
        assert survey.instruments == ["sdss"]
        assert survey.stacks["sdss"].shape == (10, 5, 64, 64)
        assert_same_galaxies(survey, simulate(10, seed=4, instruments=("sdss",)))
        assert survey.meta["seed"] == 4


def test_simulate_defaults_to_both_instruments_and_all_cores(tmp_path, assert_same_galaxies):
    out = tmp_path / "mock.h5"
    assert main(["simulate", "--n", "9", "--seed", "2", "--out", str(out), "--quiet"]) == 0
    with GalaxySet.load(out, lazy=False) as survey:
        assert survey.instruments == ["sdss", "cfhtls"]
        assert survey.stacks["cfhtls"].shape == (9, 5, 136, 136)
        # Whatever the number of workers, the same survey as in one process.
        assert_same_galaxies(survey, simulate(9, seed=2))


def test_simulate_accepts_instruments_with_spaces(tmp_path):
    out = tmp_path / "mock.h5"
    argv = ["simulate", "--n", "2", "--seed", "1", "--out", str(out), "--quiet"]
    assert main([*argv, "--instruments", " cfhtls , sdss ", "--workers", "1"]) == 0
    with GalaxySet.load(out) as survey:
        assert set(survey.instruments) == {"sdss", "cfhtls"}


def test_existing_output_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "mock.h5"
    out.write_bytes(b"precious")
    argv = ["simulate", "--n", "2", "--seed", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "clapkit simulate: error:" in err and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [out]
    # With --overwrite the file is replaced by a survey.
    assert main([*argv, "--instruments", "sdss", "--workers", "1", "--overwrite"]) == 0
    with GalaxySet.load(out) as survey:
        assert len(survey) == 2


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--n", "0", "n must be an integer >= 1"),
        ("--n", "-5", "n must be an integer >= 1"),
        ("--seed", "-1", "seed must be an integer >= 0"),
        ("--workers", "0", "--workers must be an integer >= 1"),
        ("--workers", "-2", "--workers must be an integer >= 1"),
        ("--instruments", "euclid", "instruments must be distinct names"),
        ("--instruments", "sdss,sdss", "instruments must be distinct names"),
        ("--instruments", ",", "instruments must be distinct names"),
        ("--observing", "sometimes", "observing must be one of ('fixed', 'varying')"),
    ],
)
def test_bad_values_exit_with_status_2_and_write_nothing(tmp_path, capsys, option, value, message):
    out = tmp_path / "mock.h5"
    argv = {"--n": "3", "--seed": "1", "--out": str(out), option: value}
    flat = [f"{key}={val}" for key, val in argv.items()]
    assert main(["simulate", *flat, "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--n", "ten", "--seed", "1"],
        ["--n", "2.5", "--seed", "1"],
        ["--n", "3", "--seed", "x"],
        ["--n", "3", "--seed", "1", "--workers", "two"],
        ["--seed", "1"],  # --n is required
        ["--n", "3"],  # --seed is required
        ["--n", "3", "--seed", "1", "--colour", "red"],
    ],
)
def test_malformed_arguments_exit_through_argparse_with_status_2(tmp_path, capsys, argv):
    out = tmp_path / "mock.h5"
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", *argv, "--out", str(out)])
    assert exit_info.value.code == 2
    assert "usage: clapkit" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_exits_through_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--n", "3", "--seed", "1"])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_help_describes_the_simulate_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    options = ("--n", "--seed", "--out", "--instruments", "--workers", "--overwrite", "--observing")
    for option in options:
        assert option in out


def test_the_file_records_the_command_configuration(tmp_path):
    out = tmp_path / "mock.h5"
    argv = ["simulate", "--n", "3", "--seed", "11", "--out", str(out), "--quiet"]
    assert main([*argv, "--instruments", "cfhtls", "--workers", "1"]) == 0
    with GalaxySet.load(out) as survey:
        assert survey.meta["n"] == 3 and survey.meta["seed"] == 11
        assert survey.meta["instruments"] == ["cfhtls"]
        assert np.all(survey.catalog["petromag_r"] < 17.77)


def test_a_directory_as_output_is_refused_even_with_overwrite(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    argv = ["simulate", "--n", "2", "--seed", "1", "--out", str(folder), "--quiet"]
    assert main([*argv, "--instruments", "sdss", "--workers", "1", "--overwrite"]) == 2
    assert "results" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_observing_varying_writes_the_conditions_like_the_library(
    tmp_path, capsys, assert_same_galaxies
):
    out = tmp_path / "mock.h5"
    argv = ["simulate", "--n", "6", "--seed", "8", "--out", str(out), "--quiet"]
    assert main([*argv, "--instruments", "sdss", "--workers", "1", "--observing", "varying"]) == 0
    assert "varying observing conditions" in capsys.readouterr().out
    with GalaxySet.load(out, lazy=False) as survey:
        assert survey.meta["observing"] == "varying"
        assert str(survey.catalog["sky_sdss_r"].unit) == "mag / arcsec2"
        assert str(survey.catalog["psf_fwhm_cfhtls_i"].unit) == "arcsec"
        assert_same_galaxies(
            survey, simulate(6, seed=8, instruments=("sdss",), observing="varying")
        )
