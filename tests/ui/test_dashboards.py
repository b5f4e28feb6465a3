"""Each dashboard, served with ``panel serve`` and driven in Chromium.

Expected values come from the run's own files (``metrics.json``, ``galaxies.h5``,
``clap/knn.h5``, ``translate/<task>/evaluation.json``, ``interpret/``), so the tests hold
for any run
(``CLAPKIT_UI_RUN``). A console error or a server traceback fails the test (see conftest).
"""

import json
import re

import numpy as np
import pytest
from clapkit_app.serving import served_app
from clapkit_app.stellar_mass import attribution_label
from clapkit_app.stellar_mass_plots import source_label
from clapkit_app.stellar_mass_store import read_stellar_mass
from clapkit_app.store import method_label, read_run
from clapkit_app.translation_store import read_translation
from playwright.sync_api import expect

from clapkit.interpret import results

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(ui_run):
    return read_run(ui_run)


def wait_for_plots(page, scope: str, at_least: int) -> None:
    """Wait until ``scope`` holds ``at_least`` rendered Bokeh canvases."""
    expect(page.locator(f"{scope} canvas").nth(at_least - 1)).to_be_attached()


def title_look(page, selector: str) -> tuple[float, float]:
    """Font size and height (pixels) of the element ``selector`` as drawn."""
    return tuple(
        page.locator(selector).evaluate(
            "e => [parseFloat(getComputedStyle(e).fontSize), e.getBoundingClientRect().height]"
        )
    )


def assert_fits_the_width(page, selector: str, every_column: bool = True) -> None:
    """The table ``selector`` ends inside the window; with ``every_column`` it also
    shows all its columns (nothing scrolls sideways inside it)."""
    if every_column:
        holder = page.locator(f"{selector} .tabulator-tableholder").first
        scroll, client = holder.evaluate("e => [e.scrollWidth, e.clientWidth]")
        # A few pixels' slack: Tabulator's fitted columns may run into the holder's
        # border or scrollbar gutter; a hidden column is at least 40 px (its minimum).
        assert scroll <= client + 12, f"{selector}: {scroll} px of columns in {client} px"
    box = page.locator(f"{selector} .tabulator").first.bounding_box()
    window = page.viewport_size["width"]
    right = box["x"] + box["width"]
    assert right <= window + 1, f"{selector} ends at {right} px, the window at {window} px"


def test_landing_lists_the_run_and_the_dashboards(page, app_url, run, screenshot):
    page.goto(app_url + "/")
    expect(page.locator(".ck-run h2")).to_contain_text(run.root.name)
    expect(page.get_by_role("link", name="Calibration explorer").first).to_be_visible()
    expect(page.get_by_role("link", name="Neighbour browser").first).to_be_visible()
    expect(page.get_by_role("link", name="Translation compare").first).to_be_visible()
    expect(page.get_by_role("link", name="Stellar mass").first).to_be_visible()
    # One row per method in the metrics table, CLAP's ensemble first.
    rows = page.locator(".ck-metrics .tabulator-row")
    expect(rows).to_have_count(len(run.methods))
    expect(rows.first).to_contain_text(method_label("clap"))
    # The plots name the methods they show, and why those.
    expect(page.locator(".ck-landing-why")).to_contain_text(method_label("clap"))
    wait_for_plots(page, ".ck-landing-coverage", 1)
    assert_fits_the_width(page, ".ck-metrics")
    screenshot(page, "landing")
    page.get_by_role("link", name="Calibration explorer").first.click()
    expect(page).to_have_url(app_url + "/calibration")


