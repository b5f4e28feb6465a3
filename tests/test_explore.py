"""clapkit.explore: HoloViews plots of a run that render and link selections."""

import gc
import shutil

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from clapkit.errors import ValidationError
from clapkit.evaluation import run_catalog
from clapkit.explore import (
    colour_redshift,
    explore_run,
    galaxy_frame,
    galaxy_pdfs,
    latent_map,
    magnitude_redshift,
    pit_histograms,
)
from clapkit.photoz.details import read_clap_details
from clapkit.testing import SyntheticRunConfig, synthetic_run

N_TEST = 80
hv.extension("bokeh")


@pytest.fixture(scope="module", autouse=True)
def collect_links():
    yield
    # link_selections' streams fail in __del__ at interpreter exit (HoloViews imports
    # while Python shuts down); collected while it runs, they leave the log clean.
    gc.collect()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore") / "run"
    return synthetic_run(root, SyntheticRunConfig(n_test=N_TEST, n_train=160))


@pytest.fixture(scope="module")
def frame(run):
    return galaxy_frame(run)


def pit_counts(run, method, n_bins, mask=slice(None)):
    """clapkit's own PIT histogram of ``method`` (of the galaxies in ``mask``)."""
    pdfs, _ = run.load_pdfs(method)
    return np.histogram(pdfs.pit()[mask], bins=np.linspace(0, 1, n_bins + 1))[0]


def layers(plot, element_type):
    """The elements of ``element_type`` in what a (linked) plot shows now: under
    ``link_selections`` the first is every galaxy, the second the selection."""
    shown = plot[()] if isinstance(plot, hv.DynamicMap) else plot
    items = shown.values() if isinstance(shown, hv.Overlay) else [shown]
    return [item for item in items if isinstance(item, element_type)]


def test_galaxy_frame_joins_the_run_by_id(run, frame):
    pdfs, _ = run.load_pdfs("clap")
    np.testing.assert_array_equal(frame["id"], pdfs.ids)
    np.testing.assert_allclose(frame["clap.pit"], pdfs.pit())
    details = read_clap_details(run.clap_details_path)
    order = pd.Index(details.ids).get_indexer(pdfs.ids)
    np.testing.assert_allclose(frame["latent_x"], details.projection[order, 0])
    np.testing.assert_allclose(frame["latent_y"], details.projection[order, 1])
    catalog = run_catalog(run)
    rows = pd.Index(np.asarray(catalog["id"])).get_indexer(pdfs.ids)
    np.testing.assert_allclose(frame["mag_u"], np.asarray(catalog["mag_u"])[rows])
    np.testing.assert_allclose(frame["z"], frame["z_true"])  # the catalog's truth
    np.testing.assert_allclose(frame["r_i"], frame["mag_r"] - frame["mag_i"])


def test_latent_map_points_carry_the_coloured_column(frame):
    points = latent_map(frame, "mag_g")
    assert isinstance(points, hv.Points)
    assert [d.name for d in points.kdims] == ["latent_x", "latent_y"]
    assert len(points) == N_TEST
    np.testing.assert_allclose(points.dimension_values("mag_g"), frame["mag_g"])
    np.testing.assert_allclose(points.dimension_values("latent_x"), frame["latent_x"])


def test_above_the_threshold_the_map_is_rasterised(frame):
    raster = latent_map(frame, "z_true", rasterize_above=N_TEST - 1)
    assert isinstance(raster, hv.DynamicMap)
    image = raster[()]
    assert isinstance(image, hv.Image)
    means = image.dimension_values(2)
    means = means[np.isfinite(means)]
    assert means.size > 0
    assert frame["z_true"].min() - 1e-9 <= means.min() <= means.max() <= frame["z_true"].max()
    # Without a colour every galaxy lands in exactly one pixel.
    counts = magnitude_redshift(frame, rasterize_above=0)[()].dimension_values(2)
    assert np.nansum(counts) == N_TEST
    assert isinstance(latent_map(frame, "z_true", rasterize_above=N_TEST), hv.Points)


def test_colour_and_magnitude_diagrams(frame):
    diagram = colour_redshift(frame, "u_g", color="mag_r")
    assert [d.name for d in diagram.kdims] == ["z_true", "u_g"]
    np.testing.assert_allclose(diagram.dimension_values("u_g"), frame["mag_u"] - frame["mag_g"])
    np.testing.assert_allclose(diagram.dimension_values("mag_r"), frame["mag_r"])
    magnitudes = magnitude_redshift(frame, "mag_i", z="clap.z_phot")
    np.testing.assert_allclose(magnitudes.dimension_values("clap.z_phot"), frame["clap.z_phot"])
    assert magnitudes.opts.get().kwargs["invert_yaxis"] is True


def test_pit_histograms_are_clapkits(run, frame):
    plots = pit_histograms(run, ["clap", "softmax"], n_bins=10)
    histograms = layers(plots.Histogram.clap, hv.Histogram) + layers(
        plots.Histogram.softmax, hv.Histogram
    )
    for method, histogram in zip(["clap", "softmax"], histograms, strict=True):
        np.testing.assert_array_equal(histogram.dimension_values(1), pit_counts(run, method, 10))
    assert len(pit_histograms(frame)) == len([c for c in frame.columns if c.endswith(".pit")])


