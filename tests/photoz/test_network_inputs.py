"""Input specs: what a network reads, frozen at training and checked at prediction."""

from __future__ import annotations

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.photoz.network_inputs import (
    InputSpec,
    check_compatible,
    magnitude_features,
    make_input_spec,
    network_inputs,
    scale_images,
)

EDGES = np.linspace(0.0, 0.4, 21)


def test_image_spec_crops_scales_and_standardises(make_galaxies):
    galaxies = make_galaxies(n=50)
    spec = make_input_spec(galaxies, EDGES, crop=8)
    assert (spec.kind, spec.instrument, spec.bands, spec.image_size, spec.crop) == (
        "images",
        "sdss",
        ["g", "r", "i"],
        16,
        8,
    )
    assert spec.columns == ["ebv"] and spec.net_sizes()["n_extra"] == 1
    # A crop larger than the stored images keeps the whole image.
    assert make_input_spec(galaxies, EDGES, crop=32).crop == 16
    inputs = network_inputs(spec, galaxies, require_z=True)
    assert inputs.x.shape == (50, 3, 8, 8) and inputs.x.dtype == np.float32
    raw = np.asarray(galaxies.stacks["sdss"].images)[:, :, 4:12, 4:12]
    np.testing.assert_allclose(inputs.x, np.sign(raw) * np.log1p(np.abs(raw)), rtol=1e-6)
    # The training split standardises its own extra column to mean 0, std 1.
    np.testing.assert_allclose(inputs.extra.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(inputs.extra.std(), 1.0, atol=1e-5)


def test_feature_spec_defaults_to_colours_a_magnitude_and_the_errors(make_galaxies):
    galaxies = make_galaxies(n=40, images=False)
    spec = make_input_spec(galaxies, EDGES)
    assert spec.columns == [
        "mag_g-mag_r",
        "mag_r-mag_i",
        "mag_r",
        "magerr_g",
        "magerr_r",
        "magerr_i",
    ]
    inputs = network_inputs(spec, galaxies)
    assert inputs.x.shape == (40, 6) and inputs.extra.shape == (40, 0)
    np.testing.assert_allclose(inputs.x.mean(axis=0), 0.0, atol=1e-5)
    # A colour feature is the difference of its two columns, standardised.
    colour = np.asarray(galaxies.catalog["mag_g"]) - np.asarray(galaxies.catalog["mag_r"])
    np.testing.assert_allclose(
        inputs.x[:, 0], (colour - colour.mean()) / colour.std(), rtol=1e-4, atol=1e-5
    )
    again = InputSpec.from_dict(spec.to_dict())
    assert again == spec
    assert magnitude_features(galaxies) == [
        "mag_g",
        "magerr_g",
        "mag_r",
        "magerr_r",
        "mag_i",
        "magerr_i",
    ]
    assert make_input_spec(galaxies, EDGES, features=["magnitudes"]).columns == (
        magnitude_features(galaxies)
    )
    with pytest.raises(ValidationError, match="cannot be mixed"):
        make_input_spec(galaxies, EDGES, features=["colours", "mag_r"])
    with pytest.raises(ValidationError, match=r"lacks feature columns \['mag_q'\]"):
        make_input_spec(galaxies, EDGES, features=["mag_g-mag_q"])


def test_data_that_does_not_match_the_spec_is_refused(make_galaxies):
    spec = make_input_spec(make_galaxies(n=30), EDGES, crop=8)
    with pytest.raises(ValidationError, match="bands"):
        check_compatible(spec, make_galaxies(n=30, bands="gr"))  # i is missing
    # Bands are read by name: a stack with more bands gives the model its own.
    wider = make_galaxies(n=30, bands="zgri")
    check_compatible(spec, wider)
    every_band = make_input_spec(wider, EDGES, crop=8)
    assert every_band.bands == ["z", "g", "r", "i"]
    np.testing.assert_array_equal(
        network_inputs(spec, wider).x, network_inputs(every_band, wider).x[:, 1:]
    )
    alone = make_input_spec(wider, EDGES, crop=8, bands=["r"])
    assert alone.bands == ["r"]
    np.testing.assert_array_equal(
        network_inputs(alone, wider).x, network_inputs(every_band, wider).x[:, 2:3]
    )
    with pytest.raises(ValidationError, match="bands must be distinct bands"):
        make_input_spec(wider, EDGES, bands=["y"])
    with pytest.raises(ValidationError, match="16x16"):
        check_compatible(spec, make_galaxies(n=30, size=24))
    with pytest.raises(ValidationError, match="'sdss' images"):
        check_compatible(spec, make_galaxies(n=30, images=False))
    features = make_input_spec(make_galaxies(n=30, images=False, bands="griz"), EDGES)
    with pytest.raises(ValidationError, match="lacks"):
        check_compatible(features, make_galaxies(n=30, images=False, bands="gri"))


def test_non_finite_inputs_name_the_galaxy(make_galaxies):
    galaxies = make_galaxies(n=30)
    spec = make_input_spec(galaxies, EDGES, crop=8)
    galaxies.stacks["sdss"].images[7, 1, 8, 8] = np.nan
    with pytest.raises(ValidationError, match="galaxy id 1007"):
        network_inputs(spec, galaxies)
    catalog = make_galaxies(n=30, images=False)
    catalog.catalog["magerr_r"][4] = np.inf
    with pytest.raises(ValidationError, match="'magerr_r' is not finite for galaxy id 1004"):
        make_input_spec(catalog, EDGES)


def test_spec_validation(make_galaxies):
    with pytest.raises(ValidationError, match="input kind"):
        InputSpec("pixels", list(EDGES))
    with pytest.raises(ValidationError, match="crop"):
        InputSpec("images", list(EDGES), image_size=16, crop=20)
    with pytest.raises(ValidationError, match="unknown input-spec keys"):
        InputSpec.from_dict({"kind": "features", "edges": [0, 1], "columns": ["a"], "x": 1})
    with pytest.raises(ValidationError, match="empty"):
        make_input_spec(make_galaxies(n=30)[np.array([], dtype=int)], EDGES)
    with pytest.raises(ValidationError, match="no mag_"):
        magnitude_features(make_galaxies(n=5, images=False, bands=""))


def test_scale_images_is_odd_and_monotonic():
    x = np.linspace(-100, 100, 201)
    y = scale_images(x)
    np.testing.assert_allclose(y, -scale_images(-x))
    assert np.all(np.diff(y) > 0)


def test_flux_normalised_images_keep_the_shape_and_drop_the_brightness(make_galaxies):
    galaxies = make_galaxies(n=40)
    mags = np.column_stack([galaxies.catalog[f"mag_{b}"] for b in "gri"])
    flux = 10 ** ((22.5 - mags) / 2.5)  # nanomaggies, a factor ~10 between galaxies
    yy, xx = np.mgrid[:16, :16] - 7.5
    shape = np.exp(-(xx**2 + yy**2) / 8.0)
    shape /= shape.sum()
    galaxies.stacks["sdss"].images[:] = flux[:, :, None, None] * shape  # noiseless
    columns = ["mag_g", "mag_r", "mag_i"]
    spec = make_input_spec(galaxies, EDGES, crop=8, flux_columns=columns)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    x = network_inputs(spec, galaxies).x
    # Every galaxy, whatever its brightness and colours, is the same unit-flux shape.
    np.testing.assert_allclose(x, np.broadcast_to(scale_images(shape[4:12, 4:12]), x.shape),
                               rtol=1e-4, atol=1e-7)  # fmt: skip
    plain = network_inputs(make_input_spec(galaxies, EDGES, crop=8), galaxies).x
    assert np.ptp(plain[:, 1, 4, 4]) > 1.0  # without it the centres differ by magnitudes


def test_flux_normalisation_is_checked(make_galaxies):
    galaxies = make_galaxies(n=30)
    with pytest.raises(ValidationError, match="one magnitude column per band"):
        make_input_spec(galaxies, EDGES, flux_columns=["mag_g", "mag_r"])
    with pytest.raises(ValidationError, match="need an images input"):
        make_input_spec(galaxies, EDGES, features=["mag_g"], flux_columns=["mag_g"])
    galaxies.catalog["mag_r"][3] = np.nan
    with pytest.raises(
        ValidationError, match="flux column 'mag_r' is not finite for galaxy id 1003"
    ):
        make_input_spec(galaxies, EDGES, flux_columns=["mag_g", "mag_r", "mag_i"])
    spec = make_input_spec(make_galaxies(n=30), EDGES, flux_columns=["mag_g", "mag_r", "mag_i"])
    other = make_galaxies(n=30)
    other.catalog.remove_column("mag_i")
    with pytest.raises(ValidationError, match=r"reads catalog columns \['mag_i'\]"):
        check_compatible(spec, other)
