"""The neighbour browser selects galaxies by id and by click, and shows CLAP's choice."""

import shutil

import numpy as np
import panel as pn
import pytest
from clapkit_app.neighbours import (
    GRID_BORDER,
    GRID_TITLE,
    NeighbourBrowser,
    _novelty_sentence,
    coarse_pit_histogram,
)
from clapkit_app.store import read_run

from clapkit.testing import SyntheticRunConfig, synthetic_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("neighbours") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=120, n_train=240))
    return root


@pytest.fixture(scope="module")
def run(run_root):
    return read_run(run_root)


def hook(browser, css_class):
    """The one object of the browser's layout with ``css_class`` (the browser tests'
    selectors name the same classes)."""
    found = [
        obj
        for obj in browser.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    assert len(found) == 1, f"{len(found)} objects with class {css_class}"
    return found[0]


def glyph_data(browser, css_class, name):
    """The data of the glyph renderer ``name`` in the Bokeh figure of ``css_class``."""
    return hook(browser, css_class).object.select_one({"name": name}).data_source.data


def map_layers(browser):
    """The map's current data: (galaxies, marker); the galaxies are points, or one
    image when rasterized."""
    return glyph_data(browser, "ck-latent-map", "galaxies"), glyph_data(
        browser, "ck-latent-map", "marker"
    )


def test_first_galaxy_is_selected_and_inline_display_works(run):
    browser = NeighbourBrowser(run=run)
    assert browser.galaxy_id == run.details.ids[0]
    assert f"Galaxy {run.details.ids[0]}" in hook(browser, "ck-neighbour-title").object
    pn.panel(browser).get_root()  # what a notebook does to show it


def test_search_selects_a_galaxy_and_titles_it_with_its_k(run):
    browser = NeighbourBrowser(run=run)
    row = 17
    galaxy_id, k = run.details.ids[row], int(run.details.k[row])
    hook(browser, "ck-search").value = f" {galaxy_id} "
    assert browser.galaxy_id == galaxy_id
    title = hook(browser, "ck-neighbour-title").object
    assert f"Galaxy {galaxy_id}" in title
    assert f"k = {k}" in title
    assert not hook(browser, "ck-search-message").visible
    _, marker = map_layers(browser)
    xy = np.column_stack([marker["x"], marker["y"]])
    np.testing.assert_array_equal(xy, run.details.projection[[row]])


def test_the_title_flags_a_galaxy_the_training_set_does_not_cover(run):
    browser = NeighbourBrowser(run=run)
    novelty = run.details.novelty
    typical, outlier = int(np.argmin(np.abs(novelty - 50))), int(np.argmax(novelty))
    browser.galaxy_id = run.details.ids[typical]
    title = hook(browser, "ck-neighbour-title").object
    assert f"{novelty[typical]:.1f}%" in title and "does not cover" not in title
    browser.galaxy_id = run.details.ids[outlier]
    title = hook(browser, "ck-neighbour-title").object
    assert ("does not cover" in title) == (novelty[outlier] > 99.0)
    # Beyond the 99th percentile a galaxy is flagged.
    assert "does not cover" in _novelty_sentence(99.5)
    assert "does not cover" not in _novelty_sentence(98.0)
    assert _novelty_sentence(np.nan) == ""
    assert "novelty" in browser._data.colours.values()
    np.testing.assert_array_equal(browser._data.frame["novelty"].to_numpy(), novelty)


def test_neighbour_redshift_histogram_holds_the_chosen_k(run):
    browser = NeighbourBrowser(run=run)
    for row in (3, 40):
        browser.galaxy_id = run.details.ids[row]
        counts = glyph_data(browser, "ck-neighbour-z", "neighbour_z")["top"]
        assert counts.sum() == run.details.k[row]
        # The dashed line is the galaxy's true redshift.
        z_true = run.galaxies["z_true"].to_numpy()[run.galaxies["id"] == run.details.ids[row]]
        line = hook(browser, "ck-neighbour-z").object.select_one({"name": "true_z"})
        assert line.visible and line.location == pytest.approx(z_true[0])


def test_local_pit_histogram_is_the_one_that_chose_k_in_about_ten_bins(run):
    browser = NeighbourBrowser(run=run)
    browser.galaxy_id = run.details.ids[5]
    stored, k = run.details.local_pit_hist[5], int(run.details.k[5])
    top = np.asarray(glyph_data(browser, "ck-local-pit", "local_pit")["top"])
    # The stored bins summed in groups: same neighbours, about 10 bins.
    assert 5 <= top.size <= 20 and stored.size % top.size == 0
    np.testing.assert_allclose(top, stored.reshape(top.size, -1).sum(axis=1), atol=1e-6)
    assert top.sum() == pytest.approx(1.0, abs=1e-5)
    n_bins = top.size
    uniform = hook(browser, "ck-local-pit").object.select_one({"name": "uniform"})
    assert uniform.data_source.data["y"] == pytest.approx([1.0 / n_bins] * 2)
    # The ±2σ band of a calibrated method's fraction per bin, for k neighbours.
    (band,) = [
        r.data_source.data
        for r in hook(browser, "ck-local-pit").object.renderers
        if type(r.glyph).__name__ == "VArea"
    ]
    p = 1.0 / n_bins
    half = 2 * np.sqrt(p * (1 - p) / k)
    assert band["upper"] == pytest.approx([p + half] * 2)


def test_coarse_pit_histogram_keeps_the_counts():
    fractions = np.zeros(100)
    fractions[[3, 15, 16, 99]] = 0.25
    edges, coarse, band = coarse_pit_histogram(fractions, k=4)
    assert edges.tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert coarse.tolist() == pytest.approx([0.25, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.25])
    assert band == pytest.approx(2 * np.sqrt(0.1 * 0.9 / 4))
    # 12 stored bins: 12 is the divisor of 12 nearest to 10.
    assert coarse_pit_histogram(np.full(12, 1 / 12), k=12)[1].size == 12


def test_tap_at_a_galaxy_position_selects_it(run):
    browser = NeighbourBrowser(run=run)
    row = 42
    x, y = run.details.projection[row]
    browser.tap(float(x), float(y))
    assert browser.galaxy_id == run.details.ids[row]
    assert f"Galaxy {run.details.ids[row]}" in hook(browser, "ck-neighbour-title").object


def test_unknown_id_shows_a_message_and_keeps_the_galaxy(run):
    browser = NeighbourBrowser(run=run)
    browser.galaxy_id = run.details.ids[9]
    title = hook(browser, "ck-neighbour-title").object
    hook(browser, "ck-search").value = "no-such-galaxy"
    message = hook(browser, "ck-search-message")
    assert message.visible
    assert "No galaxy with id 'no-such-galaxy' in this run" in message.object
    assert browser.galaxy_id == run.details.ids[9]
    assert hook(browser, "ck-neighbour-title").object == title


def test_grid_shows_the_nearest_neighbours_images(run):
    browser = NeighbourBrowser(run=run)
    tile = run.images(run.details.train_ids[:1])[1].shape[-1]
    grid = hook(browser, "ck-neighbour-grid").object
    for row in (0, int(np.argmin(run.details.k)), int(np.argmax(run.details.k))):
        browser.galaxy_id = run.details.ids[row]
        k = int(run.details.k[row])
        shown = min(k, NeighbourBrowser.GRID_SIZE)
        (image,) = glyph_data(browser, "ck-neighbour-grid", "grid")["image"]
        assert image.dtype == np.uint32  # packed RGBA
        rows = -(-shown // 4)  # as many rows as the tiles fill: no empty row
        assert image.shape == (rows * tile + (rows - 1) * 2, 4 * tile + 3 * 2)
        # The figure as tall as those rows: square tiles, no empty band below them.
        frame_height = grid.height - GRID_TITLE - 2 * GRID_BORDER
        frame_width = grid.width - 2 * GRID_BORDER
        assert frame_height / frame_width == pytest.approx(
            image.shape[0] / image.shape[1], rel=0.02
        )
        # The title says how many tiles there are and the k they are of.
        assert f"k = {k}" in grid.title.text and grid.title.text.split()[0] in (
            str(shown),
            "The",
        )
        # Every tile carries its neighbour's id and spec-z.
        found = run.neighbours(browser.galaxy_id)
        labels = glyph_data(browser, "ck-neighbour-grid", "tile_labels")["text"]
        assert len(labels) == shown
        assert labels[0] == f"{found['ids'][0]}\nz={found['z'][0]:.3f}"
    nearest = run.neighbours(browser.galaxy_id)["ids"][0]
    assert str(nearest) in hook(browser, "ck-neighbour-caption").object


def test_map_tooltip_names_each_redshift_once(run):
    browser = NeighbourBrowser(run=run)
    hover = [
        t for t in hook(browser, "ck-latent-map").object.tools if type(t).__name__ == "HoverTool"
    ]
    for colour_by in browser.param.colour_by.objects.values():
        browser.colour_by = colour_by
        fields = [field for _, field in hover[0].tooltips]
        assert len(fields) == len(set(fields))
        assert not (colour_by in ("z_true", "z_phot") and "@value{0.000}" in fields)


def test_map_is_points_below_and_an_image_above_the_threshold(run, monkeypatch):
    browser = NeighbourBrowser(run=run)
    points, _ = map_layers(browser)
    np.testing.assert_array_equal(points["id"], run.details.ids)
    browser.colour_by = "k"
    points, _ = map_layers(browser)
    np.testing.assert_array_equal(points["value"], run.details.k)
    monkeypatch.setattr(NeighbourBrowser, "RASTERIZE_ABOVE", 50)
    browser = NeighbourBrowser(run=run)
    image, _ = map_layers(browser)
    assert "id" not in image  # aggregated on the server: no points are sent
    (z,) = image["image"]
    assert np.nanmin(z) > 0 and np.nanmax(z) <= run.galaxies["z_true"].max()
    browser.colour_by = "k"
    image, _ = map_layers(browser)
    (k,) = image["image"]  # pixels are means of the chosen k of their galaxies
    assert run.details.k.min() <= np.nanmin(k) and np.nanmax(k) <= run.details.k.max()
    assert np.nanmax(k) > 1


def test_recolouring_reads_nothing_and_a_selection_reads_once(run, monkeypatch):
    browser = NeighbourBrowser(run=run)
    pn.panel(browser).get_root()
    calls = {"neighbours": 0, "images": 0}

    def counting(name):
        method = getattr(run, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return method(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(run, "neighbours", counting("neighbours"))
    monkeypatch.setattr(run, "images", counting("images"))
    for colour in browser.param.colour_by.objects.values():
        browser.colour_by = colour
    assert calls == {"neighbours": 0, "images": 0}
    browser.select(run.details.ids[30])
    # The neighbour row and the grid's images, read once for every panel; the galaxy
    # view reads the selected galaxy's own images.
    assert calls["neighbours"] == 1
    assert calls["images"] <= 2


def test_run_without_neighbours_shows_only_an_alert(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    (root / "clap" / "knn.h5").unlink()
    browser = NeighbourBrowser(run=read_run(root))
    (alert,) = browser.__panel__().objects
    assert isinstance(alert, pn.pane.Alert)
    assert "clapkit train" in alert.object
    pn.panel(browser).get_root()
