"""The translation dashboard shows what ``clapkit translate evaluate`` stored, per model,
galaxy, band and task, and says what to run when a run has no translation."""

import os
import shutil

import numpy as np
import panel as pn
import pytest
from clapkit_app.images import stretch_band
from clapkit_app.translation import SAMPLING_COLUMNS, TABLE_COLUMNS, TranslationCompare
from clapkit_app.translation_plots import positive
from clapkit_app.translation_store import load_translation, read_translation

from clapkit.data import GalaxySet
from clapkit.testing import synthetic_translation_run
from clapkit.translate.results import read_evaluation, read_morphology, task_dir
from clapkit.translate.tasks import task as task_spec

#: Two models keep the run quick; NR-GAN brings its noise-free variant too.
MODELS = ("nrgan", "swin")


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("translation") / "run"
    return synthetic_translation_run(root, tasks=("s2s", "s2c"), models=MODELS)


@pytest.fixture(scope="module")
def data(run_root):
    return read_translation(run_root)


def hook(viewer, css_class):
    """The one object of the viewer with ``css_class`` (the browser tests' hooks)."""
    found = [
        obj
        for obj in viewer.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    assert len(found) == 1, f"{len(found)} objects with class {css_class}"
    return found[0]


def glyph_data(viewer, css_class, name):
    """The data of the glyph renderer ``name`` in the Bokeh figure of ``css_class``."""
    return hook(viewer, css_class).object.select_one({"name": name}).data_source.data


def stored_images(run_root, task_name, model, galaxy_id):
    """Source, translated and real images of one galaxy, read from the library's files."""
    evaluation = read_evaluation(run_root, task_name)
    spec = task_spec(task_name)
    with GalaxySet.load(task_dir(run_root, task_name) / model / "translated.h5") as translated:
        row = int(np.flatnonzero(translated.ids == galaxy_id)[0])
        t = np.asarray(translated.stacks[spec.target].images[row])
    with GalaxySet.load(evaluation["data"]) as galaxies:
        data_row = int(np.flatnonzero(galaxies.ids == galaxy_id)[0])
        source = np.asarray(galaxies.stacks[spec.source].images[data_row])
        real = np.asarray(galaxies.stacks[spec.target].images[data_row])
    return source, t, real


def check_images(viewer, run_root, task_name, model, galaxy_id):
    """The grid shows this galaxy's files: source, translated and real bands (stretched
    as displayed), and the residual translated − real exactly."""
    source, translated, real = stored_images(run_root, task_name, model, galaxy_id)
    tiles = glyph_data(viewer, "ck-image-grid", "tiles")["image"]
    residuals = glyph_data(viewer, "ck-image-grid", "residuals")["image"]
    n_bands = real.shape[0]
    assert len(tiles) == 3 * n_bands and len(residuals) == n_bands
    for b in range(n_bands):
        np.testing.assert_array_equal(tiles[3 * b], stretch_band(source[b])[::-1])
        np.testing.assert_array_equal(
            tiles[3 * b + 1], stretch_band(translated[b], reference=real[b])[::-1]
        )
        np.testing.assert_array_equal(tiles[3 * b + 2], stretch_band(real[b])[::-1])
        np.testing.assert_allclose(residuals[b], (translated[b] - real[b])[::-1], rtol=1e-6)
    composites = glyph_data(viewer, "ck-image-grid", "composites")["image"]
    assert len(composites) == 3 and all(c.dtype == np.uint32 for c in composites)


def test_the_dashboard_opens_on_the_first_model_and_galaxy(run_root, data):
    viewer = TranslationCompare(data=data)
    pn.panel(viewer).get_root()  # what a notebook does to show it
    task = data.tasks["s2c"]
    assert hook(viewer, "ck-task").value == "s2c"
    assert hook(viewer, "ck-model").options == ["nrgan", "nrgan_smooth", "swin"]
    galaxy_id = task.ids[0]
    title = hook(viewer, "ck-translation-title").object
    assert "nrgan" in title and "s2c" in title and f"galaxy {galaxy_id}" in title
    check_images(viewer, run_root, "s2c", "nrgan", galaxy_id)
    assert not hook(viewer, "ck-image-note").visible
    assert hook(viewer, "ck-band").value == "r"
    # Beside the photo-z columns, what the probe can see (issue 22's nrgan/nrgan_smooth).
    assert "sky" in hook(viewer, "ck-probe-note").object


def test_changing_the_model_updates_the_same_figures(run_root, data):
    viewer = TranslationCompare(data=data)
    grid = hook(viewer, "ck-image-grid").object
    noise = hook(viewer, "ck-noise-power").object
    galaxy_id = data.tasks["s2c"].ids[0]
    for model in ("swin", "nrgan_smooth"):
        hook(viewer, "ck-model").value = model
        assert hook(viewer, "ck-image-grid").object is grid
        assert hook(viewer, "ck-noise-power").object is noise
        assert model in hook(viewer, "ck-translation-title").object
        check_images(viewer, run_root, "s2c", model, galaxy_id)
    # The table's selected row follows the model.
    table = hook(viewer, "ck-redshift-table")
    assert table.value["set"].iat[table.selection[0]] == "nrgan_smooth"


def test_noise_spectra_are_the_stored_ones_for_the_chosen_band(run_root, data):
    evaluation = read_evaluation(run_root, "s2c")
    spectra = evaluation["noise_power"]
    viewer = TranslationCompare(data=data)
    hook(viewer, "ck-model").value = "swin"
    for band in ("r", "u"):
        hook(viewer, "ck-band").value = band
        drawn = glyph_data(viewer, "ck-noise-power", "real")
        np.testing.assert_allclose(drawn["k"], positive(spectra["k"]))
        np.testing.assert_allclose(drawn["real"], positive(spectra["real"][band]))
        np.testing.assert_allclose(drawn["model"], positive(spectra["swin"][band]))
        np.testing.assert_allclose(drawn["smooth"], positive(spectra["nrgan_smooth"][band]))
        assert f"{band} band" in hook(viewer, "ck-noise-power").object.title.text
    plot = hook(viewer, "ck-noise-power").object
    assert plot.select_one({"name": "smooth"}).visible
    # NR-GAN's noise-free variant chosen: its curve is the model's, not drawn twice.
    hook(viewer, "ck-model").value = "nrgan_smooth"
    assert not plot.select_one({"name": "smooth"}).visible
    labels = [item.label.value for item in plot.legend[0].items if item.visible]
    assert labels == ["real", "nrgan_smooth"]


def test_morphology_plots_hold_the_stored_tables_and_star_the_galaxy(run_root, data):
    viewer = TranslationCompare(data=data)
    hook(viewer, "ck-model").value = "swin"
    real = read_morphology(run_root, "s2c", "real")
    swin = read_morphology(run_root, "s2c", "swin")
    points = glyph_data(viewer, "ck-morphology-flux", "points")
    np.testing.assert_array_equal(points["id"], np.asarray(real["id"]))
    np.testing.assert_allclose(points["flux_x"], positive(real["flux_r"]))
    np.testing.assert_allclose(points["flux_y"], positive(swin["flux_r"]))
    np.testing.assert_allclose(points["peak_y"], positive(swin["peak_r"]))
    sigma = np.where(swin["hsm_ok_r"], swin["sigma_r"], np.nan)
    np.testing.assert_allclose(points["size_y"], sigma)
    np.testing.assert_allclose(points["photoz_x"], real["photoz"])
    np.testing.assert_allclose(points["photoz_y"], swin["photoz"])
    galaxy_id = data.tasks["s2c"].ids[5]
    hook(viewer, "ck-galaxy").value = str(galaxy_id)
    chosen = glyph_data(viewer, "ck-morphology-photoz", "chosen")
    assert chosen["id"].tolist() == [galaxy_id]
    assert chosen["photoz_y"][0] == pytest.approx(swin["photoz"][5])
    assert "translated (swin)" in hook(viewer, "ck-morphology-flux").object.yaxis.axis_label


def test_a_new_model_sends_only_translated_columns_and_a_new_galaxy_only_the_star(data):
    from bokeh.document import Document
    from bokeh.document.events import ColumnDataChangedEvent, ModelChangedEvent

    viewer = TranslationCompare(data=data)
    document = Document()
    document.add_root(pn.panel(viewer).get_root(document))
    points = hook(viewer, "ck-morphology-flux").object.select_one({"name": "points"})
    sent: list[tuple[str, list[str] | None]] = []

    def record(event):
        if getattr(event, "model", None) is not points.data_source:
            return
        if isinstance(event, ColumnDataChangedEvent):
            sent.append(("columns", event.cols))
        elif isinstance(event, ModelChangedEvent) and event.attr == "data":
            sent.append(("data", None))

    document.on_change(record)
    hook(viewer, "ck-model").value = "swin"
    assert sent, "the new model's points were not sent"
    assert all(kind == "columns" and all(c.endswith("_y") for c in cols) for kind, cols in sent)
    sent.clear()
    hook(viewer, "ck-galaxy").value = str(data.tasks["s2c"].ids[3])
    assert sent == []
    # Another band changes the real (x) columns too: the whole source is replaced.
    viewer._morphology.update(
        data.tasks["s2c"].morphology["real"], data.tasks["s2c"].morphology["swin"], "g", "swin", 0
    )
    assert sent and any(cols is None or any(c.endswith("_x") for c in cols) for _, cols in sent)


def test_the_table_shows_each_metric_s_interval_and_marks_sets_that_differ(data):
    from clapkit.translate.results import interval, rows_differ

    task = data.tasks["s2c"]
    table = hook(TranslationCompare(data=data), "ck-redshift-table")
    frame = table.value
    evaluation = task.evaluation
    for key, title, fmt in TABLE_COLUMNS:
        column = f"{key}_ci"
        assert column in frame and table.titles[column] == f"{title} 95%"
        decimals = len(fmt.partition(".")[2])
        for name, text in zip(frame["set"], frame[column], strict=True):
            found = interval(evaluation["models"][name], key)
            if found is None:
                assert text == "—"
                continue
            lo, hi = text.rstrip(" *").split("–")
            assert float(lo) == pytest.approx(found[0], abs=10**-decimals)
            assert float(hi) == pytest.approx(found[1], abs=10**-decimals)
            differs = name != "real" and rows_differ(evaluation, name, "real", key)
            assert text.endswith(" *") == bool(differs)


def test_an_evaluation_without_intervals_shows_none(data):
    import copy

    from clapkit_app.translation import metrics_frame

    task = copy.copy(data.tasks["s2c"])
    stored = copy.deepcopy(task.evaluation)
    stored.pop("paired_differences", None)
    for row in stored["models"].values():
        for key in [k for k in row if k.endswith("_ci")]:
            del row[key]
    task.evaluation = stored
    frame = metrics_frame(task)
    assert not [c for c in frame if c.endswith("_ci")]
    assert frame["photoz_sigma_mad"].notna().all()


def test_the_peak_flux_estimator_sits_beside_the_probe_with_its_intervals(data):
    table = hook(TranslationCompare(data=data), "ck-redshift-table")
    frame, evaluation = table.value, data.tasks["s2c"].evaluation
    columns = list(frame.columns)
    for key in ("peakz_sigma_mad", "peakz_outlier_fraction"):
        # After the probe's columns, before the pixel metrics.
        assert columns.index("photoz_pit_w1") < columns.index(key) < columns.index("psnr")
        stored = [evaluation["models"][name][key] for name in frame["set"]]
        np.testing.assert_allclose(frame[key], stored)
        assert frame[f"{key}_ci"].str.contains("–").all()
    assert table.titles["peakz_sigma_mad"] == "peak σ_MAD"


def test_an_evaluation_from_before_the_peak_flux_estimator_shows_blank_columns(data):
    import copy

    from clapkit_app.translation import metrics_frame

    task = copy.copy(data.tasks["s2c"])
    stored = copy.deepcopy(task.evaluation)
    for row in [*stored["models"].values(), *stored["paired_differences"]["models"].values()]:
        for key in [k for k in row if k.startswith("peakz_")]:
            del row[key]
    task.evaluation = stored
    frame = metrics_frame(task)
    assert frame["peakz_sigma_mad"].isna().all() and "peakz_sigma_mad_ci" not in frame
    assert frame["photoz_sigma_mad"].notna().all() and "photoz_sigma_mad_ci" in frame
    assert frame["set"].tolist() == ["real", *data.tasks["s2c"].sets]


def test_the_table_shows_the_spread_between_samples_and_the_ks_tests(data):
    from clapkit.translate.results import interval

    task = data.tasks["s2c"]
    table = hook(TranslationCompare(data=data), "ck-redshift-table")
    frame = table.value.set_index("set")
    rows = task.evaluation["models"]
    # NR-GAN with its noise drew 8 samples; swin and the smooth set are deterministic.
    assert frame.loc["nrgan", "n_samples"] == 8 and frame.loc["swin", "n_samples"] == 1
    assert frame.loc["nrgan", "sample_pixel_spread"] == pytest.approx(
        rows["nrgan"]["sample_pixel_spread"]
    )
    assert frame.loc["nrgan", "sample_pixel_spread"] > 0
    assert np.isnan(frame.loc["swin", "sample_pixel_spread"])
    assert np.isnan(frame.loc["nrgan_smooth", "sample_flux_spread"])
    lo, hi = frame.loc["nrgan", "sample_pixel_spread_ci"].split("–")
    found = interval(rows["nrgan"], "sample_pixel_spread")
    assert float(lo) == pytest.approx(found[0], abs=1e-3)
    assert float(hi) == pytest.approx(found[1], abs=1e-3)
    assert frame.loc["swin", "sample_pixel_spread_ci"] == "—"
    # KS statistics of every set, the real images against themselves being 0 (p = 1).
    for key in ("ks_flux", "ks_size", "ks_ellipticity", "ks_concentration", "ks_peak"):
        assert frame.loc["real", key] == 0.0 and frame.loc["real", f"{key}_p"] == 1.0
        for name in ("nrgan", "swin", "nrgan_smooth"):
            assert frame.loc[name, key] == pytest.approx(rows[name][key])
            assert 0.0 <= frame.loc[name, key] <= 1.0
    assert table.titles["ks_flux"] == "KS flux"
    assert table.titles["sample_pixel_spread_ci"] == "pixel spread (σ sky) 95%"


def test_an_evaluation_without_samples_or_ks_shows_neither(data):
    import copy

    from clapkit_app.translation import metrics_frame

    task = copy.copy(data.tasks["s2c"])
    stored = copy.deepcopy(task.evaluation)
    optional = {key for key, _, _ in SAMPLING_COLUMNS}
    for row in stored["models"].values():
        for key in [k for k in row if k in optional or k.removesuffix("_ci") in optional]:
            del row[key]
    task.evaluation = stored
    frame = metrics_frame(task)
    assert not optional & set(frame) and not [c for c in frame if c.startswith("sample_")]
    assert {key for key, _, _ in TABLE_COLUMNS} <= set(frame)


def test_searching_an_id_shows_that_galaxy_and_an_unknown_id_changes_nothing(run_root, data):
    viewer = TranslationCompare(data=data)
    search, message = hook(viewer, "ck-galaxy"), hook(viewer, "ck-galaxy-message")
    galaxy_id = data.tasks["s2c"].ids[3]
    search.value = f" {galaxy_id} "
    assert viewer.galaxy_id == galaxy_id and not message.visible
    assert f"galaxy {galaxy_id}" in hook(viewer, "ck-translation-title").object
    check_images(viewer, run_root, "s2c", "nrgan", galaxy_id)
    residuals = glyph_data(viewer, "ck-image-grid", "residuals")["image"]
    for text in ("no-such-galaxy", "999999"):
        search.value = text
        assert message.visible and f"No galaxy with id '{text}'" in message.object
        assert viewer.galaxy_id == galaxy_id
        assert f"galaxy {galaxy_id}" in hook(viewer, "ck-translation-title").object
        assert glyph_data(viewer, "ck-image-grid", "residuals")["image"] is residuals
    search.value = str(data.tasks["s2c"].ids[0])
    assert not message.visible


def test_the_table_lists_every_set_and_its_rows_select_the_model(run_root, data):
    evaluation = read_evaluation(run_root, "s2c")
    viewer = TranslationCompare(data=data)
    table = hook(viewer, "ck-redshift-table")
    assert table.value["set"].tolist() == ["real", "nrgan", "nrgan_smooth", "swin"]
    for key, _, _ in TABLE_COLUMNS:
        stored = [evaluation["models"][name][key] for name in table.value["set"]]
        expected = [np.nan if v is None else v for v in stored]
        np.testing.assert_allclose(table.value[key], expected)
    assert np.isnan(table.value["psnr"].iat[0])  # the real row's PSNR is infinite
    table.selection = [3]
    assert hook(viewer, "ck-model").value == "swin"
    assert "swin" in hook(viewer, "ck-translation-title").object
    # The real images are no model: the model shown stays, and so does its row.
    table.selection = [0]
    assert hook(viewer, "ck-model").value == "swin" and table.selection == [3]


def test_switching_task_shows_that_task_s_images_spectra_and_metrics(run_root, data):
    viewer = TranslationCompare(data=data)
    hook(viewer, "ck-model").value = "swin"
    galaxy_id = data.tasks["s2c"].ids[2]
    viewer.galaxy_id = galaxy_id
    hook(viewer, "ck-task").value = "s2s"
    # The same model and galaxy (both tasks have them), now translated into SDSS.
    assert hook(viewer, "ck-model").value == "swin" and viewer.galaxy_id == galaxy_id
    assert "s2s" in hook(viewer, "ck-translation-title").object
    check_images(viewer, run_root, "s2s", "swin", galaxy_id)
    evaluation = read_evaluation(run_root, "s2s")
    table = hook(viewer, "ck-redshift-table")
    sigma = [evaluation["models"][name]["photoz_sigma_mad"] for name in table.value["set"]]
    np.testing.assert_allclose(table.value["photoz_sigma_mad"], sigma)
    drawn = glyph_data(viewer, "ck-noise-power", "real")
    np.testing.assert_allclose(drawn["model"], positive(evaluation["noise_power"]["swin"]["r"]))
    pn.panel(viewer).get_root()


def test_a_run_without_translation_says_which_commands_make_one(tmp_path):
    for root in (tmp_path, tmp_path / "absent"):
        data = read_translation(root)
        assert not data.ok
        assert any("clapkit translate train" in p for p in data.problems)
        assert any("clapkit translate evaluate" in p for p in data.problems)
        viewer = TranslationCompare(data=data)
        (alert,) = viewer.__panel__().objects
        assert isinstance(alert, pn.pane.Alert) and "clapkit translate" in alert.object
        pn.panel(viewer).get_root()


def test_translated_but_not_evaluated_asks_for_the_evaluation(tmp_path):
    folder = tmp_path / "translate" / "s2c" / "swin"
    folder.mkdir(parents=True)
    (folder / "translated.h5").write_bytes(b"")
    (problem,) = read_translation(tmp_path).problems
    assert "clapkit translate evaluate --task s2c" in problem


def test_a_missing_translated_set_is_reported_and_its_images_left_out(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    (task_dir(root, "s2c") / "swin" / "translated.h5").unlink()
    data = read_translation(root)
    assert any("`swin`" in p and "clapkit translate apply" in p for p in data.problems)
    viewer = TranslationCompare(data=data)
    hook(viewer, "ck-model").value = "swin"
    note = hook(viewer, "ck-image-note")
    assert note.visible and "translated" in note.object
    # The other sets' images, the spectra and the table are still shown.
    assert len(hook(viewer, "ck-redshift-table").value) == 4
    hook(viewer, "ck-model").value = "nrgan"
    assert not hook(viewer, "ck-image-note").visible
    # The problems alert heads the page (after the link-state note, hidden here).
    shown = [obj for obj in viewer.__panel__().objects if getattr(obj, "visible", True)]
    assert isinstance(shown[0], pn.pane.Alert)


def test_the_store_is_cached_until_an_evaluation_changes(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    first = load_translation(root)
    assert load_translation(root) is first
    path = task_dir(root, "s2s") / "evaluation.json"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_translation(root) is not first