def test_calibration_explorer_follows_methods_bins_and_galaxies(page, app_url, run, screenshot):
    page.goto(app_url + "/calibration")
    expect(page.locator(".ck-galaxy-table .tabulator-row").first).to_be_visible()
    wait_for_plots(page, ".ck-galaxy-view", 1)
    cards_a = page.locator(".ck-summary-a")
    sigma = {m: f"{run.metrics[m]['summary']['sigma_mad']:.4f}" for m in run.methods}
    expect(cards_a).to_contain_text(sigma["clap"])
    # The galaxy title: one line, of a heading's size but not twice the text's.
    galaxy_title = ".ck-galaxy-title h3"
    size, height = title_look(page, galaxy_title)
    assert size <= 20 and height < 2 * size, (size, height)
    for table in (".ck-bin-table", ".ck-galaxy-table"):
        assert_fits_the_width(page, table)

    # Changing method A changes its cards to that method's stored metrics.
    page.locator(".ck-method-a select").select_option(label=method_label("softmax"))
    expect(cards_a).to_contain_text(sigma["softmax"])
    expect(page.locator(".ck-summary-b")).to_contain_text(sigma[_method_b(run)])

    # Selecting a bin of true redshift filters the galaxies below to that bin.
    bins = run.metrics["clap"]["by_z_true"]
    status = page.locator(".ck-selection-status p")
    expect(status).to_contain_text(f"all {len(run.galaxies)} galaxies")
    page.locator(".ck-bin-table .tabulator-row").nth(1).click()
    expect(status).to_contain_text(f"Showing {bins[1]['n']} galaxies with")
    id_cells = page.locator('.ck-galaxy-table .tabulator-row [tabulator-field="id"]')
    z_true = dict(zip(run.galaxies["id"].astype(str), run.galaxies["z_true"], strict=True))
    shown = [text.strip() for text in id_cells.all_inner_texts()]
    assert shown and all(bins[1]["lo"] <= z_true[i] < bins[1]["hi"] for i in shown)
    # The edges as written hold exactly the bin's galaxies ("lo ≤ true redshift < hi").
    lo, hi = re.search(r"with (\S+) ≤ true redshift < (\S+)\.", status.inner_text()).groups()
    values = run.galaxies["z_true"].to_numpy()
    assert int(((values >= float(lo)) & (values < float(hi))).sum()) == bins[1]["n"]
    # The galaxy shown is one of the bin's, not the one picked before.
    expect(page.locator(galaxy_title)).to_contain_text(f"Galaxy {shown[0]}")

    # Clicking a galaxy shows it in the galaxy view.
    galaxy = shown[2]
    page.locator(".ck-galaxy-table .tabulator-row").nth(2).click()
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {galaxy}")
    assert title_look(page, galaxy_title) == (size, height)  # the same after a pick
    page.wait_for_timeout(500)  # let the PDF plot redraw before the picture
    screenshot(page, "calibration", height=2000)


def _method_b(run) -> str:
    baselines = [m for m in run.methods if not m.startswith("clap")]
    return baselines[0] if baselines else run.methods[1]


def test_neighbour_browser_search_click_and_neighbours(page, app_url, run, screenshot):
    page.goto(app_url + "/neighbours")
    title = page.locator(".ck-neighbour-title h3")
    expect(title).to_contain_text("Galaxy")
    wait_for_plots(page, ".ck-latent-map", 1)

    # Search the galaxy farthest from the middle of the map: its neighbours and PDFs show.
    xy = run.details.projection
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2
    far = run.details.ids[int(np.argmax(np.linalg.norm(xy - centre, axis=1)))]
    search = page.locator(".ck-search input")
    search.fill(str(far))
    search.press("Enter")
    expect(title).to_contain_text(f"Galaxy {far}")
    chosen = run.neighbours(far)
    expect(page.locator(".ck-neighbour-title")).to_contain_text(f"k = {chosen['k']}")
    caption = page.locator(".ck-neighbour-caption")
    expect(caption).to_contain_text(str(chosen["ids"][0]))
    # One tile (and caption cell) per neighbour shown: k of them, at most the grid's 16.
    expect(caption.locator("td")).to_have_count(min(chosen["k"], 16))
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {far}")

    # A click in the middle of the map picks another galaxy and updates everything.
    box = page.locator(".ck-latent-map canvas").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(title).not_to_contain_text(f"Galaxy {far}")
    picked = title.inner_text().split()[1]
    other = run.neighbours(run.parse_id(picked))
    expect(caption).to_contain_text(str(other["ids"][0]))
    expect(page.locator(".ck-galaxy-title h3")).to_contain_text(f"Galaxy {picked}")
    expect(caption.locator("td")).to_have_count(min(other["k"], 16))
    size, height = title_look(page, ".ck-galaxy-title h3")
    assert size <= 20 and height < 2 * size, (size, height)

    # An unknown id says so and changes nothing.
    search.fill("no-such-galaxy")
    search.press("Enter")
    expect(page.locator(".ck-search-message")).to_contain_text("No galaxy with id 'no-such-galaxy'")
    expect(title).to_contain_text(f"Galaxy {picked}")

    page.locator(".ck-colour-by select").select_option(label="chosen k")
    page.wait_for_timeout(1000)  # the map recolours; console errors would fail the test
    screenshot(page, "neighbours", height=1500)


