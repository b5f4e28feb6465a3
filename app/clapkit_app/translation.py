"""The translation dashboard: what a model's translated images keep of the real ones.

For one task (``s2c``: SDSS into CFHTLS; ``s2s``: SDSS onto a second SDSS exposure), one translated set
and one test galaxy: the galaxy's source input, translation, real target and residual per
band with colour composites; the noise power spectra of the real images, the model and
NR-GAN without its noise, in one band; translated against real morphology (flux, peak
flux, HSM size) and probe photo-z over the test set; and every set's redshift information
and fidelity metrics (the probe's and the peak-flux estimator's photo-z beside each
other), whose rows select the model.

Everything shown was computed by ``clapkit translate evaluate`` (see
:mod:`clapkit_app.translation_store`); the figures (:mod:`clapkit_app.translation_plots`)
are plain Bokeh figures built once per session and sent new data on each change, as in
the other dashboards.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import TapTool
from bokeh.models.widgets.tables import NumberFormatter

from clapkit.metrics.definitions import TRANSLATION, tooltips
from clapkit_app.downloads import download_buttons, frame_table
from clapkit_app.formatting import interval_text
from clapkit_app.page import problems_alert
from clapkit_app.store import load_run, plain_id
from clapkit_app.translation_plots import ImageGrid, MorphologyPlots, NoisePowerPlot
from clapkit_app.translation_store import REAL, TaskData, TranslationData
from clapkit_app.urlstate import (
    UrlField,
    UrlState,
    choice_field,
    galaxy_links,
    unknown_id_message,
)

#: What the photo-z columns can and cannot see, measured by ``benchmarks/probe_noise.py``
#: on the demo's translation stage (issue 22: ``nrgan`` and ``nrgan_smooth`` once agreed
#: to four digits while their pixels differed).
PROBE_NOTE = (
    "**What the photo-z probe sees.** The probe is a softmax network trained on the real "
    "target images; it reads log-scaled pixels of the central crop, where the galaxy "
    "outshines the sky. Noise at the sky's level barely reaches it: adding two more sky σ "
    "of noise to the real images changes its PDFs by a total variation of about 1e-4 and "
    "no column at four decimals (`benchmarks/probe_noise.py`). So `nrgan` (with emulated "
    "noise) and `nrgan_smooth` (without) get the same photo-z columns when the emulated "
    "noise is sky-like, and differ only where it is much stronger than the sky, on the "
    "galaxy itself: compare the noise-power plot and the *noise P err* column."
)

#: Columns of the redshift-information table: metric key, title, number format.
TABLE_COLUMNS = (
    ("photoz_sigma_mad", "σ_MAD", "0.0000"),
    ("photoz_bias", "bias", "0.0000"),
    ("photoz_outlier_fraction", "outliers", "0.000"),
    ("photoz_crps", "CRPS", "0.0000"),
    ("photoz_pit_w1", "PIT W1", "0.000"),
    # The peak-flux estimator (k-NN on the colours at the galaxy's peak pixel): the
    # paper's redshift finding measured directly; blank in evaluations made before it.
    ("peakz_sigma_mad", "peak σ_MAD", "0.0000"),
    ("peakz_outlier_fraction", "peak outliers", "0.000"),
    ("psnr", "PSNR (dB)", "0.00"),
    ("ssim", "SSIM", "0.000"),
    ("size_rel_error", "size err", "0.000"),
    ("flux_rel_error", "flux err", "0.000"),
    ("peak_flux_rel_error", "peak err", "0.000"),
    ("noise_power_max_rel_error", "noise P err", "0.000"),
)
#: Columns shown where the evaluation holds them (older ones do not): translations per
#: galaxy; the spread between a stochastic model's samples (pixels over the real sky σ;
#: flux and size relative, beside their errors, and as a fraction of them), with
#: intervals; the KS statistic and p-value of each morphology distribution against the
#: real one.
SAMPLING_COLUMNS = (
    ("n_samples", "samples", "0"),
    ("sample_pixel_spread", "pixel spread (σ sky)", "0.000"),
    ("sample_flux_spread", "flux spread", "0.000"),
    ("sample_size_spread", "size spread", "0.000"),
    ("sample_flux_spread_ratio", "flux spread / err", "0.00"),
    ("sample_size_spread_ratio", "size spread / err", "0.00"),
    ("ks_flux", "KS flux", "0.000"),
    ("ks_flux_p", "KS flux p", "0.000"),
    ("ks_size", "KS size", "0.000"),
    ("ks_size_p", "KS size p", "0.000"),
    ("ks_ellipticity", "KS e", "0.000"),
    ("ks_ellipticity_p", "KS e p", "0.000"),
    ("ks_concentration", "KS conc", "0.000"),
    ("ks_concentration_p", "KS conc p", "0.000"),
    ("ks_peak", "KS peak", "0.000"),
    ("ks_peak_p", "KS peak p", "0.000"),
)
#: Band of the morphology plots: the evaluation's reference band.
MORPHOLOGY_BAND = "r"
#: NR-GAN's translation without its emulated noise, drawn with every model's spectrum.
SMOOTH = "nrgan_smooth"


def task_label(data: TaskData) -> str:
    """How the task select names a task."""
    return f"{data.name}: {data.source} → {data.target}"


def default_band(bands: list[str]) -> str | None:
    """The r band if there is one, else the middle band.

    Examples
    --------
    >>> default_band(["u", "g", "r", "i", "z"]), default_band(["g", "i"]), default_band([])
    ('r', 'i', None)
    """
    if not bands:
        return None
    return MORPHOLOGY_BAND if MORPHOLOGY_BAND in bands else bands[len(bands) // 2]


def metrics_frame(data: TaskData) -> pd.DataFrame:
    """One row per set (``real`` first, then the translated sets): the stored metrics.

    Where the evaluation stored bootstrap intervals (``clapkit translate evaluate``
    since intervals exist), each metric is followed by ``<key>_ci``: the interval as
    text, marked ``*`` on a translated set whose difference from the real images, on the
    same resampled galaxies, excludes zero. Older evaluations show no interval columns.
    The :data:`SAMPLING_COLUMNS` (sample spread, KS tests) follow where some set has them.
    """
    names = [REAL, *data.sets]
    frame: dict[str, list[Any]] = {"set": names}
    optional = {key for key, _, _ in SAMPLING_COLUMNS}
    for key, _, fmt in (*TABLE_COLUMNS, *SAMPLING_COLUMNS):
        values = [data.metric(name, key) for name in names]
        if key in optional and np.isnan(values).all():
            continue  # not measured (an older evaluation, or no set with samples)
        frame[key] = values
        intervals = [data.interval(name, key) for name in names]
        if any(found is not None for found in intervals):
            frame[f"{key}_ci"] = [
                interval_text(found, fmt, data.differs_from_real(name, key))
                for name, found in zip(names, intervals, strict=True)
            ]
    return pd.DataFrame(frame)


class TranslationCompare(pn.viewable.Viewer):
    """Translated images against real ones: one galaxy in full, every galaxy's
    morphology and photo-z, every set's metrics.

    Pick a task, a model (or a row of the table) and a galaxy (by id); the band select
    chooses the band of the noise spectra. Create one per session: ``data`` is shared
    with other sessions and never modified.
    """

    data = param.ClassSelector(class_=TranslationData, doc="the run's translations")
    galaxy_id = param.Parameter(default=None, doc="id of the galaxy shown")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._quiet = False  # set while one change updates several widgets
        data = self.data
        alert = problems_alert(data) if data is not None else None
        if data is None or not data.ok:
            alert = alert or pn.pane.Alert("No run to show.", alert_type="warning")
            self._layout = pn.Column(alert, sizing_mode="stretch_width")
            return
        first = "s2c" if "s2c" in data.tasks else next(iter(data.tasks))
        self._make_widgets(first)
        self._set_task(first)
        self.task_select.param.watch(lambda event: self._set_task(event.new), "value")
        self.model_select.param.watch(lambda event: self._on_model(), "value")
        self.band_select.param.watch(lambda event: self._on_band(), "value")
        self.galaxy_search.param.watch(self._on_search, "value")
        self.table.param.watch(self._on_row, "selection")

        self._layout = self._arrange(alert)
        self._click_points()
        self._bind_url()

    def __panel__(self) -> pn.Column:
        return self._layout

    def _make_widgets(self, first: str) -> None:
        """The selects, the search box, the figures and the table (task ``first``)."""
        data = self.data
        self.task_select = pn.widgets.Select(
            label="Task",
            options={task_label(data.tasks[t]): t for t in data.tasks},
            value=first,
            css_classes=["ck-task"],
            width=200,
        )
        self.model_select = pn.widgets.Select(label="Model", css_classes=["ck-model"], width=180)
        self.band_select = pn.widgets.Select(
            label="Band of the noise spectra", css_classes=["ck-band"], width=180
        )
        self.galaxy_search = pn.widgets.TextInput(
            label="Galaxy id", placeholder="id, then Enter", css_classes=["ck-galaxy"], width=200
        )
        self.galaxy_message = pn.pane.Markdown(
            "", visible=False, css_classes=["ck-galaxy-message"], styles={"color": "#b00020"}
        )
        self.title = pn.pane.Markdown(css_classes=["ck-translation-title"], margin=(0, 10))
        self.galaxy_links = pn.pane.Markdown(css_classes=["ck-galaxy-links"], margin=(0, 10))
        self.image_note = pn.pane.Markdown(visible=False, css_classes=["ck-image-note"])
        self._grid = ImageGrid(len(data.tasks[first].bands))
        self._noise = NoisePowerPlot()
        self._morphology = MorphologyPlots()
        self.table = pn.widgets.Tabulator(
            metrics_frame(data.tasks[first]),
            disabled=True,
            selectable=1,
            show_index=False,
            # Columns as wide as their data; the table scrolls sideways when narrower.
            layout="fit_data_table",
            frozen_columns=["set"],
            sizing_mode="stretch_width",
            titles={
                **{key: title for key, title, _ in (*TABLE_COLUMNS, *SAMPLING_COLUMNS)},
                **{
                    f"{key}_ci": f"{title} {self._confidence()}"
                    for key, title, _ in (*TABLE_COLUMNS, *SAMPLING_COLUMNS)
                },
            },
            formatters={
                key: NumberFormatter(format=fmt, nan_format="—")
                for key, _, fmt in (*TABLE_COLUMNS, *SAMPLING_COLUMNS)
            },
            header_tooltips=tooltips(list(TRANSLATION), "translation"),
            css_classes=["ck-redshift-table"],
        )

    def _confidence(self) -> str:
        """The intervals' level as the column titles say it (``95%``)."""
        for task in self.data.tasks.values():
            confidence = (task.evaluation.get("bootstrap") or {}).get("confidence")
            if confidence is not None:
                return f"{100 * float(confidence):g}%"
        return "interval"

    def _arrange(self, alert: pn.pane.Alert | None) -> pn.Column:
        """The page: controls, the galaxy's images and noise spectra, the morphology
        scatters and the table of every set."""
        controls = pn.Row(
            self.task_select,
            self.model_select,
            pn.Column(self.galaxy_search, self.galaxy_message),
            self.band_select,
        )
        morphology = pn.Row(
            *(_pane(fig, f"ck-morphology-{key}") for key, fig in self._morphology.figures.items()),
            css_classes=["ck-morphology"],
        )
        return pn.Column(
            *([alert] if alert is not None else []),
            controls,
            self.title,
            self.galaxy_links,
            self.image_note,
            pn.Row(
                _pane(self._grid.figure, "ck-image-grid"),
                _pane(self._noise.figure, "ck-noise-power", sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            pn.pane.Markdown(
                f"### Translated against real over the {self._task.evaluation['split']} "
                f"galaxies ({MORPHOLOGY_BAND} band; ★ the galaxy shown; dashed: 1:1)"
            ),
            morphology,
            pn.pane.Markdown(
                "### Redshift information and fidelity of every set — select a row to show "
                "that model\n\nIntervals: bootstrap over the evaluated galaxies; `*` a set "
                "whose difference from the real images (same resampled galaxies) excludes 0."
            ),
            self.table,
            pn.pane.Markdown(PROBE_NOTE, css_classes=["ck-probe-note"]),
            download_buttons(self._metrics_table, self._metrics_stem, "ck-translation-download"),
            sizing_mode="stretch_width",
            css_classes=["ck-translation-compare"],
        )

    # ------------------------------------------------------------------ selection

    @property
    def _task(self) -> TaskData:
        return self.data.tasks[self.task_select.value]

    def _set_task(self, name: str) -> None:
        """Show task ``name``: its models, bands, galaxies and metrics; the model, band
        and galaxy shown stay when the task has them."""
        task = self.data.tasks[name]
        with pn.io.hold():
            self._quiet = True
            try:
                model = self.model_select.value
                self.model_select.options = list(task.sets)
                fallback = task.sets[0] if task.sets else None
                self.model_select.value = model if model in task.sets else fallback
                band = self.band_select.value
                self.band_select.options = task.bands
                self.band_select.value = band if band in task.bands else default_band(task.bands)
                if self.galaxy_id is None or task.row_of(self.galaxy_id) is None:
                    self.galaxy_id = plain_id(task.ids[0]) if len(task.ids) else None
                self.table.value = metrics_frame(task)
            finally:
                self._quiet = False
            self._show_all()

    def select(self, galaxy_id: Any) -> None:
        """Show galaxy ``galaxy_id`` (one message to the browser for every figure)."""
        with pn.io.hold():
            self.galaxy_id = galaxy_id

    def _on_search(self, event: param.parameterized.Event) -> None:
        text = (event.new or "").strip()
        if not text:
            self.galaxy_message.visible = False
            return
        galaxy_id = self._task.parse_id(text)
        if galaxy_id is None:
            # An unknown id changes nothing but the message: the user keeps their galaxy.
            self.galaxy_message.object = (
                f"No galaxy with id '{html.escape(text)}' among the "
                f"{self._task.evaluation['split']} galaxies of task {self._task.name}"
            )
            self.galaxy_message.visible = True
            return
        self.galaxy_message.visible = False
        self.select(galaxy_id)

    def _on_row(self, event: param.parameterized.Event) -> None:
        if self._quiet or not event.new:
            return
        name = self.table.value["set"].iat[event.new[0]]
        if name in self.model_select.options:
            self.model_select.value = name
        else:  # the real images: the model shown stays, and stays selected
            self._select_row()

    def _select_row(self) -> None:
        names = self.table.value["set"].tolist()
        model = self.model_select.value
        selection = [names.index(model)] if model in names else []
        if self.table.selection != selection:
            self.table.selection = selection

    # ------------------------------------------------------------------ updating

    def _on_model(self) -> None:
        if self._quiet:
            return
        with pn.io.hold():
            self._show_images()
            self._show_noise()
            self._show_morphology()
            self._select_row()

    def _on_band(self) -> None:
        if not self._quiet:
            self._show_noise()

    @param.depends("galaxy_id", watch=True)
    def _on_galaxy(self) -> None:
        if self._quiet or self.data is None or not self.data.ok:
            return
        with pn.io.hold():
            self._show_images()
            self._show_morphology()

    def _show_all(self) -> None:
        self._show_images()
        self._show_noise()
        self._show_morphology()
        self._select_row()

    def _show_images(self) -> None:
        task, model, galaxy_id = self._task, self.model_select.value, self.galaxy_id
        found = task.images(galaxy_id, model) if galaxy_id is not None else None
        if found is None:
            self.title.object = f"Galaxy {galaxy_id} is not among the evaluated galaxies."
            return
        row = task.row_of(galaxy_id)
        z_true = _value(task.morphology.get(REAL), "z_true", row)
        redshift = f" · true redshift z = {z_true:.4f}" if np.isfinite(z_true) else ""
        self.title.object = (
            f"### {model} · task {task.name} ({task.source} → {task.target}) · "
            f"galaxy {galaxy_id}{redshift}"
        )
        missing = [key for key in ("source", "translated", "real") if found[key] is None]
        self.galaxy_links.object = self._links_text(galaxy_id)
        self.image_note.visible = bool(missing)
        if missing:
            self.image_note.object = (
                f"*No {', '.join(missing)} images of this galaxy: see the warning above.*"
            )
        # Short: each titles a column one tile wide.
        titles = [f"source ({task.source})", model, f"real ({task.target})", "residual"]
        self._grid.update(found, task.bands, titles)

    def _show_noise(self) -> None:
        task, model, band = self._task, self.model_select.value, self.band_select.value
        real = task.noise_power(REAL, band)
        if real is None:
            return
        k, power = real
        spectra = {"real": power, "model": _power(task, model, band)}
        spectra["smooth"] = _power(task, SMOOTH, band) if model != SMOOTH else None
        self._noise.update(
            k,
            spectra,
            {"real": "real", "model": model, "smooth": SMOOTH},
            f"Noise power spectrum · {band} band · {task.name}",
        )
        # Variance per pixel per unit area in frequency: white noise of σ is flat at σ².
        self._noise.figure.yaxis.axis_label = f"power ({pixel_unit(task)}² per pixel)"

    def _show_morphology(self) -> None:
        task, model = self._task, self.model_select.value
        real = task.morphology.get(REAL)
        translated = task.morphology.get(model)
        band = MORPHOLOGY_BAND if MORPHOLOGY_BAND in task.bands else default_band(task.bands)
        row = task.row_of(self.galaxy_id) if self.galaxy_id is not None else None
        self._morphology.update(
            real if real is not None else translated, translated, band, model, row
        )
        self._label_units(band)

    # ------------------------------------------------------------------ URL, downloads

    def _bind_url(self) -> None:
        """Task, model, band and galaxy in the page's URL (:mod:`clapkit_app.urlstate`)."""
        self.url = UrlState(
            [
                choice_field("task", self.task_select, "task"),
                choice_field("model", self.model_select, "model"),
                choice_field("band", self.band_select, "band"),
                UrlField(
                    "galaxy",
                    lambda: None if self.galaxy_id is None else str(self.galaxy_id),
                    self._show_url_galaxy,
                    [(self, "galaxy_id")],
                ),
            ]
        )
        self._layout.insert(0, self.url.message)
        self.url.bind()

    def _show_url_galaxy(self, text: str) -> str | None:
        galaxy_id = self._task.parse_id(text)
        if galaxy_id is None:
            where = f"among the {self._task.evaluation['split']} galaxies of task {self._task.name}"
            return unknown_id_message(text, self._task.ids, where)
        self.select(galaxy_id)
        return None

    def _links_text(self, galaxy_id: Any) -> str:
        """Links to the galaxy on the photo-z pages of the same run, where it is."""
        pages = {}
        try:
            run = load_run(self.data.root)
        except (OSError, ValueError, KeyError):  # a broken run: its pages say why
            run = None
        if galaxy_id is not None and run is not None and run.ok and run.has_galaxy(galaxy_id):
            pages["calibration"] = "its photo-z PDFs"
            if run.details_row(galaxy_id) is not None:
                pages["neighbours"] = "its neighbours in CLAP's latent space"
        return galaxy_links(galaxy_id, pages)

    def _click_points(self) -> None:
        """A click on a point of the morphology scatters shows that galaxy."""
        points = self._morphology.points
        for fig in self._morphology.figures.values():
            drawn = [r for r in fig.renderers if r.name == "points"]
            fig.add_tools(TapTool(renderers=drawn))
        points.selected.on_change("indices", self._on_point)

    def _on_point(self, attr: str, old: list[int], new: list[int]) -> None:
        points = self._morphology.points
        if not new:
            return
        galaxy_id = plain_id(np.asarray(points.data["id"])[new[0]])
        # No selection kept: the star marks the galaxy, and every point stays bright.
        points.selected.indices = []
        self.galaxy_search.value = ""
        self.select(galaxy_id)

    def _label_units(self, band: str) -> None:
        unit = pixel_unit(self._task)
        units = {"flux": unit, "peak": unit, "size": "arcsec", "photoz": "redshift"}
        for key, fig in self._morphology.figures.items():
            suffix = f", in {units[key]}"
            fig.xaxis.axis_label = f"real{suffix}"
            label = fig.yaxis.axis_label or "translated"
            if not label.endswith(suffix):
                fig.yaxis.axis_label = label + suffix

    def _metrics_table(self) -> Any:
        task = self._task
        frame = self.table.value
        descriptions = {key: item.tooltip() for key, item in TRANSLATION.items()}
        units = {key: item.unit for key, item in TRANSLATION.items()}
        meta = {"TASK": task.name, "SOURCE": task.source, "TARGET": task.target}
        meta["SPLIT"] = str(task.evaluation.get("split"))
        return frame_table(frame, units=units, descriptions=descriptions, meta=meta)

    def _metrics_stem(self) -> str:
        return f"translation metrics {self._task.name}"


def pixel_unit(task: TaskData) -> str:
    """The unit of the task's target pixels (``nanomaggy``), or ``image units``."""
    data = getattr(task, "_data", None)
    stack = None if data is None else data.stacks.get(task.target)
    unit = getattr(stack, "units", None)
    return str(unit) if unit else "image units"


def _power(task: TaskData, name: str, band: str) -> np.ndarray | None:
    found = task.noise_power(name, band)
    return None if found is None else found[1]


def _value(frame: pd.DataFrame | None, column: str, row: int | None) -> float:
    if frame is None or row is None or column not in frame:
        return float("nan")
    return float(frame[column].iat[row])


def _pane(fig: Any, css_class: str, **params: Any) -> pn.pane.Bokeh:
    """``fig`` in a pane with the CSS class ``css_class``, on the figure itself too: the
    pane renders as the figure's own element, which takes its classes from the figure."""
    fig.css_classes = [css_class]
    return pn.pane.Bokeh(fig, css_classes=[css_class], **params)
