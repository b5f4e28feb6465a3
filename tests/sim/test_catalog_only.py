"""``simulate(..., images=False)`` / ``clapkit simulate --no-images``: the catalog alone.

Rendering draws from random streams of its own (one child seed per stack), after every
catalog column is drawn, and no catalog column is measured on the images: skipping it
leaves the catalog of the image run exactly as it is.
"""

import numpy as np
import pytest

from clapkit.cli import main
from clapkit.data import GalaxySet
from clapkit.sim import simulate

pytestmark = pytest.mark.usefixtures("kcorrect_ready", "small_chunks")


def _same_catalog(a, b) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        assert a[name].unit == b[name].unit, name
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


def test_the_catalog_is_the_one_of_the_image_run(chunked_survey):
    catalog_only = simulate(20, seed=77, images=False)
    assert catalog_only.instruments == [] and chunked_survey.instruments == ["sdss", "cfhtls"]
    _same_catalog(catalog_only.catalog, chunked_survey.catalog)
    assert catalog_only.meta["instruments"] == []
    for key in ("n", "seed", "selection_efficiency", "chunk_size"):
        assert catalog_only.meta[key] == chunked_survey.meta[key], key


def test_varying_conditions_without_images_keep_their_columns():
    with_images = simulate(10, seed=5, instruments=("sdss",), observing="varying")
    without = simulate(10, seed=5, observing="varying", images=False)
    _same_catalog(without.catalog, with_images.catalog)
    assert "psf_fwhm_sdss_r" in without.catalog.colnames


def test_the_cli_writes_a_catalog_only_file(tmp_path, capsys, chunked_survey):
    out = tmp_path / "catalog.h5"
    argv = ["simulate", "--n", "20", "--seed", "77", "--out", str(out), "--quiet"]
    assert main([*argv, "--no-images", "--workers", "1"]) == 0
    assert "20 galaxies, no images" in capsys.readouterr().out
    with GalaxySet.load(out) as survey:
        assert survey.instruments == []
        _same_catalog(survey.catalog, chunked_survey.catalog)


def test_no_images_with_instruments_is_refused(tmp_path, capsys):
    out = tmp_path / "catalog.h5"
    argv = ["simulate", "--n", "2", "--seed", "1", "--out", str(out), "--no-images"]
    assert main([*argv, "--instruments", "sdss"]) == 2
    assert "leave out --instruments" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
