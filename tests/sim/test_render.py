"""Rendering: the fast renderer against GalSim, flux, geometry, PSF, noise, validation."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
import scipy.special

from clapkit.errors import ValidationError
from clapkit.sim import render as render_module
from clapkit.sim.instruments import electrons_per_nanomaggy, instrument, sky_nanomaggies_per_pixel
from clapkit.sim.render import Components, add_noise, render, render_naive, render_noiseless

FIELDS = ("bulge_hlr", "disk_hlr", "bulge_q", "disk_q", "position_angle", "offset_x", "offset_y")


def galaxies(n: int, seed: int, hlr=(0.3, 4.0), n_bands: int = 5) -> Components:
    """Random realistic bulge + disk galaxies."""
    rng = np.random.default_rng(seed)
    return Components(
        bulge_flux=rng.uniform(1, 1000, (n, n_bands)),
        disk_flux=rng.uniform(1, 1000, (n, n_bands)),
        bulge_hlr=rng.uniform(*hlr, n),
        disk_hlr=rng.uniform(*hlr, n),
        bulge_q=rng.uniform(0.2, 1, n),
        disk_q=rng.uniform(0.2, 1, n),
        position_angle=rng.uniform(0, np.pi, n),
        offset_x=rng.uniform(-1, 1, n),
        offset_y=rng.uniform(-1, 1, n),
    )


def one(bulge=10.0, disk=0.0, hlr=0.5, q=1.0, angle=0.0, dx=0.0, dy=0.0) -> Components:
    """One galaxy with the same fluxes in the five bands."""
    return Components(
        np.full((1, 5), bulge), np.full((1, 5), disk), [hlr], [hlr], [q], [q], [angle], [dx], [dy]
    )


def peak_error(image: np.ndarray, reference: np.ndarray) -> float:
    """Largest |difference| of any stamp, relative to that stamp's peak."""
    peaks = reference.max(axis=(2, 3))
    return float((np.abs(image - reference).max(axis=(2, 3)) / peaks).max())


# ----------------------------------------------------------------------------- vs GalSim


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
@pytest.mark.parametrize("psf_model", ["moffat", "kolmogorov"])
def test_fast_renderer_agrees_with_naive_galsim(name, psf_model):
    # GalSim's default accuracy settings put the naive images ~1.5e-4 of the peak away
    # from the exact image (see the tight test below), so that is the scale to compare at.
    camera = instrument(name, psf_model)
    components = galaxies(4, seed=11)
    fast, naive = render_noiseless(components, camera), render_naive(components, camera)
    assert fast.shape == naive.shape == (4, 5, camera.stamp_size, camera.stamp_size)
    assert fast.dtype == np.float32
    assert peak_error(fast, naive) < 3e-4


@pytest.mark.parametrize(("name", "hlr"), [("sdss", 0.3), ("sdss", 1.0), ("cfhtls", 0.3)])
def test_fast_renderer_agrees_with_accurate_galsim(name, hlr):
    # Tight GalSim settings give a near-exact reference. Compact galaxies in SDSS test the
    # aliasing of frequencies past Nyquist (the z-band PSF × pixel transform is ~1e-3
    # there); GalSim at its defaults is ~1.5e-4 off on these.
    camera = instrument(name)
    components = one(bulge=60.0, disk=40.0, hlr=hlr, q=0.6, angle=0.5, dx=0.3, dy=-0.2)
    tight = galsim.GSParams(maxk_threshold=1e-6, folding_threshold=1e-4, kvalue_accuracy=1e-7)
    reference = render_naive(components, camera, gsparams=tight)
    assert peak_error(render_noiseless(components, camera), reference) < 5e-5


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_wrapped_light_of_a_large_bulge_is_removed(name, monkeypatch):
    # A 4″ de Vaucouleurs bulge puts ~1% of its flux into the stamp from copies of the
    # periodic FFT image; a 4× padded grid pushes those copies twice as far away.
    camera = instrument(name)
    components = one(bulge=100.0, hlr=4.0, q=0.5, angle=0.3, dx=0.5)
    default = render_noiseless(components, camera)
    grid = render_module._fourier_grid
    monkeypatch.setattr(render_module, "_fourier_grid", lambda inst: grid(inst, padding=4))
    padded = render_noiseless(components, camera)
    assert peak_error(default, padded) < 3e-5
    assert default.sum(axis=(2, 3)) == pytest.approx(padded.sum(axis=(2, 3)), rel=1e-4)