def test_translation_compare_follows_models_rows_and_galaxies(page, app_url, ui_run, screenshot):
    data = read_translation(ui_run)
    if not data.ok:
        pytest.skip(f"{ui_run} has no evaluated translation")
    task = data.tasks["s2c"] if "s2c" in data.tasks else next(iter(data.tasks.values()))
    names = ["real", *task.sets]
    page.goto(app_url + "/translation")
    title = page.locator(".ck-translation-title h3")
    expect(title).to_contain_text(f"{task.sets[0]} · task {task.name}")
    wait_for_plots(page, ".ck-image-grid", 1)
    wait_for_plots(page, ".ck-noise-power", 1)

    # One row per set, the real images included, with the stored σ_MAD.
    table = page.locator(".ck-redshift-table")
    expect(table.locator('.tabulator-row [tabulator-field="set"]')).to_have_text(names)
    sigma = [f"{task.metric(name, 'photoz_sigma_mad'):.4f}" for name in names]
    expect(table.locator('.tabulator-row [tabulator-field="photoz_sigma_mad"]')).to_have_text(sigma)

    # The model select and the table's rows both change the model shown.
    model = task.sets[-1]
    page.locator(".ck-model select").select_option(model)
    expect(title).to_contain_text(f"{model} · task {task.name}")
    table.locator(".tabulator-row").nth(1).click()
    expect(title).to_contain_text(f"{task.sets[0]} · task {task.name}")
    expect(page.locator(".ck-model select")).to_have_value(task.sets[0])

    # Searching an id shows that galaxy; an unknown one says so and changes nothing.
    galaxy = str(task.ids[-1])
    search = page.locator(".ck-galaxy input")
    search.fill(galaxy)
    search.press("Enter")
    expect(title).to_contain_text(f"galaxy {galaxy}")
    search.fill("no-such-galaxy")
    search.press("Enter")
    expect(page.locator(".ck-galaxy-message")).to_contain_text("No galaxy with id 'no-such-galaxy'")
    expect(title).to_contain_text(f"galaxy {galaxy}")

    page.locator(".ck-band select").select_option(task.bands[0])
    page.wait_for_timeout(1000)  # the spectra redraw; console errors would fail the test
    # The picture for the README: a valid galaxy again, so no error message shows.
    search.fill(galaxy)
    search.press("Enter")
    expect(page.locator(".ck-galaxy-message")).to_be_hidden()
    page.wait_for_timeout(500)
    screenshot(page, "translation", height=1700)


