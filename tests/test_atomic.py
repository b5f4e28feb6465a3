"""Atomic writes: all or nothing, never over an existing file unasked, normal permissions,
no leftovers from killed writers."""

import json
import os
import stat
import subprocess
import sys

import pytest

from clapkit.atomic import atomic_path, check_writable, write_json
from clapkit.errors import OverwriteError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_existing_files_and_directories_are_refused(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(OverwriteError, match="overwrite"):
        write_json(tmp_path / "a.json", {"x": 2})
    with pytest.raises(OverwriteError, match="is a directory"):
        check_writable(tmp_path, overwrite=True)


def test_written_files_get_the_permissions_of_any_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.json"
    stale = tmp_path / f".out.json.tmp-{_dead_pid()}-abc123"
    live = tmp_path / f".out.json.tmp-{os.getpid()}-def456"  # a write in progress
    foreign = tmp_path / ".out.json.tmp-notapid"  # not a name clapkit writes: not ours
    other = tmp_path / f".other.json.tmp-{_dead_pid()}-abc"  # another file's leftover
    for path in (stale, live, foreign, other):
        path.write_text("partial")
    write_json(target, {"x": 1})
    assert json.loads(target.read_text())["x"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (target, live, foreign, other)
    )


def test_the_temporary_name_carries_the_writers_pid(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        assert tmp.name.startswith(f".a.txt.tmp-{os.getpid()}-")
        tmp.write_text("x")
