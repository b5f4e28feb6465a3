"""train_run / predict_run end to end on tiny synthetic sets, and their refusals."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from clapkit.cli import main
from clapkit.errors import OverwriteError, ValidationError
from clapkit.evaluation import evaluate_run
from clapkit.metrics import crps, histogram_pdfs
from clapkit.photoz.pipeline import (
    PhotoZTrainSettings,
    output_methods,
    predict_run,
    resolve_config,
    train_run,
)
from clapkit.runs import RunDir

ALL_OUTPUTS = {
    "clap_scl",
    "clap_raw",
    "clap_recal",
    "clap_refit",
    "clap",
    "softmax",
    "mcdropout",
    "gmm",
    "ensemble",
    "temperature",
    "knn_photometry",
}


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def trained_images(tmp_path_factory, make_galaxies, tiny_config):
    """Every method trained and predicted once on the image set (shared: it is the slow part)."""
    root = tmp_path_factory.mktemp("images")
    data = root / "galaxies.h5"
    make_galaxies().save(data)
    run = RunDir(root / "run")
    record = train_run(
        data, run, PhotoZTrainSettings("all", config=tiny_config, n_bins=20, z_max=0.4), log=quiet
    )
    timings = predict_run(run, data, log=quiet)
    return data, run, record, timings


def test_every_method_writes_normalised_pdfs_of_the_test_split(trained_images):
    _, run, record, timings = trained_images
    assert set(run.methods()) == ALL_OUTPUTS
    assert set(timings) == set(record["methods"])
    for method in run.methods():
        pdfs, attrs = run.load_pdfs(method)
        assert pdfs.p.shape == (60, 20)
        np.testing.assert_allclose(pdfs.p.sum(axis=1), 1.0, atol=1e-9)
        assert pdfs.z_true is not None and np.all(pdfs.z_true > 0)
        assert attrs["config"]["preset"] == "tiny"
    ids = [run.load_pdfs(m)[0].ids.tolist() for m in run.methods()]
    assert all(i == ids[0] for i in ids)


def test_clap_keeps_its_neighbours_for_the_dashboards(trained_images):
    _, run, record, _ = trained_images
    pdfs, _ = run.load_pdfs("clap_raw")
    spec = record["input_spec"]
    with h5py.File(run.root / "clap" / "knn.h5") as f:
        k, grid = f["k"][()], f["k_grid"][()]
        neighbours, hist = f["neighbours"][()], f["local_pit_hist"][()]
        train_z, train_ids = f["train_z"][()], f["train_id"][()]
        assert f["latent"].shape == (60, 16)
        assert f["projection"].shape == (60, 2)
        assert f["id"][()].tolist() == pdfs.ids.tolist()
    assert np.isin(k, grid).all()
    assert neighbours.shape == (60, grid[-1])
    np.testing.assert_allclose(hist.sum(axis=1), 1.0, atol=1e-5)
    assert train_ids.size == train_z.size == 180
    # The raw PDF is the histogram of the chosen neighbours' redshifts.
    expected = histogram_pdfs(train_z[neighbours[0, : k[0]]][None], np.asarray(spec["edges"]))
    np.testing.assert_allclose(pdfs.p[0], expected[0])


def test_evaluate_run_scores_every_method(trained_images, tmp_path):
    _, run, _, _ = trained_images
    results = evaluate_run(run, out=tmp_path / "metrics.json")
    assert set(results) == ALL_OUTPUTS
    assert all(0 <= r["summary"]["coverage_68"] <= 1 for r in results.values())


def test_training_again_keeps_finished_methods_and_refuses_other_settings(
    trained_images, tiny_config
):
    data, run, record, _ = trained_images
    messages = []
    again = train_run(
        data,
        run,
        PhotoZTrainSettings("all", config=tiny_config, n_bins=20, z_max=0.4),
        log=messages.append,
    )
    assert again["methods"] == record["methods"]
    assert sum("already trained" in m for m in messages) == len(record["methods"])
    other = {**tiny_config, "seed": 1}
    with pytest.raises(OverwriteError, match="--overwrite"):
        train_run(
            data, run, PhotoZTrainSettings("softmax", config=other, n_bins=20, z_max=0.4), log=quiet
        )


def test_predict_refuses_to_overwrite_before_any_work(trained_images):
    data, run, _, _ = trained_images
    before = run.pdf_path("clap").stat().st_mtime_ns
    with pytest.raises(OverwriteError):
        predict_run(run, data, log=quiet)
    assert run.pdf_path("clap").stat().st_mtime_ns == before


def test_predict_refuses_data_with_other_bands_or_size(trained_images, tmp_path, make_galaxies):
    _, run, _, _ = trained_images
    # Lacking a band the model reads (i): refused. (More bands than it reads are fine.)
    other_bands = tmp_path / "grz.h5"
    make_galaxies(n=50, bands="grz").save(other_bands)
    with pytest.raises(ValidationError, match=r"trained on bands \['g', 'r', 'i'\]"):
        predict_run(run, other_bands, overwrite=True, log=quiet)
    other_size = tmp_path / "big.h5"
    make_galaxies(n=50, size=20).save(other_size)
    with pytest.raises(ValidationError, match="trained on 16x16 images"):
        predict_run(run, other_size, overwrite=True, log=quiet)


def test_a_run_from_another_version_is_refused(trained_images, tmp_path):
    data, run, _, _ = trained_images
    copy = RunDir(tmp_path / "old")
    shutil.copytree(run.root, copy.root)
    record = json.loads((copy.root / "train.json").read_text())
    record["clapkit_version"] = "0.0.1"
    (copy.root / "train.json").write_text(json.dumps(record))
    with pytest.raises(ValidationError, match=r"clapkit 0\.0\.1"):
        predict_run(copy, data, overwrite=True, log=quiet)


def test_catalog_features_train_the_mlp(catalog_file, tmp_path, tiny_config):
    run = RunDir(tmp_path / "run")
    # An MLP this small trains in a second: give it enough steps to learn the colours.
    config = {
        **tiny_config,
        "train": {"epochs": 30, "batch_size": 32, "learning_rate": 1e-2},
        "clap": {**tiny_config["clap"], "refit": {"epochs": 40, "batch_size": 32}},
    }
    record = train_run(
        catalog_file,
        run,
        PhotoZTrainSettings("clap,softmax", config=config, n_bins=20, z_max=0.4),
        log=quiet,
    )
    spec = record["input_spec"]
    assert spec["kind"] == "features"
    assert spec["columns"] == [
        "mag_g-mag_r",
        "mag_r-mag_i",
        "mag_i-mag_z",
        "mag_r",
        *(f"magerr_{b}" for b in "griz"),
    ]
    predict_run(run, catalog_file, log=quiet)
    assert set(run.methods()) == {
        "clap_scl",
        "clap_raw",
        "clap_recal",
        "clap_refit",
        "clap",
        "softmax",
    }
    # CLAP's neighbours know the redshift: far better than the training-set prior (the
    # same histogram for every galaxy), even after a few epochs.
    pdfs, _ = run.load_pdfs("clap_raw")
    with h5py.File(run.root / "clap" / "knn.h5") as f:
        train_z = f["train_z"][()]
    prior = np.tile(histogram_pdfs(train_z[None], pdfs.edges), (pdfs.n, 1))
    assert (
        crps(pdfs.p, pdfs.edges, pdfs.z_true).mean()
        < 0.5 * crps(prior, pdfs.edges, pdfs.z_true).mean()
    )
    # --features picks columns; the run then needs only those.
    chosen = RunDir(tmp_path / "chosen")
    record = train_run(
        catalog_file,
        chosen,
        PhotoZTrainSettings("softmax", config=tiny_config, features=["mag_g", "mag_r"], n_bins=20),
        log=quiet,
    )
    assert record["input_spec"]["columns"] == ["mag_g", "mag_r"]
    # The default grid reaches past every training redshift (rounded up to 0.1).
    assert record["input_spec"]["edges"][-1] == pytest.approx(0.4)


def test_bad_inputs_are_refused_with_the_reason(tmp_path, make_galaxies, tiny_config):
    galaxies = make_galaxies(n=120)
    no_split = tmp_path / "no_split.h5"
    galaxies.catalog.remove_column("split")
    galaxies.save(no_split)
    with pytest.raises(ValidationError, match="no 'split' column"):
        train_run(
            no_split, tmp_path / "a", PhotoZTrainSettings("softmax", config=tiny_config), log=quiet
        )

    far = make_galaxies(n=120)
    far.catalog["z"][0] = 0.9
    if far.catalog["split"][0] != "train":
        far.catalog["split"][0] = "train"
    far_file = tmp_path / "far.h5"
    far.save(far_file)
    with pytest.raises(ValidationError, match="outside the grid"):
        train_run(
            far_file,
            tmp_path / "b",
            PhotoZTrainSettings("softmax", config=tiny_config, z_max=0.4),
            log=quiet,
        )

    nan = make_galaxies(n=120, images=False)
    nan.catalog["mag_g"][3] = np.nan
    nan_file = tmp_path / "nan.h5"
    nan.save(nan_file)
    with pytest.raises(ValidationError, match="mag_g"):
        train_run(
            nan_file, tmp_path / "c", PhotoZTrainSettings("softmax", config=tiny_config), log=quiet
        )

    empty = make_galaxies(n=120)
    empty.catalog["split"] = "test"
    empty_file = tmp_path / "empty.h5"
    empty.save(empty_file)
    with pytest.raises(ValidationError, match="training split is empty"):
        train_run(
            empty_file,
            tmp_path / "d",
            PhotoZTrainSettings("softmax", config=tiny_config),
            log=quiet,
        )

    with pytest.raises(ValidationError, match="unknown methods"):
        train_run(no_split, tmp_path / "e", PhotoZTrainSettings("clap,bogus"), log=quiet)
    with pytest.raises(ValidationError, match="unknown configuration keys"):
        resolve_config({"epochs": 3})
    with pytest.raises(ValidationError, match="projection must be one of"):
        resolve_config({"projection": "tsne"})


def test_clap_stages_carry_the_novelty_percentile(trained_images):
    _, run, _, _ = trained_images
    novelty = [run.load_pdfs(m)[1]["columns"]["novelty"] for m in run.methods() if "clap" in m]
    assert len(novelty) == 5 and all(np.array_equal(c, novelty[0]) for c in novelty)
    assert novelty[0].shape == (60,) and np.all((novelty[0] >= 0) & (novelty[0] <= 100))
    assert "novelty" not in run.load_pdfs("softmax")[1]["columns"]
    with h5py.File(run.root / "clap" / "knn.h5") as f:
        np.testing.assert_array_equal(f["novelty"][()], novelty[0])


def test_a_failed_overwrite_restores_the_previous_training(
    trained_images, tmp_path, tiny_config, monkeypatch
):
    data, run, _, _ = trained_images
    copy = RunDir(tmp_path / "copy")
    shutil.copytree(run.root, copy.root)
    before = {p.relative_to(copy.root): p.read_bytes() for p in copy.root.rglob("*") if p.is_file()}
    # Settings that cannot train are refused before the run is touched.
    bad = {**tiny_config, "clap": {**tiny_config["clap"], "k_min": 500, "k_max": 600}}
    with pytest.raises(ValidationError, match="too few for k_min=500"):
        train_run(
            data,
            copy,
            PhotoZTrainSettings("clap", config=bad, n_bins=20, z_max=0.4),
            overwrite=True,
            log=quiet,
        )
    # A training that fails half-way gives the old one back, file for file.
    import clapkit.photoz.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pipeline, "train_baseline", broken)
    other = {**tiny_config, "seed": 5}
    with pytest.raises(RuntimeError, match="out of memory"):
        train_run(
            data,
            copy,
            PhotoZTrainSettings("knn_photometry,softmax", config=other, n_bins=20),
            overwrite=True,
            log=quiet,
        )
    after = {p.relative_to(copy.root): p.read_bytes() for p in copy.root.rglob("*") if p.is_file()}
    assert after == before
    assert not (copy.root / ".replaced").exists()


def test_an_overwrite_replaces_the_training_and_its_results(catalog_file, tmp_path, tiny_config):
    run = RunDir(tmp_path / "run")
    train_run(
        catalog_file, run, PhotoZTrainSettings("knn_photometry", config=tiny_config), log=quiet
    )
    predict_run(run, catalog_file, log=quiet)
    evaluate_run(run)
    assert (run.root / "metrics.json").is_file()
    record = train_run(
        catalog_file,
        run,
        PhotoZTrainSettings("softmax", config=tiny_config, n_bins=10),
        overwrite=True,
        log=quiet,
    )
    assert set(record["methods"]) == {"softmax"}
    # The old model, PDFs and metrics belonged to the old training: they are gone.
    assert not (run.root / "models" / "knn_photometry").exists()
    assert not run.pdfs_dir.exists() and not (run.root / "metrics.json").exists()
    assert not (run.root / ".replaced").exists()


def test_a_failed_fresh_training_leaves_nothing_to_refuse_the_rerun(
    catalog_file, tmp_path, tiny_config, monkeypatch
):
    import clapkit.photoz.pipeline as pipeline

    real = pipeline.train_baseline

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "train_baseline", broken)
    run = RunDir(tmp_path / "run")
    with pytest.raises(RuntimeError, match="disk full"):
        train_run(catalog_file, run, PhotoZTrainSettings("softmax", config=tiny_config), log=quiet)
    assert not (run.root / "train.json").exists() and not (run.root / "models").exists()
    monkeypatch.setattr(pipeline, "train_baseline", real)
    corrected = {**tiny_config, "seed": 3}
    record = train_run(
        catalog_file, run, PhotoZTrainSettings("softmax", config=corrected), log=quiet
    )
    assert record["methods"]["softmax"]["status"] == "done"


def test_clap_trains_when_the_last_batch_holds_one_galaxy(make_galaxies, tmp_path, tiny_config):
    galaxies = make_galaxies(n=300, images=False, bands="griz")
    n_train = int(np.sum(np.asarray(galaxies.catalog["split"]) == "train"))
    data = tmp_path / "odd.h5"
    galaxies.save(data)
    batch = n_train - 1  # one full batch, then a batch of one galaxy
    config = {**tiny_config, "train": {**tiny_config["train"], "batch_size": batch}}
    config["clap"] = {**config["clap"], "n_realisations": 1}
    record = train_run(
        data, tmp_path / "run", PhotoZTrainSettings("clap", config=config, n_bins=20), log=quiet
    )
    assert record["methods"]["clap"]["status"] == "done"


def test_output_methods_expand_clap_into_its_stages():
    assert output_methods(["softmax", "clap"]) == [
        "softmax",
        "clap_scl",
        "clap_raw",
        "clap_recal",
        "clap_refit",
        "clap",
    ]


def test_cli_train_predict_evaluate(catalog_file, tmp_path, capsys, tiny_config):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config))
    run = str(tmp_path / "run")
    common = ["--data", str(catalog_file), "--run", run]
    assert main(["train", *common, "--method", "softmax", "--config", str(config), "--quiet"]) == 0
    assert main(["predict", *common, "--quiet"]) == 0
    assert main(["evaluate", "--run", run]) == 0
    assert "softmax" in capsys.readouterr().out
    assert main(["predict", *common, "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing.h5"), "--run", run]) == 2
    assert "data file not found" in capsys.readouterr().err


def test_training_on_an_explicit_device(catalog_file, tmp_path, capsys, tiny_config):
    record = train_run(
        catalog_file,
        tmp_path / "cpu",
        PhotoZTrainSettings("softmax", config=tiny_config),
        device="cpu",
        log=print,
    )
    assert record["methods"]["softmax"]["status"] == "done"
    if torch.cuda.is_available():
        return
    run = tmp_path / "gpu"
    argv = ["train", "--data", str(catalog_file), "--run", str(run), "--quiet"]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not run.exists()  # refused before anything is written


def test_the_paper_preset_trains_the_inception_encoder(image_file, tiny_config, tmp_path):
    config = {
        "preset": "paper",
        "crop": 16,
        "net": {"width": 4, "rest_dim": 8, "estimator_hidden": 16},
        "train": {"epochs": 1, "batch_size": 64},
        "baselines": {"ensemble_size": 2},
    }
    run = RunDir(tmp_path / "run")
    record = train_run(
        image_file, run, PhotoZTrainSettings("softmax", config=config, n_bins=10), log=quiet
    )
    assert record["config"]["net"]["kind"] == "paper"
    predict_run(run, image_file, log=quiet)
    pdfs, _ = run.load_pdfs("softmax")
    assert pdfs.p.shape == (60, 10)


def test_a_run_that_records_the_old_preset_name_resumes(catalog_file, tmp_path):
    # Runs trained before clapkit.presets record "compact", the settings of today's "cpu".
    run = RunDir(tmp_path / "run")
    train_run(
        catalog_file,
        run,
        PhotoZTrainSettings("knn_photometry", config={"preset": "cpu"}),
        log=quiet,
    )
    record = json.loads((run.root / "train.json").read_text())
    assert record["config"]["preset"] == "cpu"
    record["config"]["preset"] = "compact"
    (run.root / "train.json").write_text(json.dumps(record))
    again = train_run(
        catalog_file,
        run,
        PhotoZTrainSettings("knn_photometry", config={"preset": "cpu"}),
        log=quiet,
    )
    assert again["methods"]["knn_photometry"]["status"] == "done"
    with pytest.raises(OverwriteError, match="other settings"):
        train_run(
            catalog_file,
            run,
            PhotoZTrainSettings("knn_photometry", config={"preset": "paper"}),
            log=quiet,
        )


def test_old_and_unknown_preset_names_are_refused_with_the_accepted_ones():
    with pytest.raises(ValidationError, match="photo-z preset 'compact' is now called 'cpu'"):
        resolve_config({"preset": "compact"})
    with pytest.raises(ValidationError, match="unknown photo-z preset 'huge'; expected one of"):
        resolve_config({"preset": "huge"})
    assert resolve_config()["preset"] == "cpu"
