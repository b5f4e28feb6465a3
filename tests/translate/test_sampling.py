"""Many translations per galaxy: reproducible seeds, storage, spread, and KS comparisons."""

import h5py
import numpy as np
import pytest

from clapkit.data import GalaxySet
from clapkit.errors import ValidationError
from clapkit.testing import synthetic_translation_survey
from clapkit.translate.apply import ApplySettings, apply_translator, translate_images
from clapkit.translate.image_metrics import morphology
from clapkit.translate.registry import build_model
from clapkit.translate.sampling import (
    SAMPLES_GROUP,
    StoredSamples,
    ks_comparisons,
    read_sample,
    sample_seed,
    spread_parts,
)
from clapkit.translate.training import default_options, load_translator, train_translator

SMOOTH = {"add_noise": False}
BANDS = list("ugriz")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NR-GAN: with its emulated noise it is stochastic, without it deterministic."""
    root = tmp_path_factory.mktemp("sampling")
    survey = root / "survey.h5"
    synthetic_translation_survey(24, seed=3).save(survey)
    model_dir = root / "nrgan"
    options = default_options("nrgan", epochs=1, batch_size=8)
    train_translator(survey, model_dir, "nrgan", "s2c", preset="tiny", options=options)
    return survey, model_dir


def _real(survey):
    with GalaxySet.load(survey) as galaxies:
        return np.asarray(galaxies.split("test").stacks["cfhtls"].images[:], dtype=np.float64)


def test_sample_seeds_are_reproducible_distinct_and_keep_sample_zero():
    seeds = [sample_seed(7, k) for k in range(8)]
    assert seeds == [sample_seed(7, k) for k in range(8)]
    assert seeds[0] == 7 and len(set(seeds)) == 8
    assert sample_seed(8, 1) not in seeds  # the next seed does not reuse a sample
    assert all(0 <= s < 2**63 for s in seeds)


def test_which_models_are_stochastic():
    def built(name, **config):
        return build_model(name, preset="tiny", config=config, n_bands=5, size=16)

    assert built("nrgan").stochastic and built("diffusion").stochastic
    assert not built("nrgan", add_noise=False).stochastic
    assert not any(built(name).stochastic for name in ("swin", "srgan", "capsule"))


def test_a_noise_injecting_model_draws_reproducible_samples_that_differ(tmp_path, trained):
    survey, model_dir = trained
    settings = ApplySettings(seed=5, n_samples=3)
    out = apply_translator(model_dir, survey, tmp_path / "a.h5", settings)
    again = apply_translator(model_dir, survey, tmp_path / "b.h5", settings)
    a, b = StoredSamples(out, "cfhtls"), StoredSamples(again, "cfhtls")
    assert len(a) == len(b) == 3
    for k in range(3):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    # Sample 0 is the stack every reader reads, and the one-sample translation of the seed.
    single = apply_translator(
        model_dir, survey, tmp_path / "one.h5", ApplySettings(seed=5, n_samples=1)
    )
    with GalaxySet.load(out) as translated, GalaxySet.load(single) as one:
        np.testing.assert_array_equal(translated.stacks["cfhtls"].images[:], a[0])
        np.testing.assert_array_equal(one.stacks["cfhtls"].images[:], a[0])
        assert translated.meta["translation"]["n_samples"] == 3
    assert len(StoredSamples(single, "cfhtls")) == 1
    # Sample k is the translation seeded sample_seed(seed, k), on its own.
    net, spec = load_translator(model_dir)
    with GalaxySet.load(survey) as galaxies:
        k2 = translate_images(net, spec, galaxies.split("test"), seed=sample_seed(5, 2))
    np.testing.assert_array_equal(k2, a[2])
    with pytest.raises(ValidationError, match="sample 3 asked for; the file holds 3"):
        read_sample(out, "cfhtls", 3)


def test_defaults_draw_eight_samples_from_a_stochastic_model_and_one_otherwise(tmp_path, trained):
    survey, model_dir = trained
    noisy = apply_translator(model_dir, survey, tmp_path / "noisy.h5")
    smooth = apply_translator(
        model_dir, survey, tmp_path / "smooth.h5", ApplySettings(overrides=SMOOTH)
    )
    assert len(StoredSamples(noisy, "cfhtls")) == 8
    assert len(StoredSamples(smooth, "cfhtls")) == 1
    with h5py.File(smooth, "r") as f:
        assert SAMPLES_GROUP not in f
    with GalaxySet.load(smooth) as translated:
        assert translated.meta["translation"]["n_samples"] == 1


def test_a_deterministic_model_refuses_several_samples(tmp_path, trained):
    survey, model_dir = trained
    out = tmp_path / "smooth.h5"
    with pytest.raises(ValidationError, match=r"n_samples=3: the nrgan model .* deterministic"):
        apply_translator(model_dir, survey, out, ApplySettings(overrides=SMOOTH, n_samples=3))
    assert not out.exists()


def test_deterministic_samples_have_no_spread_and_noisy_ones_do(tmp_path, trained):
    survey, model_dir = trained
    real = _real(survey)
    net, spec = load_translator(model_dir, overrides=SMOOTH)
    with GalaxySet.load(survey) as galaxies:
        test = galaxies.split("test")
        draws = [translate_images(net, spec, test, seed=sample_seed(0, k)) for k in range(3)]
    np.testing.assert_array_equal(draws[0], draws[2])  # other seeds, the same image
    still = spread_parts(draws, real, BANDS, 0.187).metrics()
    assert still["sample_pixel_spread"] == 0.0
    assert still["sample_flux_spread"] == 0.0 and still["sample_flux_spread_ratio"] == 0.0
    noisy = apply_translator(model_dir, survey, tmp_path / "noisy.h5", ApplySettings(n_samples=4))
    spread = spread_parts(StoredSamples(noisy, "cfhtls"), real, BANDS, 0.187).metrics()
    assert spread["sample_pixel_spread"] > 0 and spread["sample_flux_spread"] > 0


def test_spread_of_pure_sky_noise_draws_is_one_sky_sigma():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:24, :24] - 11.5
    blob = 100 * np.exp(-(xx**2 + yy**2) / 8.0)
    real = blob + rng.normal(0, 2.0, (20, 2, 24, 24))
    draws = [blob + rng.normal(0, 2.0, real.shape) for _ in range(6)]
    parts = spread_parts(draws, real, ["g", "r"], 0.2)
    assert parts.n_samples == 6 and parts.pixel.shape == (20,)
    assert parts.metrics()["sample_pixel_spread"] == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValidationError, match="needs >= 2 samples"):
        spread_parts(draws[:1], real, ["g", "r"], 0.2)
    with pytest.raises(ValidationError, match="sample 1 has shape"):
        spread_parts([draws[0], draws[1][:3]], real, ["g", "r"], 0.2)


def test_ks_of_a_set_against_itself_is_zero_and_of_a_brighter_set_is_one():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:24, :24] - 11.5
    widths = rng.uniform(1.5, 3.0, 40)
    blob = 200 * np.exp(-(xx**2 + yy**2)[None] / (2 * widths[:, None, None] ** 2))
    images = np.repeat(blob[:, None], 2, axis=1)
    table = morphology(images, 0.2, ["g", "r"])
    same = ks_comparisons(table, table, "r")
    assert all(
        same[f"ks_{name}"] == 0.0 and same[f"ks_{name}_p"] == 1.0
        for name in ("flux", "size", "ellipticity", "concentration", "peak")
    )
    brighter = ks_comparisons(morphology(10 * images, 0.2, ["g", "r"]), table, "r")
    # Fluxes ×10 (they span ×4): the two CDFs never overlap; the shapes are untouched.
    assert brighter["ks_flux"] == 1.0 and brighter["ks_flux_p"] < 1e-10
    assert brighter["ks_peak"] == 1.0
    assert brighter["ks_size"] < 0.1 and brighter["ks_size_p"] > 0.5
