"""What a user keeps and takes away, in Chromium: the view in the URL (reload, shared
links, links between pages), CSV and FITS downloads of the current selection, metric
definitions on the column headers, the keyboard.

Expected values come from the run's files, so the tests hold for any run
(``CLAPKIT_UI_RUN``). They reuse the session's server (see conftest).
"""

import re

import numpy as np
import pytest
from clapkit_app.calibration import default_methods
from clapkit_app.scatter import shown_rows
from clapkit_app.store import method_label, read_run
from clapkit_app.translation import default_band
from clapkit_app.translation_store import read_translation
from playwright.sync_api import expect

from clapkit.metrics.definitions import PHOTOZ
from clapkit.tables_io import read_table_bytes

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(ui_run):
    return read_run(ui_run)


def in_bin(run, variable: str, index: int) -> np.ndarray:
    """Ids of the galaxies of bin ``index`` of ``variable`` (last bin closed)."""
    bins = run.metrics[run.methods[0]][f"by_{variable}"]
    lo, hi = bins[index]["lo"], bins[index]["hi"]
    values = run.galaxies[variable].to_numpy()
    upper = values <= hi if index == len(bins) - 1 else values < hi
    return run.galaxies["id"].to_numpy()[(values >= lo) & upper]


def test_calibration_view_survives_a_reload_and_downloads_its_selection(
    page, app_url, run, tmp_path
):
    page.goto(app_url + "/calibration")
    rows = page.locator(".ck-galaxy-table .tabulator-row")
    expect(rows.first).to_be_visible()
    page.locator(".ck-method-a select").select_option(label=method_label("softmax"))
    page.locator(".ck-bin-metric select").select_option(label="CRPS")
    page.locator(".ck-bin-table .tabulator-row").nth(1).click()
    status = page.locator(".ck-selection-status p")
    expect(status).to_contain_text(f"Showing {len(in_bin(run, 'z_true', 1))} galaxies")
    # The bin's galaxies are listed (the same message as the status): pick the third.
    galaxy = rows.nth(2).locator('[tabulator-field="id"]').inner_text().strip()
    assert int(galaxy) in in_bin(run, "z_true", 1)
    rows.nth(2).click()
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {galaxy}")
    expect(page).to_have_url(
        f"{app_url}/calibration?a=softmax&b={default_methods(run.methods)[1]}"
        f"&bins=z_true&bin=1&metric=crps&galaxy={galaxy}"
    )
    shown_status = status.inner_text()

    # A reload (a shared link) shows the same view. The old session first finishes its
    # updates: a reload in the middle of them makes the server log an error.
    page.wait_for_timeout(2000)
    page.reload()
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {galaxy}")
    expect(page.locator(".ck-method-a select")).to_have_value(method_label("softmax"))
    expect(page.locator(".ck-bin-metric select")).to_have_value("CRPS")
    expect(status).to_have_text(shown_status)
    expect(page.locator(".ck-bin-table .tabulator-row.tabulator-selected")).to_have_count(1)
    expect(page.locator(".ck-url-message")).to_be_hidden()

    # The galaxies of the bin as CSV: every one of them (all pages), none other.
    with page.expect_download() as download:
        page.locator(".ck-galaxies-download-csv button").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    table = read_table_bytes(path.read_bytes(), "csv")
    assert path.suffix == ".csv"
    assert sorted(table["id"].tolist()) == sorted(in_bin(run, "z_true", 1).tolist())
    assert table.meta["METHOD_A"] == "softmax"
    np.testing.assert_allclose(
        table["z_phot_a"], run.galaxies.set_index("id").loc[table["id"], "softmax.z_phot"]
    )

    # The galaxy's PDFs of every method as FITS, on the run's redshift bins.
    with page.expect_download() as download:
        page.locator(".ck-pdfs-download-fits button").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    pdfs = read_table_bytes(path.read_bytes(), "fits")
    assert pdfs.meta["GALAXY"] == galaxy
    assert set(run.methods) <= set(pdfs.colnames)
    np.testing.assert_allclose(pdfs["z_lo"], run.edges[:-1])
    np.testing.assert_allclose(pdfs["clap"], run.pdfs(run.parse_id(galaxy))["clap"], rtol=1e-6)


def test_links_open_a_galaxy_on_other_pages_and_unknown_ids_say_which_exist(page, app_url, run):
    galaxy = str(run.details.ids[-1])
    page.goto(f"{app_url}/calibration?galaxy={galaxy}")
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {galaxy}")
    page.locator(".ck-galaxy-links a", has_text="neighbours").click()
    # The address the link gave (the page writes its whole state at the next change).
    expect(page).to_have_url(re.compile(rf"/neighbours\?galaxy={galaxy}(&|$)"))
    expect(page.locator(".ck-neighbour-title h3")).to_contain_text(f"Galaxy {galaxy}")

    # An id the run lacks changes nothing and says which ids there are.
    page.goto(f"{app_url}/neighbours?galaxy=no-such-galaxy")
    message = page.locator(".ck-url-message")
    expect(message).to_contain_text("No galaxy with id 'no-such-galaxy'")
    expect(message).to_contain_text(f"its {len(run.details.ids)} galaxies have ids")
    expect(page.locator(".ck-neighbour-title h3")).to_contain_text("Galaxy")


