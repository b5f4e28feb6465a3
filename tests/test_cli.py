"""The clapkit command: help, demo, evaluate and import-fits, with their refusals."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from clapkit.cli import main
from clapkit.data import GalaxySet
from clapkit.demo import DemoConfig, build_demo, report
from clapkit.evaluation import read_galaxy_table
from clapkit.interpret.results import read_true_graph
from clapkit.metrics import PDFs
from clapkit.photoz.details import read_clap_details
from clapkit.runs import RunDir, save_pdfs
from clapkit.sim.graph import true_graph
from clapkit.translate.results import read_evaluation

EDGES = np.linspace(0, 0.4, 81)


def test_help_lists_the_subcommands():
    clapkit = shutil.which("clapkit", path=str(Path(sys.executable).parent))
    assert clapkit, "the clapkit console script is not installed"
    out = subprocess.run([clapkit, "--help"], capture_output=True, text=True, check=True).stdout
    for command in (
        "demo",
        "serve",
        "simulate",
        "sdss",
        "train",
        "predict",
        "evaluate",
        "import-fits",
        "translate",
    ):
        assert command in out


def test_building_the_parser_loads_no_heavy_library():
    # each command's parser lives with its pillar; importing them must stay cheap, or
    # `clapkit --help` waits seconds for PyTorch, GalSim and astropy
    code = (
        "import sys\n"
        "from clapkit.cli import build_parser\n"
        "build_parser().parse_args(['sdss', '--out', 'x.h5'])\n"
        "heavy = {'torch', 'galsim', 'astropy', 'h5py', 'scipy', 'sklearn'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: The demo's steps on a survey of one chunk and networks of a few hundred weights.
TINY_DEMO = DemoConfig(
    n_galaxies=256,
    n_bins=30,
    pipeline={
        "crop": 16,
        "net": {"width": 4, "rest_dim": 8, "estimator_hidden": 32},
        "train": {"epochs": 2, "batch_size": 64},
        "clap": {
            "n_realisations": 2,
            "k_min": 3,
            "k_max": 40,
            "n_k": 6,
            "max_k_fraction": 0.25,
            "n_pit_bins": 10,
            "refit": {"epochs": 2},
            # The test split (~40 galaxies) is too small for the published refit on the
            # targets; the demo's own run (454 test galaxies) uses it.
            "refit_on": "valid",
        },
        "baselines": {"ensemble_size": 2, "mc_samples": 3},
        "projection": "pca",
    },
    translation={
        "n_galaxies": 40,
        "seed": 1,
        "task": "s2c",
        "preset": "tiny",
        "epochs": {"nrgan": 1, "swin": 1},
        "probe_epochs": 1,
    },
    interpretation={
        "input_sets": ["photometry", "images", "images_normalised"],
        "preset": "tiny",
        "epochs": 2,
        "k": 8,  # quadratic conditioning on two columns needs at least 8
        "permutations": 99,
        "bootstrap": 2,
        "attributions": 4,
        "pid_crop": 8,
    },
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs") / "demo"
    build_demo(root, TINY_DEMO, progress=False, log=lambda _: None)
    return root


def test_demo_trains_every_method_and_fills_the_run(demo_run, capsys):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    methods = metrics["methods"]
    assert set(methods) == set(RunDir(demo_run).methods())
    assert {
        "clap",
        "clap_scl",
        "clap_raw",
        "clap_recal",
        "clap_refit",
        "softmax",
        "mcdropout",
        "gmm",
        "ensemble",
        "temperature",
        "knn_photometry",
    } == set(methods)
    n_test = methods["clap"]["summary"]["n"]
    assert all(m["summary"]["n"] == n_test for m in methods.values())
    assert 0 < n_test < 256
    assert (demo_run / "calibration.png").stat().st_size > 10_000
    # A second call reuses the run (nothing is recomputed) and prints the same table.
    stamp = (demo_run / "metrics.json").stat().st_mtime_ns
    lines = []
    again = build_demo(demo_run, TINY_DEMO, progress=False, log=lines.append)
    assert again == metrics and "reusing" in lines[0]
    assert (demo_run / "metrics.json").stat().st_mtime_ns == stamp
    text = report(again, demo_run)
    assert "σ_MAD" in text and "cov95" in text and "mag_r" in text and "clap_refit" in text
    # What the dashboards read: one row per test galaxy, and the 2-D map of the latents.
    table = read_galaxy_table(demo_run / "galaxies.h5")
    assert len(table) == n_test and "clap.pit" in table.colnames and "g_r" in table.colnames
    assert "novelty" in table.colnames
    details = read_clap_details(demo_run / "clap" / "knn.h5")
    assert details.projection.shape == (n_test, 2)
    assert RunDir(demo_run).data_path() == demo_run / "mock_survey.h5"  # moved with the run
    # The translation stage: NR-GAN (with and without its noise) and Swin, evaluated.
    evaluation = read_evaluation(demo_run, "s2c")
    assert set(evaluation["models"]) == {"nrgan", "nrgan_smooth", "swin", "real"}
    assert evaluation["data"] == str(demo_run / "translation_survey.h5")  # moved with the run
    assert "Image translation" in text and "nrgan_smooth" in text
    # The stellar-mass stage: every model scored, every analysis written.
    mass = json.loads((demo_run / "interpret" / "mass" / "metrics.json").read_text())
    assert set(mass["input_sets"]) == {"photometry", "images", "images_normalised"}
    for name in ("causal/local_tests.json", "causal/pc.json", "pid/pid.json"):
        assert (demo_run / "interpret" / name).is_file()
    # On the mock survey the true graph is recorded for the dashboard, with the PC score.
    truth = read_true_graph(demo_run)
    assert truth is not None and set(truth.edges) == set(true_graph(("sdss", "wise")).edges)
    assert (demo_run / "interpret" / "attributions" / "attributions.h5").is_file()
    assert "Stellar mass from each input set" in text and "images" in text


def test_demo_serves_the_app_unless_told_not_to(demo_run, monkeypatch, capsys):
    import clapkit.demo
    import clapkit.serve_cli

    served = []
    monkeypatch.setattr(clapkit.serve_cli, "_cmd_serve", lambda args: served.append(args) or 0)
    monkeypatch.setattr(
        clapkit.demo,
        "build_demo",
        lambda run, **_: json.loads((Path(run) / "metrics.json").read_text()),
    )
    assert main(["demo", "--run", str(demo_run), "--no-serve"]) == 0
    assert "σ_MAD" in capsys.readouterr().out and not served
    assert main(["demo", "--run", str(demo_run), "--port", "5123"]) == 0
    (args,) = served
    assert (args.run, args.port, args.address) == (str(demo_run), 5123, "localhost")


def test_demo_refuses_to_replace_a_folder_that_is_not_a_demo_run(tmp_path, capsys):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["demo", "--run", str(precious), "--quiet"]) == 2
    assert "not a demo run" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_evaluate_pdf_files_writes_json_and_refuses_overwrite(tmp_path, capsys):
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.05, 0.35, 200)
    pdfs = PDFs.from_gaussian(
        mu, np.full(200, 0.02), EDGES, z_true=rng.normal(mu, 0.02).clip(0, 0.4)
    )
    path = save_pdfs(tmp_path / "gauss.h5", pdfs, method="gauss")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--pdfs", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gauss" in printed and "PIT KS" in printed
    stored = json.loads(out.read_text())["methods"]["gauss"]["summary"]
    assert stored["n"] == 200 and stored["crps"] == pytest.approx(pdfs.crps().mean())
    before = out.read_text()
    assert main(["evaluate", "--pdfs", str(path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text() == before
    assert main(["evaluate", "--pdfs", str(path), "--out", str(out), "--overwrite"]) == 0


def test_evaluate_a_run_and_report_missing_things(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    assert main(["evaluate", "--run", str(run.root)]) == 2
    assert "no PDFs" in capsys.readouterr().err
    run.save_pdfs("a", PDFs.from_gaussian([0.1, 0.2], [0.02, 0.02], EDGES, z_true=[0.1, 0.25]))
    assert main(["evaluate", "--run", str(run.root), "--z-bins", "1"]) == 0
    assert "a" in json.loads((run.root / "metrics.json").read_text())["methods"]
    assert main(["evaluate", "--pdfs", str(tmp_path / "nope.h5")]) == 2
    assert "nope.h5: no such file" in capsys.readouterr().err
    # An existing output is refused before any work, whichever flag names it.
    other = tmp_path / "elsewhere.json"
    other.write_text("{}")
    assert main(["evaluate", "--run", str(run.root), "--out", str(other)]) == 2
    assert "--overwrite" in capsys.readouterr().err and other.read_text() == "{}"
    assert main(["evaluate", "--run", str(run.root), "--truth", str(tmp_path / "none.fits")]) == 2
    assert "cannot read the truth catalog" in capsys.readouterr().err


def test_import_fits_writes_a_galaxyset(tmp_path, capsys):
    rng = np.random.default_rng(1)
    Table({"id": [10, 11, 12], "z": [0.1, 0.2, 0.3]}).write(tmp_path / "cat.ecsv")
    cubes = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    paths = []
    for band, cube in zip("gr", cubes, strict=True):
        header = fits.Header({"FILTER": band, "PIXSCALE": 0.2, "MAGZP": 30.0})
        paths.append(tmp_path / f"{band}.fits")
        fits.PrimaryHDU(cube, header=header).writeto(paths[-1])
    out = tmp_path / "set.h5"
    args = ["import-fits", "--catalog", str(tmp_path / "cat.ecsv"), "--instrument", "cam"]
    args += ["--per-band", *map(str, paths), "--out", str(out)]
    assert main(args) == 0
    with GalaxySet.load(out) as galaxies:
        stack = galaxies.stacks["cam"]
        assert list(stack.bands) == ["g", "r"] and stack.pixel_scale == pytest.approx(0.2)
        assert np.array_equal(stack.images[:, 1], cubes[1])
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_sdss_writes_the_real_catalog_ready_to_train(tmp_path, capsys):
    out = tmp_path / "sdss.h5"
    assert main(["sdss", "--out", str(out), "--zmax", "0.3"]) == 0
    with GalaxySet.load(out) as galaxies:
        catalog = galaxies.catalog
        assert set(np.asarray(catalog["split"]).astype(str)) == {"train", "valid", "test"}
        assert np.asarray(catalog["z"]).max() <= 0.3
        assert 9000 < len(galaxies) < 10_000
    assert "left out" in capsys.readouterr().out
    assert main(["sdss", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("zmax", ["-1", "0", "0.001"])
def test_sdss_refuses_a_zmax_that_keeps_no_galaxies(tmp_path, capsys, zmax):
    out = tmp_path / "sdss.h5"
    assert main(["sdss", "--out", str(out), "--zmax", zmax]) == 2
    err = capsys.readouterr().err
    assert "--zmax" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_refuse_a_port_out_of_range_before_any_work(tmp_path, capsys, command):
    run = tmp_path / "run"
    assert main([command, "--run", str(run), "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "99999" in err and err.count("\n") == 1
    assert not run.exists()


def test_a_config_that_is_a_directory_and_a_run_that_is_a_file_are_one_line_errors(
    tmp_path, capsys
):
    data = tmp_path / "sdss.h5"
    assert main(["sdss", "--out", str(data), "--zmax", "0.3"]) == 0
    capsys.readouterr()
    folder = tmp_path / "config"
    folder.mkdir()
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--run", str(run), "--config", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "config" in err and "directory" in err and err.count("\n") == 1
    binary = tmp_path / "config.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    assert main(["train", "--data", str(data), "--run", str(run), "--config", str(binary)]) == 2
    err = capsys.readouterr().err
    assert "config.json: not a text file" in err and err.count("\n") == 1
    assert not run.exists()
    a_file = tmp_path / "not_a_run"
    a_file.write_text("precious")
    for args in (
        ["train", "--data", str(data), "--run", str(a_file), "--method", "softmax"],
        ["predict", "--run", str(a_file), "--data", str(data)],
        ["evaluate", "--run", str(a_file)],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "is a file" in err and err.count("\n") == 1
    assert a_file.read_text() == "precious"


def test_another_librarys_error_and_ctrl_c_are_one_line_and_status_2(monkeypatch, capsys):
    import clapkit.data.cli

    def fail(args):
        raise MemoryError("out of\nmemory")

    def interrupt(args):
        raise KeyboardInterrupt

    def stop_training(args):
        from clapkit.nets.training import TrainingStopped

        raise TrainingStopped("stopped after epoch 2; RUN/net.ckpt resumes it")

    for command, says in (
        (fail, "MemoryError: out of memory"),
        (interrupt, "sdss: interrupted"),
        (stop_training, "interrupted (stopped after epoch 2; RUN/net.ckpt resumes it)"),
    ):
        monkeypatch.setattr(
            clapkit.data.cli, "_cmd_sdss", command
        )  # the parser reads it when built
        assert main(["sdss", "--out", "never.h5"]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1
