"""Long work (a GAN adaptation, a NeRF fit or edit) in its own thread: iterate it for its
RunUpdates, cancel it (Stop), and collect its result, also after a cancel, from the last state.
`LongRunEngine` is the engine side: `start`, `cancel` and the task methods' `follow`."""

from __future__ import annotations

import queue
import threading
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import Engine, Progress, Request, Result
from .stages import reporting

_FINISHED = object()

Emit = Callable[["RunUpdate"], None]
Work = Callable[[Emit, threading.Event], Any]
"""work(emit, stop): calls emit(update) as it goes, checks `stop` between steps."""
Job = Callable[[Any, Emit, threading.Event], Result]
"""job(parts, emit, stop): a long run's work on the engine's loaded parts."""


@dataclass
class RunUpdate:
    """What a long run reports as it goes: its stage, the step it reached of `total`, one line
    for a status box, the last step's losses, and now and then a preview, with the loss history
    so far for a plot (rows of the step's name and its losses, as the result's `history`)."""

    stage: str  # the engine's: "variations", "adapt", "fit", "edit", "measure", "done"...
    step: int
    total: int
    message: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    preview: Any = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


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
            raise TimeoutError("the run is still running")
        if self._error is not None:
            raise self._error
        return self._outcome


class LongRuns:
    """Background runs by id, so that Stop (`cancel(run_id)`) can find them."""

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

    def running(self) -> list[str]:
        """The ids of the runs in progress."""
        with self._lock:
            return list(self._runs)


class LongRunEngine(Engine):
    """An engine whose long tasks run in a background thread: `start(request)` gives a
    BackgroundRun to iterate for RunUpdates, `cancel(run_id)` (Stop) ends it after its current
    step and its result keeps what was done; a task method runs to the end with `follow`.
    Subclasses say in `prepare` what a request runs."""

    def __init__(self, manager):
        super().__init__(manager)
        self._runs = LongRuns()

    @abstractmethod
    def prepare(self, request: Request) -> Job:
        """Check the (validated) request and read its inputs now, so that bad input fails in
        `start`, before any model loads; returns the job to run on the loaded parts."""

    def start(self, request: Request) -> BackgroundRun:
        """Start `request` in a background thread: iterate the run for RunUpdates,
        `cancel(run.id)` to stop it early (the result keeps what was done), `run.result()`."""
        self.size(request)
        job = self.prepare(request)

        def work(emit: Emit, stop: threading.Event) -> Result:
            def loading(fraction: float, what: str = "") -> None:
                emit(RunUpdate("loading", 0, 0, what))

            with reporting(loading), self.manager.use(self.name) as parts:
                return job(parts, emit, stop)

        return self._runs.start(work)

    def cancel(self, run_id: str) -> bool:
        """Ask a run to stop after its current step; False if no such run is in progress."""
        return self._runs.cancel(run_id)

    def running(self) -> list[str]:
        """The ids of this engine's runs in progress."""
        return self._runs.running()

    def follow(self, request: Request, progress: Progress) -> Result:
        """Run `request` to its end, its updates reported to `progress`."""
        run = self.start(request)
        for update in run:
            progress(update.fraction, update.message)
        return run.result()
