"""Where the app writes the files it shows: one folder per browser session, one sub-folder per
run, removed on the schedule Gradio's own cache uses (`DELETE_CACHE`) and when the session
ends."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

DELETE_CACHE = (3600, 3600)
"""(how often to look, how old a file may get) in seconds, as gr.Blocks(delete_cache=...)."""


def default_root() -> Path:
    """$ZSS_OUTPUT_DIR, else inside Gradio's temp folder, which Gradio serves files from and
    app.py puts in the process's scratch folder (swept after a kill)."""
    from engines.scratch import process_folder

    if os.environ.get("ZSS_OUTPUT_DIR"):
        return Path(os.environ["ZSS_OUTPUT_DIR"])
    gradio_temp = os.environ.get("GRADIO_TEMP_DIR") or process_folder() / "gradio"
    return Path(gradio_temp) / "zsstudio-outputs"


class OutputFolders:
    """Run folders under `root/<session>/<run>`; `clean()` removes runs older than `max_age`."""

    def __init__(
        self,
        root: Path | None = None,
        every: float = DELETE_CACHE[0],
        max_age: float = DELETE_CACHE[1],
    ):
        self._root = root
        self.every = every
        self.max_age = max_age
        self._last_clean = time.time()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root or default_root()

    def new(self, session: str) -> Path:
        """A new, empty folder for one run of one session (cleaning old runs when due)."""
        if time.time() - self._last_clean >= self.every:
            self.clean()
        folder = self.root / _safe(session) / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        return folder

    def clean(self, now: float | None = None) -> int:
        """Remove run folders older than `max_age`, and sessions left empty; returns how many
        run folders went."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            self._last_clean = now
            if not self.root.is_dir():
                return 0
            for session in self.root.iterdir():
                if not session.is_dir():
                    continue
                for run in session.iterdir():
                    if now - run.stat().st_mtime >= self.max_age:
                        shutil.rmtree(run, ignore_errors=True)
                        removed += 1
                if not any(session.iterdir()):
                    session.rmdir()
        return removed

    def drop_session(self, session: str) -> None:
        """The session ended (the browser tab closed): its files go now."""
        shutil.rmtree(self.root / _safe(session), ignore_errors=True)


def _safe(session: str) -> str:
    return "".join(c for c in session if c.isalnum() or c in "-_") or "no-session"


OUTPUTS = OutputFolders()
"""The app's output folders (tests point `_root` elsewhere)."""
