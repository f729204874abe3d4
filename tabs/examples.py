"""A tab's examples, where a newcomer starts: a "start here" line above them, and their files
made again when Gradio's cached copy is gone (its `delete_cache` ages out the copies it made
when the app was built, and an emptied temp folder takes them all)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

START_HERE = "**Start here:** pick an example below to fill in the form, then press **{run}**."


def start_here(run: str, what: str = "") -> gr.Markdown:
    """The one line that says where to begin (`what`, when the tab has no examples)."""
    text = what or START_HERE.format(run=run)
    return gr.Markdown(text, elem_classes="zss-start-here")


def examples(rows: list[list[Any]], inputs: list, run: str, **options) -> gr.Examples:
    """gr.Examples filling `inputs`, under the "start here" line naming the `run` button."""
    start_here(run)
    shown = gr.Examples(rows, inputs=inputs, **options)
    return made_again_when_gone(shown)


def file_paths(value: Any) -> Iterator[str]:
    """The server paths in a processed example value (FileData dicts, nested)."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and not value["path"].startswith(("http:", "https:")):
            yield value["path"]
        for item in value.values():
            yield from file_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from file_paths(item)


def made_again_when_gone(shown: gr.Examples) -> gr.Examples:
    """Clicking an example whose cached files went processes it again from its source (the
    shipped asset, or the array it was made from), so the copies are written anew. (An
    instance attribute: gr.Examples calls it for every click.)"""
    processed = shown._get_processed_example
    memo = shown.non_none_processed_examples

    def process(example):
        value = processed(example)
        if all(Path(path).is_file() for path in file_paths(value)):
            return value
        if example in memo:
            del memo[example]
        value = processed(example)
        memo[example] = value
        return value

    shown._get_processed_example = process
    shown.dataset.zss_examples = shown  # for tests to find
    return shown
