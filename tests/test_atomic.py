"""Atomic writes: all or nothing, never over an existing file unasked, normal permissions."""

import os
import stat

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
