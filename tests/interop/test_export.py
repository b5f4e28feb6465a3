"""``clapkit export``: a run's PDFs as qp, FITS and CSV, read back and compared, and the
refusals that write nothing."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import clapkit
from clapkit.cli import main
from clapkit.errors import OverwriteError, ValidationError
from clapkit.interop import export_pdfs, from_qp
from clapkit.interop.export import catalog_table, infer_format, run_pdfs
from clapkit.metrics import PDFs
from clapkit.runs import RunDir

qp = pytest.importorskip("qp")

EDGES = np.linspace(0.0, 0.4, 41)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run laid out as ``clapkit predict`` leaves it (CLAP with its novelty column and
    a baseline), written through RunDir without training: it takes no time."""
    rng = np.random.default_rng(0)
    n = 25
    z = rng.uniform(0.05, 0.35, n)
    ids = np.arange(n) * 7 + 100_000
    run = RunDir(tmp_path_factory.mktemp("export") / "run")
    clap = PDFs.from_gaussian(
        z + rng.normal(0, 0.02, n), np.full(n, 0.02), EDGES, z_true=z, ids=ids
    )
    run.save_pdfs("clap", clap, {"k": 20}, columns={"novelty": rng.uniform(0, 100, n)})
    softmax = PDFs.from_gaussian(z, np.full(n, 0.01), EDGES, z_true=z, ids=ids)
    run.save_pdfs("softmax", softmax)
    return run


def export(*args):
    return main(["export", *map(str, args)])


