"""Atomic writes keep the usual file permissions and never leave a temp file behind."""

import os

import pytest

from graftlab import _atomic


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _atomic.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.json"
    _atomic.write_json(path, {"v": 1})

    def half_then_fail(handle):
        handle.write(b"{ half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _atomic._replace_from_temp(path, half_then_fail)
    assert '"v": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
