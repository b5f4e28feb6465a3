"""The evaluation table: pixel, morphology and noise fidelity, and the photo-z probe."""

import json

import h5py
import numpy as np
import pytest

from clapkit.data import GalaxySet, ImageStack
from clapkit.errors import FileFormatError, ValidationError
from clapkit.metrics import per_galaxy_parts, sigma_mad
from clapkit.testing import synthetic_translation_survey
from clapkit.translate.evaluate import (
    HEADLINE_METRICS,
    BootstrapConfig,
    compare_images,
    evaluate_task,
    format_evaluation,
)
from clapkit.translate.image_metrics import background_std
from clapkit.translate.peak_photoz import PeakPhotoZ
from clapkit.translate.probe import ProbeConfig, probe_metrics, probe_pdfs
from clapkit.translate.results import (
    interval,
    overlaps_real,
    read_evaluation,
    read_morphology,
    rows_differ,
    task_dir,
)
from clapkit.translate.sampling import KS_COLUMNS, SAMPLES_GROUP, SPREAD_METRICS

BANDS = ["g", "r"]


def _galaxies(n=30, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24] - 11.5
    widths = rng.uniform(1.5, 3.0, n)
    blob = 200 * np.exp(-(xx**2 + yy**2)[None] / (2 * widths[:, None, None] ** 2))
    clean = np.repeat(blob[:, None], 2, axis=1)
    return clean, clean + rng.normal(0, noise, clean.shape)


def test_identical_images_score_perfectly():
    _, real = _galaxies()
    metrics, table, power = compare_images(real, real, BANDS, 0.2)
    assert metrics["psnr"] == np.inf and metrics["ssim"] == pytest.approx(1.0)
    for key in ("size_rel_error", "flux_rel_error", "noise_power_max_rel_error"):
        assert metrics[key] == pytest.approx(0.0, abs=1e-12)
    assert len(table) == 30 and power.shape == (2, 16)


def test_brighter_translation_shows_in_flux_not_in_size():
    clean, real = _galaxies(noise=0.5)
    rng = np.random.default_rng(1)
    brighter = 1.25 * clean + rng.normal(0, 0.5, clean.shape)
    metrics, _, _ = compare_images(brighter, real, BANDS, 0.2)
    assert metrics["flux_rel_error"] == pytest.approx(0.25, abs=0.03)
    assert metrics["peak_flux_rel_error"] == pytest.approx(0.25, abs=0.03)
    assert metrics["size_rel_error"] < 0.05
    # Same noise: the spectra agree up to sampling error and the brighter wings that
    # leak past the source mask into the lowest frequencies (twice the noise gives 3).
    assert metrics["noise_power_max_rel_error"] < 0.4


def test_noise_free_translation_fails_the_noise_test():
    clean, real = _galaxies()
    metrics, _, _ = compare_images(clean + 1e-3 * real, real, BANDS, 0.2)
    assert metrics["noise_power_max_rel_error"] > 0.9
    assert metrics["noise_std_rel_error"] > 0.9


def test_compare_refuses_mismatched_sets():
    _, real = _galaxies()
    with pytest.raises(ValidationError, match="differ in shape"):
        compare_images(real[:, :1], real, BANDS, 0.2)
    with pytest.raises(ValidationError, match="band names"):
        compare_images(real, real, ["r"], 0.2)


def test_compare_images_gives_every_metric_a_reproducible_interval():
    clean, real = _galaxies(n=40, noise=0.5)
    rng = np.random.default_rng(2)
    brighter = 1.25 * clean + rng.normal(0, 0.5, clean.shape)
    config = BootstrapConfig(n_resamples=200, seed=3)
    metrics, _, _ = compare_images(brighter, real, BANDS, 0.2, bootstrap=config)
    for key in [k for k in metrics if not k.endswith("_ci")]:
        lo, hi = metrics[f"{key}_ci"]
        assert lo <= metrics[key] <= hi or np.isnan(lo), key
    # The flux error is 0.25 by construction: inside its interval, which is narrow.
    lo, hi = metrics["flux_rel_error_ci"]
    assert lo < 0.25 < hi and hi - lo < 0.05
    again, _, _ = compare_images(brighter, real, BANDS, 0.2, bootstrap=config)
    assert again == metrics
    other, _, _ = compare_images(
        brighter, real, BANDS, 0.2, bootstrap=BootstrapConfig(n_resamples=200, seed=4)
    )
    assert other["flux_rel_error_ci"] != metrics["flux_rel_error_ci"]
    assert other["flux_rel_error"] == metrics["flux_rel_error"]
    with pytest.raises(ValidationError, match="confidence"):
        BootstrapConfig(confidence=95)


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("survey") / "survey.h5"
    synthetic_translation_survey(60, seed=4).save(path)
    return path


