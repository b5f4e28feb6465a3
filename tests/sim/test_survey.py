"""Simulating a survey: the GalaxySet it makes, determinism, chunks, files, bad input.

Most tests share two simulations (see conftest.py): ``mock_survey`` (40 galaxies, the
real chunk size) and ``chunked_survey`` (20 galaxies in chunks of 8, seed 77).
"""

import galsim
import numpy as np
import pytest

from clapkit.data import GalaxySet
from clapkit.errors import OverwriteError, ValidationError
from clapkit.sim import CHUNK_SIZE, simulate, simulate_chunk, simulate_to_file, split_unpaired
from clapkit.sim import survey as survey_module
from clapkit.sim.dust import disk_attenuation
from clapkit.sim.instruments import electrons_per_nanomaggy, instrument, sky_nanomaggies_per_pixel
from clapkit.sim.morphology import mean_log_inverse_axis_ratio
from clapkit.sim.population import population_prior

pytestmark = pytest.mark.usefixtures("kcorrect_ready")

TRUTH_COLUMNS = [
    "id",
    "z",
    "log_mstar",
    "restframe_u_r",
    "bulge_fraction",
    "bulge_hlr",
    "disk_hlr",
    "bulge_sersic_n",
    "disk_sersic_n",
    "bulge_q",
    "disk_q",
    "inclination",
    "position_angle",
    "disk_av",
    "ebv",
    "offset_x",
    "offset_y",
]
PHOTOMETRY_COLUMNS = [
    f"{kind}_{band}"
    for kind in ("true_mag", "mag", "magerr")
    for band in [*"ugriz", *(f"cfhtls_{b}" for b in "ugriz"), "w1", "w2", "w3"]
]


# -- what a survey holds -----------------------------------------------------------------


def test_survey_has_sdss_and_cfhtls_stacks_over_the_same_field(mock_survey):
    assert len(mock_survey) == 40
    assert mock_survey.instruments == ["sdss", "cfhtls"]
    expected = {"sdss": ((40, 5, 64, 64), 0.396), "cfhtls": ((40, 5, 136, 136), 0.187)}
    for name, (shape, scale) in expected.items():
        stack = mock_survey.stacks[name]
        assert stack.shape == shape
        assert stack.images.dtype == np.float32
        assert stack.bands == ("u", "g", "r", "i", "z")
        assert stack.zero_points == (22.5,) * 5
        assert stack.units == "nanomaggy"
        assert stack.pixel_scale == pytest.approx(scale)
        assert np.all(np.isfinite(stack.images))
    # Same field of view within one pixel.
    assert abs(64 * 0.396 - 136 * 0.187) < 0.396


def test_catalog_holds_every_truth_column(mock_survey):
    catalog = mock_survey.catalog
    missing = [c for c in TRUTH_COLUMNS + PHOTOMETRY_COLUMNS if c not in catalog.colnames]
    assert not missing
    for name in TRUTH_COLUMNS + PHOTOMETRY_COLUMNS:
        assert np.all(np.isfinite(np.asarray(catalog[name], dtype=float))), name
    assert str(catalog["bulge_hlr"].unit) == "arcsec"
    assert str(catalog["inclination"].unit) == "deg"
    assert all(catalog[name].description for name in TRUTH_COLUMNS)


def test_truth_values_lie_in_their_ranges(mock_survey):
    c = {name: np.asarray(mock_survey.catalog[name]) for name in mock_survey.catalog.colnames}
    assert np.all((c["z"] >= 0.005) & (c["z"] <= 0.7))
    assert np.all((c["inclination"] >= 0) & (c["inclination"] <= 90))
    assert np.all((c["position_angle"] >= 0) & (c["position_angle"] < 180))
    assert np.all(c["bulge_sersic_n"] == 4.0) and np.all(c["disk_sersic_n"] == 1.0)
    assert np.all((c["bulge_q"] >= 0.5) & (c["bulge_q"] <= 1.0))
    assert np.all((c["disk_q"] >= 0.2) & (c["disk_q"] <= 1.0))
    assert np.all((c["bulge_fraction"] >= 0) & (c["bulge_fraction"] <= 0.95))
    assert np.all((c["bulge_hlr"] >= 0.05) & (c["disk_hlr"] >= 0.05))
    assert np.all(c["ebv"] >= 0)
    assert 9.0 < np.median(c["log_mstar"]) < 12.0


