"""The handler calls running now, and what stops them: a Cancel button, a closed browser tab, an
API client that cancelled or went away.

Gradio's own cancel (`cancels=[event]`, `Job.cancel()`) ends the event for the client but
cannot stop a function already running in a worker thread, and a lost connection only marks the
event dead. So every call made through `tabs.forms.connect` is tracked here with its cancel
token: the Cancel button and the session's end cancel it directly, and a watcher thread cancels
it as soon as Gradio no longer counts its event as running. The engine then stops at its next
progress report (`engines.cancel`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engines.cancel import CancelToken

log = logging.getLogger(__name__)

WATCH_EVERY_S = 0.25
"""How often the watcher looks at the running events."""

CLIENT_GONE = "the client went away"
CANCEL_PRESSED = "Cancel pressed"
SESSION_ENDED = "the browser tab closed"
STREAM_CLOSED = "the stream of updates was closed"


@dataclass
class GradioEvent:
    """The queue event a handler runs for, read from Gradio's queue: running, ended, or not
    known (a call outside the queue, or a Gradio without the attributes read here)."""

    blocks: Any
    event_id: str | None

    @classmethod
    def current(cls) -> GradioEvent:
        try:
            from gradio.context import LocalContext

            return cls(LocalContext.blocks.get(None), LocalContext.event_id.get(None))
        except (ImportError, AttributeError):
            return cls(None, None)

    def running(self) -> bool | None:
        """True while Gradio runs the event, False once it was cancelled or lost its client,
        None when this cannot be told."""
        jobs = getattr(getattr(self.blocks, "_queue", None), "active_jobs", None)
        if self.event_id is None or jobs is None:
            return None
        for job in jobs:
            for event in job or ():
                if getattr(event, "_id", None) == self.event_id:
                    return bool(getattr(event, "alive", True))
        return False


@dataclass
class ProgressSeen:
    """A call's last progress report, for the status line every tab shows."""

    fraction: float = 0.0
    message: str = ""

    def __call__(self, fraction: float, message: str = "") -> None:
        self.fraction, self.message = fraction, message or self.message


@dataclass
class Tracked:
    session: str
    api_name: str
    token: CancelToken
    event: GradioEvent
    seen_running: bool = False
    progress: ProgressSeen | None = None


class RunningCalls:
    """Calls by session and API name; `cancel` stops them, the watcher stops those whose event
    Gradio dropped."""

    def __init__(self, every: float = WATCH_EVERY_S):
        self.every = every
        self._calls: dict[int, Tracked] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @contextmanager
    def track(
        self,
        session: str,
        api_name: str,
        token: CancelToken,
        progress: ProgressSeen | None = None,
    ) -> Iterator[None]:
        entry = Tracked(session, api_name, token, GradioEvent.current(), progress=progress)
        key = id(entry)
        with self._lock:
            self._calls[key] = entry
            self._start_watcher()
        try:
            yield
        finally:
            with self._lock:
                self._calls.pop(key, None)

    def running(self, session: str | None = None) -> list[str]:
        """The API names of the calls running now (for one session)."""
        with self._lock:
            return [c.api_name for c in self._calls.values() if session in (None, c.session)]

    def progress(self) -> list[tuple[str, ProgressSeen]]:
        """(API name, last progress) of every call running now that reports progress."""
        with self._lock:
            return [(c.api_name, c.progress) for c in self._calls.values() if c.progress]

    def cancel(self, session: str, api_name: str | None = None, reason: str = "") -> int:
        """Cancel the session's running calls (of one event, when `api_name` is given);
        returns how many were running."""
        with self._lock:
            chosen = [
                c
                for c in self._calls.values()
                if c.session == session and api_name in (None, c.api_name)
            ]
        for call in chosen:
            call.token.cancel(reason)
        return len(chosen)

    def _start_watcher(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name="zss-runs", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while True:
            with self._lock:
                calls = list(self._calls.values())
                if not calls:
                    self._watcher = None
                    return
            for call in calls:
                state = call.event.running()
                if state:
                    call.seen_running = True
                elif state is False and call.seen_running and not call.token.cancelled:
                    log.info("%s (%s): %s; cancelling", call.api_name, call.session, CLIENT_GONE)
                    call.token.cancel(CLIENT_GONE)
            threading.Event().wait(self.every)


RUNS = RunningCalls()
"""The app's running calls."""