def _write_translated(run, survey_file, name, factor):
    with GalaxySet.load(survey_file) as galaxies:
        test = galaxies.split("test")
        real = test.stacks["cfhtls"]
        images = np.asarray(real.images[:]) * factor
        stack = ImageStack(images, real.bands, real.pixel_scale, real.zero_points, real.units)
        out = task_dir(run, "s2c") / name / "translated.h5"
        GalaxySet(test.catalog, {"cfhtls": stack}).save(out)


def test_evaluate_task_scores_every_set_against_the_real_images(tmp_path, survey_file):
    run = tmp_path / "run"
    _write_translated(run, survey_file, "copy", 1.0)
    _write_translated(run, survey_file, "bright", 1.5)
    probe = ProbeConfig(epochs=2, n_bins=20, crop=None, batch_size=16)
    result = evaluate_task(run, "s2c", survey_file, probe=probe)
    assert set(result["models"]) == {"copy", "bright", "real"}
    assert set(HEADLINE_METRICS) <= set(result["models"]["bright"])
    copy, real = result["models"]["copy"], result["models"]["real"]
    # An exact copy is the real images: same photo-z, perfect pixels (PSNR stored as null).
    assert copy["photoz_sigma_mad"] == pytest.approx(real["photoz_sigma_mad"])
    assert copy["psnr"] is None and real["flux_rel_error"] == 0.0
    assert result["models"]["bright"]["flux_rel_error"] == pytest.approx(0.5, abs=0.05)
    assert result["n_galaxies"] == 12 and set(result["noise_power"]["real"]) == set("ugriz")
    # Stored, readable, refused without overwrite, and printable.
    assert read_evaluation(run, "s2c")["models"]["bright"] == result["models"]["bright"]
    # Every row has an interval beside every metric, from the configured draws.
    assert result["bootstrap"] == {
        "n_resamples": 1000,
        "confidence": 0.95,
        "seed": 0,
        "resampled": "galaxies",
    }
    bright = result["models"]["bright"]
    for key in HEADLINE_METRICS:
        assert f"{key}_ci" in bright, key
    lo, hi = bright["flux_rel_error_ci"]
    assert lo <= bright["flux_rel_error"] <= hi
    # The copy is the real images: their paired difference is exactly 0; the brighter
    # set differs in flux beyond the bootstrap noise.
    assert result["paired_differences"]["models"]["copy"]["flux_rel_error"] == [0.0, 0.0]
    assert rows_differ(result, "bright", "real", "flux_rel_error") is True
    assert rows_differ(result, "copy", "real", "photoz_sigma_mad") is False
    # The probe's metrics from per-galaxy parts are the probe's own.
    with GalaxySet.load(survey_file) as galaxies:
        test = galaxies.split("test")
        p, edges = probe_pdfs(task_dir(run, "s2c") / "probe", test)
        z = np.asarray(test.catalog["z"], dtype=float)
    for key, value in probe_metrics(p, edges, z).items():
        assert real[f"photoz_{key}"] == pytest.approx(value, rel=1e-12)
    # The peak-flux estimator: trained on the real images of the training split, on the
    # probe's bins; the copy's row is the real row, exactly, galaxy for galaxy.
    with GalaxySet.load(survey_file) as galaxies:
        train = galaxies.split("train")
        model = PeakPhotoZ(edges, list("ugriz")).fit_images(
            train.stacks["cfhtls"].images, train.catalog["z"]
        )
        p_peak = model.predict_images(np.asarray(test.stacks["cfhtls"].images[:]))
    z_peak = per_galaxy_parts(p_peak, edges, z)["z_phot"]
    assert real["peakz_sigma_mad"] == pytest.approx(sigma_mad(z_peak, z), rel=1e-12)
    np.testing.assert_allclose(read_morphology(run, "s2c", "copy")["peakz"], z_peak)
    for key in HEADLINE_METRICS:
        if key.startswith("peakz_"):
            assert copy[key] == real[key] and copy[f"{key}_ci"] == real[f"{key}_ci"]
            assert result["paired_differences"]["models"]["copy"][key] == [0.0, 0.0]
    assert rows_differ(result, "copy", "real", "peakz_sigma_mad") is False
    json.loads((task_dir(run, "s2c") / "evaluation.json").read_text())
    with pytest.raises(FileFormatError, match="already exists"):
        evaluate_task(run, "s2c", survey_file, probe=probe)
    assert "bright" in format_evaluation(result)
    # A probe trained with another configuration is not silently reused.
    with pytest.raises(ValidationError, match="another configuration"):
        evaluate_task(run, "s2c", survey_file, probe=ProbeConfig(epochs=3), overwrite=True)


