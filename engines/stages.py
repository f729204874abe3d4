"""Loading and downloading reported as a run's progress stage: while a run is inside
`reporting(progress)`, a model part that loads or a file that downloads says so through the
run's progress callback ("loading layout: sd15", "downloading model.safetensors: 120 of 1,700
MB"), at the fraction the run last reported. (A context variable: runs in other threads, or
no run at all, as in `zsstudio download`, report nothing.)"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_stage: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "zss_stage", default=None
)


class StageProgress:
    """A run's progress callback that remembers its last fraction, so a stage reported in
    between (a model loading) keeps the bar where it was."""

    def __init__(self, progress: Callable[..., None]):
        self._progress = progress
        self.fraction = 0.0

    def __call__(self, fraction: float, description: str = "") -> None:
        self.fraction = fraction
        self._progress(fraction, description)

    def stage(self, description: str) -> None:
        self._progress(self.fraction, description)


@contextmanager
def reporting(progress: Callable[..., None]) -> Iterator[StageProgress]:
    """Within the block, `report(what)` goes to `progress` at its last fraction; yields the
    wrapped callback the run should report through."""
    tracked = progress if isinstance(progress, StageProgress) else StageProgress(progress)
    token = _stage.set(tracked.stage)
    try:
        yield tracked
    finally:
        _stage.reset(token)


def report(what: str) -> None:
    """Tell the running run's progress what is happening now (nothing outside a run)."""
    stage = _stage.get()
    if stage is not None:
        stage(what)


def megabytes(count: float) -> str:
    return f"{count / 1e6:,.0f}" if count >= 1e7 else f"{count / 1e6:,.1f}"


def download_message(name: str, done: float, total: float | None) -> str:
    of = f" of {megabytes(total)}" if total else ""
    return f"downloading {name}: {megabytes(done)}{of} MB"


def download_bar() -> type:
    """A tqdm class (huggingface_hub takes one as `tqdm_class`) whose byte counts are also
    reported as the run's stage; a bar counting files says which file it reached."""
    from tqdm.auto import tqdm

    class StageBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            # kept here too: a disabled bar (no terminal) keeps neither count nor settings
            self._name = kwargs.get("desc") or "model files"
            self._total = kwargs.get("total")
            self._bytes = kwargs.get("unit") == "B"
            self._done = float(kwargs.get("initial") or 0)
            self._reported = -1.0

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            self._done += n or 0
            done, total = self._done, self._total
            if self._bytes:
                if done - self._reported >= 1e6 or (total and done >= total):
                    self._reported = done
                    report(download_message(self._name, done, total))
            else:
                report(f"downloading {self._name}: {done:g}" + (f" of {total:g}" if total else ""))
            return shown

    return StageBar
