"""``clapkit figures``: every format written with its CSV, and refusals that write
nothing."""

import struct
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from clapkit.cli import main
from clapkit.plots import cli as figures_cli
from clapkit.plots import plan_figures, style
from clapkit.plots.style import RASTER_DPI, WIDTHS
from clapkit.testing import SyntheticRunConfig, synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return synthetic_run(
        tmp_path_factory.mktemp("cli") / "run", SyntheticRunConfig(n_test=30, n_train=60)
    )


def png_width(path):
    """Pixel width from a PNG's header (IHDR)."""
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_every_figure_is_written_in_each_format_with_its_numbers(run, tmp_path, capsys):
    out = tmp_path / "figures"
    assert (
        main(
            [
                "figures",
                "--run",
                str(run.root),
                "--out",
                str(out),
                "--format",
                "pdf,svg,png",
                "--quiet",
            ]
        )
        == 0
    )
    names = plan_figures(run).names
    expected = {f"{n}.{ext}" for n in names for ext in ("pdf", "svg", "png", "csv")}
    assert {p.name for p in out.iterdir()} == expected
    assert (out / "galaxy.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (out / "galaxy.svg").read_bytes()[:500]
    assert png_width(out / "coverage_curves.png") == round(WIDTHS["single"] * RASTER_DPI)
    table = Table.read(out / "pit_histograms.csv", format="ascii.csv")
    assert table["count"].sum() == 30 * len(run.methods())
    printed = capsys.readouterr().out
    assert f"to {out}" in printed and "skipped translation figures" in printed


def test_double_width_doubles_the_page(run, tmp_path):
    out = tmp_path / "wide"
    args = ["figures", "--run", str(run.root), "--out", str(out), "--format", "png"]
    assert main([*args, "--width", "double", "--quiet"]) == 0
    assert png_width(out / "coverage_curves.png") == round(WIDTHS["double"] * RASTER_DPI)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "pdf,docx"], "unknown figure format 'docx'"),
        (["--galaxy", "nope"], "--galaxy nope: not among"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(run, tmp_path, capsys, extra, message):
    out = tmp_path / "figures"
    assert main(["figures", "--run", str(run.root), "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_missing_or_empty_run_is_refused(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["figures", "--run", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["figures", "--run", str(tmp_path / "empty"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds nothing to plot" in err and "clapkit predict" in err
    assert not out.exists()


def test_a_bad_width_is_refused_by_the_parser(run, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["figures", "--run", str(run.root), "--out", str(tmp_path), "--width", "triple"])
    assert exit_info.value.code == 2


def test_existing_figures_are_kept_without_overwrite(run, tmp_path, capsys):
    out = tmp_path / "figures"
    args = ["figures", "--run", str(run.root), "--out", str(out), "--format", "svg", "--quiet"]
    assert main(args) == 0
    (out / "galaxy.svg").write_text("mine")
    (out / "coverage_curves.csv").unlink()
    before = sorted(p.name for p in out.iterdir())
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "galaxy.svg").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == before  # not even the missing CSV
    assert main([*args, "--overwrite"]) == 0
    assert (out / "galaxy.svg").read_text() != "mine" and (out / "coverage_curves.csv").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


def test_the_parser_offers_what_the_style_module_writes():
    assert sorted(figures_cli.WIDTH_CHOICES) == sorted(WIDTHS)
    assert tuple(figures_cli.DEFAULT_FORMAT.split(",")) == style.DEFAULT_FORMATS


def test_photoz_figures_and_the_parser_never_load_torch(run, tmp_path):
    code = (
        "import sys\n"
        "import clapkit.cli\n"
        "assert 'matplotlib' not in sys.modules, 'the parser loads matplotlib'\n"
        "from clapkit.plots import write_figures\n"
        f"write_figures({str(run.root)!r}, {str(tmp_path / 'f')!r}, formats='png')\n"
        "assert 'torch' not in sys.modules, 'drawing loaded torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert np.any([p.suffix == ".png" for p in (tmp_path / "f").iterdir()])


def test_the_clapkit_help_lists_figures():
    from clapkit.cli import build_parser

    assert "figures" in build_parser().format_help()
