"""Hostile conditions: downloads cut short or changed, full disks and unwritable folders, a
busy port, and a flood of wrong logins. Servers here listen on 127.0.0.1 only."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from engines import files
from engines.errors import InputError
from engines.files import (
    atomic_write_bytes,
    atomic_write_text,
    check_writable_folder,
    partial_files,
)

# -- writing files ------------------------------------------------------------------------


@pytest.fixture
def full_disk(monkeypatch):
    """Every temp file's write fails as on a full disk, after writing a little."""
    real_named = tempfile.NamedTemporaryFile
    real_unnamed = tempfile.TemporaryFile

    def failing(handle):
        def write(data):
            handle.file.write(data[:4])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        handle.write = write
        return handle

    monkeypatch.setattr(
        files.tempfile, "NamedTemporaryFile", lambda *a, **k: failing(real_named(*a, **k))
    )

    class Unwritable:
        def __init__(self, *args, **kwargs):
            self.file = real_unnamed(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

    monkeypatch.setattr(files.tempfile, "TemporaryFile", Unwritable)


def test_atomic_writes_replace_the_file_whole(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert partial_files(path) == []


@pytest.mark.parametrize("write", [atomic_write_bytes, atomic_write_text])
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temp(tmp_path, full_disk, write):
    path = tmp_path / "a.txt"
    path.write_text("old")
    data = b"new contents" if write is atomic_write_bytes else "new contents"
    with pytest.raises(OSError) as info:
        write(path, data)
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_check_writable_folder_creates_it(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_writable_folder(folder) == folder
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_folder_names_a_folder_that_cannot_be(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=f"Cannot write to the folder {blocker / 'out'}"):
        check_writable_folder(blocker / "out")


def test_check_writable_folder_on_a_full_disk(tmp_path, full_disk):
    with pytest.raises(InputError, match=f"{tmp_path}: No space left on device"):
        check_writable_folder(tmp_path)