# ----------------------------------------------------------------------------- physics


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_compact_disk_keeps_its_flux(name):
    images = render_noiseless(one(bulge=0.0, disk=50.0, hlr=0.5), instrument(name))
    np.testing.assert_allclose(images.sum(axis=(2, 3)), 50.0, rtol=1e-3)


def test_bulge_loses_only_the_light_beyond_the_stamp():
    # A round 2″ de Vaucouleurs bulge: the stamp sum lies between the flux enclosed by
    # the stamp's inscribed and circumscribed circles (the PSF barely matters out there).
    camera = instrument("sdss")
    hlr, flux = 2.0, 100.0
    sums = render_noiseless(one(bulge=flux, hlr=hlr), camera).sum(axis=(2, 3))
    b = scipy.special.gammaincinv(8, 0.5)

    def enclosed(radius):
        return scipy.special.gammainc(8, b * (radius / hlr) ** 0.25)

    half = camera.field_of_view / 2
    assert (sums > flux * enclosed(half)).all()
    assert (sums < flux * enclosed(half * np.sqrt(2))).all()
    assert sums.min() < 0.99 * flux  # the test would notice a stamp that kept it all


def test_flux_is_linear():
    camera = instrument("sdss")
    components = galaxies(3, seed=5)
    doubled = Components(
        components.bulge_flux * 2,
        components.disk_flux * 2,
        *(getattr(components, field) for field in FIELDS),
    )
    single = render_noiseless(components, camera)
    np.testing.assert_allclose(
        render_noiseless(doubled, camera), 2 * single, rtol=0, atol=1e-5 * single.max()
    )
    bulge_only = Components(
        components.bulge_flux,
        0 * components.disk_flux,
        *(getattr(components, f) for f in FIELDS),
    )
    disk_only = Components(
        0 * components.bulge_flux, components.disk_flux, *(getattr(components, f) for f in FIELDS)
    )
    np.testing.assert_allclose(
        render_noiseless(bulge_only, camera) + render_noiseless(disk_only, camera),
        single,
        rtol=0,
        atol=1e-5 * single.max(),
    )


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_round_galaxy_ignores_position_angle(name):
    camera = instrument(name)
    upright = render_noiseless(one(bulge=20.0, disk=30.0, hlr=1.2), camera)
    turned = render_noiseless(one(bulge=20.0, disk=30.0, hlr=1.2, angle=1.1), camera)
    np.testing.assert_allclose(turned, upright, rtol=0, atol=1e-5 * upright.max())


def test_elongated_galaxy_follows_position_angle():
    camera = instrument("sdss")
    along_x = render_noiseless(one(disk=30.0, hlr=1.5, q=0.3), camera)[0, 2]
    along_y = render_noiseless(one(disk=30.0, hlr=1.5, q=0.3, angle=np.pi / 2), camera)[0, 2]
    # a quarter turn of the position angle is a transpose of the stamp
    np.testing.assert_allclose(along_y, along_x.T, rtol=0, atol=1e-5 * along_x.max())
    assert along_x[31:33, :].sum() > 2 * along_x[:, 31:33].sum()  # long along +x


