"""Importing users' FITS cutouts: both layouts, header-derived metadata and every conflict."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from clapkit.data import import_fits
from clapkit.errors import FileFormatError, ValidationError

IDS = [11, 12, 13, 14]
Z = [0.05, 0.1, 0.2, 0.3]


def _wcs_header(scale_arcsec: float, naxis: int = 2, use_cd: bool = False) -> fits.Header:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = 150.0, 2.0
    header["CRPIX1"], header["CRPIX2"] = 8.0, 8.0
    header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
    degrees = scale_arcsec / 3600
    if use_cd:
        header["CD1_1"], header["CD1_2"] = -degrees, 0.0
        header["CD2_1"], header["CD2_2"] = 0.0, degrees
    else:
        header["CDELT1"], header["CDELT2"] = -degrees, degrees
    if naxis == 3:
        header["CTYPE3"], header["CRVAL3"], header["CRPIX3"], header["CDELT3"] = "BAND", 1, 1, 1
    return header


def _cube(galaxy_id: int, n_bands: int = 3, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(galaxy_id)
    return rng.normal(size=(n_bands, size, size)).astype(np.float32)


def _catalog(folder, fmt: str = "fits", id_name: str = "objid", z_name: str = "zspec") -> str:
    table = Table({id_name: IDS, z_name: Z, "label": ["a", "b", "c", "d"]})
    name = {"fits": "cat.fits", "ecsv": "cat.ecsv", "csv": "cat.csv"}[fmt]
    table.write(folder / name)
    return folder / name


def _write_cutouts(folder, header_for=None, data_for=None, names="cut_{id}.fits", extension=False):
    (folder / "cutouts").mkdir(exist_ok=True)
    for galaxy_id in IDS:
        header = fits.Header() if header_for is None else header_for(galaxy_id)
        data = _cube(galaxy_id) if data_for is None else data_for(galaxy_id)
        path = folder / "cutouts" / names.format(id=galaxy_id)
        if extension:
            fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header)]).writeto(path)
        else:
            fits.PrimaryHDU(data, header).writeto(path)


def _band_header(galaxy_id: int, prefix: str = "BAND", bands=("g", "r", "i")) -> fits.Header:
    header = fits.Header()
    for k, band in enumerate(bands, start=1):
        header[f"{prefix}{k}"] = band
        header[f"MAGZP{k}"] = 30.0 + k
    header["PIXSCALE"] = 0.187
    return header


def test_per_galaxy_with_header_metadata(tmp_path):
    catalog = _catalog(tmp_path)
    _write_cutouts(tmp_path, header_for=_band_header)
    gs = import_fits(
        catalog, "cfht", per_galaxy="cutouts/cut_{id}.fits", id_column="objid", z_column="zspec"
    )
    stack = gs.stacks["cfht"]
    assert stack.bands == ("g", "r", "i")
    assert stack.pixel_scale == pytest.approx(0.187)
    assert stack.zero_points == (31.0, 32.0, 33.0)
    assert stack.units == "counts"
    assert gs.ids.tolist() == IDS and gs.catalog["z"].tolist() == Z
    assert gs.catalog["label"].dtype.kind == "U"  # FITS bytes became str
    for row, galaxy_id in enumerate(IDS):
        np.testing.assert_array_equal(stack.images[row], _cube(galaxy_id))
    assert gs.meta["import"]["layout"] == "per_galaxy"
    assert gs.meta["import"]["instrument"] == "cfht"


def test_per_galaxy_filter_keywords_wcs_scale_and_image_extension(tmp_path):
    catalog = _catalog(tmp_path, "ecsv", id_name="id", z_name="z")

    def header(galaxy_id):
        h = _wcs_header(0.396, naxis=3)
        for k, band in enumerate("ugr", start=1):
            h[f"FILTER{k}"] = band
        return h

    _write_cutouts(tmp_path, header_for=header, extension=True)
    gs = import_fits(
        catalog,
        "sdss",
        per_galaxy=str(tmp_path / "cutouts" / "cut_{id}.fits"),  # absolute pattern
        bands=["u", "g", "r"],  # agrees with the headers
        zero_points=[22.5, 22.5, 22.5],
        units="nanomaggy",
    )
    stack = gs.stacks["sdss"]
    assert stack.bands == ("u", "g", "r")
    assert stack.pixel_scale == pytest.approx(0.396, rel=1e-9)
    assert stack.units == "nanomaggy"
    np.testing.assert_array_equal(stack.images[2], _cube(13))


def _write_band_files(folder, bands=("g", "r"), scale=0.2, keyword="FILTER", zps=True, n=4):
    paths = []
    for k, band in enumerate(bands):
        header = _wcs_header(scale, use_cd=True)
        if keyword:
            header[keyword] = band
        if zps:
            header["MAGZP"] = 27.0 + k
        data = np.stack([_cube(i, 1, 10)[0] + k for i in IDS[:n]])
        path = folder / f"{band}_{k}.fits"
        fits.PrimaryHDU(data.astype(">f4"), header).writeto(path)
        paths.append(path.name)
    return paths


def test_per_band_with_cd_matrix_wcs(tmp_path):
    catalog = _catalog(tmp_path, "csv", id_name="id", z_name="z")
    files = _write_band_files(tmp_path, bands=("g", "r"), scale=0.2, keyword="BAND")
    gs = import_fits(catalog, "hsc", per_band=files)
    stack = gs.stacks["hsc"]
    assert stack.bands == ("g", "r")
    assert stack.pixel_scale == pytest.approx(0.2, rel=1e-9)
    assert stack.zero_points == (27.0, 28.0)
    assert stack.images.dtype == np.float32 and stack.images.dtype.isnative
    assert stack.shape == (4, 2, 10, 10)
    np.testing.assert_array_equal(stack.images[3, 1], _cube(14, 1, 10)[0] + 1)
    assert gs.meta["import"]["layout"] == "per_band"


def test_catalog_table_input_is_not_modified(tmp_path):
    table = Table({"objid": IDS, "zspec": Z})
    files = [str(tmp_path / f) for f in _write_band_files(tmp_path)]
    gs = import_fits(table, "x", per_band=files, id_column="objid", z_column="zspec")
    assert table.colnames == ["objid", "zspec"] and len(gs) == 4


# -- conflicts and missing information -------------------------------------------------


def test_no_band_names_anywhere(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path)
    with pytest.raises(ValidationError, match=r"no band names.*pass bands= with 3 names"):
        import_fits(
            catalog, "x", per_galaxy="cutouts/cut_{id}.fits", pixel_scale=0.2, zero_points=[0] * 3
        )
    gs = import_fits(
        catalog,
        "x",
        per_galaxy="cutouts/cut_{id}.fits",
        bands=["g", "r", "i"],
        pixel_scale=0.2,
        zero_points=[0, 0, 0],
    )
    assert gs.stacks["x"].bands == ("g", "r", "i")


def test_bands_argument_disagrees_with_header(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, header_for=_band_header)
    with pytest.raises(ValidationError, match=r"bands=\('g', 'r', 'z'\) disagrees .*cut_11\.fits"):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits", bands=["g", "r", "z"])


def test_files_disagree_on_bands(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")

    def header(galaxy_id):
        return _band_header(
            galaxy_id, bands=("g", "r", "z") if galaxy_id == 13 else ("g", "r", "i")
        )

    _write_cutouts(tmp_path, header_for=header)
    with pytest.raises(
        ValidationError, match=r"files disagree: .*cut_11\.fits says .*cut_13\.fits says"
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_band_header_in_some_files_only(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, header_for=lambda i: fits.Header() if i == 14 else _band_header(i))
    with pytest.raises(ValidationError, match=r"cut_11\.fits gives it .*cut_14\.fits does not"):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_header_band_count_differs_from_cube(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, header_for=lambda i: _band_header(i, bands=("g", "r")))
    with pytest.raises(
        ValidationError, match=r"cut_11\.fits: header has BAND1\.\.BAND2 .*cube has 3 bands"
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_pixel_scale_argument_conflicts_with_header(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, header_for=_band_header)
    with pytest.raises(ValidationError, match=r"pixel_scale=0\.2 disagrees .*says 0\.187"):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits", pixel_scale=0.2)
    gs = import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits", pixel_scale=0.187)
    assert gs.stacks["x"].pixel_scale == pytest.approx(0.187)


def test_pixscale_conflicts_with_wcs(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")

    def header(galaxy_id):
        h = _wcs_header(0.396, naxis=3)
        h.update(_band_header(galaxy_id))  # PIXSCALE = 0.187
        return h

    _write_cutouts(tmp_path, header_for=header)
    with pytest.raises(
        ValidationError, match=r"cut_11\.fits: PIXSCALE = 0\.187 .*WCS pixel scale 0\.396"
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_pixel_scales_of_band_files_disagree(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    files = _write_band_files(tmp_path, bands=("g",), scale=0.2)
    files += _write_band_files(tmp_path, bands=("r", "i"), scale=0.25)[1:]
    with pytest.raises(
        ValidationError, match=r"pixel_scale: files disagree: .*g_0\.fits.*i_1\.fits"
    ):
        import_fits(catalog, "x", per_band=files)


def test_no_pixel_scale_or_zero_points(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path)
    with pytest.raises(ValidationError, match=r"no pixel scale .*pass pixel_scale="):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits", bands=["a", "b", "c"])
    with pytest.raises(ValidationError, match=r"no zero points .*pass zero_points= with 3 values"):
        import_fits(
            catalog, "x", per_galaxy="cutouts/cut_{id}.fits", bands=["a", "b", "c"], pixel_scale=1.0
        )


def test_zero_point_argument_conflicts_with_header(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    files = _write_band_files(tmp_path)
    with pytest.raises(
        ValidationError, match=r"zero_points=\(27\.0, 29\.0\) disagrees .*g_0\.fits"
    ):
        import_fits(catalog, "x", per_band=files, zero_points=[27.0, 29.0])


def test_two_band_files_with_same_filter(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    files = _write_band_files(tmp_path, bands=("g", "r"))
    (tmp_path / "other").mkdir()
    files += _write_band_files(tmp_path / "other", bands=("g",))  # another file saying g
    files[-1] = str(tmp_path / "other" / files[-1])
    with pytest.raises(ValidationError, match=r"band 'g' is named by two files"):
        import_fits(catalog, "x", per_band=files)


# -- file problems ---------------------------------------------------------------------


def test_missing_cutout_names_file_and_id(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, header_for=_band_header)
    (tmp_path / "cutouts" / "cut_13.fits").unlink()
    with pytest.raises(
        FileFormatError, match=r"cut_13\.fits: file not found \(cutout of galaxy id 13, row 2\)"
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_wrong_ndim(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, data_for=lambda i: _cube(i)[0])
    with pytest.raises(
        FileFormatError, match=r"cut_11\.fits: expected a cube of shape \(bands, H, W\), got 2-D"
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_shape_mismatch_between_galaxies(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    _write_cutouts(tmp_path, data_for=lambda i: _cube(i, size=20 if i == 12 else 16))
    with pytest.raises(
        FileFormatError,
        match=r"cut_12\.fits: .*\(3, 20, 20\); expected \(3, 16, 16\) like .*cut_11\.fits",
    ):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")


def test_band_file_with_wrong_number_of_rows(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    files = _write_band_files(tmp_path, bands=("g",), n=3)
    with pytest.raises(
        FileFormatError, match=r"g_0\.fits: has 3 images but the catalog has 4 rows"
    ):
        import_fits(catalog, "x", per_band=files)


def test_missing_catalog_and_columns(tmp_path):
    with pytest.raises(FileFormatError, match=r"nope\.fits: catalog file not found"):
        import_fits(tmp_path / "nope.fits", "x", per_band=["a.fits"])
    catalog = _catalog(tmp_path)
    with pytest.raises(ValidationError, match=r"no column 'id' for 'id' .*pass id_column="):
        import_fits(catalog, "x", per_band=["a.fits"])


def test_exactly_one_layout(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    with pytest.raises(ValidationError, match="exactly one of per_galaxy"):
        import_fits(catalog, "x")
    with pytest.raises(ValidationError, match="exactly one of per_galaxy"):
        import_fits(catalog, "x", per_galaxy="{id}.fits", per_band=["a.fits"])


def test_pattern_without_id(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")
    with pytest.raises(ValidationError, match=r"containing '\{id\}'"):
        import_fits(catalog, "x", per_galaxy="cutouts/all.fits")


def test_nonfinite_pixels_in_cutouts(tmp_path):
    catalog = _catalog(tmp_path, id_name="id", z_name="z")

    def data(galaxy_id):
        cube = _cube(galaxy_id)
        if galaxy_id == 13:
            cube[1, 4, 4] = np.nan
        return cube

    _write_cutouts(tmp_path, header_for=_band_header, data_for=data)
    with pytest.raises(ValidationError, match=r"galaxy index 2 \(id 13\), band 'r'"):
        import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits")
    gs = import_fits(catalog, "x", per_galaxy="cutouts/cut_{id}.fits", nonfinite="mask")
    assert gs.stacks["x"].n_masked == 1 and gs.stacks["x"].mask[2, 1, 4, 4]