def test_translation_state_in_the_url_and_a_click_on_a_point(page, app_url, ui_run):
    data = read_translation(ui_run)
    if not data.ok:
        pytest.skip(f"{ui_run} has no evaluated translation")
    task = data.tasks["s2c"] if "s2c" in data.tasks else next(iter(data.tasks.values()))
    model, galaxy = task.sets[-1], str(task.ids[3])
    page.goto(f"{app_url}/translation?task={task.name}&model={model}&galaxy={galaxy}")
    title = page.locator(".ck-translation-title h3")
    expect(title).to_contain_text(f"{model} · task {task.name}")
    expect(title).to_contain_text(f"galaxy {galaxy}")
    expect(page.locator(".ck-model select")).to_have_value(model)

    # A click on a point of the photo-z scatter shows that galaxy (found by asking
    # Bokeh where it drew the point); above MAX_SCATTER_POINTS only a fixed subset is drawn.
    other = str(task.ids[shown_rows(len(task.ids))[0]])
    canvas = page.locator(".ck-morphology-photoz canvas").first
    expect(canvas).to_be_attached()
    page.wait_for_timeout(500)
    xy = page.evaluate(_POINT_POSITION, {"css": "ck-morphology-photoz", "id": other})
    assert xy is not None, "no drawn point of that galaxy"
    page.mouse.click(xy[0], xy[1])
    # That galaxy, or one whose point the click also hits.
    expect(title).not_to_contain_text(f"galaxy {galaxy}")
    shown = title.inner_text().split("galaxy ")[1].split()[0]
    assert task.row_of(task.parse_id(shown)) is not None
    expect(page).to_have_url(
        f"{app_url}/translation?task={task.name}&model={model}"
        f"&band={default_band(task.bands)}&galaxy={shown}"
    )


#: Where the point of galaxy ``id`` is on the screen, in the figure with CSS class ``css``.
_POINT_POSITION = """
({css, id}) => {
  const [plot] = [...Bokeh.index.query(
    (v) => v.frame && v.renderer_views && (v.model.css_classes || []).includes(css))];
  if (!plot) return null;
  const renderer = [...plot.renderer_views.values()].find((r) => r.model.name === "points");
  const data = renderer.model.data_source.data;
  const get = (key) => (data instanceof Map ? data.get(key) : data[key]);
  const i = [...get("id")].findIndex((value) => String(value) === id);
  if (i < 0) return null;
  const x = plot.frame.x_scale.compute(get("photoz_x")[i]);
  const y = plot.frame.y_scale.compute(get("photoz_y")[i]);
  const box = (plot.canvas_view?.el ?? plot.el).getBoundingClientRect();
  return [box.left + x, box.top + y];
}
"""


def test_metric_columns_explain_themselves(page, app_url):
    page.goto(app_url + "/calibration")
    header = page.locator('.ck-bin-table .tabulator-col[tabulator-field="sigma_mad_a"]')
    expect(header).to_be_visible()
    header.hover()
    tooltip = page.locator(".tabulator-tooltip")
    expect(tooltip).to_contain_text(PHOTOZ["sigma_mad"].definition[:40])
    expect(tooltip).to_contain_text("Good: ")


def test_tab_reaches_the_widgets_before_the_plot_toolbars(page, app_url):
    page.goto(app_url + "/calibration")
    expect(page.locator(".ck-galaxy-table .tabulator-row").first).to_be_visible()
    page.locator(".ck-url-message").evaluate("el => el.scrollIntoView()")
    reached = []
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(_FOCUSED))
        if any("toolbar" in r for r in reached):
            break
    first_toolbar = next((i for i, r in enumerate(reached) if "toolbar" in r), len(reached))
    widgets = [i for i, r in enumerate(reached) if "ck-method-a" in r]
    assert widgets and widgets[0] < first_toolbar, reached


#: CSS classes of the focused element and of the hosts of its shadow roots.
_FOCUSED = """
() => {
  let el = document.activeElement, classes = [];
  while (el) {
    classes.push(el.className?.toString?.() || el.tagName);
    el = el.shadowRoot?.activeElement ?? null;
  }
  return classes.join(" > ");
}
"""


def test_arrow_keys_move_the_selection_in_a_table(page, app_url, run):
    page.goto(app_url + "/calibration")
    table = page.locator(".ck-bin-table")
    rows = table.locator(".tabulator-row")
    rows.nth(0).click()
    status = page.locator(".ck-selection-status p")
    n = [row["n"] for row in run.metrics[run.methods[0]]["by_z_true"]]
    expect(status).to_contain_text(f"Showing {n[0]} galaxies")
    page.keyboard.press("ArrowDown")
    expect(status).to_contain_text(f"Showing {n[1]} galaxies")
    expect(rows.nth(1)).to_have_class(re.compile("tabulator-selected"))
    page.keyboard.press("ArrowUp")
    expect(status).to_contain_text(f"Showing {n[0]} galaxies")