def test_galaxy_pdfs_draw_the_stored_densities(run, frame):
    ids = frame["id"].to_numpy()[[5, 2, 5]]  # out of file order, one twice
    overlay = galaxy_pdfs(run, ids, ["clap", "softmax"])
    curves = layers(overlay, hv.Curve)
    assert [c.label for c in curves] == [f"{i} {m}" for m in ("clap", "softmax") for i in ids]
    pdfs, _ = run.load_pdfs("softmax")
    width = np.diff(pdfs.edges)
    np.testing.assert_allclose(curves[4].dimension_values("p(z)"), pdfs.p[2] / width)
    truths = sorted(line.data for line in layers(overlay, hv.VLine))
    np.testing.assert_allclose(truths, sorted(pdfs.z_true[[2, 5]]))


def test_everything_renders_with_bokeh(run, frame):
    from bokeh.models import LayoutDOM

    plots = [
        latent_map(frame, "novelty"),
        latent_map(frame, rasterize_above=10),
        colour_redshift(frame),
        magnitude_redshift(frame, color="split"),
        pit_histograms(frame, ["clap"]),
        galaxy_pdfs(run, frame["id"][:3]),
        explore_run(run).layout,
    ]
    for plot in plots:
        assert isinstance(hv.render(plot, backend="bokeh"), LayoutDOM)


@pytest.mark.parametrize("rasterize_above", [1_000, 10], ids=["points", "rasterised"])
def test_a_selection_in_the_latent_map_reaches_every_plot(run, frame, rasterize_above):
    exploration = explore_run(
        run, color="novelty", methods=["clap", "softmax"], n_bins=10,
        rasterize_above=rasterize_above, max_pdfs=3,
    )  # fmt: skip
    latent, colour, pit_clap, pit_softmax, pdfs = list(exploration.layout)
    cut = float(np.median(frame["latent_x"]))
    exploration.selection.selection_expr = hv.dim("latent_x") > cut
    chosen = frame["latent_x"].to_numpy() > cut
    assert 0 < chosen.sum() < N_TEST

    np.testing.assert_array_equal(exploration.selected()["id"], frame["id"][chosen])
    if rasterize_above > N_TEST:
        everyone, selected = layers(latent, hv.Points)
        assert len(everyone) == N_TEST and len(selected) == chosen.sum()
    else:
        assert len(layers(latent, hv.Image)) == 2
    if rasterize_above > N_TEST:
        everyone, selected = layers(colour, hv.Points)
        np.testing.assert_allclose(selected.dimension_values("g_r"), frame["g_r"][chosen])
        assert len(everyone) == N_TEST
    else:  # uncoloured, so counts of galaxies per pixel
        everyone, selected = layers(colour, hv.Image)
        assert np.nansum(everyone.dimension_values(2)) == N_TEST
        assert np.nansum(selected.dimension_values(2)) == chosen.sum()
    for method, plot in (("clap", pit_clap), ("softmax", pit_softmax)):
        everyone, selected = layers(plot, hv.Histogram)
        np.testing.assert_array_equal(everyone.dimension_values(1), pit_counts(run, method, 10))
        np.testing.assert_array_equal(
            selected.dimension_values(1), pit_counts(run, method, 10, chosen)
        )
    labels = [curve.label for curve in layers(pdfs, hv.Curve)]
    assert labels == [f"{i} clap" for i in frame["id"][chosen][:3]]

    exploration.selection.selection_expr = None
    assert len(exploration.selected()) == N_TEST


def test_missing_columns_are_named_with_the_available_ones(frame):
    with pytest.raises(ValidationError, match=r"\['mag_w'\]; available: .*'mag_g'"):
        latent_map(frame, "mag_w")
    with pytest.raises(ValidationError, match=r"\['w_r'\]"):
        colour_redshift(frame, "w_r")
    with pytest.raises(ValidationError, match="not numeric"):
        latent_map(frame, "split", rasterize_above=10)
    with pytest.raises(ValidationError, match="rasterize_above"):
        latent_map(frame, rasterize_above=-1)


def test_unknown_methods_and_galaxies_are_refused(run, frame):
    with pytest.raises(ValidationError, match=r"\['gmm'\]; methods with PIT values: \['clap'"):
        pit_histograms(frame, ["clap", "gmm"])
    with pytest.raises(ValidationError, match="n_bins"):
        pit_histograms(frame, n_bins=0)
    with pytest.raises(ValidationError, match=r"no PDFs of \['gmm'\]; the run has"):
        galaxy_pdfs(run, frame["id"][:1], ["gmm"])
    with pytest.raises(ValidationError, match="no galaxy with id 12"):
        galaxy_pdfs(run, [frame["id"][0], 12])
    with pytest.raises(ValidationError, match="max_pdfs"):
        explore_run(run, max_pdfs=0)
    with pytest.raises(ValidationError, match="no such run directory"):
        galaxy_frame(run.root / "absent")


def test_a_run_without_a_latent_projection(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run.root, copy)
    (copy / run.clap_details_path.relative_to(run.root)).unlink()
    frame = galaxy_frame(copy)
    assert "latent_x" not in frame.columns and len(frame) == N_TEST
    with pytest.raises(ValidationError, match="no latent projection"):
        latent_map(frame)
    with pytest.raises(ValidationError, match="no latent projection"):
        explore_run(copy)
    (copy / run.galaxy_table_path.relative_to(run.root)).unlink()
    with pytest.raises(ValidationError, match="clapkit evaluate"):
        galaxy_frame(copy)


def test_explore_run_needs_a_plotting_backend(run, monkeypatch):
    monkeypatch.setattr(hv.Store, "current_backend", "none")
    with pytest.raises(ValidationError, match=r'hv.extension\("bokeh"\)'):
        explore_run(run)
