"""This process's temporary work in one folder under the cache, `<cache>/scratch/<pid>-<id>/`,
so that a process killed mid-work (kill -9, a crash) leaves nothing in the system's temp folder,
and what it left under the cache is removed by the next process that starts (`sweep`).

A folder belongs to a live process while that process holds an exclusive lock on the folder's
`.lock` file; the kernel drops the lock when the process dies, however it dies, so a lock that
can be taken marks a dead owner (pid reuse cannot fool it)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are removed at exit but not swept
    fcntl = None

LOCK_FILE = ".lock"
_lock = threading.Lock()
_folder: Path | None = None
_lock_handle = None


def scratch_root() -> Path:
    from .registry import CACHE_DIR

    return Path(os.environ.get("ZSS_SCRATCH_DIR") or CACHE_DIR / "scratch")


def process_folder() -> Path:
    """This process's scratch folder, made (and locked) on first use, removed at exit."""
    global _folder, _lock_handle
    with _lock:
        if _folder is not None and _folder.is_dir():
            return _folder
        root = scratch_root()
        root.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # locked under a hidden name, then renamed: a sweeper never sees it unlocked
        unborn = root / f".{name}"
        unborn.mkdir()
        handle = open(unborn / LOCK_FILE, "w")  # noqa: SIM115 - held for the process's life
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        folder = root / name
        os.rename(unborn, folder)
        _folder, _lock_handle = folder, handle
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return folder


def temp_dir(prefix: str) -> Path:
    """A new folder inside this process's scratch folder (the caller removes it when done)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=process_folder()))


def temp_file(suffix: str = "", prefix: str = "tmp") -> Path:
    """A new empty file inside this process's scratch folder (the caller removes it)."""
    handle, name = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=process_folder())
    os.close(handle)
    return Path(name)


def sweep() -> list[Path]:
    """Remove the scratch folders of processes that are no longer running; returns them."""
    root = scratch_root()
    if fcntl is None or not root.is_dir():
        return []
    removed = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder == _folder or folder.name.startswith("."):
            continue
        if _owner_is_dead(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_is_dead(folder: Path) -> bool:
    lock = folder / LOCK_FILE
    try:
        with open(lock) as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True  # the lock was free: its owner has gone (closing releases it)
    except BlockingIOError:
        return False  # held: a live process
    except FileNotFoundError:
        return True  # no lock: not one of ours in use
    except OSError:
        return False