def test_every_galaxy_passes_the_sdss_main_sample_selection(mock_survey):
    catalog = mock_survey.catalog
    assert np.all(catalog["petromag_r"] < 17.77)
    # The Petrosian magnitude is the model magnitude plus the source galaxy's offset.
    offset = population_prior().petro_offset[np.asarray(catalog["source_index"]), 2]
    np.testing.assert_allclose(np.asarray(catalog["petromag_r"] - catalog["mag_r"]), offset)


def test_ids_are_unique_and_count_from_one(mock_survey):
    np.testing.assert_array_equal(mock_survey.ids, np.arange(1, 41))


def test_meta_records_the_configuration(mock_survey):
    meta = mock_survey.meta
    assert meta["n"] == 40 and meta["seed"] == 2024
    assert meta["instruments"] == ["sdss", "cfhtls"]
    assert meta["chunk_size"] == CHUNK_SIZE == 256
    assert meta["prior"]["n_real"] == 10_000
    # The prior is itself a selected sample: most draws pass the selection again.
    assert 0.8 < meta["selection_efficiency"] <= 1.0


# -- the images show the catalog's galaxies ----------------------------------------------


def _expected_r_band(row) -> np.ndarray:
    """The galaxy of a catalog row drawn by GalSim directly in SDSS r, without noise."""
    band = instrument("sdss").band("r")
    total = 10 ** (-0.4 * (row["true_mag_r"] + row["extinction_r"] - 22.5))
    # bulge_fraction splits the r-band light before the disk's extra dust.
    dust = disk_attenuation(
        np.array([row["disk_q"]]),
        np.array([row["disk_gamma_v"]]),
        np.array([row["z"]]),
        "sdss",
        mean_log_inverse_axis_ratio(),
    )[0, 2]
    bulge = row["bulge_fraction"]
    disk = (1 - bulge) * 10 ** (-0.4 * dust)
    bulge, disk = total * bulge / (bulge + disk), total * disk / (bulge + disk)
    beta = np.radians(row["position_angle"]) * galsim.radians
    shift = (row["offset_x"], row["offset_y"])
    profile = galsim.DeVaucouleurs(half_light_radius=row["bulge_hlr"], flux=bulge).shear(
        q=row["bulge_q"], beta=beta
    ) + galsim.Exponential(half_light_radius=row["disk_hlr"], flux=disk).shear(
        q=row["disk_q"], beta=beta
    )
    psf = galsim.Moffat(beta=3.0, fwhm=band.psf_fwhm)
    image = galsim.Convolve(profile.shift(shift), psf).drawImage(nx=64, ny=64, scale=0.396)
    return image.array


@pytest.fixture(scope="module")
def expected_r_band(mock_survey) -> np.ndarray:
    return np.stack([_expected_r_band(row) for row in mock_survey.catalog])


def _pixel_variance(model):
    band = instrument("sdss").band("r")
    sky = sky_nanomaggies_per_pixel(band, 0.396)
    return (np.maximum(model, 0) + sky) / electrons_per_nanomaggy(band)


def test_images_match_galsim_renderings_of_the_catalog_truth(mock_survey, expected_r_band):
    # Sizes, shapes, position angles, offsets and fluxes of the catalog, drawn by GalSim
    # independently of the simulator's renderer, leave residuals of pure noise:
    # χ²/pixel ≈ 1 with σ ≈ 0.02 for 4096 pixels. A wrong sign of the position angle
    # alone gives χ²/pixel of 2–10 for the elongated galaxies.
    images = mock_survey.stacks["sdss"].images[:, 2].astype(float)
    chi2 = ((images - expected_r_band) ** 2 / _pixel_variance(expected_r_band)).mean(axis=(1, 2))
    assert np.all(np.abs(chi2 - 1) < 0.15), chi2


