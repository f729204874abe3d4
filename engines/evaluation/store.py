"""Finished items of an evaluation, one JSON file each under `<output>/items/`: a rerun into
the same folder reads them back instead of redoing them (resumable), and an item whose
settings changed gets a new file (its key hashes the settings)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..outputs import write_bytes


def item_key(item: dict[str, Any]) -> str:
    """`<id>-<10 hex of the item's settings>`: readable, and new when a setting changes."""
    text = json.dumps(item, sort_keys=True, default=str)
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
        return record if isinstance(record, dict) and record.get("item") == _plain(item) else None

    def save(self, item: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        record = {"item": _plain(item), **record}
        text = json.dumps(record, indent=2, sort_keys=True, default=_json_default)
        write_bytes(self.path(item), text.encode("utf-8"))  # atomic: no half-written records
        return json.loads(text)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(item, sort_keys=True, default=str))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
