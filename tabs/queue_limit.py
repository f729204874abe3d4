"""A full queue of model runs must not refuse the System status. Gradio's `max_size` counts
every waiting event, so once QUEUE_SIZE runs wait, `/system_status` (and every other event
meant to answer at once) is refused with "Queue is full" too. `bound_queue` applies the bound
itself, to queued events only: an event declared `queue=False` always gets in, and runs on its
own concurrency group at once."""

from __future__ import annotations

import gradio as gr
from gradio import route_utils


def bound_queue(demo: gr.Blocks, size: int) -> None:
    """Refuse a queued event while `size` events wait; let `queue=False` events in always."""
    queue = demo._queue
    queue.max_size = None  # the bound is applied below, per event
    push = queue.push

    async def push_within_bound(body, request, username):
        immediate = False
        if body.fn_index is not None:
            try:
                immediate = not route_utils.get_fn(demo, None, body).queue
            except Exception:  # an unknown event: Gradio's own push refuses it
                immediate = False
        if not immediate and len(queue) >= size:
            return (
                False,
                f"Queue is full. Max size is {size} and size is {len(queue)}.",
                "queue_full",
            )
        return await push(body, request, username)

    queue.push = push_within_bound
