"""One galaxy's view: its title, every method's PDF, its images and catalog row."""

import shutil

import numpy as np
import panel as pn
import pytest
from clapkit_app.galaxy import GalaxyView
from clapkit_app.methods import identity
from clapkit_app.store import method_label, read_run

from clapkit.testing import SyntheticRunConfig, synthetic_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("galaxy") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=120, n_train=240))
    return root


@pytest.fixture(scope="module")
def run(run_root):
    return read_run(run_root)


@pytest.fixture(scope="module")
def run_without_images(run_root, tmp_path_factory):
    """The run with its galaxy file (images and catalog) gone."""
    root = tmp_path_factory.mktemp("galaxy-noimages") / "run"
    shutil.copytree(run_root, root)
    (root / "galaxies_data.h5").unlink()
    return read_run(root)


def hook(view, css_class):
    """The one object of the view with ``css_class`` (the browser tests' hooks)."""
    found = [
        obj
        for obj in view.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    assert len(found) == 1, f"{len(found)} objects with class {css_class}"
    return found[0]


def figure_of(view, css_class):
    """The Bokeh figure shown by the pane with ``css_class``."""
    return hook(view, css_class).object


def renderers(plot, glyph):
    """The renderers of ``plot`` drawing a ``glyph`` (a Bokeh glyph's class name)."""
    return [r for r in plot.renderers if type(r.glyph).__name__ == glyph]


def truth(plot):
    """Where the dashed line of the true redshift is, None when hidden."""
    (span,) = [m for m in plot.center if type(m).__name__ == "Span"]
    return span.location


def test_without_a_galaxy_it_asks_for_one(run):
    view = GalaxyView(run=run)
    assert "Pick a galaxy" in hook(view, "ck-galaxy-title").object
    assert not hook(view, "ck-galaxy-pdfs").visible
    pn.panel(view).get_root()  # renders inline, as in a notebook


def test_title_names_the_galaxy_and_its_true_redshift(run):
    row = 7
    galaxy_id = run.galaxies["id"].iat[row]
    view = GalaxyView(run=run, galaxy_id=galaxy_id)
    title = hook(view, "ck-galaxy-title").object
    assert f"Galaxy {galaxy_id}" in title
    assert f"{run.galaxies['z_true'].iat[row]:.4f}" in title
    pn.panel(view).get_root()


def test_one_pdf_curve_per_method_each_a_normalised_density(run):
    galaxy_id = run.galaxies["id"].iat[3]
    view = GalaxyView(run=run, galaxy_id=galaxy_id)
    plot = figure_of(view, "ck-galaxy-pdfs")
    lines = renderers(plot, "Line")
    labels = [item.label.value for item in plot.legend[0].items]
    assert labels == [method_label(m) for m in run.methods]
    assert len(lines) == len(run.methods)
    widths = np.diff(run.edges)
    stored = run.pdfs(galaxy_id)
    for method, line in zip(run.methods, lines, strict=True):
        density = np.asarray(line.data_source.data[line.glyph.y])[::2]  # steps: two points
        np.testing.assert_allclose(density * widths, stored[method], rtol=1e-6)
    assert truth(plot) == pytest.approx(run.galaxies["z_true"].iat[3])


def test_picking_another_galaxy_updates_the_plots_in_place(run):
    ids = run.galaxies["id"]
    view = GalaxyView(run=run, galaxy_id=ids.iat[0])
    pn.panel(view).get_root()
    plot_before = figure_of(view, "ck-galaxy-pdfs")
    images_before = figure_of(view, "ck-galaxy-images")
    view.galaxy_id = ids.iat[1]
    # Same figures (new data sent to them, no new figure), showing the new galaxy.
    assert figure_of(view, "ck-galaxy-pdfs") is plot_before
    assert figure_of(view, "ck-galaxy-images") is images_before
    assert truth(plot_before) == pytest.approx(run.galaxies["z_true"].iat[1])
    line = renderers(plot_before, "Line")[0]
    stored = run.pdfs(ids.iat[1])[run.methods[0]]
    density = np.asarray(line.data_source.data[line.glyph.y])[::2]
    np.testing.assert_allclose(density * np.diff(run.edges), stored, rtol=1e-6)
    assert f"Galaxy {ids.iat[1]}" in hook(view, "ck-galaxy-title").object


def test_images_show_every_band_and_a_colour_composite(run):
    galaxy_id = run.galaxies["id"].iat[2]
    bands, images = run.images([galaxy_id])
    view = GalaxyView(run=run, galaxy_id=galaxy_id)
    assert hook(view, "ck-galaxy-images").visible
    assert not hook(view, "ck-galaxy-no-images").visible
    plot = figure_of(view, "ck-galaxy-images")
    (gray,) = renderers(plot, "Image")
    tiles = gray.data_source.data["image"]
    assert len(tiles) == len(bands) == images.shape[1]
    for tile in tiles:  # asinh-stretched to [0, 1]
        assert tile.shape == images.shape[-2:]
        assert tile.min() >= 0.0 and tile.max() <= 1.0 and tile.max() > 0.0
    (colour,) = renderers(plot, "ImageRGBA")
    (rgba,) = colour.data_source.data["image"]
    assert rgba.shape == images.shape[-2:] and rgba.dtype == np.uint32
    (labels,) = renderers(plot, "Text")
    assert list(labels.data_source.data[labels.glyph.text]) == [*bands, "colour"]


def test_catalog_row_lists_the_galaxy(run):
    galaxy_id = run.galaxies["id"].iat[4]
    view = GalaxyView(run=run, galaxy_id=galaxy_id)
    table = hook(view, "ck-galaxy-catalog").object
    assert list(table.columns) == ["name", "value"]
    assert table.set_index("name").loc["id", "value"] == str(galaxy_id)


def test_a_run_without_images_shows_a_note_and_still_the_pdfs(run_without_images):
    run = run_without_images
    assert run.images(run.galaxies["id"].iloc[:1].tolist()) is None
    galaxy_id = run.galaxies["id"].iat[0]
    view = GalaxyView(run=run, galaxy_id=galaxy_id)
    note = hook(view, "ck-galaxy-no-images")
    assert note.visible and "No images" in note.object
    assert not hook(view, "ck-galaxy-images").visible
    assert hook(view, "ck-galaxy-pdfs").visible
    # Without the galaxy file the catalog falls back to the evaluated columns.
    table = hook(view, "ck-galaxy-catalog").object
    assert "z_true" in set(table["name"])
    pn.panel(view).get_root()


def test_an_unknown_galaxy_is_reported_not_raised(run):
    view = GalaxyView(run=run, galaxy_id=-12345)
    assert "not among the galaxies" in hook(view, "ck-galaxy-title").object
    assert not hook(view, "ck-galaxy-pdfs").visible
    view.galaxy_id = None
    assert "Pick a galaxy" in hook(view, "ck-galaxy-title").object


def test_pdfs_have_the_methods_colours_and_band_labels_a_solid_background(run):
    view = GalaxyView(run=run, galaxy_id=run.galaxies["id"].iat[2])
    plot = figure_of(view, "ck-galaxy-pdfs")
    for method, line in zip(run.methods, renderers(plot, "Line"), strict=True):
        assert line.glyph.line_color == identity(method).colour
    assert plot.legend[0] in plot.right and plot.legend[0] not in plot.center
    (labels,) = renderers(figure_of(view, "ck-galaxy-images"), "Text")
    assert labels.glyph.background_fill_color is not None
    assert labels.glyph.background_fill_alpha >= 0.5


def test_title_has_one_look_with_and_without_a_galaxy(run):
    view = GalaxyView(run=run)
    title = hook(view, "ck-galaxy-title")
    empty = (title.object.split()[0], list(title.stylesheets))
    view.galaxy_id = run.galaxies["id"].iat[0]
    # The same heading level and style sheet (one size, one line), whatever is shown.
    assert (title.object.split()[0], list(title.stylesheets)) == empty
    assert any("nowrap" in str(sheet) for sheet in title.stylesheets)