def test_qp_export_reads_back_as_the_same_pdfs(run, tmp_path, capsys):
    out = tmp_path / "clap.hdf5"
    assert export("--run", run.root, "--out", out) == 0
    assert "wrote 25 clap PDFs (40 bins) as qp" in capsys.readouterr().out
    pdfs, attrs = run.load_pdfs("clap")
    ensemble = qp.read(str(out))
    back = from_qp(ensemble, EDGES)
    np.testing.assert_allclose(back.p, pdfs.p, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(back.ids, pdfs.ids)
    np.testing.assert_array_equal(back.z_true, pdfs.z_true)
    np.testing.assert_array_equal(ensemble.ancil["novelty"], attrs["columns"]["novelty"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clap.hdf5"]  # no temporaries


def test_fits_export_holds_pdfs_estimates_intervals_columns_and_edges(run, tmp_path):
    out = tmp_path / "pz.fits"
    assert export("--run", run.root, "--method", "clap", "--format", "fits", "--out", out) == 0
    pdfs, attrs = run.load_pdfs("clap")
    table = Table.read(out, hdu="PDFS")
    assert table.colnames == [
        "id", "z_true", "z_mean", "z_median", "z_mode",
        "z_lo68", "z_hi68", "z_lo95", "z_hi95", "novelty", "pdf",
    ]  # fmt: skip
    np.testing.assert_array_equal(table["id"], pdfs.ids)
    np.testing.assert_array_equal(table["z_true"], pdfs.z_true)
    np.testing.assert_array_equal(table["pdf"], pdfs.p)
    np.testing.assert_array_equal(table["novelty"], attrs["columns"]["novelty"])
    np.testing.assert_allclose(table["z_mean"], pdfs.point_estimate("mean"))
    np.testing.assert_allclose(table["z_mode"], pdfs.point_estimate("mode"))
    np.testing.assert_allclose(table["z_median"], pdfs.quantile(0.5))
    # The intervals are central: the PDF holds 68% and 95% between their ends, half the
    # rest on each side.
    for level, (lo, hi) in {"68": (0.16, 0.84), "95": (0.025, 0.975)}.items():
        below = PDFs(pdfs.p, EDGES, z_true=np.asarray(table[f"z_lo{level}"])).pit()
        above = PDFs(pdfs.p, EDGES, z_true=np.asarray(table[f"z_hi{level}"])).pit()
        np.testing.assert_allclose(below, lo, atol=1e-9)
        np.testing.assert_allclose(above, hi, atol=1e-9)
    np.testing.assert_array_equal(Table.read(out, hdu="EDGES")["edges"], EDGES)
    with fits.open(out) as hdus:
        header = hdus["PDFS"].header
        assert (header["METHOD"], header["CLAPVER"]) == ("clap", clapkit.__version__)
        assert (header["NBINS"], header["ZMIN"], header["ZMAX"]) == (40, 0.0, 0.4)
        assert hdus[0].header["METHOD"] == "clap"


def test_csv_export_has_the_scalar_columns_and_the_pdf_only_when_asked(run, tmp_path):
    plain, wide = tmp_path / "pz.csv", tmp_path / "wide.csv"
    assert export("--run", run.root, "--method", "softmax", "--out", plain) == 0
    assert export("--run", run.root, "--method", "softmax", "--out", wide, "--pdf-columns") == 0
    pdfs, _ = run.load_pdfs("softmax")
    table = Table.read(plain, format="ascii.csv")
    assert table.colnames == [
        "id", "z_true", "z_mean", "z_median", "z_mode", "z_lo68", "z_hi68", "z_lo95", "z_hi95",
    ]  # fmt: skip
    np.testing.assert_array_equal(table["id"], pdfs.ids)
    np.testing.assert_allclose(table["z_mean"], pdfs.point_estimate(), rtol=1e-14)
    wide_table = Table.read(wide, format="ascii.csv")
    assert wide_table.colnames[9:] == [f"p_{k:03d}" for k in range(40)]
    p = np.column_stack([wide_table[f"p_{k:03d}"] for k in range(40)])
    np.testing.assert_allclose(p, pdfs.p, rtol=1e-14, atol=0)  # text round trip


def test_a_single_pdf_file_exports_too(run, tmp_path):
    out = tmp_path / "softmax.fits"
    assert export("--pdfs", run.pdf_path("softmax"), "--out", out) == 0
    assert Table.read(out, hdu="PDFS").meta["METHOD"] == "softmax"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "nope"], "no PDFs of method 'nope'; it has clap, softmax"),
        (["--format", "votable"], "unknown format 'votable'; choose one of qp, fits, csv"),
        (["--format", "qp"], "a qp file must end in .hdf5"),
        (["--pdf-columns"], "applies to CSV output only"),
    ],
)
def test_bad_settings_print_one_line_exit_2_and_write_nothing(run, tmp_path, capsys, args, message):
    out = tmp_path / "out.fits"
    assert export("--run", run.root, "--out", out, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_missing_run_or_unknown_suffix_is_one_line(tmp_path, capsys):
    assert export("--run", tmp_path / "absent", "--out", tmp_path / "x.fits") == 2
    assert "absent: no such run directory" in capsys.readouterr().err
    assert export("--run", tmp_path, "--out", tmp_path / "x.fits") == 2
    assert "has no PDFs" in capsys.readouterr().err
    assert export("--run", tmp_path, "--out", tmp_path / "x.txt") == 2
    assert "cannot tell the format from the suffix" in capsys.readouterr().err


def test_a_run_without_clap_needs_a_method(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    run.save_pdfs("knn", PDFs.from_gaussian([0.2], [0.02], EDGES))
    assert export("--run", run.root, "--out", tmp_path / "x.csv") == 2
    assert "no 'clap' PDFs; choose --method from knn" in capsys.readouterr().err


def test_an_existing_output_is_kept_without_overwrite(run, tmp_path, capsys):
    out = tmp_path / "pz.fits"
    out.write_text("precious")
    assert export("--run", run.root, "--out", out) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "precious"
    assert export("--run", run.root, "--out", out, "--overwrite") == 0
    assert Table.read(out, hdu="PDFS")["pdf"].shape == (25, 40)


def test_the_library_functions_refuse_what_the_cli_would(run, tmp_path):
    pdfs, attrs = run_pdfs(run.root)
    assert attrs["method"] == "clap"
    with pytest.raises(ValidationError, match="'z_mean' clashes"):
        catalog_table(pdfs, {"z_mean": np.zeros(pdfs.n)})
    with pytest.raises(ValidationError, match="must have 25 rows"):
        catalog_table(pdfs, {"extra": np.zeros(3)})
    with pytest.raises(ValidationError, match="expected clapkit PDFs"):
        catalog_table(pdfs.p)
    with pytest.raises(OverwriteError):
        export_pdfs(pdfs, tmp_path, "fits")  # a directory
    assert infer_format(tmp_path / "x.FITS") == "fits"


def test_a_write_that_fails_midway_leaves_no_file_and_no_temporaries(run, tmp_path, monkeypatch):
    def half_written(self, filename):
        with open(filename, "wb") as f:
            f.write(b"\x89HDF partial")
        raise OSError("disk full")

    monkeypatch.setattr(qp.Ensemble, "write_to", half_written)
    pdfs, _ = run.load_pdfs("clap")
    with pytest.raises(OSError, match="disk full"):
        export_pdfs(pdfs, tmp_path / "pz.hdf5")
    assert list(tmp_path.iterdir()) == []