def centroid(stamp: np.ndarray) -> tuple[float, float]:
    """(row, column) first moments of a stamp, pixels."""
    rows, cols = np.indices(stamp.shape)
    return float((rows * stamp).sum() / stamp.sum()), float((cols * stamp).sum() / stamp.sum())


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_offset_moves_the_centroid(name):
    camera = instrument(name)
    size, scale = camera.stamp_size, camera.pixel_scale
    centred = render_noiseless(one(disk=40.0, hlr=0.4), camera)[0, 3]
    assert centroid(centred) == pytest.approx(((size - 1) / 2, (size - 1) / 2), abs=1e-3)
    dx, dy = 1.3, -0.7  # arcsec: +x along columns, +y along rows
    moved = render_noiseless(one(disk=40.0, hlr=0.4, dx=dx, dy=dy), camera)[0, 3]
    row, col = centroid(moved)
    assert row - (size - 1) / 2 == pytest.approx(dy / scale, abs=0.02)
    assert col - (size - 1) / 2 == pytest.approx(dx / scale, abs=0.02)


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_wider_psf_gives_a_lower_peak(name):
    camera = instrument(name)
    assert camera.band("u").psf_fwhm > camera.band("i").psf_fwhm
    images = render_noiseless(one(bulge=0.0, disk=100.0, hlr=0.02), camera)[0]
    u, i = camera.band_names.index("u"), camera.band_names.index("i")
    assert images[u].max() < 0.9 * images[i].max()
    np.testing.assert_allclose(images.sum(axis=(1, 2)), 100.0, rtol=2e-3)


def test_empty_input_gives_empty_stamps():
    empty = galaxies(3, seed=0).take(np.array([], dtype=int))
    assert render(empty, instrument("cfhtls"), seed=0).shape == (0, 5, 136, 136)


def test_batches_do_not_change_the_result():
    camera = instrument("sdss")
    components = galaxies(5, seed=2)
    whole = render_noiseless(components, camera)
    np.testing.assert_array_equal(render_noiseless(components, camera, batch_size=2), whole)
    np.testing.assert_array_equal(render_noiseless(components.take(3), camera)[0], whole[3])


def test_progress_bar_is_optional(capsys):
    render_noiseless(galaxies(2, seed=0), instrument("sdss"), progress=True)
    assert "galaxy" in capsys.readouterr().err


# ----------------------------------------------------------------------------- noise


def test_noise_is_unbiased_with_poisson_variance():
    camera = instrument("sdss")
    clean = render_noiseless(one(bulge=300.0, disk=500.0, hlr=0.8), camera)
    copies = 300
    stack = np.repeat(clean, copies, axis=0)  # (copies, B, H, W)
    noise = add_noise(stack, camera, np.random.default_rng(3)) - stack
    for b, band in enumerate(camera.bands):
        per_nmgy = electrons_per_nanomaggy(band)
        expected = (clean[0, b] + sky_nanomaggies_per_pixel(band, camera.pixel_scale)) / per_nmgy
        # mean: within 5 standard errors of zero over all pixels
        assert abs(noise[:, b].mean()) < 5 * np.sqrt(expected.mean() / noise[:, b].size)
        # variance per pixel, over the copies: its ratio to the expected variance
        # averages to 1 within 5 standard errors, on the sky and on the galaxy alike
        ratio = noise[:, b].var(axis=0, ddof=1) / expected
        sigma = np.sqrt(2 / (copies - 1))
        assert abs(ratio.mean() - 1) < 5 * sigma / np.sqrt(ratio.size)
        core = clean[0, b] > 5 * sky_nanomaggies_per_pixel(band, camera.pixel_scale)
        assert core.sum() >= 4
        assert abs(ratio[core].mean() - 1) < 5 * sigma / np.sqrt(core.sum())
        # and the galaxy's own photons do make the noise larger there
        assert noise[:, b][:, core].var() > 3 * noise[:, b][:, ~core].var()


def test_same_seed_same_images_other_seed_other_noise():
    camera = instrument("cfhtls")
    components = galaxies(2, seed=4)
    first = render(components, camera, seed=7)
    np.testing.assert_array_equal(render(components, camera, seed=7), first)
    other = render(components, camera, seed=8)
    assert not np.array_equal(other, first)
    noiseless = render(components, camera, seed=7, noise=False)
    np.testing.assert_array_equal(noiseless, render_noiseless(components, camera))
    assert first.dtype == np.float32
    # the noise is sky-subtracted: the background averages to zero
    corner = first[:, :, :20, :20]
    assert abs(corner.mean()) < 0.01 * noiseless.max()


