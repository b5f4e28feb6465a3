"""Journal sizes, print fonts and atomic saving of figures with their numbers."""

import matplotlib as mpl
import pytest
from astropy.table import Table

from clapkit.errors import OverwriteError, ValidationError
from clapkit.plots.style import (
    FONT_SIZE,
    check_formats,
    figure_width,
    new_figure,
    print_style,
    save_figure,
)


def line_figure():
    with print_style():
        fig = new_figure("single")
        ax = fig.subplots()
        ax.plot([0, 1], [0, 2])
        ax.set_xlabel("x")
    return fig


def test_print_style_is_kept_by_the_figure_and_undone_for_the_user():
    before = mpl.rcParams["font.size"]
    fig = line_figure()
    assert fig.axes[0].xaxis.label.get_fontsize() == FONT_SIZE
    assert mpl.rcParams["font.size"] == before


def test_widths_and_formats_are_checked():
    assert figure_width("double") == 7.0
    with pytest.raises(ValidationError, match="not a page's"):
        figure_width(40)
    assert check_formats(["PDF", ".png", "pdf"]) == ("pdf", "png")
    with pytest.raises(ValidationError, match="at least one"):
        check_formats(" , ")


def test_save_figure_writes_each_format_and_the_numbers(tmp_path):
    table = Table({"x": [0, 1], "y": [0, 2]})
    paths = save_figure(line_figure(), table, tmp_path / "out", "line", "pdf,svg")
    assert [p.name for p in paths] == ["line.pdf", "line.svg", "line.csv"]
    assert paths[0].read_bytes().startswith(b"%PDF")
    assert paths[2].read_text().splitlines()[:2] == ["x,y", "0,0"]
    back = Table.read(paths[2], format="ascii.csv")
    assert list(back["y"]) == [0, 2]


def test_save_figure_refuses_before_writing_anything(tmp_path):
    (tmp_path / "line.csv").write_text("precious")
    with pytest.raises(OverwriteError, match=r"line\.csv already exists"):
        save_figure(line_figure(), Table({"x": [1]}), tmp_path, "line", "png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.csv"]
    save_figure(line_figure(), Table({"x": [1]}), tmp_path, "line", "png", overwrite=True)
    assert (tmp_path / "line.png").is_file() and "precious" not in (
        tmp_path / "line.csv"
    ).read_text()
