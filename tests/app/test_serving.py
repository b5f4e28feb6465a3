"""``clapkit serve`` serves every dashboard, each at its own URL path."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from clapkit_app.serving import PAGES, free_port, pages_dir, serve_command, wait_until_up

from clapkit.testing import SyntheticRunConfig, synthetic_run


def test_serve_command_serves_every_page_with_the_run():
    command = serve_command("runs/x", port=5123, address="0.0.0.0")
    pages = [Path(arg).stem for arg in command if arg.endswith(".py")]
    assert pages == list(PAGES) and all((pages_dir() / f"{p}.py").is_file() for p in pages)
    assert command[command.index("--index") + 1] == "landing"
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--allow-websocket-origin") + 1] == "0.0.0.0:5123"
    assert "--warm" in command  # the first visitor does not pay for loading and compiling
    assert command[-3:] == ["--args", "--run", "runs/x"]


@pytest.mark.slow
def test_clapkit_serve_answers_on_every_dashboard_path(tmp_path):
    run = synthetic_run(tmp_path / "run", SyntheticRunConfig(n_test=40, n_train=80))
    clapkit = shutil.which("clapkit", path=str(Path(sys.executable).parent))
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [clapkit, "serve", "--run", str(run.root), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole group (clapkit + panel) stops together
        )
    try:
        base = f"http://localhost:{port}"
        wait_until_up(f"{base}/landing", server, timeout=120)
        for path in ("/", "/calibration", "/neighbours", "/translation", "/stellar_mass"):
            with urllib.request.urlopen(base + path, timeout=60) as response:
                assert response.status == 200
                html = response.read().lower()
                assert b"bokeh.min.js" in html
                # No text of the dashboards is TeX: MathJax (1.8 MB) stays out.
                assert b"mathjax" not in html
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    text = log.read_text()
    assert f"http://localhost:{port}" in text
    assert "Traceback" not in text, text


@pytest.mark.slow
def test_clapkit_serve_stops_its_server_on_sigterm(tmp_path):
    run = synthetic_run(tmp_path / "run", SyntheticRunConfig(n_test=40, n_train=80))
    clapkit = shutil.which("clapkit", path=str(Path(sys.executable).parent))
    port = free_port()
    server = subprocess.Popen(
        [clapkit, "serve", "--run", str(run.root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the group is cleaned up below whatever happens
    )
    try:
        url = f"http://localhost:{port}/landing"
        wait_until_up(url, server, timeout=120)
        server.send_signal(signal.SIGTERM)  # to clapkit alone, as a service manager does
        assert server.wait(timeout=30) == 0
        with pytest.raises(OSError):  # nobody serves the port any more
            for _ in range(50):
                urllib.request.urlopen(url, timeout=2).close()
                time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
