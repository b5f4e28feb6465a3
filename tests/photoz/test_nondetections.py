"""Non-detections: replaced by the limiting magnitude as RAIL does, or refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from clapkit.cli import main
from clapkit.errors import ValidationError
from clapkit.photoz.nondetections import (
    NONDETECT_ERROR,
    Nondetections,
    check_no_sentinels,
    parse_mag_limits,
)
from clapkit.photoz.pipeline import PhotoZTrainSettings, predict_run, train_run
from clapkit.runs import RunDir


def quiet(_message: str) -> None:
    pass


def test_sentinels_masks_and_nan_become_the_limit_with_a_large_error():
    table = Table(
        {
            "mag_u": MaskedColumn([21.0, 99.0, 98.995, 20.0, np.nan], mask=[0, 0, 0, 1, 0]),
            "magerr_u": [0.1, 99.0, 0.5, 0.2, 0.3],
            "mag_g": [20.0, 19.5, 19.0, 18.0, 17.0],
        }
    )
    policy = Nondetections(99.0, {"mag_u": 23.0})
    clean = policy.apply(table, ["mag_u", "magerr_u", "mag_g"], ids=[1, 2, 3, 4, 5])
    assert clean["mag_u"].tolist() == [21.0, 23.0, 23.0, 23.0, 23.0]
    assert clean["magerr_u"].tolist() == [0.1] + [NONDETECT_ERROR] * 4
    assert clean["mag_g"].tolist() == table["mag_g"].tolist()  # nothing to replace
    assert table["mag_u"][1] == 99.0  # the input is not modified
    with pytest.raises(ValidationError, match=r"column mag_u has 4 non-detections .* u=<limit"):
        Nondetections(99.0, {}).apply(table, ["mag_u"], ids=[1, 2, 3, 4, 5])
    assert Nondetections.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValidationError, match="mag_\\* column"):
        Nondetections(99.0, {"u": 23.0})


def test_without_a_policy_sentinels_and_masks_are_refused_by_name():
    with pytest.raises(ValidationError, match=r"mag_u holds 2 values .* \(99 at galaxy id 8\)"):
        check_no_sentinels(Table({"mag_u": [21.0, 99.0, 99.0]}), ["mag_u"], ids=[7, 8, 9])
    with pytest.raises(ValidationError, match="--nondetect -99"):
        check_no_sentinels(Table({"magerr_r": [0.1, -99.0]}), ["magerr_r"], ids=[1, 2])
    masked = Table({"ebv": MaskedColumn([0.01, 0.02], mask=[False, True])})
    with pytest.raises(ValidationError, match=r"ebv has 1 masked entries .* galaxy id 5"):
        check_no_sentinels(masked, ["ebv"], ids=[4, 5])
    # Large values are not sentinels outside photometry, and real magnitudes pass.
    check_no_sentinels(Table({"ra": [150.0, 359.0], "mag_r": [14.0, 17.7]}), ["ra", "mag_r"])


def test_mag_limits_parse_and_refuse_nonsense():
    assert parse_mag_limits(None) == {}
    assert parse_mag_limits("u=22,mag_z=20.5") == {"mag_u": 22.0, "mag_z": 20.5}
    for bad in ("u", "u=faint", "=22"):
        with pytest.raises(ValidationError, match="band=magnitude"):
            parse_mag_limits(bad)


@pytest.fixture
def sentinel_file(tmp_path, make_galaxies):
    """A catalog where 15% of galaxies are undetected in u (mag 99, error 99) and a few
    have masked g magnitudes."""
    galaxies = make_galaxies(n=400, images=False, bands="griz")
    catalog = galaxies.catalog
    rng = np.random.default_rng(4)
    undetected = rng.random(len(catalog)) < 0.15
    catalog["mag_u"] = np.where(undetected, 99.0, catalog["mag_g"] + 1.0)
    catalog["magerr_u"] = np.where(undetected, 99.0, 0.1)
    catalog["mag_g"] = MaskedColumn(catalog["mag_g"], mask=rng.random(len(catalog)) < 0.05)
    path = tmp_path / "sentinels.h5"
    galaxies.save(path)
    return path


def test_training_refuses_sentinels_then_replaces_them_when_asked(
    sentinel_file, tmp_path, tiny_config
):
    run = RunDir(tmp_path / "run")
    with pytest.raises(ValidationError, match=r"column mag_g has .* masked entries"):
        train_run(sentinel_file, run, PhotoZTrainSettings("softmax", config=tiny_config), log=quiet)
    assert not run.root.exists()  # refused before anything was written
    limits = {"mag_u": 24.0, "mag_g": 23.0}
    record = train_run(
        sentinel_file,
        run,
        PhotoZTrainSettings(
            "softmax,knn_photometry", config=tiny_config, nondetect=99.0, mag_limits=limits
        ),
        log=quiet,
    )
    assert record["input_spec"]["nondetect"] == {"value": 99.0, "mag_limits": limits}
    predict_run(run, sentinel_file, log=quiet)
    for method in ("softmax", "knn_photometry"):
        pdfs, _ = run.load_pdfs(method)
        assert np.all(np.isfinite(pdfs.p))
        np.testing.assert_allclose(pdfs.p.sum(axis=1), 1.0)
    # The standardisation saw the limit, not 99: the colour reading mag_u stays a colour
    # (99 in 15% of the rows would pull its mean below -10).
    columns = record["input_spec"]["columns"]
    u = next(i for i, name in enumerate(columns) if "mag_u" in name.split("-"))
    assert abs(record["input_spec"]["mean"][u]) < 5.0


def test_the_target_and_loose_limits_are_refused(sentinel_file, tmp_path, tiny_config, capsys):
    with pytest.raises(ValidationError, match="'z' is the redshift being estimated"):
        train_run(
            sentinel_file,
            tmp_path / "a",
            PhotoZTrainSettings("softmax", features=["mag_r", "z"]),
            log=quiet,
        )
    argv = ["train", "--data", str(sentinel_file), "--run", str(tmp_path / "b"), "--quiet"]
    assert main([*argv, "--mag-limits", "u=24"]) == 2
    assert "--mag-limits needs --nondetect" in capsys.readouterr().err
    assert main([*argv, "--nondetect", "99", "--mag-limits", "u=24"]) == 2
    err = capsys.readouterr().err
    assert "column mag_g has" in err and "g=<limiting magnitude>" in err
    assert not (tmp_path / "b").exists()