def test_stamp_sums_agree_with_catalog_fluxes_within_the_image_noise(mock_survey, expected_r_band):
    catalog = mock_survey.catalog
    aperture = mock_survey.stacks["sdss"].images[:, 2].sum(axis=(1, 2)).astype(float)
    sigma = np.sqrt(_pixel_variance(expected_r_band).sum(axis=(1, 2)))
    # The stamp holds the light inside its 25″ box: de Vaucouleurs wings spill out.
    in_stamp = expected_r_band.sum(axis=(1, 2))
    pulls = (aperture - in_stamp) / sigma
    assert np.all(np.abs(pulls) < 4), pulls
    assert 0.5 < np.std(pulls) < 1.5
    # Against the catalog's total flux (noisy, not extinction corrected): never more
    # light in the stamp than in the galaxy, and most of it.
    flux = np.asarray(catalog["flux_r"])
    total_sigma = np.sqrt(sigma**2 + (flux * catalog["magerr_r"] / 1.0857) ** 2)
    assert np.all(aperture < flux + 4 * total_sigma)
    assert np.median(aperture / flux) > 0.85


def test_galaxies_are_brighter_in_r_than_in_u(mock_survey):
    # Nearly every SDSS main-sample galaxy is brighter in r than in u; the stamps agree.
    sums = mock_survey.stacks["sdss"].images.sum(axis=(2, 3))
    assert np.mean(sums[:, 2] > sums[:, 0]) > 0.9


# -- determinism and chunks --------------------------------------------------------------


def test_the_same_seed_gives_bit_identical_surveys(
    small_chunks, chunked_survey, assert_same_galaxies
):
    assert_same_galaxies(simulate(20, seed=77), chunked_survey)


def test_another_seed_gives_another_survey(small_chunks, chunked_survey):
    other = simulate(20, seed=78)
    assert not np.array_equal(other.catalog["z"], chunked_survey.catalog["z"])
    for name in ("sdss", "cfhtls"):
        assert not np.array_equal(other.stacks[name].images, chunked_survey.stacks[name].images)


def test_two_workers_give_the_output_of_one(small_chunks, chunked_survey, assert_same_galaxies):
    assert_same_galaxies(simulate(20, seed=77, workers=2), chunked_survey)


def test_a_smaller_survey_is_a_prefix_of_a_larger_one(
    small_chunks, chunked_survey, assert_same_galaxies
):
    # 11 galaxies end inside the second chunk of 8.
    assert_same_galaxies(simulate(11, seed=77), chunked_survey[:11])


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_a_chunk_regenerates_alone(small_chunks, chunked_survey, chunk):
    part = simulate_chunk(77, chunk, size=small_chunks)
    rows = slice(chunk * small_chunks, min((chunk + 1) * small_chunks, 20))
    keep = rows.stop - rows.start  # the survey truncates its last chunk
    for name in chunked_survey.catalog.colnames:
        np.testing.assert_array_equal(
            part.columns[name][:keep], np.asarray(chunked_survey.catalog[name][rows]), name
        )
    for name in ("sdss", "cfhtls"):
        np.testing.assert_array_equal(
            part.images[name][:keep], chunked_survey.stacks[name].images[rows]
        )


def test_ids_are_unique_across_chunks(chunked_survey):
    np.testing.assert_array_equal(chunked_survey.ids, np.arange(1, 21))


def test_chunk_ids_do_not_overlap(small_chunks):
    ids = [
        simulate_chunk(5, k, instruments=("sdss",), size=small_chunks).columns["id"] for k in (0, 3)
    ]
    assert not set(ids[0]) & set(ids[1])
    np.testing.assert_array_equal(ids[1], 3 * small_chunks + np.arange(1, small_chunks + 1))


