"""Layout of the dashboards' figures, read from their Bokeh models: legends beside the
plot area, readable ticks on logarithmic axes, ideal lines visible in both themes."""

import numpy as np
import pytest
from bokeh.models import Legend, LogTicker, Span
from bokeh.plotting import figure
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR
from clapkit_app.stellar_mass_plots import PIDBars, PIDHistograms, ProfilePlot
from clapkit_app.translation_plots import (
    LOG_TICKS,
    MORPHOLOGY_LOG,
    ImageGrid,
    MorphologyPlots,
    NoisePowerPlot,
)


def legends_inside(fig):
    return [obj for obj in fig.center if isinstance(obj, Legend)]


@pytest.mark.parametrize(
    "figures",
    [
        lambda: [PIDBars().figure],
        lambda: list(PIDHistograms().figures.values()),
        lambda: [ProfilePlot(["g", "r"]).figure],
        lambda: [NoisePowerPlot().figure],
    ],
    ids=["MI stacked bars", "per-galaxy MI histograms", "radial profiles", "noise power"],
)
def test_legends_are_outside_the_plot_area(figures):
    for fig in figures():
        assert fig.legend and not legends_inside(fig)
        assert fig.legend[0] in fig.right + fig.above


def test_outside_legend_moves_the_one_legend_and_leaves_a_figure_without_one():
    fig = figure()
    fig.line([0, 1], [0, 1], legend_label="a")
    legend = outside_legend(fig, side="above")
    assert legend in fig.above and legend.orientation == "horizontal"
    assert outside_legend(figure()) is None


def test_log_axes_of_the_morphology_plots_label_a_few_decades():
    plots = MorphologyPlots()
    for key, log in MORPHOLOGY_LOG.items():
        fig = plots.figures[key]
        for axis in (*fig.xaxis, *fig.yaxis):
            if log:
                assert isinstance(axis.ticker, LogTicker)
                assert axis.ticker.mantissas == [1] and axis.ticker.desired_num_ticks <= LOG_TICKS
            else:
                assert not isinstance(axis.ticker, LogTicker)


def test_ideal_and_zero_lines_are_grey_not_black():
    bars, histograms = PIDBars(), PIDHistograms()
    spans = [s for s in bars.figure.center if isinstance(s, Span)]
    for fig in histograms.figures.values():
        spans += [s for s in fig.center if isinstance(s, Span)]
    assert spans and all(span.line_color == IDEAL_COLOUR for span in spans)
    # A mid grey: far from both the light and the dark theme's background.
    level = np.mean([int(IDEAL_COLOUR[i : i + 2], 16) for i in (1, 3, 5)])
    assert 80 <= level <= 180


def test_band_labels_of_the_image_grids_have_a_solid_background():
    labels = ImageGrid(5).figure.select_one({"name": "labels"})
    assert labels.glyph.background_fill_color is not None
    assert labels.glyph.background_fill_alpha >= 0.5
