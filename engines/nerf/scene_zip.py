"""A scene zip, checked entry by entry from its central directory before anything is extracted
(paths that leave the folder, links, deep paths, too many entries, too many bytes, metadata
files too big to parse), then extracted into this process's scratch folder (never the system's
temp folder: a kill -9 leaves it for the next start's sweep), and removed when done or refused.

Every problem is an InputError naming the zip."""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..scratch import temp_dir
from .capture_images import MAX_VIEWS

MAX_ZIP_BYTES = 2 << 30  # uncompressed, all entries together
MAX_ZIP_ENTRIES = 6 * MAX_VIEWS + 100  # images/ and images_2,4,8/ per view, masks, metadata
MAX_ENTRY_DEPTH = 12  # folders and file: scene/images_2/a/b.png is 4
MAX_ENTRY_NAME = 1024  # characters of an entry's path
MAX_METADATA_BYTES = 8 << 20  # transforms*.json, poses_bounds.npy: parsed whole, so kept small
METADATA_NAMES = ("poses_bounds.npy",)


def is_metadata(name: str) -> bool:
    """transforms*.json or poses_bounds.npy: the files read whole into memory and parsed."""
    return name in METADATA_NAMES or (name.startswith("transforms") and name.endswith(".json"))


def check_zip(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse entries that could write outside the extraction folder, links, and bombs."""
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InputError(
            f"{name} has {len(entries)} entries; at most {MAX_ZIP_ENTRIES} are read "
            f"({MAX_VIEWS} views with their downscaled copies)."
        )
    total = 0
    for info in entries:
        shown = info.filename[:80]
        if len(info.filename) > MAX_ENTRY_NAME or "\0" in info.filename:
            raise InputError(f"{name}: entry {shown!r}... has a path too long to read; refused.")
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.filename.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
            raise InputError(f"{name}: entry {shown!r} has an absolute path; refused.")
        if ".." in path.parts:
            raise InputError(f"{name}: entry {shown!r} leaves the archive (..); refused.")
        if len(path.parts) > MAX_ENTRY_DEPTH:
            raise InputError(
                f"{name}: entry {shown!r} is {len(path.parts)} folders deep; at most "
                f"{MAX_ENTRY_DEPTH} are read."
            )
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InputError(f"{name}: entry {shown!r} is a symbolic link; refused.")
        if is_metadata(path.name) and info.file_size > MAX_METADATA_BYTES:
            raise InputError(
                f"{name}: {path.name} is {info.file_size / 2**20:.0f} MB; at most "
                f"{MAX_METADATA_BYTES >> 20} MB is read ({MAX_VIEWS} views need far less)."
            )
        total += info.file_size
    if total > MAX_ZIP_BYTES:
        raise InputError(
            f"{name} unpacks to {total / 2**30:.1f} GiB; at most {MAX_ZIP_BYTES >> 30} GiB is read."
        )


def extract(archive: zipfile.ZipFile, folder: Path, name: str) -> None:
    """Every entry into `folder`; a damaged entry or a full disk is an InputError."""
    for info in archive.infolist():
        try:
            archive.extract(info, folder)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise InputError(f"{name} is damaged ({info.filename[:80]!r}: {err}).") from err
        except (NotImplementedError, RuntimeError) as err:  # unknown compression, encryption
            raise InputError(
                f"{name}: entry {info.filename[:80]!r} cannot be read: {err}."
            ) from err
        except OSError as err:
            raise InputError(
                f"{name} could not be unpacked ({info.filename[:80]!r}: {err.strerror or err})."
            ) from err


@contextmanager
def scene_folder(path: str | Path) -> Iterator[Path]:
    """The scene's folder: `path` itself, or a checked zip extracted into a folder of this
    process's scratch folder (removed afterwards, and on refusal)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The scene {path} does not exist.")
    if path.is_dir():
        yield path
        return
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name} is neither a folder nor a zip archive.")
    folder = temp_dir("nerf-scene-")  # swept by the next start if this process is killed
    try:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise InputError(f"{path.name} is not a readable zip archive: {err}.") from err
        with archive:
            check_zip(archive, path.name)
            extract(archive, folder, path.name)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