def test_choosing_instruments_changes_no_galaxy_and_no_pixel(
    small_chunks, chunked_survey, assert_same_galaxies
):
    # Each instrument has its own noise stream, so leaving one out changes nothing else.
    cfhtls_only = simulate(20, seed=77, instruments=("cfhtls",))
    assert cfhtls_only.instruments == ["cfhtls"]
    reference = GalaxySet(
        chunked_survey.catalog, {"cfhtls": chunked_survey.stacks["cfhtls"]}, chunked_survey.meta
    )
    assert_same_galaxies(cfhtls_only, reference)


def test_a_repeat_exposure_is_the_same_galaxy_with_independent_noise(
    small_chunks, chunked_survey, assert_same_galaxies
):
    with_repeat = simulate(20, seed=77, instruments=("sdss", "cfhtls", "sdss_repeat"))
    assert with_repeat.instruments == ["sdss", "cfhtls", "sdss_repeat"]
    # Asking for the repeat changes no pixel of the other stacks.
    reference = GalaxySet(
        with_repeat.catalog,
        {name: with_repeat.stacks[name] for name in ("sdss", "cfhtls")},
        chunked_survey.meta,
    )
    assert_same_galaxies(chunked_survey, reference)
    first = np.asarray(with_repeat.stacks["sdss"].images, dtype=np.float64)
    repeat = with_repeat.stacks["sdss_repeat"]
    second = np.asarray(repeat.images, dtype=np.float64)
    assert repeat.pixel_scale == with_repeat.stacks["sdss"].pixel_scale
    assert repeat.bands == with_repeat.stacks["sdss"].bands
    # Same galaxies: the stamp sums agree to within the noise of a difference of two
    # exposures; independent noise: the difference of two sky corners has √2 times the
    # single-exposure scatter, and the two noise fields are uncorrelated.
    corner = (slice(None), slice(None), slice(0, 12), slice(0, 12))
    noise_a, noise_b = first[corner], second[corner]
    sigma = noise_a.std(axis=(0, 2, 3))
    np.testing.assert_allclose(
        (noise_a - noise_b).std(axis=(0, 2, 3)), np.sqrt(2) * sigma, rtol=0.1
    )
    assert abs(np.corrcoef(noise_a.ravel(), noise_b.ravel())[0, 1]) < 0.05
    sums_a, sums_b = first.sum(axis=(2, 3)), second.sum(axis=(2, 3))
    tolerance = 5 * np.sqrt(2 * 64 * 64) * sigma
    assert np.all(np.abs(sums_a - sums_b) < tolerance[None, :])


# -- unpaired subsets --------------------------------------------------------------------


@pytest.mark.parametrize("paired_fraction", [0.0, 0.25, 1.0])
def test_split_unpaired_gives_disjoint_subsets_with_the_right_stacks(mock_survey, paired_fraction):
    parts = split_unpaired(mock_survey, paired_fraction=paired_fraction, seed=1)
    assert list(parts) == ["paired", "sdss", "cfhtls"]
    assert parts["paired"].instruments == ["sdss", "cfhtls"]
    assert parts["sdss"].instruments == ["sdss"] and parts["cfhtls"].instruments == ["cfhtls"]
    ids = {name: set(part.ids.tolist()) for name, part in parts.items()}
    assert len(ids["paired"]) == round(40 * paired_fraction)
    assert abs(len(ids["sdss"]) - len(ids["cfhtls"])) <= 1
    assert not (ids["paired"] & ids["sdss"] or ids["paired"] & ids["cfhtls"])
    assert not ids["sdss"] & ids["cfhtls"]
    assert ids["paired"] | ids["sdss"] | ids["cfhtls"] == set(mock_survey.ids.tolist())
    # Each subset carries the original rows: catalog and pixels.
    row_of = {int(i): k for k, i in enumerate(mock_survey.ids)}
    for name, part in parts.items():
        rows = [row_of[int(i)] for i in part.ids]
        np.testing.assert_array_equal(part.catalog["z"], mock_survey.catalog["z"][rows])
        for instrument_name, stack in part.stacks.items():
            np.testing.assert_array_equal(
                stack.images, mock_survey.stacks[instrument_name].images[rows]
            )
        assert part.meta["subset"] == name


