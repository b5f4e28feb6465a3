"""Every validation error names what a user needs to find the bad entry."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from clapkit.data import GalaxySet, ImageStack, validate_stack, validation
from clapkit.errors import ValidationError

# -- catalog ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["id", "z"])
def test_missing_column_is_named(missing, make_catalog):
    catalog = make_catalog(4)
    catalog.remove_column(missing)
    with pytest.raises(ValidationError, match=f"no column '{missing}'") as info:
        GalaxySet(catalog)
    assert "ra" in str(info.value)  # lists the columns that are there


def test_catalog_must_be_a_table():
    with pytest.raises(ValidationError, match="astropy Table"):
        GalaxySet({"id": [1], "z": [0.1]})


@pytest.mark.parametrize(("value", "shown"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nonfinite_redshift_names_row_and_value(value, shown, make_catalog):
    catalog = make_catalog(6)
    catalog["z"][4] = value
    with pytest.raises(ValidationError, match="column 'z'") as info:
        GalaxySet(catalog)
    assert f"rows 4 ({shown})" in str(info.value)


def test_negative_redshift_names_rows_and_values(make_catalog):
    catalog = make_catalog(6)
    catalog["z"][1] = -0.5
    catalog["z"][3] = -0.25
    with pytest.raises(ValidationError, match=r">= 0; negative at rows 1 \(-0.5\), 3 \(-0.25\)"):
        GalaxySet(catalog)


def test_zero_redshift_is_allowed(make_catalog):
    catalog = make_catalog(3)
    catalog["z"][0] = 0.0
    assert len(GalaxySet(catalog)) == 3


def test_duplicate_ids_name_the_id_and_its_rows(make_catalog):
    catalog = make_catalog(6)
    catalog["id"][5] = catalog["id"][1]
    with pytest.raises(ValidationError, match=r"column 'id' must be unique: id 101 at rows 1, 5"):
        GalaxySet(catalog)


def test_duplicate_string_ids():
    catalog = Table({"id": ["a", "b", "a"], "z": [0.1, 0.2, 0.3]})
    with pytest.raises(ValidationError, match=r"id 'a' at rows 0, 2"):
        GalaxySet(catalog)


def test_float_ids_are_refused():
    with pytest.raises(ValidationError, match="'id' must hold integers or strings"):
        GalaxySet(Table({"id": [1.0, 2.0], "z": [0.1, 0.2]}))


def test_string_redshifts_are_refused():
    with pytest.raises(ValidationError, match="'z' must hold real numbers"):
        GalaxySet(Table({"id": [1, 2], "z": ["0.1", "0.2"]}))


def test_masked_redshift_names_rows():
    catalog = Table({"id": [1, 2, 3], "z": MaskedColumn([0.1, 0.2, 0.3], mask=[0, 1, 0])})
    with pytest.raises(ValidationError, match=r"'z' has missing \(masked\) values at rows 1"):
        GalaxySet(catalog)


def test_many_bad_rows_are_summarised(make_catalog):
    catalog = make_catalog(20)
    catalog["z"][:] = -1.0
    with pytest.raises(ValidationError, match=r"\.\.\. \(20 rows in all\)"):
        GalaxySet(catalog)


# -- stacks ----------------------------------------------------------------------------


def test_stack_length_must_match_catalog(make_catalog, make_stack):
    with pytest.raises(ValidationError, match=r"instrument 'sdss' has 5 galaxies.*catalog has 6"):
        GalaxySet(make_catalog(6), {"sdss": make_stack(5)})


@pytest.mark.parametrize("name", ["2mass", "cfht ls", "", "a-b", "sdss_mask"])
def test_instrument_names_must_be_identifiers(name, make_catalog, make_stack):
    with pytest.raises(ValidationError, match="instrument name"):
        GalaxySet(make_catalog(3), {name: make_stack(3)})


def test_images_must_be_4d(make_stack):
    stack = make_stack(3)
    stack.images = stack.images[:, 0]
    with pytest.raises(ValidationError, match=r"shape \(N, bands, H, W\); got 3-D"):
        validate_stack(stack, "sdss")


def test_band_count_must_match_images(make_stack):
    stack = make_stack(3, bands=("g", "r", "i"))
    stack.bands = ("g", "r")
    with pytest.raises(ValidationError, match=r"2 band names \('g', 'r'\) for images with 3 bands"):
        validate_stack(stack, "sdss")


def test_zero_point_count_must_match_bands(make_stack):
    stack = make_stack(3)
    stack.zero_points = (22.5, 22.5)
    with pytest.raises(ValidationError, match="2 zero points for 3 bands"):
        validate_stack(stack, "sdss")


def test_band_names_must_be_unique(make_stack):
    stack = make_stack(3)
    stack.bands = ("g", "r", "g")
    with pytest.raises(ValidationError, match="band name 'g' appears twice"):
        validate_stack(stack, "sdss")


def test_band_string_is_not_split_into_letters(make_stack):
    stack = make_stack(3)
    stack.bands = "gri"
    with pytest.raises(ValidationError, match="not the string 'gri'"):
        validate_stack(stack, "sdss")


@pytest.mark.parametrize("scale", [0.0, -0.2, np.nan, np.inf, "0.2", True])
def test_pixel_scale_must_be_finite_positive(scale, make_stack):
    stack = make_stack(3)
    stack.pixel_scale = scale
    with pytest.raises(ValidationError, match="pixel_scale must be a finite number > 0"):
        validate_stack(stack, "sdss")


def test_nonfinite_zero_point_names_band(make_stack):
    stack = make_stack(3)
    stack.zero_points = (22.5, np.nan, 22.5)
    with pytest.raises(ValidationError, match="zero point of band 'r'"):
        validate_stack(stack, "sdss")


def test_float64_is_converted_to_float32(make_stack):
    stack = make_stack(3)
    original = stack.images.astype(np.float64)
    stack.images = original
    checked = validate_stack(stack, "sdss")
    assert checked.images.dtype == np.float32
    np.testing.assert_array_equal(checked.images, original.astype(np.float32))
    assert stack.images is original  # the caller's stack is not changed


def test_float64_beyond_float32_range_is_refused(make_stack):
    stack = make_stack(3)
    stack.images = stack.images.astype(np.float64)
    stack.images[2, 1, 3, 4] = 1e300
    with pytest.raises(ValidationError, match=r"galaxy index 2, band 'r', pixel \(y=3, x=4\)"):
        validate_stack(stack, "sdss")


def test_small_integers_are_converted_large_ones_refused(make_stack):
    stack = make_stack(2)
    stack.images = np.arange(2 * 3 * 8 * 8, dtype=np.int32).reshape(2, 3, 8, 8)
    assert validate_stack(stack, "sdss").images.dtype == np.float32
    stack.images[1, 2, 0, 0] = 2**24 + 1
    with pytest.raises(ValidationError, match="not exactly representable in float32"):
        validate_stack(stack, "sdss")


@pytest.mark.parametrize("dtype", [bool, np.complex64, object])
def test_other_dtypes_are_refused(dtype, make_stack):
    stack = make_stack(2)
    stack.images = np.zeros(stack.images.shape, dtype=dtype)
    with pytest.raises(ValidationError, match="images must be float32"):
        validate_stack(stack, "sdss")


def test_big_endian_float32_becomes_native(make_stack):
    stack = make_stack(2)
    stack.images = stack.images.astype(">f4")
    assert validate_stack(stack, "sdss").images.dtype.isnative


# -- non-finite pixels -----------------------------------------------------------------


def test_nonfinite_pixels_raise_naming_instrument_galaxy_band_and_count(make_catalog, make_stack):
    catalog = make_catalog(5)
    stack = make_stack(5, bands=("g", "r", "i"))
    stack.images[3, 2, 1, 5] = np.nan
    stack.images[4, 0, 0, 0] = np.inf
    with pytest.raises(ValidationError) as info:
        GalaxySet(catalog, {"sdss": stack})
    message = str(info.value)
    assert "instrument 'sdss'" in message
    assert "2 non-finite pixel(s)" in message
    assert "galaxy index 3 (id 103)" in message
    assert "band 'i'" in message
    assert "(y=1, x=5)" in message


def test_scan_is_chunked_and_still_finds_first_and_counts_all(monkeypatch, make_stack):
    # One galaxy per scan step: the first bad pixel and the total must survive chunking.
    monkeypatch.setattr(validation, "_SCAN_ELEMENTS", 1)
    stack = make_stack(6)
    stack.images[5, 0, 0, 0] = np.nan
    stack.images[2, 1, 7, 7] = -np.inf
    stack.images[2, 2, 0, 1] = np.nan
    with pytest.raises(ValidationError, match=r"3 non-finite.*galaxy index 2, band 'r'"):
        validate_stack(stack, "sdss")


def test_mask_mode_replaces_by_zero_and_records(monkeypatch, make_catalog, make_stack):
    monkeypatch.setattr(validation, "_SCAN_ELEMENTS", 64 * 3)  # one galaxy per step
    stack = make_stack(4)
    caller_images = stack.images
    stack.images[1, 0, 2, 2] = np.nan
    stack.images[3, 2, 0, 0] = np.inf
    before = caller_images.copy()
    gs = GalaxySet(make_catalog(4), {"sdss": stack}, nonfinite="mask")
    checked = gs.stacks["sdss"]
    assert checked.n_masked == 2
    assert checked.mask.dtype == bool and checked.mask.shape == stack.images.shape
    assert set(map(tuple, np.argwhere(checked.mask))) == {(1, 0, 2, 2), (3, 2, 0, 0)}
    assert checked.images[1, 0, 2, 2] == 0 and checked.images[3, 2, 0, 0] == 0
    assert np.isfinite(checked.images).all()
    good = ~checked.mask
    np.testing.assert_array_equal(checked.images[good], before[good])
    # The caller's array is not modified.
    np.testing.assert_array_equal(caller_images, before, strict=True)
    gs.validate()


def test_mask_mode_without_bad_pixels_sets_no_mask(make_catalog, make_stack):
    gs = GalaxySet(make_catalog(3), {"sdss": make_stack(3)}, nonfinite="mask")
    assert gs.stacks["sdss"].mask is None and gs.stacks["sdss"].n_masked == 0


def test_unknown_nonfinite_mode(make_catalog, make_stack):
    with pytest.raises(ValidationError, match="nonfinite must be one of"):
        GalaxySet(make_catalog(3), {"sdss": make_stack(3)}, nonfinite="drop")


def test_meta_must_be_json(make_catalog):
    with pytest.raises(ValidationError, match="JSON"):
        GalaxySet(make_catalog(3), meta={"f": object()})


def test_meta_numpy_values_become_python(make_catalog):
    gs = GalaxySet(make_catalog(3), meta={"a": np.float32(1.5), "b": np.arange(2)})
    assert gs.meta == {"a": 1.5, "b": [0, 1]}


def test_image_stack_properties():
    stack = ImageStack(np.zeros((4, 2, 5, 6), np.float32), ["g", "r"], 0.2, [1, 2])
    assert stack.bands == ("g", "r") and stack.zero_points == (1, 2)
    assert stack.n_bands == 2 and stack.shape == (4, 2, 5, 6) and stack.n_galaxies == 4
