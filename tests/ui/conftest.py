"""Browser tests: the app served as users serve it, driven in Debian's Chromium.

The app runs under ``panel serve`` in a subprocess (see ``clapkit_app.serving``) on a
synthetic run (``clapkit.testing``); Playwright drives ``/usr/bin/chromium``. Without
Chromium the tests skip and say how to enable them, unless ``CLAPKIT_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which makes a missing browser a failure.

Two variables serve the README: ``CLAPKIT_UI_RUN=DIR`` drives the tests on another run
(e.g. the demo run) and ``CLAPKIT_SCREENSHOTS=DIR`` copies each page's screenshot there
(``make screenshots``). By default screenshots go to the test's temporary folder only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clapkit_app.serving import CHROMIUM_ARGS, CHROMIUM_PATH, served_app

from clapkit.testing import (
    SyntheticRunConfig,
    synthetic_interpret_run,
    synthetic_run,
    synthetic_translation_run,
)

REQUIRE_BROWSER = os.environ.get("CLAPKIT_REQUIRE_BROWSER") == "1"


def require_chromium() -> None:
    """Skip (or fail, in CI) when Chromium is not installed."""
    if Path(CHROMIUM_PATH).exists():
        return
    message = (
        f"Chromium not found at {CHROMIUM_PATH}: install it with "
        "`apt-get update && apt-get install -y chromium` to run the browser tests"
    )
    if REQUIRE_BROWSER:
        pytest.fail(f"{message} (CLAPKIT_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def ui_run(tmp_path_factory) -> Path:
    """The run the app serves: a synthetic one (photo-z, translation and stellar mass),
    or ``CLAPKIT_UI_RUN``."""
    require_chromium()
    if os.environ.get("CLAPKIT_UI_RUN"):
        return Path(os.environ["CLAPKIT_UI_RUN"])
    config = SyntheticRunConfig(n_test=300, n_train=600, image_size=32, seed=1)
    root = synthetic_run(tmp_path_factory.mktemp("ui") / "run", config).root
    return synthetic_interpret_run(synthetic_translation_run(root))


@pytest.fixture(scope="session")
def app_url(ui_run, tmp_path_factory):
    """Base URL of ``panel serve`` on the run; the server log must stay free of errors."""
    log = tmp_path_factory.mktemp("server") / "panel.log"
    with served_app(ui_run, log=log) as (url, _process):
        yield url
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, f"server log:\n{text[-4000:]}"


@pytest.fixture(scope="session")
def browser():
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    # Pages take seconds to render on a busy two-core machine; Playwright's default
    # wait of 5 s would make the tests flaky, not stricter.
    expect.set_options(timeout=30_000)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS)
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser session; any console error or page error fails the test."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert not errors, f"browser console errors: {errors}"


@pytest.fixture
def screenshot(tmp_path):
    """Save a full-page screenshot as ``<name>.png`` (and to ``CLAPKIT_SCREENSHOTS``)."""

    def save(page, name: str, height: int = 1100) -> Path:
        path = tmp_path / f"{name}.png"
        # The template scrolls inside its main area, so a "full page" is one viewport:
        # make the viewport as tall as the dashboard instead.
        page.set_viewport_size({"width": 1500, "height": height})
        page.wait_for_timeout(1000)
        page.screenshot(path=str(path))
        target = os.environ.get("CLAPKIT_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(target) / path.name)
        return path

    return save
