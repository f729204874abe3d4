"""Stopping a run between its steps.

Engines report progress between steps (`progress(fraction, what)`); a run that can be cancelled
is handed a progress callback wrapped by `cancellable`, which raises `Cancelled` at the next
report once its token is cancelled. The engine unwinds from there like from any error: the model
manager's lock is released and nothing half-made is returned.

    token = CancelToken()
    engine.run(request, cancellable(progress, token))   # another thread: token.cancel()
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled


class CancelToken:
    """A flag one thread sets and a running engine checks; `on_cancel` callbacks run once, when
    it is set (for work that waits on something else than a progress report)."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    def cancel(self, reason: str = "") -> None:
        with self._lock:
            if self._set.is_set():
                return
            self.reason = reason
            self._set.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        return self._set.is_set()

    def check(self) -> None:
        """Raise Cancelled if the token was cancelled."""
        if self._set.is_set():
            raise Cancelled(_message(self.reason))

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the token is cancelled (now, if it already is)."""
        with self._lock:
            if not self._set.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def wait(self, timeout: float | None = None) -> bool:
        return self._set.wait(timeout)


def _message(reason: str) -> str:
    return (
        f"Cancelled ({reason}): the run stopped before it finished."
        if reason
        else ("Cancelled: the run stopped before it finished.")
    )


def cancellable(progress: Callable[[float, str], None], token: CancelToken):
    """`progress` that first raises Cancelled once `token` is cancelled."""

    def report(fraction: float, description: str = "") -> None:
        token.check()
        progress(fraction, description)

    report.token = token  # for work that can stop sooner than the next report (`token_of`)
    return report


def token_of(progress: Callable[[float, str], None] | None) -> CancelToken | None:
    """The token a `cancellable` progress callback checks, or None for any other callback. A
    run on another machine (Ray Serve) cancels its request as soon as the token is set, instead
    of at the next report that comes back."""
    return getattr(progress, "token", None)
