"""Running an evaluation's items with a progress bar, `--limit`, and resumption."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import ItemStore

Evaluate = Callable[[dict[str, Any], ItemStore], dict[str, Any]]


@dataclass
class Run:
    records: list[dict[str, Any]]
    ran: int  # items evaluated in this run
    reused: int  # items read back from the output folder


def run_items(
    output: Path,
    items: list[dict[str, Any]],
    evaluate: Evaluate,
    limit: int | None = None,
    description: str = "eval",
    show_progress: bool = True,
) -> Run:
    """Evaluate each item (the first `limit`), skipping those already recorded in `output`.
    Each record is written as soon as its item finishes, so an interrupted run loses at most
    the item in progress."""
    from tqdm.auto import tqdm

    chosen = items if limit is None else items[:limit]
    store = ItemStore(output)
    records, ran, reused = [], 0, 0
    bar = tqdm(
        total=len(chosen), desc=description, unit="item", file=sys.stderr, disable=not show_progress
    )
    try:
        for item in chosen:
            record = store.finished(item)
            if record is None:
                bar.set_postfix_str(str(item.get("id", "")), refresh=False)
                record = store.save(item, evaluate(item, store))
                ran += 1
            else:
                reused += 1
            records.append(record)
            bar.update(1)
    finally:
        bar.close()
    return Run(records, ran, reused)
