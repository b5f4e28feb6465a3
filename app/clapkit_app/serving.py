"""Serving the app as users serve it: ``panel serve`` on the page scripts of ``app/``.

``clapkit serve``, the browser tests and the load benchmark all start the same command
(:func:`serve_command`), so what is tested is what users run. Each page script is one
dashboard; its file name is its URL path (``/calibration``, ``/neighbours``,
``/translation``, ``/stellar_mass``), and the landing page is also the site's index
(``/``). The server warms up (``--warm``): each page is built once at start-up, so the
first visitor waits no longer than the next.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: The page scripts, in navigation order; ``landing`` is the index.
PAGES = ("landing", "calibration", "neighbours", "translation", "stellar_mass")
#: Chromium flags for headless runs on servers and CI machines (no GPU, no sandbox as
#: root, nothing fetched from the network).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CHROMIUM_PATH = "/usr/bin/chromium"


def pages_dir() -> Path:
    """The folder of the page scripts (``app/`` of the clapkit source tree)."""
    folder = Path(__file__).resolve().parent.parent
    missing = [name for name in PAGES if not (folder / f"{name}.py").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: the page scripts {missing} are missing; the dashboards are served "
            "from a clapkit source tree (git clone, then `pip install -e .[app]`)"
        )
    return folder


def serve_command(
    run: str | os.PathLike,
    port: int = 5006,
    address: str = "localhost",
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``panel serve`` command line that serves every dashboard on ``run``.

    Examples
    --------
    >>> cmd = serve_command("data/runs/demo", port=5007)
    >>> cmd[1:4], cmd[-2:]
    (['-m', 'panel', 'serve'], ['--run', 'data/runs/demo'])
    """
    folder = pages_dir()
    origin = f"{address}:{port}"
    return [
        sys.executable,
        "-m",
        "panel",
        "serve",
        *(str(folder / f"{name}.py") for name in PAGES),
        "--index",
        "landing",
        "--port",
        str(port),
        "--address",
        address,
        "--allow-websocket-origin",
        origin,
        # Run every page once at start-up: the run's arrays are loaded and datashader's
        # numba code compiled before the first visitor, not during their first render.
        "--warm",
        *extra,
        "--args",
        "--run",
        str(run),
    ]


def free_port() -> int:
    """A TCP port on localhost that is free now."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Return once ``url`` answers HTTP 200; raise if the server exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def served_app(
    run: str | os.PathLike,
    port: int | None = None,
    log: str | os.PathLike | None = None,
    extra: Sequence[str] = (),
    timeout: float = 90,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve the app on ``run`` in a subprocess; yields its base URL and the process.

    The server's output goes to ``log`` (default: discarded); it is stopped on exit.
    """
    port = port or free_port()
    command = serve_command(run, port=port, extra=extra)
    url = f"http://localhost:{port}"
    with open(log or os.devnull, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_up(f"{url}/landing", process, timeout)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
