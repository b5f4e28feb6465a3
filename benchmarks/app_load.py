"""Load of the served dashboards, measured from a real browser: first render, interaction
latency, and ten concurrent sessions (errors, latency, server memory).

The app is served exactly as users serve it (:func:`clapkit_app.serving.served_app`:
``panel serve`` on the five page scripts of ``app/``, ``--index landing``) on a run of
``--n-galaxies`` test galaxies (default 100,000) and ``--n-train`` training
galaxies (default 20,000) with 64×64 ugriz images. The run is synthetic
(:func:`clapkit.testing.synthetic_run`: every artefact the app reads, written by the
library's own writers, CLAP's KNN stages computed for real; only the network training is
skipped, since training on 100,000 galaxies takes hours on CPUs and the app's load
depends on the sizes of what it reads, not on the values). Its translation and
stellar-mass parts come from small runs trained for real (:data:`SMALL_RUNS` galaxies:
every translation family, CLAP per input set, the causal tests, the MI decomposition,
the attributions), whose per-galaxy files are tiled to the same number of test galaxies
(:mod:`_scaled_runs`). It is built once in
``<work>/synthetic_n<N>_t<T>_s<seed>`` (``--work`` defaults to ``data/runs/bench_app``,
git-ignored; about 10 GB of images at the full size) and reused while its stamp
(``bench_stamp.json``: sizes, seed, clapkit version) matches; ``--run DIR`` serves an
existing run instead. Sizes matter beyond time: above 20,000 galaxies the neighbour
browser rasterizes its map on the server, so ``--quick`` (3,000) exercises the other
path. The server runs with ``--check-unused-sessions
1000 --unused-session-lifetime 5000`` so that closed sessions are discarded within
seconds; its output goes to ``<work>/logs/server-<time>-<pid>.log``. Chromium is Debian's
(``/usr/bin/chromium``, headless, :data:`~clapkit_app.serving.CHROMIUM_ARGS`), driven
by Playwright's async API: one browser process, one context per simulated user.

How each quantity is measured:

- ``first_render``: per page (``/``, ``/calibration``, ``/neighbours``,
  ``/translation``, ``/stellar_mass``), a fresh
  browser context opens the page. A script injected before the page's own records the
  time of every canvas paint (Bokeh clears a canvas layer, ``clearRect``, before each
  repaint; ``drawImage``/``putImageData`` count too) and polls every 50 ms, through the
  open shadow roots, until (1) the dashboard's key elements (the ``ck-*`` hooks of
  :data:`READY`) are visible, (2) every Bokeh document has reported idle
  (``Document.is_idle``: each root view finished its first render), (3) no Panel
  loading spinner (``.pn-loading``) is shown, (4) at least :data:`READY`'s number of
  canvases exist, and (5) neither the number of canvases, the hooks' text nor any
  canvas paint has changed for 500 ms. The time is when that final state began (the
  later of its first poll and the last paint), in s since navigation start
  (``performance.now()``, so it includes the server building the session and running
  the page script). One untimed load per dashboard first (``cold_seconds``: the first
  session after the server starts pays for imports), then ``--repeats`` timed loads;
  ``median``/``max`` in s. ``median_html_seconds`` (the page's HTML received: the
  server built the session and ran the page script) and ``median_dom_ready_seconds``
  (Navigation Timing) split that time; the rest is the websocket and the browser
  rendering, whose CPU time counts too: the browser shares the machine with the server.
- ``interaction``: one user visits the four dashboards one after the other (one page
  open at a time, as a person looks at one page; ``--together`` keeps all four open in
  one browser context, whose rendering then competes with the server for the CPU);
  ``--n-interactions`` (≥ 20) of each type: on ``/calibration`` change method A (done when ``.ck-summary-a`` shows the
  new method's σ_MAD from ``metrics.json``, ``f"{v:.4f}"``), select a bin row (when the
  selection status or the galaxy table changes), change the bin variable (when the
  bin table changes); on ``/neighbours`` change colour-by (when the map's canvas pixels
  change), search a galaxy id (when ``.ck-neighbour-title`` shows ``Galaxy <id>`` and
  the neighbour grid has changed), click the map (when the title names another galaxy
  and the grid has changed); on ``/translation`` change the model (when the title names
  it), the band of the noise spectra (when the spectrum changes), search a galaxy id
  (when the title names it); on ``/stellar_mass`` change the input set (when the mass
  scatter or its caption changes), the input pair of the per-galaxy MI terms (when the
  histograms or their caption change) and the galaxy of the attribution maps (when the
  title or the maps change). "Changed" compares a signature of the hook (its text
  through shadow roots, image sources, and a hash of every pixel of its canvases, so a
  recolouring shows even when only the colour mapping changed) with the one taken just
  before the action. After the expected change the page must stay still for 300 ms (no
  canvas paint anywhere, no spinner, the watched hooks' text unchanged); the latency
  (``median_ms``, ``p95_ms``, ``max_ms``) is from just before the action to the last
  visible change or paint, so that every plot the action updates is drawn; in the
  browser's clock, polled every 40 ms (a poll costs the page ~1–3 ms; paint times are
  exact). ``expected_median_ms`` is to the expected change alone. The action's
  dispatch by Playwright (a few ms) is included. A change that does not come within
  ``--action-timeout`` is an error.
- ``load``: ``--sessions`` sessions (default 10), each a browser context with one page,
  so one Bokeh server session: session ``i`` on the ``i mod 4``-th dashboard, so all
  four are under load (one page per session also keeps
  the browser's CPU, which shares the machine with the server, to what the sessions
  need). They open one after the other (each waits for its page to render; the first
  also does one round of its interactions before ``one_session`` is read), then all
  interact concurrently for ``--duration`` s, each in a loop of its dashboard's three
  interactions (back to back, or ``--think`` s apart). ``cpu`` gives server and browser CPU seconds per phase: a server well
  below one CPU-second per second while interactions time out means the browser, not
  the server, was short of CPU.
  Errors: browser console errors, uncaught page errors, expected changes that did not
  come in time, failed actions, and lines of the server log with ``Traceback`` or
  ``ERROR`` during the phase. Latency as above, per type and overall. Resources of other
  hosts that fail to load (web fonts on a machine offline) are listed in
  ``external_resources_failed``, not counted as errors.
- ``memory``: resident set size of the server process and its children (psutil),
  in MB: ``start`` just before the load phase (earlier phases' sessions closed and
  discarded), ``one_session`` once the first user is open, ``all_sessions`` once all
  are open and again at the end of the interaction (``all_sessions_end``), sampled
  every second during the phase (``peak``), then every 10 s for ``--settle`` s after
  all contexts close (``settle_samples``, ``final``). ``growth_per_session`` is
  (max(all_sessions, all_sessions_end) − one_session) / (sessions opened − 1). Each
  reading but the samples is the median of three samples 0.5 s apart.
- ``load_average``: the machine's 1-, 5- and 15-minute load averages at the start and
  end of each phase, beside its figures (``settings.load_average`` is before the run).

Goals (from the issue): first render ≤ 3 s (max of the timed loads of every
page); interaction ≤ 300 ms at the median and ≤ 1 s at p95 (single user, all twelve
types measured); the concurrent sessions without a single error; memory growth per
extra session ≤ 100 MB; server memory within 10% of ``start`` after ``--settle`` s.

Usage: ``python benchmarks/app_load.py [--n-galaxies 100000] [--n-train 20000]
[--work DIR | --run DIR] [--repeats 3] [--n-interactions 20] [--sessions 10]
[--duration 60] [--think 0] [--settle 60] [--quick] [--build-only] [--debug-server]
[--out FILE]``; ``--quick`` is 3,000 test and 2,000 training galaxies, 15 s of load,
15 s of settling, 2 repeats (options given explicitly win). Progress goes to stderr, the
JSON report to stdout. On a small machine the ten sessions' browser pages compete with
the server for CPU (see ``cpu``): ``--think`` or a larger machine separates the two.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psutil
from _report import emit
from clapkit_app.serving import CHROMIUM_ARGS, CHROMIUM_PATH, served_app
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

import clapkit

#: CSS classes (Panel ``css_classes``) the benchmark drives and watches; Playwright's
#: selectors and the injected script both look through open shadow roots.
SELECTORS = {
    "method_a": ".ck-method-a",
    "summary_a": ".ck-summary-a",
    "bin_variable": ".ck-bin-variable",
    "bin_table": ".ck-bin-table",
    "bin_row": ".ck-bin-table .tabulator-row",
    "selection_status": ".ck-selection-status",
    "galaxy_table": ".ck-galaxy-table",
    "galaxy_title": ".ck-galaxy-title",
    "colour_by": ".ck-colour-by",
    "search": ".ck-search",
    "search_message": ".ck-search-message",
    "latent_map": ".ck-latent-map",
    "neighbour_title": ".ck-neighbour-title",
    "neighbour_grid": ".ck-neighbour-grid",
    "model": ".ck-model",
    "noise_band": ".ck-band",
    "translation_search": ".ck-galaxy",
    "translation_title": ".ck-translation-title",
    "image_grid": ".ck-image-grid",
    "noise_power": ".ck-noise-power",
    "morphology": ".ck-morphology",
    "input_set": ".ck-input-set",
    "mass_scatter": ".ck-mass-scatter",
    "mass_caption": ".ck-mass-caption",
    "pid_pair": ".ck-pair",
    "pid_galaxies": ".ck-pid-galaxies",
    "pid_caption": ".ck-pid-caption",
    "attribution_galaxy": ".ck-attribution-galaxy",
    "attribution_title": ".ck-attribution-title",
    "attribution_grid": ".ck-attribution-grid",
}
#: What a rendered dashboard shows: hooks that must be visible, and at least how many
#: canvases (Bokeh plots) it draws.
READY = {
    "/": {"hooks": [".ck-run", ".ck-metrics"], "min_canvas": 0},
    "/landing": {"hooks": [".ck-run", ".ck-metrics"], "min_canvas": 0},
    "/calibration": {
        "hooks": [SELECTORS[k] for k in ("method_a", "summary_a", "bin_table")],
        "min_canvas": 1,
    },
    "/neighbours": {
        "hooks": [SELECTORS[k] for k in ("colour_by", "search", "latent_map")],
        "min_canvas": 1,
    },
    "/translation": {
        "hooks": [SELECTORS[k] for k in ("model", "translation_title", "image_grid", "morphology")],
        "min_canvas": 1,
    },
    "/stellar_mass": {
        "hooks": [
            SELECTORS[k] for k in ("input_set", "mass_scatter", "pid_pair", "attribution_grid")
        ],
        "min_canvas": 1,
    },
}
#: The dashboards and the interaction types the benchmark drives on each.
TYPES = {
    "calibration": ("method_a", "bin_row", "bin_variable"),
    "neighbours": ("colour_by", "search", "map_click"),
    "translation": ("model", "noise_band", "translation_search"),
    "stellar_mass": ("input_set", "pid_pair", "attribution_galaxy"),
}
DASHBOARDS = tuple(TYPES)
ALL_TYPES = tuple(kind for kinds in TYPES.values() for kind in kinds)
PATHS = ("/", *(f"/{name}" for name in DASHBOARDS))
SERVER_EXTRA = ("--check-unused-sessions", "1000", "--unused-session-lifetime", "5000")
VIEWPORT = {"width": 1400, "height": 1000}
STABLE_MS = 500  # first render: canvases unchanged this long
QUIET_MS = 300  # interaction: page unchanged this long after the expected change
POLL_MS = 40  # interaction: how often the page is checked (paint times are exact)
#: Defaults of the full benchmark and of ``--quick``.
FULL = {"n_galaxies": 100_000, "n_train": 20_000, "duration": 60.0, "settle": 60.0, "repeats": 3}
#: Galaxies of the small translation and stellar-mass runs trained for real, then tiled.
SMALL_RUNS = {"translation": 200, "stellar_mass": 400}
QUICK = {"n_galaxies": 3_000, "n_train": 2_000, "duration": 15.0, "settle": 15.0, "repeats": 2}
LOG_ERROR = re.compile(r"Traceback|ERROR|Error running")
APP_ERROR = re.compile(r"Error running application handler")

# Injected into every page before its own scripts: helpers under ``window.ck`` and the
# first-render watcher (see the module docstring).
PAGE_JS = r"""
(() => {
  if (window.ck) return;
  const READY = __READY__;
  const STABLE_MS = __STABLE__, POLL_MS = __POLL__;
  let scratch = null, sctx = null;
  // Time of the last paint on any canvas, and paints per canvas: Bokeh clears a layer
  // before every repaint. A canvas's pixels are hashed again only after a paint.
  window.__ckPaint = 0;
  const paints = new WeakMap(), hashes = new WeakMap();
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of ['clearRect', 'drawImage', 'putImageData']) {
    const original = proto[name];
    proto[name] = function (...args) {
      const c = this.canvas;
      if (c !== scratch) { window.__ckPaint = performance.now(); paints.set(c, (paints.get(c) || 0) + 1); }
      return original.apply(this, args);
    };
  }
  const fnv = (h, v) => Math.imul(h ^ v, 0x01000193);
  const hashStr = (s) => { let h = 0x811c9dc5; for (let i = 0; i < s.length; i++) h = fnv(h, s.charCodeAt(i)); return (h >>> 0).toString(16); };
  function canvasHash(c) {
    const n = paints.get(c), old = hashes.get(c);
    if (n !== undefined && old && old[0] === n && old[1] === c.width && old[2] === c.height) return old[3];
    const hash = pixelHash(c);
    if (n !== undefined) hashes.set(c, [n, c.width, c.height, hash]);
    return hash;
  }
  function pixelHash(c) {
    // Every pixel at full resolution (a colour change of a few points must show).
    const w = c.width, h = c.height;
    if (!w || !h) return '0';
    try {
      let ctx = c.getContext('2d', {willReadFrequently: true});
      if (!ctx) {  // a WebGL canvas: copy it to a 2-D one first
        if (!scratch) { scratch = document.createElement('canvas'); sctx = scratch.getContext('2d', {willReadFrequently: true}); }
        scratch.width = w; scratch.height = h;
        sctx.drawImage(c, 0, 0);
        ctx = sctx;
      }
      const d = new Uint32Array(ctx.getImageData(0, 0, w, h).data.buffer);
      let a = 0x811c9dc5, b = 0;
      for (let i = 0; i < d.length; i++) { a = Math.imul(a ^ d[i], 0x01000193); b = (b + d[i] * (i + 1)) | 0; }
      return w + 'x' + h + ':' + (a >>> 0).toString(16) + (b >>> 0).toString(16);
    } catch (e) { return 'err'; }
  }
  // Every shadow root of the page, recorded as it is attached (no tree walks per poll).
  const shadowRoots = new Set();
  const attachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (...args) {
    const root = attachShadow.apply(this, args);
    shadowRoots.add(root);
    return root;
  };
  function allRoots() {
    const roots = [document];
    for (const root of shadowRoots) if (root.host.isConnected) roots.push(root);
    return roots;
  }
  function deepAll(sel, root) {
    if (!root) return allRoots().flatMap((r) => [...r.querySelectorAll(sel)]);
    const out = [];
    const walk = (node) => {
      out.push(...node.querySelectorAll(sel));
      for (const el of node.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
    };
    if (root.shadowRoot) walk(root.shadowRoot);
    walk(root);
    return out;
  }
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  function find(sel) {
    const all = deepAll(sel);
    return all.find(visible) || all[0] || null;
  }
  function walkSig(el, withPixels) {
    const parts = [];
    const visit = (node) => {
      if (node.nodeType === 3) { const t = node.nodeValue.trim(); if (t) parts.push(t); return; }
      if (node.nodeType !== 1 && node.nodeType !== 11) return;
      const tag = node.tagName;
      if (tag === 'STYLE' || tag === 'SCRIPT' || tag === 'LINK') return;
      if (withPixels && tag === 'IMG') parts.push('img:' + hashStr(node.src || ''));
      if (withPixels && tag === 'CANVAS') parts.push('cv:' + canvasHash(node));
      if (node.shadowRoot) visit(node.shadowRoot);
      for (const c of node.childNodes) visit(c);
    };
    visit(el);
    return parts;
  }
  const sigOf = (sel) => { const el = find(sel); return el ? walkSig(el, true).join('|') : null; };
  const textOf = (sel) => { const el = find(sel); return el ? walkSig(el, false).join(' ') : ''; };
  const loading = () => deepAll('.pn-loading').filter(visible).length;
  const canvases = () => deepAll('canvas').filter(visible);
  // What must stay still once an action's change shows (paints are tracked apart).
  const pageKey = (watch) => loading() + '/' + deepAll('canvas').length + '/' + watch.map(textOf).join('|');
  function bokehIdle() {
    const docs = (window.Bokeh && window.Bokeh.documents) || [];
    return docs.length > 0 && docs.every((d) => d.is_idle || d._notified_idle === true);
  }
  function readyState(spec) {
    const missing = spec.hooks.filter((s) => { const el = find(s); return !el || !visible(el); });
    const cv = canvases();
    const idle = bokehIdle(), spinners = loading();
    const base = idle && spinners === 0;
    return {
      base, missing, canvases: cv.length, idle, spinners,
      full: base && missing.length === 0 && cv.length >= spec.min_canvas,
      key: cv.length + ':' + missing.length + ':' + spec.hooks.map(textOf).join('|'),
    };
  }
  function watchReady(spec) {
    const track = {full: [null, null], base: [null, null]};
    window.__ckReady = null; window.__ckBase = null; window.__ckLast = null;
    const tick = () => {
      let st = null;
      try { st = readyState(spec); } catch (e) { setTimeout(tick, 50); return; }
      window.__ckLast = {missing: st.missing, canvases: st.canvases, bokeh_idle: st.idle, spinners: st.spinners};
      const now = performance.now();
      for (const name of ['full', 'base']) {
        const t = track[name];
        if (!st[name]) { t[0] = null; continue; }
        if (t[0] !== st.key) { t[0] = st.key; t[1] = now; }
        const at = Math.max(t[1], window.__ckPaint);
        if (now - at >= STABLE_MS) {
          const out = {at, canvases: st.canvases};
          if (name === 'full' && !window.__ckReady) window.__ckReady = out;
          if (name === 'base' && !window.__ckBase) window.__ckBase = out;
        }
      }
      if (!window.__ckReady) setTimeout(tick, 50);
    };
    tick();
  }
  async function waitChange(a) {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    let tExp = null, last = null, lastChange = null;
    while (performance.now() - a.t0 < a.timeout) {
      const now = performance.now();
      if (tExp === null) {
        const changed = a.watch.map((s, i) => sigOf(s) !== a.before[i]);
        const okChanged = a.watch.length === 0 || (a.mode === 'all' ? changed.every(Boolean) : changed.some(Boolean));
        const okText = Object.entries(a.contains).every(([s, alts]) => { const t = textOf(s); return alts.some((x) => t.includes(x)); });
        if (okChanged && okText) { tExp = now; last = pageKey(a.watch); lastChange = now; }
      } else {
        const k = pageKey(a.watch);
        if (k !== last) { last = k; lastChange = now; }
        const settled = Math.max(lastChange, window.__ckPaint);
        if (now - settled >= a.quiet) return {ok: true, expected: tExp - a.t0, settled: settled - a.t0};
      }
      await sleep(POLL_MS);
    }
    const seen = {};
    for (const s of new Set([...a.watch, ...Object.keys(a.contains)])) seen[s] = textOf(s).slice(0, 160);
    return {ok: false, expected: tExp === null ? null : tExp - a.t0, reason: tExp === null ? 'no expected change' : 'page never settled', seen};
  }
  window.ck = {deepAll, find, sigOf, textOf, pageKey, readyState, watchReady, waitChange, canvasHash};
  const spec = READY[location.pathname];
  if (spec) watchReady(spec);
})();
"""


# When the page's HTML had arrived (the server built the session and ran the page
# script) and when its DOM was ready, in s since navigation start.
NAVIGATION_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return nav ? {html_seconds: nav.responseEnd / 1000,
                dom_ready_seconds: nav.domContentLoadedEventEnd / 1000} : {};
}"""


