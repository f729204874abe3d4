"""Writing files so that a crash or a full disk never leaves a half-written file in place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

PARTIAL_SUFFIX = ".part"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once at import: setting it back and forth races other threads
FILE_MODE = 0o666 & ~UMASK
"""What a file we write gets: a plain `open()`'s mode, not a temp file's private 0600."""


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temp file in the same folder, renamed over
    `path` when the block ends without error, removed when it raises (or is interrupted)."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, delete=False
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), FILE_MODE)
        os.replace(handle.name, path)
    except BaseException as err:
        try:
            os.unlink(handle.name)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError) and err.filename in (handle.name, None):
            # name the user's file, not our hidden temp file beside it
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` all or nothing."""
    with atomic_writer(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy `source` to `target` all or nothing (a kill mid-copy leaves no partial file)."""
    import shutil

    with open(source, "rb") as data, atomic_writer(target) as out:
        shutil.copyfileobj(data, out, 1 << 20)
    return Path(target)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` all or nothing."""
    return atomic_write_bytes(path, text.encode(encoding))


def partial_files(path: str | os.PathLike) -> list[Path]:
    """Temp files `atomic_writer` left for `path` (a process killed mid-write leaves one)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*{PARTIAL_SUFFIX}"))


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Create `path` if needed and make sure a file can be written in it; InputError naming
    the folder when not (read-only, full, not a folder, no permission)."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0")
            probe.flush()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InputError(f"Cannot write to the folder {folder}: {reason}.") from err
    return folder


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: what failed, on which path."""
    what = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{what}: {' -> '.join(paths)}" if paths else what


def check_can_create(path: str | os.PathLike) -> Path:
    """Make sure the folder `path` exists and can be written, or could be created, without
    creating anything: InputError naming the folder when not."""
    folder = Path(path).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"Cannot write to the folder {folder}: {existing} is not a folder.")
    if existing == folder:
        return check_writable_folder(folder)  # exists: try a real write (a full disk shows)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write to the folder {folder}: no permission in {existing}.")
    return folder