def _add_samples(run, name, extra):
    """Store samples 1 … S−1 in a translated set, as ``apply_translator`` does."""
    with h5py.File(task_dir(run, "s2c") / name / "translated.h5", "a") as f:
        f.require_group(SAMPLES_GROUP).create_dataset("cfhtls", data=extra.astype(np.float32))


def test_evaluate_task_reports_the_spread_between_samples_and_ks_tests(tmp_path, survey_file):
    run = tmp_path / "run"
    _write_translated(run, survey_file, "copy", 1.0)
    _write_translated(run, survey_file, "noisy", 1.0)
    _write_translated(run, survey_file, "frozen", 1.0)
    with GalaxySet.load(survey_file) as galaxies:
        real = np.asarray(galaxies.split("test").stacks["cfhtls"].images[:], dtype=np.float64)
    rng = np.random.default_rng(3)
    sky = np.median(background_std(real), axis=0)  # (B,)
    # Samples 1–3 of "noisy" add one more sky σ of noise each: spread ≈ sky σ.
    noise = rng.normal(0, 1, (3, *real.shape)) * sky[None, None, :, None, None]
    _add_samples(run, "noisy", real[None] + noise)
    _add_samples(run, "frozen", np.repeat(real[None], 2, axis=0))  # identical samples
    probe = ProbeConfig(epochs=2, n_bins=20, crop=None, batch_size=16)
    result = evaluate_task(run, "s2c", survey_file, probe=probe)
    rows = result["models"]
    assert rows["noisy"]["n_samples"] == 4 and rows["copy"]["n_samples"] == 1
    assert "n_samples" not in rows["real"]
    assert not set(SPREAD_METRICS) & set(rows["copy"])  # one sample: no spread
    noisy, frozen = rows["noisy"], rows["frozen"]
    assert noisy["sample_pixel_spread"] == pytest.approx(1.0, abs=0.3)
    assert noisy["sample_flux_spread"] > 0
    lo, hi = noisy["sample_pixel_spread_ci"]
    assert lo <= noisy["sample_pixel_spread"] <= hi
    assert frozen["sample_pixel_spread"] == 0.0 and frozen["sample_flux_spread"] == 0.0
    # Sample 0 of every set is the real images: its distributions are the real ones.
    for name in ("copy", "noisy", "real"):
        for column in KS_COLUMNS:
            assert rows[name][f"ks_{column}"] == 0.0 and rows[name][f"ks_{column}_p"] == 1.0
    table = format_evaluation(result)
    assert "pix spread" in table and "KS flux" in table
    assert read_evaluation(run, "s2c")["models"]["noisy"] == noisy


def test_evaluate_task_needs_translations_of_the_same_galaxies(tmp_path, survey_file):
    run = tmp_path / "run"
    with pytest.raises(FileFormatError, match="clapkit translate apply"):
        evaluate_task(run, "s2c", survey_file)
    with GalaxySet.load(survey_file) as galaxies:
        train = galaxies.split("train")
        GalaxySet(train.catalog, {"cfhtls": train.stacks["cfhtls"]}).save(
            task_dir(run, "s2c") / "wrong" / "translated.h5"
        )
    with pytest.raises(ValidationError, match="differ from the 'test' split"):
        evaluate_task(run, "s2c", survey_file, probe=ProbeConfig(epochs=1, crop=None))
    with pytest.raises(FileFormatError, match="no translated images for"):
        evaluate_task(run, "s2c", survey_file, models=["swin"])


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"batch_size": 1.5}, r"batch_size must be an integer >= 1, got 1\.5"),
        ({"n_bins": 1}, "n_bins must be an integer >= 2, got 1"),
        ({"crop": 4}, "crop must be an integer >= 8, got 4"),
        ({"crop": 32.0}, r"crop must be an integer >= 8, got 32\.0"),
        ({"seed": True}, "seed must be an integer >= 0, got True"),
    ],
)
def test_probe_settings_must_be_whole_numbers(setting, match):
    with pytest.raises(ValidationError, match=match):
        ProbeConfig(**setting)
    assert ProbeConfig(crop=None).crop is None  # no crop