def test_stellar_mass_follows_input_sets_tests_pairs_and_galaxies(
    page, app_url, ui_run, screenshot
):
    data = read_stellar_mass(ui_run)
    # The served run always holds the whole analysis: anything missing is a failure.
    assert data.ok and data.problems == [], data.problems
    assert data.mass and data.causal and data.pid and data.attributions
    names = list(data.mass)
    page.goto(app_url + "/stellar_mass")
    wait_for_plots(page, ".ck-mass-scatter", 1)
    wait_for_plots(page, ".ck-causal-graph", 1)

    # One row per input set with its stored σ; the select and the rows agree.
    table = page.locator(".ck-mass-table")
    expect(table.locator('.tabulator-row [tabulator-field="input set"]')).to_have_text(names)
    sigma = [f"{data.mass[name].metrics['sigma']:.3f}" for name in names]
    expect(table.locator('.tabulator-row [tabulator-field="sigma"]')).to_have_text(sigma)
    selected = table.locator(".tabulator-row.tabulator-selected")
    expect(selected).to_contain_text("images" if "images" in names else names[-1])
    table.locator(".tabulator-row").nth(0).click()
    expect(selected).to_contain_text(names[0])
    expect(page.locator(".ck-input-set select option:checked")).to_contain_text(names[0])
    caption = page.locator(".ck-mass-caption")
    expect(caption).to_contain_text(f"the {len(data.test_ids)} test-split galaxies")
    for table in (".ck-mass-table", ".ck-local-tests"):
        # Tables of many columns beside a plot may scroll inside their box.
        assert_fits_the_width(page, table, every_column=False)

    # A row of the local tests draws the tests of its conditioning.
    tests = page.locator(".ck-local-tests")
    rows = data.causal.edges
    expect(tests.locator(".tabulator-row")).to_have_count(len(rows))
    unconditional = next(i for i, row in enumerate(rows) if not row["conditioned_on"])
    tests.locator(".tabulator-row").nth(unconditional).click()
    expect(page.locator(".ck-conditioning select")).to_have_value("—")

    # The pair select shows that pair's per-galaxy terms.
    pair = data.pid_pairs()[-1]
    first, second = map(source_label, data.pid["pairs"][pair]["inputs"])
    page.locator(".ck-pair select").select_option(label=f"{first} vs {second}")
    expect(page.locator(".ck-pid-caption")).to_contain_text(f"{first} vs {second}")

    # The galaxy select shows that galaxy's maps; the randomisation verdict beside them.
    arrays = data.attributions
    galaxy = data.attribution_ids[-1]
    label = f"{galaxy} · {arrays['galaxy_type'][-1]} · log M* {arrays['log_mstar'][-1]:.2f}"
    page.locator(".ck-attribution-galaxy select").select_option(label=label)
    expect(page.locator(".ck-attribution-title h3")).to_contain_text(f"Galaxy {galaxy}")
    # The table of the randomisation check: one row per method, with its verdict.
    table = page.locator(".ck-randomisation table")
    for method, row in results.randomisation_by_method(data.attribution_summary).items():
        expect(table).to_contain_text(attribution_label(method))
        expect(table.locator("tr", has_text=attribution_label(method))).to_contain_text(
            row["verdict"]
        )
    # The method select shows that method's maps.
    if len(arrays["methods"]) > 1:
        last = attribution_label(arrays["methods"][-1])
        page.locator(".ck-attribution-method select").select_option(label=last)
        expect(page.locator(".ck-attribution-title h3")).to_contain_text(last)
    wait_for_plots(page, ".ck-attribution-grid", 1)
    page.wait_for_timeout(1000)  # the maps redraw; console errors would fail the test
    screenshot(page, "stellar_mass", height=3600)


@pytest.fixture(scope="module")
def broken_app_url(tmp_path_factory, ui_run):
    """The app on a run with PDFs but no evaluation and no CLAP neighbours."""
    root = tmp_path_factory.mktemp("broken") / "run"
    (root / "pdfs").mkdir(parents=True)
    for method in ("softmax", "clap_raw"):
        source = ui_run / "pdfs" / f"{method}.h5"
        (root / "pdfs" / source.name).write_bytes(source.read_bytes())
    (root / "notes.json").write_text(json.dumps({"why": "incomplete on purpose"}))
    with served_app(root) as (url, _process):
        yield url


@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("/", "clapkit evaluate"),
        ("/calibration", "clapkit evaluate"),
        ("/neighbours", "clapkit evaluate"),
        ("/translation", "clapkit translate evaluate"),
        ("/stellar_mass", "clapkit interpret train"),
    ],
)
def test_an_incomplete_run_explains_what_is_missing(page, broken_app_url, path, command):
    page.goto(broken_app_url + path)
    alert = page.locator(".alert-warning").first
    expect(alert).to_contain_text(command)
    expect(page.locator("body")).not_to_contain_text("Traceback")
