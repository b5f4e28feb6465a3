"""Killing ``clapkit simulate`` stops its workers and leaves no file a later run keeps.

The command runs as users run it, in its own process with two workers, and is stopped
once both workers are simulating: by SIGTERM (``kill``, a batch scheduler), which must
end it like Ctrl-C (one line, status 2, temporary file removed, workers stopped), and by
SIGKILL, after which the orphaned workers must exit on their own and the next write of
the same file must remove the killed run's temporary file.
"""

import signal
import subprocess
import sys
import time

import psutil
import pytest

from clapkit.atomic import atomic_path

pytestmark = pytest.mark.slow


def _start(out, n: int) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """``clapkit simulate`` with two workers, once both are running (and, for SIGKILL,
    once its temporary file is on disk)."""
    command = [sys.executable, "-m", "clapkit.cli", "simulate", "--n", str(n), "--seed", "3"]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--instruments", "sdss", "--workers", "2", "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300  # a busy machine imports and simulates slowly
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and process.poll() is None:
        workers = psutil.Process(process.pid).children()
        started = len(workers) == 2
        written = any(out.parent.glob(f".{out.name}.tmp-*"))
        if started and written:
            return process, workers
        time.sleep(0.2)
    process.kill()
    _, stderr = process.communicate()
    pytest.fail(f"the simulation did not start two workers and its file: {stderr}")


def _gone(processes: list[psutil.Process], timeout: float = 10.0) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not alive


def test_sigterm_stops_the_workers_and_removes_the_temporary_file(tmp_path):
    out = tmp_path / "survey.h5"
    process, workers = _start(out, 5000)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr.strip()) == (2, "clapkit simulate: interrupted")
    assert _gone(workers), "workers outlived their interrupted parent"
    assert list(tmp_path.iterdir()) == []


def test_after_sigkill_the_workers_exit_and_the_next_write_removes_the_leftover(tmp_path):
    out = tmp_path / "survey.h5"
    process, workers = _start(out, 5000)
    process.kill()  # no cleanup can run: the temporary file stays for now
    process.communicate(timeout=60)
    assert _gone(workers), "workers kept simulating as orphans"
    leftovers = list(tmp_path.glob(".survey.h5.tmp-*"))
    assert len(leftovers) == 1
    with atomic_path(out) as tmp:  # the next run writing that file
        tmp.write_text("next run")
    assert list(tmp_path.iterdir()) == [out]
