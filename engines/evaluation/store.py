"""Finished items of an evaluation, one JSON file each under `<output>/items/`: a rerun into
the same folder reads them back instead of redoing them (resumable), and an item whose
settings changed gets a new file (its key hashes the settings). An input file counts by its
name and contents, not by where it lies, so a moved data folder or checkout is still read
back."""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..hashing import file_sha256
from ..outputs import write_bytes


def item_key(item: dict[str, Any]) -> str:
    """`<id>-<10 hex of the item's settings>`: readable, and new when a setting changes."""
    text = json.dumps(portable(item), sort_keys=True, default=str)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(item.get("id", "item"))).strip("-")[:60]
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


class ItemStore:
    def __init__(self, output: Path):
        self.folder = Path(output) / "items"

    def path(self, item: dict[str, Any]) -> Path:
        return self.folder / f"{item_key(item)}.json"

    def artifacts(self, item: dict[str, Any]) -> Path:
        """A folder for an item's files (images, audio), created on demand."""
        folder = self.folder / item_key(item)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def finished(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """The record of a finished item, or None (never run, or a file cut short)."""
        path = self.path(item)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        return record if record.get("settings") == _plain(portable(item)) else None

    def save(self, item: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        record = {"item": _plain(item), "settings": _plain(portable(item)), **record}
        text = json.dumps(record, indent=2, sort_keys=True, default=_json_default)
        write_bytes(self.path(item), text.encode("utf-8"))  # atomic: no half-written records
        return json.loads(text)


def portable(value: Any) -> Any:
    """`value` with each absolute path of an existing file replaced by the file's name and
    sha256 (in dicts and lists too): the same on any machine and in any folder."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if isinstance(value, str) and os.path.isabs(value) and os.path.isfile(value):
        stat = os.stat(value)
        return {"file": Path(value).name, "sha256": _sha256(value, stat.st_size, stat.st_mtime_ns)}
    return value


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file
    return file_sha256(path)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(item, sort_keys=True, default=str))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