def test_naive_renderer_adds_the_same_noise():
    camera = instrument("sdss")
    components = galaxies(1, seed=1, hlr=(0.5, 1.0))
    clean = render_naive(components, camera)
    noisy = render_naive(components, camera, seed=3, noise=True)
    np.testing.assert_array_equal(noisy, add_noise(clean, camera, np.random.default_rng(3)))


# ----------------------------------------------------------------------------- validation


def replaced(field: str, value) -> dict:
    base = galaxies(3, seed=0)
    arguments = {name: getattr(base, name) for name in ("bulge_flux", "disk_flux", *FIELDS)}
    arguments[field] = value
    return arguments


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "bulge_flux",
            [[1.0] * 5, [2.0] * 5, [1.0, -1.0, 1, 1, 1]],
            r"bulge_flux must be ≥ 0; galaxy 2, band 1",
        ),
        ("disk_flux", np.full((3, 5), np.nan), r"disk_flux must be finite; galaxy 0, band 0"),
        ("bulge_q", [0.5, 0.0, 0.5], r"bulge_q must be in \(0, 1\]; galaxy 1 has 0.0"),
        ("disk_q", [0.5, 0.5, 1.2], r"disk_q must be in \(0, 1\]; galaxy 2 has 1.2"),
        ("bulge_hlr", [1.0, -0.5, 1.0], r"bulge_hlr must be > 0; galaxy 1 has -0.5"),
        ("disk_hlr", [0.0, 1.0, 1.0], r"disk_hlr must be > 0; galaxy 0 has 0.0"),
        ("offset_x", [0.0, np.inf, 0.0], r"offset_x must be finite; galaxy 1 has inf"),
        ("position_angle", [0.0, 0.0, np.nan], r"position_angle must be finite; galaxy 2"),
        (
            "offset_y",
            [0.0, 0.0],
            r"offset_y must have shape \(3,\), one value per galaxy, got \(2,\)",
        ),
        ("disk_flux", np.ones((3, 4)), r"disk_flux must have the shape of bulge_flux \(3, 5\)"),
        ("bulge_flux", np.ones(3), r"bulge_flux must have shape \(N, bands\)"),
        ("disk_q", ["a", "b", "c"], r"disk_q must be an array of numbers"),
    ],
)
def test_bad_components_are_rejected(field, value, message):
    with pytest.raises(ValidationError, match=message):
        Components(**replaced(field, value))


def test_band_count_must_match_the_instrument():
    components = galaxies(2, seed=0, n_bands=3)
    for renderer in (render_noiseless, render_naive):
        with pytest.raises(ValidationError, match=r"3 bands but instrument 'sdss' has 5"):
            renderer(components, instrument("sdss"))
    with pytest.raises(ValidationError, match="3 bands"):
        render(components, instrument("cfhtls"), seed=0)


def test_unknown_instrument_is_rejected():
    with pytest.raises(ValidationError, match="unknown instrument 'lsst'"):
        render(galaxies(1, seed=0), instrument("lsst"), seed=0)


def test_bad_images_for_noise_are_rejected():
    camera, rng = instrument("sdss"), np.random.default_rng(0)
    with pytest.raises(ValidationError, match=r"images must have shape \(N, 5, H, W\)"):
        add_noise(np.zeros((2, 3, 8, 8)), camera, rng)
    images = np.zeros((3, 5, 8, 8), np.float32)
    images[1, 2, 3, 3] = np.nan
    with pytest.raises(ValidationError, match="finite; galaxy 1"):
        add_noise(images, camera, rng)
    images[1, 2, 3, 3] = -10.0
    with pytest.raises(ValidationError, match=r"≥ -sky.*galaxy 1"):
        add_noise(images, camera, rng)
    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got 0"):
        render_noiseless(galaxies(1, seed=0), camera, batch_size=0)
    with pytest.raises(ValidationError, match=r"batch_size must be an integer >= 1, got 8\.0"):
        render_noiseless(galaxies(1, seed=0), camera, batch_size=8.0)
