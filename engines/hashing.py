"""SHA-256 fingerprints of files and arrays (recipes, caches, downloads)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(path: str | os.PathLike, file_hash=file_sha256) -> str:
    """Of a file, its SHA-256; of a folder, the SHA-256 of every file's relative path and
    SHA-256 in sorted order (hidden files and folders, such as .git or .cache, left out): the
    same for two copies of the same files, wherever they lie."""
    root = Path(path)
    if root.is_file():
        return file_hash(root)
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if file.is_file() and not any(part.startswith(".") for part in relative.parts):
            digest.update(f"{relative.as_posix()}\0{file_hash(file)}\n".encode())
    return digest.hexdigest()


def array_sha256(array: Any) -> str:
    """Of a numpy array's bytes in C order (its shape and dtype are not included)."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def remembered_file_sha256(path: str | os.PathLike, memo: Path) -> str:
    """A file's SHA-256, remembered in the JSON file `memo` by (real path, size, mtime) so big
    weights hash once."""
    real = Path(path).resolve()
    stat = real.stat()
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return known[key]
    known[key] = file_sha256(real)
    if stat.st_size > 1 << 24:  # only big files are worth remembering
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known), encoding="utf-8")
            tmp.replace(memo)
        except OSError:
            pass
    return known[key]
