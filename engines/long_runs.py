"""Long work (an adaptation, a NeRF fit or edit) in its own thread: iterate it for progress
updates, cancel it (Stop), and collect its result, also after a cancel, from the last state."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

_FINISHED = object()

Work = Callable[[Callable[[Any], None], threading.Event], Any]
"""work(emit, stop): calls emit(update) as it goes, checks `stop` between steps."""


class BackgroundRun:
    """One thread does all the work, so the model manager's lock is taken and released by the
    same thread however the updates are consumed (Gradio may resume a generator on any thread)."""

    def __init__(self, work: Work):
        self.id = uuid.uuid4().hex[:12]
        self._work = work
        self._stop = threading.Event()
        self._updates: queue.Queue = queue.Queue()
        self._outcome: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"zss-run-{self.id}", daemon=True)

    def start(self) -> BackgroundRun:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._outcome = self._work(self._updates.put, self._stop)
        except BaseException as err:  # re-raised in the caller's thread by result()
            self._error = err
        finally:
            self._updates.put(_FINISHED)

    def __iter__(self) -> Iterator[Any]:
        """Updates as they come. Closing this iterator early cancels the run."""
        finished = False
        try:
            while True:
                item = self._updates.get()
                if item is _FINISHED:
                    finished = True
                    return
                yield item
        finally:
            if not finished:
                self.cancel()

    def cancel(self) -> None:
        """Stop after the current iteration; the result keeps what was learnt so far."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float | None = None) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the adaptation is still running")
        if self._error is not None:
            raise self._error
        return self._outcome


class Runs:
    """An engine's background runs by id, so that Stop (`cancel(run_id)`) can find them."""

    def __init__(self):
        self._runs: dict[str, BackgroundRun] = {}
        self._lock = threading.Lock()

    def start(self, work: Work) -> BackgroundRun:
        """Run `work` in its own thread; it is forgotten when it ends."""

        def tracked(emit, stop: threading.Event) -> Any:
            try:
                return work(emit, stop)
            finally:
                with self._lock:
                    self._runs.pop(run.id, None)

        run = BackgroundRun(tracked)
        with self._lock:
            self._runs[run.id] = run
        return run.start()

    def cancel(self, run_id: str) -> bool:
        """Ask a run to stop after its current step; False if no such run is in progress."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return False
        run.cancel()
        return True