def test_split_unpaired_is_reproducible_and_depends_on_its_seed(mock_survey):
    a = split_unpaired(mock_survey, 0.5, seed=3)
    b = split_unpaired(mock_survey, 0.5, seed=3)
    c = split_unpaired(mock_survey, 0.5, seed=4)
    np.testing.assert_array_equal(a["sdss"].ids, b["sdss"].ids)
    assert not np.array_equal(a["sdss"].ids, c["sdss"].ids)


@pytest.mark.parametrize("paired_fraction", [-0.1, 1.5])
def test_split_unpaired_refuses_fractions_outside_0_1(mock_survey, paired_fraction):
    with pytest.raises(ValidationError, match="paired_fraction"):
        split_unpaired(mock_survey, paired_fraction)


def test_split_unpaired_needs_both_instruments(mock_survey):
    sdss_only = GalaxySet(mock_survey.catalog, {"sdss": mock_survey.stacks["sdss"]})
    with pytest.raises(ValidationError, match="cfhtls"):
        split_unpaired(sdss_only)


# -- files -------------------------------------------------------------------------------


def test_simulate_to_file_writes_what_simulate_returns(
    tmp_path, small_chunks, chunked_survey, assert_same_galaxies
):
    # Three chunks written one by one: bit-identical to the survey in memory, meta too.
    path = simulate_to_file(tmp_path / "survey.h5", 20, seed=77)
    assert path == tmp_path / "survey.h5"
    with GalaxySet.load(path, lazy=False) as loaded:
        assert_same_galaxies(loaded, chunked_survey)
        assert loaded.meta == chunked_survey.meta
        assert loaded.catalog["z"].description == chunked_survey.catalog["z"].description
    assert [p.name for p in tmp_path.iterdir()] == ["survey.h5"]


def test_real_chunks_reproduce_the_shared_survey_through_a_file(
    tmp_path, mock_survey, assert_same_galaxies
):
    # The real chunk size, the shared survey's seed, another run: the same galaxies and
    # SDSS pixels (SDSS only, to keep it cheap; the noise streams are per instrument).
    path = simulate_to_file(tmp_path / "survey.h5", 40, seed=2024, instruments=["sdss"])
    with GalaxySet.load(path) as loaded:
        reference = GalaxySet(mock_survey.catalog, {"sdss": mock_survey.stacks["sdss"]})
        assert_same_galaxies(loaded, reference)
        assert loaded.meta["chunk_size"] == 256


def test_simulate_to_file_meta_matches_simulate_for_any_instrument_order(tmp_path, small_chunks):
    order = ("cfhtls", "sdss")
    in_memory = simulate(4, seed=1, instruments=order)
    with GalaxySet.load(simulate_to_file(tmp_path / "s.h5", 4, 1, order), lazy=False) as loaded:
        assert loaded.instruments == in_memory.instruments
        assert loaded.meta["instruments"] == loaded.instruments
        assert loaded.meta == in_memory.meta


#: Chunk 1 of a survey fails while it is simulated (module level, so that forked workers
#: can unpickle it by name).
_RUN_CHUNK = survey_module._run_chunk


def _fail_at_chunk_1(task):
    if task[1] == 1:
        raise RuntimeError("disk full")
    return _RUN_CHUNK(task)


def _interrupt_at_chunk_1(task):
    if task[1] == 1:
        raise KeyboardInterrupt
    return _RUN_CHUNK(task)


