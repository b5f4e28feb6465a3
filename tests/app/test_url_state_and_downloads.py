"""The dashboards' state in the URL, their downloads and their clickable points, built in
Python (the browser tests drive the same in Chromium)."""

import numpy as np
import pytest
from clapkit_app.calibration import CalibrationExplorer
from clapkit_app.downloads import safe_name
from clapkit_app.neighbours import NeighbourBrowser
from clapkit_app.store import read_run
from clapkit_app.translation import TranslationCompare
from clapkit_app.translation_store import read_translation
from clapkit_app.urlstate import query_of
from panel.io.location import Location

from clapkit.tables_io import read_table_bytes
from clapkit.testing import SyntheticRunConfig, synthetic_run, synthetic_translation_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("urlstate") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=80, n_train=160, image_size=16, seed=2))
    return synthetic_translation_run(root)


@pytest.fixture(scope="module")
def run(run_root):
    return read_run(run_root)


def css(viewer, css_class):
    (found,) = [
        obj
        for obj in viewer.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    return found


def download(viewer, css_class, format):
    button = css(viewer, f"{css_class}-{format}")
    table = read_table_bytes(button.callback().read(), format)
    return button.filename, table


def test_calibration_restores_a_link_and_writes_its_changes(run):
    galaxy = run.galaxies["id"].iat[5]
    location = Location(search=f"?a=softmax&bins=mag_r&bin=1&metric=crps&galaxy={galaxy}&x=1")
    explorer = CalibrationExplorer(run=run)
    explorer.url.bind(location)
    assert explorer.method_a.value == "softmax" and explorer.bin_metric.value == "crps"
    assert (explorer.bin_variable.value, explorer.selected_bin) == ("mag_r", 1)
    assert explorer.galaxy_view.galaxy_id == galaxy
    assert not explorer.url.message.visible
    # A change goes to the URL; parameters of others stay.
    explorer.method_b.value = "clap_raw"
    query = query_of(location.search)
    assert query["b"] == "clap_raw" and query["x"] == "1" and query["bin"] == "1"
    # The browser's back button: the old query is shown again.
    location.search = "?a=clap&bins=z_true&bin=0"
    assert explorer.method_a.value == "clap" and explorer.selected_bin == 0


def test_what_a_page_lacks_changes_nothing_and_says_what_it_has(run):
    explorer = CalibrationExplorer(run=run)
    shown = explorer.galaxy_view.galaxy_id
    explorer.url.bind(Location(search="?a=nope&bin=99&galaxy=12345678"))
    assert explorer.method_a.value == "clap" and explorer.selected_bin is None
    assert explorer.galaxy_view.galaxy_id == shown
    text = explorer.url.message.object
    assert explorer.url.message.visible
    assert "No method 'nope'" in text and "softmax" in text
    assert "No bin '99'" in text
    ids = run.galaxies["id"]
    assert f"its {len(ids)} galaxies have ids {ids.min()} to {ids.max()}" in text


def test_calibration_downloads_are_the_selection(run):
    explorer = CalibrationExplorer(run=run)
    explorer.bin_table.selection = [2]
    name, galaxies = download(explorer, "ck-galaxies-download", "csv")
    values = run.galaxies["z_true"].to_numpy()
    bins = run.metrics["clap"]["by_z_true"]
    inside = (values >= bins[2]["lo"]) & (values < bins[2]["hi"])
    assert name == "galaxies_z_true_bin_2.csv"
    assert sorted(galaxies["id"]) == sorted(run.galaxies["id"].to_numpy()[inside])
    name, per_bin = download(explorer, "ck-bin-download", "fits")
    assert len(per_bin) == len(bins) and name.endswith(".fits")
    np.testing.assert_allclose(per_bin["crps_a"], [b["crps"] for b in bins])
    assert per_bin["crps_a"].description.startswith("CRPS: ")


def test_neighbour_browser_url_links_and_neighbours_table(run):
    galaxy = run.details.ids[7].item()
    location = Location(search=f"?galaxy={galaxy}")
    browser = NeighbourBrowser(run=run)
    browser.url.bind(location)
    assert browser.galaxy_id == galaxy
    assert f"./calibration?galaxy={galaxy}" in css(browser, "ck-galaxy-links").object
    _, table = download(browser, "ck-neighbours-download", "csv")
    found = run.neighbours(galaxy)
    assert table["id"].tolist() == found["ids"].tolist()
    np.testing.assert_array_equal(table["z_spec"], found["z"])
    assert table.meta["K"] == found["k"]


def test_translation_url_and_a_clicked_point(run_root):
    data = read_translation(run_root)
    task = data.tasks["s2c"] if "s2c" in data.tasks else next(iter(data.tasks.values()))
    location = Location(search=f"?model={task.sets[-1]}&galaxy=nope")
    compare = TranslationCompare(data=data)
    compare.url.bind(location)
    assert compare.model_select.value == task.sets[-1]
    assert "No galaxy with id 'nope'" in compare.url.message.object
    points = compare._morphology.points
    clicked = points.data["id"][4]
    points.selected.indices = [4]  # what a tap on the point does
    assert compare.galaxy_id == clicked and points.selected.indices == []
    assert query_of(location.search)["galaxy"] == str(clicked)
    _, metrics = download(compare, "ck-translation-download", "csv")
    assert metrics["set"].tolist() == ["real", *task.sets]
    assert str(metrics["psnr"].unit) == "dB"


def test_safe_names():
    assert safe_name("pdfs galaxy a/b") == "pdfs_galaxy_a_b"
    assert safe_name("···") == "table"
