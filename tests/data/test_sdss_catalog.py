"""The real SDSS catalog from kcorrect: columns, magnitudes and bookkeeping."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from clapkit.data import sdss_catalog
from clapkit.data.sdss import ASINH_SOFTENING, SDSS_COLUMNS, kcorrect_sdss_path

BANDS = "ugriz"


@pytest.fixture(scope="module")
def raw() -> Table:
    return Table.read(kcorrect_sdss_path())


@pytest.fixture(scope="module")
def gs():
    return sdss_catalog()


def test_size_and_columns(gs):
    assert len(gs) == 10000
    expected = ["id", "ra", "dec", "z", "ebv", "flux_ok"]
    for band in BANDS:
        expected += [f"mag_{band}", f"magerr_{band}", f"petromag_{band}", f"petromagerr_{band}"]
        expected += [f"extinction_{band}"]
    for band in "jhk":
        expected += [f"twomass_{band}", f"twomass_{band}_err"]
    assert set(expected) <= set(gs.catalog.colnames)
    for name in gs.catalog.colnames:
        assert gs.catalog[name].description, name
    assert gs.catalog["ra"].unit == u.deg and gs.catalog["mag_r"].unit == u.mag
    assert gs.catalog["id"].dtype == np.int64 and gs.catalog["z"].dtype == np.float64
    assert gs.ids.tolist() == list(range(1, 10001))
    assert gs.instruments == []


def test_the_column_table_is_the_catalog(gs, raw):
    # one entry per output column, in order, each read from columns the file has
    assert [column.name for column in SDSS_COLUMNS] == gs.catalog.colnames
    for column in SDSS_COLUMNS:
        assert column.sources and set(column.sources) <= set(raw.colnames), column.name
        if column.band is not None:
            assert all(raw[s].shape[1:] == (len(BANDS),) for s in column.sources), column.name
        out = gs.catalog[column.name]
        assert out.unit == column.unit and column.description in out.description
        assert len(out) == len(raw)


def test_values_match_the_file(gs, raw):
    np.testing.assert_array_equal(gs.catalog["ra"], raw["RA"])
    np.testing.assert_array_equal(gs.catalog["z"], raw["Z"].astype(np.float64))
    np.testing.assert_array_equal(gs.catalog["extinction_i"], raw["EXTINCTION"][:, 3])


def test_ebv_relation(gs, raw):
    extinction = np.asarray(raw["EXTINCTION"], dtype=np.float64)
    # The file's extinctions follow the SFD98 coefficients SDSS uses.
    np.testing.assert_allclose(extinction[:, 0] / extinction[:, 2], 5.155 / 2.751, rtol=1e-4)
    np.testing.assert_allclose(gs.catalog["ebv"], extinction[:, 2] / 2.751, rtol=1e-12)


def test_luptitudes_match_pogson_for_bright_galaxies(gs, raw):
    flux = np.asarray(raw["MODELFLUX"], dtype=np.float64)
    extinction = np.asarray(raw["EXTINCTION"], dtype=np.float64)
    for k, band in enumerate(BANDS):
        # Bright: flux far above the softening (b in nanomaggies is ~0.1-0.7).
        bright = flux[:, k] > 100 * ASINH_SOFTENING[band] * 1e9
        assert bright.sum() > 1000
        pogson = 22.5 - 2.5 * np.log10(flux[bright, k]) - extinction[bright, k]
        np.testing.assert_allclose(gs.catalog[f"mag_{band}"][bright], pogson, atol=1e-3, rtol=0)


def test_magnitude_errors(gs, raw):
    flux = np.asarray(raw["MODELFLUX"][:, 2], dtype=np.float64)
    ivar = np.asarray(raw["MODELFLUX_IVAR"][:, 2], dtype=np.float64)
    bright = flux > 100
    pogson_err = 2.5 / np.log(10) / np.sqrt(ivar[bright]) / flux[bright]
    np.testing.assert_allclose(gs.catalog["magerr_r"][bright], pogson_err, rtol=1e-3)


def test_nonpositive_u_flux_rows_keep_finite_magnitudes(gs, raw):
    bad = np.asarray(raw["MODELFLUX"][:, 0]) <= 0
    assert bad.sum() == 12
    assert np.isfinite(gs.catalog["mag_u"][bad]).all()
    assert np.isfinite(gs.catalog["magerr_u"][bad]).all()
    # Zero or negative flux: fainter than the softening flux would be at b.
    assert (gs.catalog["mag_u"][bad] > 24).all()
    assert not gs.catalog["flux_ok"][bad].any()
    assert gs.catalog["flux_ok"].sum() == 10000 - 12


def test_counts_in_meta_equal_counts_in_file(gs, raw):
    meta = gs.meta
    for k, band in enumerate(BANDS):
        assert meta["n_nonpositive_modelflux"][band] == int((raw["MODELFLUX"][:, k] <= 0).sum())
        assert meta["n_nonpositive_petroflux"][band] == int((raw["PETROFLUX"][:, k] <= 0).sum())
    assert meta["n_nonpositive_modelflux"]["u"] == 12
    for band in "jhk":
        n_zero = int((raw[f"{band.upper()}_M_EXT"] == 0).sum())
        assert meta["n_invalid_2mass"][band] == n_zero
        assert np.isnan(gs.catalog[f"twomass_{band}"]).sum() == n_zero
    assert meta["source"]["file"] == "gst_tests_small.fits"
    assert meta["description"]


def test_twomass_invalid_entries_are_nan(gs, raw):
    zero = np.asarray(raw["J_M_EXT"]) == 0
    assert np.isnan(gs.catalog["twomass_j"][zero]).all()
    np.testing.assert_array_equal(gs.catalog["twomass_j"][~zero], raw["J_M_EXT"][~zero])


def test_callers_cannot_mutate_the_cache():
    first = sdss_catalog()
    first.catalog["z"][0] = 99.0
    first.catalog["ra"][:] = 0.0
    second = sdss_catalog()
    assert second.catalog["z"][0] != 99.0 and second.catalog["ra"].max() > 0


def test_with_splits_on_real_catalog(gs):
    split = gs.with_splits(seed=0)
    assert [len(split.split(s)) for s in ("train", "valid", "test")] == [7000, 1500, 1500]
