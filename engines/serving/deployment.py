"""One Ray Serve deployment class around an Engine: `EngineDeployment`, configured per
capability in serve.yaml (replicas or autoscaling, `ray_actor_options` with `num_gpus`).

Each replica is a process with its own Studio holding one engine, loaded when the replica
starts. Its two streaming methods answer the front end (`engines.serving.client`):
`run(request)` yields `started`, `progress`... then the result; `start(request, stops, key)`
runs a long job (GAN adaptation, NeRF fit) and yields `started`, `update`... then the result,
stopping early, result kept, when the front end posts `key` on its StopBoard. A cancelled
request (Cancel in the app, a closed tab) stops the engine at its next step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ray import serve

from ..base import Request, Result
from ..cancel import CancelToken, cancellable
from ..errors import Cancelled, InputError, StudioError
from ..long_runs import BackgroundRun
from ..scratch import process_folder
from ..studio import Studio
from .wire import PROGRESS, RESULT, STARTED, UPDATE, error_event, event, on_host, unpacked

log = logging.getLogger("zsstudio")

DEPLOYMENT = "EngineDeployment"
"""The deployment's name in every application (an application per capability)."""

SLOW_PROGRESS_FILE = "ZSS_TEST_SLOW_PROGRESS_FILE"
"""Test hook: while the file this variable names exists, each progress report on a replica
waits as many seconds as the file says, so a test can stop or kill a replica mid-run."""

_DONE = object()


@serve.deployment(name=DEPLOYMENT, ray_actor_options={"num_cpus": 1}, max_ongoing_requests=4)
class EngineDeployment:
    """A replica serving one engine (`engine`, a capability key)."""

    def __init__(
        self,
        engine: str,
        device: str | None = None,
        models: str | None = None,
        gpu_budget: float | None = None,
        preload: bool = True,
        low_memory: bool = False,
    ):
        self.studio = Studio(
            device=device, models=models, gpu_budget_gb=gpu_budget, low_memory=low_memory
        )
        self.key = engine
        self.engine = self.studio.engine(engine)
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.outcomes: Counter[str] = Counter()  # runs done, cancelled, failed
        if preload:  # traffic reaches a replica once it is ready, not while its models load
            self.studio.preload([engine])

    async def run(self, request: Request) -> AsyncIterator[dict[str, Any]]:
        """Run `request`: `started`, `progress` events, then `result` (or `error`)."""
        yield event(STARTED, replica=self.replica)
        token = CancelToken()
        with tempfile.TemporaryDirectory(prefix="serve-", dir=process_folder()) as folder:

            def work(emit: Callable[[dict], None]) -> Result:
                def report(fraction: float, message: str = "") -> None:
                    emit(event(PROGRESS, fraction=float(fraction), message=str(message)))

                with unpacked(request, Path(folder)) as local:
                    return self.engine.run(local, cancellable(report, token))

            async for item in self._stream(work, token.cancel):
                yield item

    async def start(self, request: Request, stops: Any, key: str) -> AsyncIterator[dict]:
        """Start a long run: `started`, `update` events, then `result` (or `error`); posting
        `key` on `stops` (a StopBoard) stops it after its current step, result kept."""
        yield event(STARTED, replica=self.replica)
        running: list[BackgroundRun] = []

        def stop() -> None:
            for run in running:
                run.cancel()

        with tempfile.TemporaryDirectory(prefix="serve-", dir=process_folder()) as folder:

            def work(emit: Callable[[dict], None]) -> Result:
                with unpacked(request, Path(folder)) as local:
                    running.append(self.engine.start(local))
                    for update in running[0]:
                        emit(event(UPDATE, update=on_host(update)))
                    return running[0].result()

            watcher = asyncio.ensure_future(_wait_for_stop(stops, key, stop))
            try:
                async for item in self._stream(work, stop):
                    yield item
            finally:
                watcher.cancel()

    async def _stream(self, work: Callable, cancel: Callable[[], None]) -> AsyncIterator[dict]:
        """Run `work(emit)` in a thread, yielding the events it emits, in order, then its
        result. A cancelled request (the front end's Cancel) calls `cancel`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        delay = _test_delay()

        def emit(item: dict) -> None:
            if delay:
                time.sleep(delay())
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def thread() -> Result:
            outcome = "failed"
            try:
                result = work(emit)
                outcome = "done"
                return result
            except Cancelled:
                outcome = "cancelled"
                raise
            finally:
                self.outcomes[outcome] += 1
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        done = asyncio.ensure_future(asyncio.to_thread(thread))
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            result = await done
        except asyncio.CancelledError:
            cancel()  # the thread stops at its next step and releases the engine
            done.add_done_callback(_ignore_outcome)
            raise
        except StudioError as err:
            yield error_event(err)
            return
        result.metrics["replica"] = self.replica
        yield event(RESULT, result=on_host(result), replica=self.replica)

    def status(self) -> dict[str, Any]:
        """This replica's studio status (device, loaded engine, memory) and how its runs
        ended: {"done": n, "cancelled": n, "failed": n}."""
        return {"replica": self.replica, "runs": dict(self.outcomes), **self.studio.status()}

    def accelerated(self) -> bool:
        """Whether this replica runs its engine on a GPU (or another accelerator)."""
        return self.studio.on_accelerator()


def _ignore_outcome(future: asyncio.Future) -> None:
    """Nobody waits for a cancelled request's outcome (Cancelled, most likely): read it, so
    asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


async def _wait_for_stop(stops: Any, key: str, stop: Callable[[], None]) -> None:
    """Call `stop` once the front end posts `key` on its StopBoard, or is gone."""
    if stops is None:
        return
    try:
        await stops.wait.remote(key)
    except asyncio.CancelledError:
        raise
    except Exception:  # the board went with its front end: nobody reads the run any more
        log.info("the front end of run %s is gone; stopping it", key)
    stop()


def _test_delay() -> Callable[[], float] | None:
    path = os.environ.get(SLOW_PROGRESS_FILE)
    if not path:
        return None

    def seconds() -> float:
        try:
            return float(Path(path).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0.0

    return seconds


def build_app(args: dict[str, Any]) -> serve.Application:
    """The application of one capability, for serve.yaml's `import_path`
    (`engines.serving.deployment:build_app`, `args: {engine: compression}`)."""
    known = {"engine", "device", "models", "gpu_budget", "preload", "low_memory"}
    unknown = sorted(set(args) - known)
    if unknown or "engine" not in args:
        raise InputError(
            f"The application's args take engine (a capability key) and optionally "
            f"{', '.join(sorted(known - {'engine'}))}; got {sorted(args)}."
        )
    return EngineDeployment.bind(**args)