@pytest.mark.parametrize(
    ("workers", "failure", "error"),
    [
        (1, _fail_at_chunk_1, RuntimeError),
        (2, _fail_at_chunk_1, RuntimeError),
        (1, _interrupt_at_chunk_1, KeyboardInterrupt),
    ],
)
def test_an_interrupted_simulation_leaves_no_file(
    tmp_path, monkeypatch, small_chunks, workers, failure, error
):
    # The second of three chunks fails after the first was written to the temporary file.
    monkeypatch.setattr(survey_module, "_run_chunk", failure)
    with pytest.raises(error):
        simulate_to_file(tmp_path / "survey.h5", 20, seed=5, workers=workers)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_simulation_removes_the_partial_file_it_had_written(
    tmp_path, monkeypatch, small_chunks
):
    seen = []

    def interrupt_at_chunk_2(task):
        if task[1] == 2:
            # Two chunks are in the temporary file by now: record it, then press Ctrl-C.
            seen.extend(path.name for path in tmp_path.iterdir())
            raise KeyboardInterrupt
        return _RUN_CHUNK(task)

    monkeypatch.setattr(survey_module, "_run_chunk", interrupt_at_chunk_2)
    with pytest.raises(KeyboardInterrupt):
        simulate_to_file(tmp_path / "survey.h5", 20, seed=5)
    assert len(seen) == 1 and seen[0].startswith(".survey.h5.tmp-")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_overwrite_keeps_the_old_file(tmp_path, monkeypatch, small_chunks):
    path = tmp_path / "survey.h5"
    simulate_to_file(path, 3, seed=5, instruments=("sdss",))
    before = path.read_bytes()
    monkeypatch.setattr(survey_module, "_run_chunk", _fail_at_chunk_1)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate_to_file(path, 20, seed=6, overwrite=True)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_an_existing_file_is_refused_before_any_work(tmp_path, monkeypatch):
    path = tmp_path / "survey.h5"
    path.write_bytes(b"precious")

    def no_work(*args, **kwargs):
        raise AssertionError("simulated although the output exists")

    monkeypatch.setattr(survey_module, "iter_chunks", no_work)
    with pytest.raises(OverwriteError, match="already exists"):
        simulate_to_file(path, 5, seed=1)
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]


def test_overwrite_replaces_an_existing_file(tmp_path, small_chunks):
    path = tmp_path / "survey.h5"
    path.write_bytes(b"old")
    simulate_to_file(path, 3, seed=1, instruments=("sdss",), overwrite=True)
    with GalaxySet.load(path) as loaded:
        assert len(loaded) == 3 and loaded.instruments == ["sdss"]


# -- bad input ---------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ({"n": 0}, "n must be an integer >= 1"),
    ({"n": -3}, "n must be an integer >= 1"),
    ({"n": 2.5}, "n must be an integer >= 1"),
    ({"n": 4.0}, "n must be an integer >= 1"),
    ({"n": "4"}, "n must be an integer >= 1"),
    ({"n": True}, "n must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
    ({"seed": None}, "seed must be an integer >= 0"),
    ({"instruments": ("hst",)}, "instruments must be distinct names"),
    ({"instruments": ("sdss", "sdss")}, "instruments must be distinct names"),
    ({"instruments": ()}, "instruments must be distinct names"),
    ({"instruments": "sdss"}, "instruments must be distinct names"),
    ({"workers": 0}, "workers must be an integer >= 1"),
    ({"workers": -2}, "workers must be an integer >= 1"),
    ({"workers": 1.0}, "workers must be an integer >= 1"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ARGUMENTS)
def test_simulate_refuses_bad_arguments(change, message):
    arguments = {"n": 4, "seed": 1, "instruments": ("sdss",), "workers": 1, **change}
    with pytest.raises(ValidationError, match=message):
        simulate(**arguments)


@pytest.mark.parametrize(("change", "message"), BAD_ARGUMENTS)
def test_simulate_to_file_refuses_bad_arguments_and_writes_nothing(tmp_path, change, message):
    arguments = {"n": 4, "seed": 1, "instruments": ("sdss",), "workers": 1, **change}
    with pytest.raises(ValidationError, match=message):
        simulate_to_file(tmp_path / "survey.h5", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_numpy_integers_are_accepted(small_chunks):
    survey = simulate(np.int64(2), seed=np.uint32(3), instruments=["sdss"], workers=np.int8(1))
    assert len(survey) == 2 and survey.meta["seed"] == 3