def log(message: str) -> None:
    print(f"[app_load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the run


def build_run(work: Path, n_test: int, n_train: int, seed: int) -> tuple[Path, dict]:
    """The synthetic run of these sizes in ``work``, built unless its stamp matches."""
    from clapkit.testing import SyntheticRunConfig

    config = SyntheticRunConfig(
        n_test=n_test, n_train=n_train, image_size=64, projection="pca", seed=seed
    )
    stamp = {"config": asdict(config), "small_runs": SMALL_RUNS, "clapkit": clapkit.__version__}
    root = work / f"synthetic_n{n_test}_t{n_train}_s{seed}"
    # Runs sharing ``--work`` wait for each other's build instead of writing over it.
    with open(work / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(root, config, stamp)


def _build_locked(root: Path, config, stamp: dict) -> tuple[Path, dict]:
    from clapkit.testing import synthetic_run

    n_test, n_train = config.n_test, config.n_train
    stamp_path = root / "bench_stamp.json"
    if stamp_path.is_file() and (root / "metrics.json").is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                log(f"reusing the synthetic run {root} (stamp matches)")
                return root, {"reused": True, "seconds": 0.0}
        except (OSError, ValueError):
            pass
    gb = (n_test + n_train) * 5 * 64 * 64 * 4 / 1e9
    log(
        f"building a synthetic run of {n_test:,} test + {n_train:,} training galaxies "
        f"(64×64 ugriz, ~{gb:.1f} GB of images) in {root}: no network is trained "
        "(training on 100k galaxies takes hours on CPUs; the app's load depends on the "
        "sizes of what it reads, not on the values)"
    )
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    synthetic_run(root, config, progress=True)
    _add_translation_and_stellar_mass(root, n_test, config.seed)
    seconds = time.perf_counter() - start
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    log(f"built in {seconds:.0f} s")
    return root, {"reused": False, "seconds": seconds}


def _add_translation_and_stellar_mass(root: Path, n_test: int, seed: int) -> None:
    """Small translation and stellar-mass runs made for real, tiled to ``n_test`` test
    galaxies into ``root`` (see :mod:`_scaled_runs`)."""
    from _scaled_runs import scale_interpret, scale_translation

    from clapkit.testing import synthetic_interpret_run, synthetic_translation_run

    small = root.parent / f"{root.name}_small"
    if small.exists():
        shutil.rmtree(small)
    log(
        f"training the small translation ({SMALL_RUNS['translation']} galaxies, every model "
        f"family) and stellar-mass ({SMALL_RUNS['stellar_mass']}) runs in {small}"
    )
    synthetic_translation_run(small, n=SMALL_RUNS["translation"], seed=seed, progress=True)
    synthetic_interpret_run(small, n=SMALL_RUNS["stellar_mass"], seed=seed, progress=True)
    n_translation = scale_translation(small, root, n_test, progress=True)
    n_mass = scale_interpret(small, root, n_test)
    log(f"tiled to {n_translation:,} translation and {n_mass:,} stellar-mass test galaxies")
    shutil.rmtree(small)


@dataclass
class Expected:
    """What the pages must show, read from the run: σ_MAD per method, galaxy ids."""

    sigma_mad: dict[str, float]
    ids: np.ndarray
    labels: dict[str, str]
    translation_ids: np.ndarray | None = None


def read_expected(root: Path) -> Expected:
    from clapkit.evaluation import read_galaxy_table
    from clapkit.runs import RunDir

    run = RunDir(root)
    metrics = run.read_json(run.metrics_path)["methods"]
    sigma = {m: float(r["summary"]["sigma_mad"]) for m, r in metrics.items()}
    ids = np.asarray(read_galaxy_table(run.galaxy_table_path)["id"])
    try:
        from clapkit_app.store import METHOD_LABELS
    except ImportError:  # the dashboards' labels are optional: values are tried too
        METHOD_LABELS = {}
    translation_ids = None
    tasks = sorted((root / "translate").glob("*/morphology_real.h5"))
    if tasks:  # the page opens on s2c when the run has it
        chosen = next((t for t in tasks if t.parent.name == "s2c"), tasks[0])
        from astropy.table import Table

        translation_ids = np.asarray(Table.read(chosen, path="morphology")["id"])
    return Expected(sigma, ids, dict(METHOD_LABELS), translation_ids)


# --------------------------------------------------------------------------- memory


class ServerGone(RuntimeError):
    pass


def server_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def rss_mb(process: psutil.Process) -> float:
    """Resident memory of the server and its children, MB."""
    if not server_alive(process):
        raise ServerGone(f"the server process {process.pid} has exited (see the server log)")
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 1e6


async def rss_settled(process: psutil.Process, n: int = 3) -> float:
    """Median of ``n`` samples 0.5 s apart (RSS of a Python process jitters)."""
    samples = []
    for i in range(n):
        if i:
            await asyncio.sleep(0.5)
        samples.append(rss_mb(process))
    return float(np.median(samples))


class CpuMeter:
    """CPU seconds of the server and of the browser (Playwright's driver and every
    Chromium process) per phase, against wall time: a server near 1 CPU-second per
    second is saturated (its Python thread). Processes are sampled every second, so a
    renderer that lives under a second may be missed."""

    def __init__(self, server: psutil.Process):
        self.server = server
        self.last: dict[tuple[str, int], float] = {}
        self.open: dict[str, tuple[float, dict]] = {}
        self.phases: dict[str, dict[str, float]] = {}

    def sample(self) -> None:
        server_pids = {self.server.pid}
        groups = [("server", p) for p in self._tree(self.server)]
        server_pids |= {p.pid for _, p in groups}
        me = psutil.Process()
        groups += [("browser", p) for p in me.children(recursive=True) if p.pid not in server_pids]
        for group, proc in groups:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                self.last[(group, proc.pid)] = times.user + times.system

    @staticmethod
    def _tree(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    def begin(self, name: str) -> None:
        self.sample()
        self.open[name] = (time.monotonic(), dict(self.last))

    def end(self, name: str) -> None:
        self.sample()
        start, before = self.open.pop(name)
        wall = time.monotonic() - start
        out = {"wall_s": wall}
        for group in ("server", "browser"):
            cpu = sum(v - before.get(k, 0.0) for k, v in self.last.items() if k[0] == group)
            out[f"{group}_cpu_s"] = cpu
        out["server_cpu_fraction"] = out["server_cpu_s"] / wall if wall > 0 else None
        out["load_average_1min"] = os.getloadavg()[0]
        self.phases[name] = out

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


class LogWatch:
    """Lines of the server log matching ``Traceback`` or ``ERROR`` since ``mark()``."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def position(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def mark(self) -> None:
        self.offset = self.position()

    def errors(self, since: int | None = None, pattern: re.Pattern = LOG_ERROR) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, errors="replace") as handle:
            handle.seek(self.offset if since is None else since)
            return [line.rstrip() for line in handle if pattern.search(line)]


# --------------------------------------------------------------------------- recording


@dataclass
class Recorder:
    """Latencies (ms) per interaction type and errors of one phase."""

    settled: dict[str, list[float]] = field(default_factory=dict)
    expected: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    external: set[str] = field(default_factory=set)
    active: bool = True

    def add(self, kind: str, result: dict) -> None:
        self.settled.setdefault(kind, []).append(result["settled"])
        self.expected.setdefault(kind, []).append(result["expected"])

    def error(self, kind: str, what: str, message: str) -> None:
        if self.active:
            self.errors.append({"kind": kind, "type": what, "message": message[:400]})

    def listen(self, page, name: str) -> None:
        """Count the page's console errors and uncaught exceptions as errors; resources
        from other hosts that fail to load (a machine offline) are listed apart."""

        def console(msg) -> None:
            if msg.type != "error":
                return
            url = (msg.location or {}).get("url", "")
            if msg.text.startswith("Failed to load resource") and not _local(url):
                self.external.add(url or msg.text)
            else:
                self.error("console", name, f"{msg.text} ({url})" if url else msg.text)

        def failed(request) -> None:
            if not _local(request.url):
                self.external.add(request.url)

        page.on("console", console)
        page.on("requestfailed", failed)
        page.on("pageerror", lambda exc: self.error("pageerror", name, str(exc)))

    def summary(self, types: tuple[str, ...]) -> dict[str, Any]:
        per_type = {kind: stats(self.settled.get(kind, [])) for kind in types}
        for kind in types:
            per_type[kind]["expected_median_ms"] = _median(self.expected.get(kind, []))
        everything = [v for kind in types for v in self.settled.get(kind, [])]
        counts: dict[str, int] = {}
        for err in self.errors:
            counts[err["kind"]] = counts.get(err["kind"], 0) + 1
        per_dashboard = {
            name: stats([v for kind in kinds if kind in types for v in self.settled.get(kind, [])])
            for name, kinds in TYPES.items()
            if any(kind in types for kind in kinds)
        }
        return {
            "per_type": per_type,
            "per_dashboard": per_dashboard,
            "overall": stats(everything),
            "errors": len(self.errors),
            "errors_by_kind": counts,
            "error_samples": self.errors[:12],
            "external_resources_failed": sorted(self.external),
        }


def _local(url: str) -> bool:
    """Whether ``url`` is served by the app (or is the page itself)."""
    host = urlsplit(url).hostname
    return host in (None, "", "localhost", "127.0.0.1")


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    a = np.asarray(values)
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "max_ms": float(a.max()),
    }


# --------------------------------------------------------------------------- pages


async def new_context(browser):
    context = await browser.new_context(viewport=VIEWPORT)
    script = (
        PAGE_JS.replace("__READY__", json.dumps(READY))
        .replace("__STABLE__", str(STABLE_MS))
        .replace("__POLL__", str(POLL_MS))
    )
    await context.add_init_script(script=script)
    return context


async def open_page(
    context, url: str, rec: Recorder, name: str, timeout: float, logs: LogWatch
) -> tuple:
    """Open ``url`` and wait until it is rendered (see the docstring): (page, seconds).

    Gives up early when the server log shows a page script failing meanwhile."""
    page = await context.new_page()
    rec.listen(page, name)
    since = logs.position()
    deadline = time.monotonic() + timeout
    await page.goto(url, wait_until="commit", timeout=timeout * 1000)
    while True:
        try:
            await page.wait_for_function("window.__ckReady", timeout=2000, polling=100)
            break
        except PlaywrightTimeout:
            if not await _safe_eval(page, "typeof window.ck === 'object'"):
                raise RuntimeError(
                    f"{url}: the benchmark's page script did not run (a JavaScript error in "
                    "PAGE_JS?)"
                ) from None
            failed = logs.errors(since, APP_ERROR)
            if not failed and time.monotonic() < deadline:
                continue
            last = await _safe_eval(page, "window.__ckLast")
            base = await _safe_eval(page, "window.__ckBase")
            why = f"the server log says: {failed[0]}" if failed else f"not within {timeout:.0f} s"
            raise RenderTimeout(
                f"{url} not rendered ({why}); last state {last}; without the hooks it was "
                + (f"stable at {base['at'] / 1000:.2f} s" if base else "never stable")
            ) from None
    ready = await page.evaluate("window.__ckReady")
    return page, ready["at"] / 1000


class RenderTimeout(RuntimeError):
    pass


async def _safe_eval(page, expression: str):
    try:
        return await page.evaluate(expression)
    except Exception:  # the page may be gone; this only adds detail to a message
        return None


async def measure(page, action, watch, *, contains=None, mode="any", timeout: float) -> dict:
    """Run ``action`` and wait for the expected change (see the docstring)."""
    watch = [w for w in watch if w]
    before, t0 = await page.evaluate("w => [w.map(s => ck.sigOf(s)), performance.now()]", watch)
    await action()
    args = {
        "watch": watch,
        "before": before,
        "mode": mode,
        "contains": contains or {},
        "t0": t0,
        "timeout": timeout * 1000,
        "quiet": QUIET_MS,
    }
    try:
        result = await asyncio.wait_for(
            page.evaluate("a => ck.waitChange(a)", args), timeout + QUIET_MS / 1000 + 10
        )
    except TimeoutError:
        raise ChangeTimeout(f"the page did not answer within {timeout + 10:.0f} s") from None
    if not result["ok"]:
        raise ChangeTimeout(
            f"{result['reason']} within {timeout:.0f} s (expected {contains or watch}; "
            f"page shows {result.get('seen')})"
        )
    return result


class ChangeTimeout(RuntimeError):
    pass


async def options_of(page, selector: str) -> list[tuple[str, str]]:
    select = page.locator(f"{selector} select").first
    return await select.evaluate("s => [...s.options].map(o => [o.value, o.text.trim()])")


async def present(page, selector: str) -> bool:
    return bool(await page.evaluate("s => !!ck.find(s)", selector))


class Calibration:
    """Drives ``/calibration``: method A, bin rows, bin variable."""

    def __init__(self, page, expected: Expected, rng: np.random.Generator, timeout: float):
        self.page, self.expected, self.rng, self.timeout = page, expected, rng, timeout
        self.galaxy_table = None

    async def setup(self) -> list[str]:
        self.galaxy_table = (
            SELECTORS["galaxy_table"]
            if await present(self.page, SELECTORS["galaxy_table"])
            else None
        )
        return [] if self.galaxy_table else [SELECTORS["galaxy_table"]]

    def _method_of(self, value: str, text: str) -> str | None:
        for method in self.expected.sigma_mad:
            if method in (value, text) or self.expected.labels.get(method) == text:
                return method
        return None

    async def method_a(self) -> dict:
        options = await options_of(self.page, SELECTORS["method_a"])
        shown = await self.page.evaluate("s => ck.textOf(s)", SELECTORS["summary_a"])
        choices = []
        for value, text in options:
            method = self._method_of(value, text)
            if method is not None:
                sigma = f"{self.expected.sigma_mad[method]:.4f}"
                if sigma not in shown:
                    choices.append((value, sigma))
        if not choices:
            raise RuntimeError(
                f"no method A option with a σ_MAD other than the one shown; options {options}, "
                f"metrics.json methods {sorted(self.expected.sigma_mad)}"
            )
        value, sigma = choices[int(self.rng.integers(len(choices)))]
        select = self.page.locator(f"{SELECTORS['method_a']} select").first
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS["summary_a"]],
            contains={SELECTORS["summary_a"]: [sigma]},
            timeout=self.timeout,
        )

    async def bin_row(self) -> dict:
        rows = self.page.locator(SELECTORS["bin_row"])
        selected = await rows.evaluate_all(
            "rows => rows.map(r => r.classList.contains('tabulator-selected'))"
        )
        free = [i for i, s in enumerate(selected) if not s]
        if not free:
            raise RuntimeError(
                f"no unselected rows ({SELECTORS['bin_row']}) in the bin table ({len(selected)})"
            )
        row = rows.nth(free[int(self.rng.integers(len(free)))])
        return await measure(
            self.page,
            lambda: row.click(timeout=self.timeout * 1000),
            [SELECTORS["selection_status"], self.galaxy_table],
            timeout=self.timeout,
        )

    async def bin_variable(self) -> dict:
        options = await options_of(self.page, SELECTORS["bin_variable"])
        current = await self.page.locator(f"{SELECTORS['bin_variable']} select").first.input_value()
        others = [value for value, _ in options if value != current]
        if not others:
            raise RuntimeError(f"the bin variable has a single option ({options})")
        value = others[int(self.rng.integers(len(others)))]
        select = self.page.locator(f"{SELECTORS['bin_variable']} select").first
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS["bin_table"]],
            timeout=self.timeout,
        )


class Neighbours:
    """Drives ``/neighbours``: colour-by, search, clicks on the map."""

    #: Where the map is clicked, as fractions of its canvas; consecutive clicks are far
    #: apart so that they select different galaxies.
    CLICKS = ((0.3, 0.35), (0.7, 0.65), (0.35, 0.7), (0.65, 0.3), (0.5, 0.5), (0.25, 0.55))

    def __init__(self, page, expected: Expected, rng: np.random.Generator, timeout: float):
        self.page, self.expected, self.rng, self.timeout = page, expected, rng, timeout
        self.click = int(rng.integers(len(self.CLICKS)))
        self.grid = None

    async def setup(self) -> list[str]:
        self.grid = (
            SELECTORS["neighbour_grid"]
            if await present(self.page, SELECTORS["neighbour_grid"])
            else None
        )
        return [] if self.grid else [SELECTORS["neighbour_grid"]]

    async def colour_by(self) -> dict:
        options = await options_of(self.page, SELECTORS["colour_by"])
        select = self.page.locator(f"{SELECTORS['colour_by']} select").first
        current = await select.input_value()
        others = [value for value, _ in options if value != current]
        if not others:
            raise RuntimeError(f"colour-by has a single option ({options})")
        value = others[int(self.rng.integers(len(others)))]
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS["latent_map"]],
            timeout=self.timeout,
        )

    async def search(self) -> dict:
        shown = await self.page.evaluate("s => ck.textOf(s)", SELECTORS["neighbour_title"])
        while True:
            galaxy = str(self.expected.ids[int(self.rng.integers(len(self.expected.ids)))])
            if f"Galaxy {galaxy}" not in shown:
                break
        box = self.page.locator(f"{SELECTORS['search']} input").first

        async def act():
            await box.fill(galaxy, timeout=self.timeout * 1000)
            await box.press("Enter", timeout=self.timeout * 1000)

        return await measure(
            self.page,
            act,
            [self.grid],
            contains={SELECTORS["neighbour_title"]: [f"Galaxy {galaxy}"]},
            timeout=self.timeout,
        )

    async def map_click(self) -> dict:
        canvases = self.page.locator(f"{SELECTORS['latent_map']} canvas")
        boxes = [await canvases.nth(i).bounding_box() for i in range(await canvases.count())]
        boxes = [b for b in boxes if b and b["width"] > 0 and b["height"] > 0]
        if not boxes:
            raise RuntimeError(f"no visible canvas in {SELECTORS['latent_map']}")
        box = max(boxes, key=lambda b: b["width"] * b["height"])
        self.click = (self.click + 1) % len(self.CLICKS)
        fx, fy = self.CLICKS[self.click]
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        return await measure(
            self.page,
            lambda: self.page.mouse.click(x, y),
            [SELECTORS["neighbour_title"], self.grid],
            mode="all",
            timeout=self.timeout,
        )


async def _select_other(page, selector: str, rng: np.random.Generator) -> str:
    """Pick, at random, an option of the Select at ``selector`` other than the current."""
    options = await options_of(page, selector)
    current = await page.locator(f"{selector} select").first.input_value()
    others = [value for value, _ in options if value != current]
    if not others:
        raise RuntimeError(f"{selector} has a single option ({options})")
    return others[int(rng.integers(len(others)))]


class Translation:
    """Drives ``/translation``: the model shown, the band of the noise spectra, a galaxy
    searched by id."""

    def __init__(self, page, expected: Expected, rng: np.random.Generator, timeout: float):
        self.page, self.expected, self.rng, self.timeout = page, expected, rng, timeout

    async def setup(self) -> list[str]:
        hooks = [SELECTORS[k] for k in ("noise_power", "noise_band", "translation_search")]
        return [h for h in hooks if not await present(self.page, h)]

    async def model(self) -> dict:
        value = await _select_other(self.page, SELECTORS["model"], self.rng)
        select = self.page.locator(f"{SELECTORS['model']} select").first
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS["translation_title"], SELECTORS["noise_power"], SELECTORS["morphology"]],
            contains={SELECTORS["translation_title"]: [f"{value} · task"]},
            timeout=self.timeout,
        )

    async def noise_band(self) -> dict:
        value = await _select_other(self.page, SELECTORS["noise_band"], self.rng)
        select = self.page.locator(f"{SELECTORS['noise_band']} select").first
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS["noise_power"]],
            timeout=self.timeout,
        )

    async def translation_search(self) -> dict:
        ids = self.expected.translation_ids
        if ids is None or not len(ids):
            raise RuntimeError("the run has no evaluated translation galaxies to search")
        shown = await self.page.evaluate("s => ck.textOf(s)", SELECTORS["translation_title"])
        while True:
            galaxy = str(ids[int(self.rng.integers(len(ids)))])
            if f"galaxy {galaxy} ·" not in shown:
                break
        box = self.page.locator(f"{SELECTORS['translation_search']} input").first

        async def act():
            await box.fill(galaxy, timeout=self.timeout * 1000)
            await box.press("Enter", timeout=self.timeout * 1000)

        return await measure(
            self.page,
            act,
            [SELECTORS["image_grid"], SELECTORS["morphology"]],
            contains={SELECTORS["translation_title"]: [f"galaxy {galaxy} ·"]},
            timeout=self.timeout,
        )


class StellarMass:
    """Drives ``/stellar_mass``: the input set of the mass scatter, the input pair of the
    per-galaxy MI terms, the galaxy of the attribution maps."""

    def __init__(self, page, expected: Expected, rng: np.random.Generator, timeout: float):
        self.page, self.expected, self.rng, self.timeout = page, expected, rng, timeout

    async def setup(self) -> list[str]:
        hooks = [SELECTORS[k] for k in ("pid_galaxies", "attribution_galaxy", "mass_caption")]
        return [h for h in hooks if not await present(self.page, h)]

    async def _choose(self, key: str, watch: list[str]) -> dict:
        value = await _select_other(self.page, SELECTORS[key], self.rng)
        select = self.page.locator(f"{SELECTORS[key]} select").first
        return await measure(
            self.page,
            lambda: select.select_option(value, timeout=self.timeout * 1000),
            [SELECTORS[w] for w in watch],
            timeout=self.timeout,
        )

    async def input_set(self) -> dict:
        return await self._choose("input_set", ["mass_scatter", "mass_caption"])

    async def pid_pair(self) -> dict:
        return await self._choose("pid_pair", ["pid_galaxies", "pid_caption"])

    async def attribution_galaxy(self) -> dict:
        return await self._choose("attribution_galaxy", ["attribution_title", "attribution_grid"])


DRIVERS = {
    "calibration": Calibration,
    "neighbours": Neighbours,
    "translation": Translation,
    "stellar_mass": StellarMass,
}


def _dashboard(kind: str) -> str:
    return next(name for name, kinds in TYPES.items() if kind in kinds)


class User:
    """One browser context with ``dashboards`` open, one page (server session) each."""

    def __init__(
        self,
        browser,
        url,
        expected,
        rec: Recorder,
        seed: int,
        args,
        logs: LogWatch,
        dashboards: tuple[str, ...] = DASHBOARDS,
    ):
        self.browser, self.url, self.expected, self.rec = browser, url, expected, rec
        self.logs, self.dashboards = logs, dashboards
        self.rng = np.random.default_rng(seed)
        self.args = args
        self.context = None
        self.drivers: dict[str, Any] = {}
        self.missing: list[str] = []

    async def open(self) -> None:
        self.context = await new_context(self.browser)
        timeout = self.args.render_timeout
        for name in self.dashboards:
            cls = DRIVERS[name]
            page, _ = await open_page(
                self.context, f"{self.url}/{name}", self.rec, name, timeout, self.logs
            )
            driver = cls(page, self.expected, self.rng, self.args.action_timeout)
            self.missing += await driver.setup()
            self.drivers[name] = driver

    async def close(self) -> None:
        if self.context is not None:
            try:
                await self.context.close()
            except Exception as err:  # closing must not hide the report
                log(f"closing a browser context failed: {err}")
            self.context = None

    async def interact(self, kind: str) -> dict | None:
        """One interaction of ``kind``, recorded; None if it failed (an error)."""
        driver = self.drivers.get(_dashboard(kind))
        if driver is None:
            self.rec.error("action", kind, f"/{_dashboard(kind)} did not open")
            return None
        limit = 3 * self.args.action_timeout + 15  # a hung page must not stop the run
        try:
            result = await asyncio.wait_for(getattr(driver, kind)(), limit)
        except TimeoutError:
            self.rec.error("timeout", kind, f"the interaction did not finish within {limit:.0f} s")
            return None
        except ChangeTimeout as err:
            self.rec.error("timeout", kind, str(err))
            return None
        except Exception as err:
            self.rec.error("action", kind, f"{type(err).__name__}: {err}")
            return None
        self.rec.add(kind, result)
        return result

    def kinds(self) -> list[str]:
        """The interaction types of the dashboards this user has open."""
        return [k for k in ALL_TYPES if _dashboard(k) in self.drivers]

    async def round(self) -> None:
        for kind in self.kinds():
            await self.interact(kind)


# --------------------------------------------------------------------------- phases


async def first_render(browser, url: str, args, rec: Recorder, logs: LogWatch) -> dict:
    out = {}
    for path in args.pages:
        times, html = [], []
        for i in range(args.repeats + 1):
            context = await new_context(browser)
            try:
                page, seconds = await open_page(
                    context, url + path, rec, path, args.render_timeout, logs
                )
                times.append(seconds)
                if i:
                    html.append(await page.evaluate(NAVIGATION_JS))
            except RenderTimeout as err:
                rec.error("render", path, str(err))
                times.append(None)
            finally:
                await context.close()
            shown = (
                "failed (see first_render_errors)" if times[-1] is None else f"{times[-1]:.2f} s"
            )
            log(f"first render {path} {'(cold)' if i == 0 else f'#{i}'}: {shown}")
        timed = [t for t in times[1:] if t is not None]
        out[path] = {
            "cold_seconds": times[0],
            "seconds": times[1:],
            "median": float(np.median(timed)) if timed else None,
            "max": float(max(timed)) if len(timed) == args.repeats else None,
        }
        for key in ("html_seconds", "dom_ready_seconds"):
            values = [h[key] for h in html if h.get(key) is not None]
            out[path][f"median_{key}"] = float(np.median(values)) if values else None
    return out


async def interaction(browser, url, expected: Expected, args, rec: Recorder, logs) -> dict:
    """One user visits the dashboards one after the other (``--together``: all open at
    once, in one browser context), ``--n-interactions`` of each type."""
    groups = [DASHBOARDS] if args.together else [(name,) for name in DASHBOARDS]
    missing: list[str] = []
    for offset, dashboards in enumerate(groups):
        user = User(browser, url, expected, rec, args.seed + offset, args, logs, dashboards)
        try:
            try:
                await user.open()
            except RenderTimeout as err:
                rec.error("render", "open", str(err))
                log(f"interaction: {', '.join(dashboards)} skipped, {err}")
                continue
            for kind in user.kinds():
                for _ in range(args.n_interactions):
                    await user.interact(kind)
                s = stats(rec.settled.get(kind, []))
                log(
                    f"interaction {kind}: n={s['n']} median "
                    + (f"{s['median_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms" if s["n"] else "-")
                )
        finally:
            missing += user.missing
            await user.close()
    report = rec.summary(ALL_TYPES)
    report["missing_hooks"] = sorted(set(missing))
    report["dashboards_open_together"] = bool(args.together)
    return report


async def load(browser, url, expected, args, rec: Recorder, server: psutil.Process, logs, meter):
    memory: dict[str, Any] = {"start_mb": await rss_settled(server)}
    log(f"load: server RSS before the sessions {memory['start_mb']:.0f} MB")
    logs.mark()
    # One page, so one server session, per user; the dashboards alternate.
    users = [
        User(
            browser,
            url,
            expected,
            rec,
            args.seed + 1 + i,
            args,
            logs,
            (DASHBOARDS[i % len(DASHBOARDS)],),
        )
        for i in range(args.sessions)
    ]
    samples: list[float] = []
    stop = asyncio.Event()

    async def sampler():
        while not stop.is_set() and server_alive(server):
            with contextlib.suppress(ServerGone):
                samples.append(rss_mb(server))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    sampling = asyncio.create_task(sampler())
    opened = 0
    try:
        meter.begin("load_open")
        for i, user in enumerate(users):
            try:
                await user.open()
                if i == 0:  # so that one_session includes what interacting keeps
                    await user.round()
                opened += 1
            except Exception as err:
                rec.error("open", f"user {i}", f"{type(err).__name__}: {err}")
            if i == 0:
                memory["one_session_mb"] = await rss_settled(server)
                log(f"load: 1 session open, RSS {memory['one_session_mb']:.0f} MB")
        memory["all_sessions_mb"] = await rss_settled(server)
        log(
            f"load: {opened}/{len(users)} sessions open, RSS {memory['all_sessions_mb']:.0f} MB; "
            f"interacting for {args.duration:.0f} s"
        )
        meter.end("load_open")
        meter.begin("load_interact")
        deadline = time.monotonic() + args.duration
        counts = [0] * len(users)

        async def drive(i, user):
            kinds = user.kinds()  # those of the dashboard that opened
            step = i // len(DASHBOARDS)  # users start at different interactions
            while kinds and time.monotonic() < deadline:
                await user.interact(kinds[step % len(kinds)])
                counts[i] += 1
                if args.think > 0:
                    await asyncio.sleep(args.think)
                step += 1

        await asyncio.gather(*(drive(i, u) for i, u in enumerate(users)))
        meter.end("load_interact")
        memory["all_sessions_end_mb"] = await rss_settled(server)
        log(f"load: done, {sum(counts)} interactions, RSS {memory['all_sessions_end_mb']:.0f} MB")
    finally:
        for user in users:
            await user.close()
        stop.set()
        await sampling
    rec.active = False  # closing pages may log errors that are not the users'
    server_errors = logs.errors()
    for line in server_errors:
        rec.errors.append({"kind": "server_log", "type": "server", "message": line[:400]})

    meter.begin("settle")
    settle = [(0.0, rss_mb(server))]
    closed = time.monotonic()
    log(f"load: all sessions closed; sampling server RSS for {args.settle:.0f} s")
    while time.monotonic() - closed < args.settle:
        await asyncio.sleep(min(10.0, max(0.0, args.settle - (time.monotonic() - closed))))
        settle.append((round(time.monotonic() - closed, 1), rss_mb(server)))
        log(f"load: {settle[-1][0]:.0f} s after closing, RSS {settle[-1][1]:.0f} MB")
    meter.end("settle")
    one = memory.get("one_session_mb")
    top = max(memory["all_sessions_mb"], memory.get("all_sessions_end_mb", 0.0))
    memory.update(
        {
            "peak_mb": max(samples + [s for _, s in settle]),
            "growth_per_session_mb": (top - one) / (opened - 1)
            if one is not None and opened > 1
            else None,
            "settle_samples": settle,
            "final_mb": settle[-1][1],
            "final_over_start": settle[-1][1] / memory["start_mb"],
        }
    )
    report = rec.summary(ALL_TYPES)
    report.update(
        {
            "sessions": args.sessions,
            "sessions_opened": opened,
            "dashboards": {d: sum(u.dashboards == (d,) for u in users) for d in DASHBOARDS},
            "duration_s": args.duration,
            "interactions": sum(len(v) for v in rec.settled.values()),
            "server_log_errors": len(server_errors),
        }
    )
    return report, memory


async def browse(url: str, expected: Expected, args, server, logs) -> dict:
    """The three phases in one browser; a phase that fails unexpectedly is reported
    (``<phase>.failed``) and the next one still runs."""
    out: dict[str, Any] = {}
    async with async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS), timeout=60_000
            )
        except Exception as err:
            raise SystemExit(f"app_load: Chromium ({CHROMIUM_PATH}) did not start: {err}") from None
        meter, stop = CpuMeter(server), asyncio.Event()
        sampling = asyncio.create_task(meter.run(stop))

        # The machine's load beside each phase's figures: a shared machine's other jobs
        # show here, and explain slow numbers.
        out["load_average"] = {}

        async def phase(name: str, title: str, work):
            log(title)
            logs.mark()
            meter.begin(name)
            loads = {"start": list(os.getloadavg())}
            try:
                return await work
            except Exception as err:
                log(f"{name} failed: {type(err).__name__}: {err}")
                return {"failed": f"{type(err).__name__}: {err}"}
            finally:
                with contextlib.suppress(KeyError):
                    meter.end(name)
                out["load_average"][name] = {**loads, "end": list(os.getloadavg())}

        try:
            out["chromium"] = browser.version
            rec = Recorder()
            out["first_render"] = await phase(
                "first_render",
                "phase 1/3: first render of each dashboard",
                first_render(browser, url, args, rec, logs),
            )
            out["first_render_errors"] = rec.summary(())["error_samples"] + [
                {"kind": "server_log", "message": line[:400]} for line in logs.errors()
            ]
            if args.first_render_only:
                return out
            out["interaction"] = await phase(
                "interaction",
                f"phase 2/3: interaction latency, {args.n_interactions} per type, one user",
                interaction(browser, url, expected, args, Recorder(), logs),
            )
            out["interaction"]["server_log_errors"] = logs.errors()[:12]
            # Let the earlier sessions be discarded before the memory baseline.
            await asyncio.sleep(8)
            both = await phase(
                "load",
                f"phase 3/3: {args.sessions} concurrent sessions for {args.duration:.0f} s",
                load(browser, url, expected, args, Recorder(), server, logs, meter),
            )
            out["load"], out["memory"] = both if isinstance(both, tuple) else (both, both)
        finally:
            stop.set()
            await sampling
            out["cpu"] = meter.phases
            await browser.close()
    return out


# --------------------------------------------------------------------------- main


def page_goals(result: dict) -> dict[str, dict[str, bool]]:
    """The render and single-user latency goals page by page ("every goal met on every
    page"); False where a phase failed or measured nothing."""
    out = {}
    renders = result.get("first_render", {})
    per_dashboard = result.get("interaction", {}).get("per_dashboard", {})
    for path in PATHS:
        render = renders.get(path) if isinstance(renders, dict) else None
        goals_here = {
            "first_render_le_3s": isinstance(render, dict)
            and render.get("max") is not None
            and render["max"] <= 3.0
        }
        name = path.strip("/")
        if name in TYPES:
            latency = per_dashboard.get(name, {})
            median, p95 = latency.get("median_ms"), latency.get("p95_ms")
            goals_here["interaction_median_le_300ms"] = median is not None and median <= 300
            goals_here["interaction_p95_le_1s"] = p95 is not None and p95 <= 1000
        out[path] = goals_here
    return out


def goals(result: dict) -> dict[str, bool]:
    """Each goal of the issue, False where its phase failed or measured nothing."""
    renders = [r for r in result.get("first_render", {}).values() if isinstance(r, dict)]
    inter = result.get("interaction", {})
    overall = inter.get("overall", {})
    all_types = bool(inter.get("per_type")) and all(v["n"] > 0 for v in inter["per_type"].values())
    memory, load_ = result.get("memory", {}), result.get("load", {})
    growth = memory.get("growth_per_session_mb")
    ratio = memory.get("final_over_start")
    median, p95 = overall.get("median_ms"), overall.get("p95_ms")
    return {
        "first_render_le_3s": len(renders) == len(PATHS)
        and all(r.get("max") is not None and r["max"] <= 3.0 for r in renders),
        "interaction_median_le_300ms": all_types and median is not None and median <= 300,
        "interaction_p95_le_1s": all_types and p95 is not None and p95 <= 1000,
        "sessions_without_error": load_.get("errors") == 0
        and load_.get("sessions_opened") == load_.get("sessions"),
        "memory_growth_per_session_le_100mb": growth is not None and growth <= 100,
        "memory_back_within_10pct": ratio is not None and ratio <= 1.10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-galaxies", type=int, default=None, help="test galaxies (100,000)")
    parser.add_argument("--n-train", type=int, default=None, help="training galaxies (20,000)")
    parser.add_argument("--work", default="data/runs/bench_app", help="where the run is built")
    parser.add_argument("--run", default=None, help="serve this run instead of a synthetic one")
    parser.add_argument("--repeats", type=int, default=None, help="timed loads per dashboard (3)")
    parser.add_argument("--n-interactions", type=int, default=20, help="per interaction type")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (60)")
    parser.add_argument("--settle", type=float, default=None, help="seconds after closing (60)")
    parser.add_argument(
        "--think", type=float, default=0.0, help="pause between a session's interactions, s"
    )
    parser.add_argument("--render-timeout", type=float, default=60.0, help="per page load, s")
    parser.add_argument("--action-timeout", type=float, default=15.0, help="per interaction, s")
    parser.add_argument("--server-timeout", type=float, default=180.0, help="server start, s")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3k/2k galaxies, 15 s, 2 repeats (explicit options win)",
    )
    parser.add_argument("--build-only", action="store_true", help="build the run and stop")
    parser.add_argument(
        "--debug-server",
        action="store_true",
        help="serve with --log-level debug and count discarded sessions (not as users serve)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="interaction phase: the user keeps all four dashboards open at once (in one "
        "browser, whose CPU the server shares) instead of visiting them one by one",
    )
    parser.add_argument(
        "--first-render-only",
        action="store_true",
        help="measure the first render alone (a check while working on a page; its goals "
        "then say nothing of the other phases)",
    )
    parser.add_argument(
        "--pages",
        default=",".join(PATHS),
        help=f"comma-separated pages whose first render is measured (all: {','.join(PATHS)})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.pages = tuple(p.strip() for p in args.pages.split(",") if p.strip())
    unknown = [p for p in args.pages if p not in PATHS]
    if unknown or not args.pages:
        parser.error(f"--pages: unknown {unknown}; choose from {','.join(PATHS)}")
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.n_interactions < 1 or args.sessions < 1 or args.repeats < 1:
        parser.error("--n-interactions, --sessions and --repeats must be at least 1")
    if not Path(CHROMIUM_PATH).is_file():
        sys.exit(f"app_load: no Chromium at {CHROMIUM_PATH} (Debian's chromium package)")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.run:
        root, build = Path(args.run), {"reused": True, "seconds": 0.0, "synthetic": False}
    else:
        root, build = build_run(work, args.n_galaxies, args.n_train, args.seed)
        build["synthetic"] = True
    if args.build_only:
        return
    expected = read_expected(root)
    import bokeh
    import panel

    settings = {
        "run": str(root),
        "n_galaxies": len(expected.ids),
        "n_translation_galaxies": None
        if expected.translation_ids is None
        else len(expected.translation_ids),
        "n_train": args.n_train if not args.run else None,
        "image_size": 64 if not args.run else None,
        "repeats": args.repeats,
        "n_interactions_per_type": args.n_interactions,
        "sessions": args.sessions,
        "duration_s": args.duration,
        "think_s": args.think,
        "settle_s": args.settle,
        "dashboards_open_together": args.together,
        "action_timeout_s": args.action_timeout,
        "server_args": list(SERVER_EXTRA),
        "stable_ms": STABLE_MS,
        "quiet_ms": QUIET_MS,
        "viewport": VIEWPORT,
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "panel": panel.__version__,
        "bokeh": bokeh.__version__,
        "clapkit": clapkit.__version__,
    }
    log(
        "goals: first render ≤ 3 s; interaction ≤ 300 ms median, ≤ 1 s p95; "
        f"{args.sessions} sessions without error; ≤ 100 MB per extra session; server "
        "memory within 10% of its start a minute after the sessions close"
    )
    log(
        f"settings: {settings['n_galaxies']:,} galaxies, {args.sessions} sessions × "
        f"{args.duration:.0f} s, settle {args.settle:.0f} s, {os.cpu_count()} CPUs, "
        f"server {' '.join(SERVER_EXTRA)}"
    )
    extra = SERVER_EXTRA + (("--log-level", "debug") if args.debug_server else ())
    settings["server_args"] = list(extra)
    # One log per run: several runs may share ``--work``.
    server_log = work / "logs" / f"server-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    server_log.parent.mkdir(exist_ok=True)
    settings["server_log"] = str(server_log)
    logs = LogWatch(server_log)
    log(f"serving {root} (server output in {server_log})")
    start = time.perf_counter()
    with served_app(root, log=server_log, extra=extra, timeout=args.server_timeout) as (
        url,
        process,
    ):
        server = psutil.Process(process.pid)
        settings["server_start_seconds"] = time.perf_counter() - start
        settings["server_idle_rss_mb"] = rss_mb(server)
        log(f"server up at {url} in {settings['server_start_seconds']:.1f} s")
        result = asyncio.run(browse(url, expected, args, server, logs))
    settings["chromium"] = result.pop("chromium")
    if args.debug_server and "failed" not in result["load"]:
        discarded = LogWatch(server_log).errors(0, re.compile(r"Discarding session"))
        result["load"]["sessions_discarded_whole_run"] = len(discarded)
    report = {"benchmark": "app_load", "settings": settings, "build": build, **result}
    report["goals"] = goals(report)
    report["goals_by_page"] = page_goals(report)
    log(f"goals: {report['goals']}")
    emit(report, args.out)


if __name__ == "__main__":
    main()