def test_evaluations_written_before_intervals_still_read(tmp_path):
    """An evaluation.json of the previous format (no intervals) reads, prints and
    compares (as unknown)."""
    run = tmp_path / "run"
    row = {key: 0.5 for key in HEADLINE_METRICS}
    old = {
        "task": "s2c",
        "data": "survey.h5",
        "split": "test",
        "n_galaxies": 12,
        "bands": ["g", "r"],
        "models": {"swin": dict(row), "real": {**row, "psnr": None}},
        "noise_power": {"k": [0.1], "swin": {"g": [1.0], "r": [1.0]}},
    }
    folder = task_dir(run, "s2c")
    folder.mkdir(parents=True)
    (folder / "evaluation.json").write_text(json.dumps(old))
    result = read_evaluation(run, "s2c")
    assert result["models"]["swin"] == row
    assert interval(result["models"]["swin"], "psnr") is None
    assert rows_differ(result, "swin", "real", "photoz_sigma_mad") is None
    table = format_evaluation(result)
    assert "bootstrap" not in table and "swin" in table and "—" in table
    assert "KS" not in table and "spread" not in table  # columns only where measured


def test_evaluations_written_before_the_peak_flux_estimator_still_read(tmp_path):
    """A file with intervals but no ``peakz_*`` keys reads and prints (— for them), and
    a file with them round-trips."""
    run = tmp_path / "run"
    keys = [key for key in HEADLINE_METRICS if not key.startswith("peakz_")]
    row = {**{key: 0.5 for key in keys}, **{f"{key}_ci": [0.4, 0.6] for key in keys}}
    old = {
        "task": "s2c",
        "data": "survey.h5",
        "split": "test",
        "n_galaxies": 12,
        "bands": ["g", "r"],
        "models": {"swin": dict(row), "real": dict(row)},
        "noise_power": {"k": [0.1], "swin": {"g": [1.0], "r": [1.0]}},
        "bootstrap": {"n_resamples": 10, "confidence": 0.95, "seed": 0},
        "paired_differences": {
            "reference": "real",
            "models": {"swin": {key: [-0.1, 0.1] for key in keys}},
        },
    }
    folder = task_dir(run, "s2c")
    folder.mkdir(parents=True)
    (folder / "evaluation.json").write_text(json.dumps(old))
    result = read_evaluation(run, "s2c")
    assert result["models"]["swin"] == row
    assert interval(result["models"]["swin"], "peakz_sigma_mad") is None
    assert rows_differ(result, "swin", "real", "peakz_sigma_mad") is None
    assert rows_differ(result, "swin", "real", "photoz_sigma_mad") is False
    assert overlaps_real(result, "peakz_sigma_mad") == {"swin": None}
    assert overlaps_real(result, "photoz_sigma_mad") == {"swin": True}
    lines = format_evaluation(result).splitlines()
    assert lines[1].endswith("peak σ") and lines[2].endswith("—")
    # With the new keys: stored and read back unchanged.
    new = {**row, "peakz_sigma_mad": 0.03, "peakz_sigma_mad_ci": [0.02, 0.05]}
    old["models"]["swin"] = new
    (folder / "evaluation.json").write_text(json.dumps(old))
    stored = read_evaluation(run, "s2c")["models"]["swin"]
    assert stored == new and interval(stored, "peakz_sigma_mad") == (0.02, 0.05)
    old["models"]["real"]["peakz_sigma_mad_ci"] = [0.06, 0.08]  # disjoint: they differ
    (folder / "evaluation.json").write_text(json.dumps(old))
    assert overlaps_real(read_evaluation(run, "s2c"), "peakz_sigma_mad") == {"swin": False}
