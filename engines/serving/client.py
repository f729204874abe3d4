"""The front end's side of Ray Serve: `RayStudio` and `RemoteEngine` stand where `Studio` and
an `Engine` stand in-process, so the tabs, the API and `zsstudio` run unchanged on them.

`RemoteEngine.run(request, progress)` sends the request (input files as bytes) to its
capability's deployment through a Serve handle, streams the replica's progress into
`progress`, and returns the Result, its recipe naming the input files where they are here.
Cancel (the progress callback's token) cancels the Serve request, and the replica stops at its
next step. `start(request)` / `cancel(run_id)` are the long runs' interface (GAN, NeRF): Stop
reaches the replica through a StopBoard and the result so far comes back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .. import __version__
from ..base import Engine, Progress, Recipe, Request, Result, no_progress
from ..cancel import token_of
from ..capabilities import keys, offered
from ..errors import Cancelled, InputError, ServerError
from ..long_runs import BackgroundRun, LongRuns
from ..registry import Registry
from .wire import (
    ERROR,
    PROGRESS,
    RESULT,
    STARTED,
    UPDATE,
    pack_request,
    raise_error,
    restore_paths,
    writable,
)

log = logging.getLogger("zsstudio")

DEPLOYMENT = "EngineDeployment"  # as engines.serving.deployment names it (that module needs Serve)

FRONT_END_RUNS = 16
"""Model runs the app lets through at once (the queue's size): Serve spreads them over the
replicas and queues what they cannot take yet."""

CONNECT_TIMEOUT_S = 5.0
"""How long a cluster address may take to answer before the front end says it is not there."""

STOP_POLL_S = 0.2
"""How often a long run's Stop is looked for, to post it to the replica."""


def import_ray():
    """Ray, or an InputError saying how to install it."""
    try:
        import ray
        from ray import serve  # noqa: F401
    except ImportError as err:
        raise InputError(
            "--backend ray needs Ray Serve, which is not installed: "
            "pip install 'zero-shot-studio[scale]'."
        ) from err
    return ray


def check_reachable(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ConnectionError unless something answers at a HOST:PORT address (Ray itself
    retries an address that does not answer for minutes)."""
    host, _, port = (address or "").rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local", or no address: Ray looks on this machine
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConnectionError(f"nothing answers at {host}:{port}: {err}") from err


class RayStudio:
    """What the app and `zsstudio` share, on Ray Serve: one RemoteEngine per capability,
    each on the application of that name (serve.yaml)."""

    concurrent_runs = FRONT_END_RUNS

    def __init__(self, models: str | None = None, registry: Registry | None = None):
        self.registry = registry or Registry.load(models)
        self._engines: dict[str, RemoteEngine] = {}
        self._accelerated: dict[str, bool] = {}
        self._running: dict[str, tuple[str, str]] = {}  # ticket -> (capability, replica)
        self._board = None
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, address: str | None = None, models: str | None = None) -> RayStudio:
        """Join the Ray cluster at `address` (default: the one on this machine) unless this
        process is already part of one."""
        ray = import_ray()
        if not ray.is_initialized():
            where = f"at {address}" if address else "on this machine"
            try:
                check_reachable(address)
                ray.init(address=address or "auto", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(
                    f"No Ray cluster {where} ({str(err).splitlines()[0]}). Start the engines "
                    "first: zsstudio serve --config serve.yaml (or serve deploy on a cluster), "
                    "then give its address with --ray-address."
                ) from err
        return cls(models=models)

    def deployed(self) -> list[str]:
        """The capabilities with an application on the cluster, in the app's order."""
        from ray import serve

        names = set(serve.status().applications)
        return [key for key in keys() if key in names]

    def engine(self, key: str) -> RemoteEngine:
        with self._lock:
            if key not in self._engines:
                capability = offered(key)
                # Asked of Serve's status, not left to get_deployment_handle: this process
                # may hold a cached handle of an application deleted since.
                deployed = self.deployed()
                if key not in deployed:
                    raise InputError(
                        f"The {key} engine is not deployed on this Ray cluster (deployed: "
                        f"{', '.join(deployed) or 'none'}); add its application to "
                        "serve.yaml and deploy it."
                    )
                self._engines[key] = RemoteEngine(key, capability.load_engine_class(), self)
            return self._engines[key]

    def preload(self, keys: list[str]) -> list[str]:
        """Nothing to do here: each replica loads its engine when it starts."""
        return []

    def on_accelerator(self, engine: str | None = None) -> bool:
        """Whether the replicas of `engine` (of any engine, for None) run on a GPU."""
        keys = [engine] if engine else self.deployed()
        for key in keys:
            if key not in self._accelerated:
                try:
                    answer = self.engine(key).handle.accelerated.remote().result(timeout_s=30)
                except Exception as err:  # not deployed yet, or not ready: say CPU for now
                    log.info("could not ask %s for its device: %s", key, err)
                    return False
                self._accelerated[key] = bool(answer)
            if self._accelerated[key]:
                return True
        return False

    def release(self, name: str | None = None) -> dict:
        raise InputError(
            "Under Ray Serve each replica keeps its own engine loaded; scale a capability "
            "down in serve.yaml (num_replicas or autoscaling) to free its GPU."
        )

    def status(self) -> dict[str, Any]:
        """The deployments and their replicas' states, and what runs where now."""
        import ray
        from ray import serve

        deployments = {}
        for name, app in serve.status().applications.items():
            for overview in app.deployments.values():
                deployments[name] = {
                    "status": str(getattr(overview.status, "value", overview.status)),
                    "replicas": {str(k): v for k, v in overview.replica_states.items()},
                }
        with self._lock:
            running = sorted(
                f"{key} on replica {replica}" for key, replica in self._running.values()
            )
        return {
            "version": __version__,
            "device": f"Ray Serve at {ray.get_runtime_context().gcs_address}",
            "backend": "ray",
            "deployments": deployments,
            "busy": ", ".join(running) or None,
            "loaded": {},
            "release_pending": [],
        }

    def stop_board(self):
        """This front end's StopBoard, started on first use."""
        with self._lock:
            if self._board is None:
                from .stops import StopBoard

                self._board = StopBoard.remote()
            return self._board

    def _began(self, ticket: str, key: str, replica: str) -> None:
        with self._lock:
            self._running[ticket] = (key, replica)

    def _ended(self, ticket: str) -> None:
        with self._lock:
            self._running.pop(ticket, None)


class RemoteEngine:
    """An engine's interface (`run`, `run_recipe`, `start`, `cancel`) on its deployment."""

    def __init__(self, key: str, engine_class: type[Engine], studio: RayStudio):
        from ray import serve

        self.key = key
        self.name = engine_class.name
        self.tasks = engine_class.tasks
        self.studio = studio
        self.handle = serve.get_deployment_handle(DEPLOYMENT, app_name=key)
        self._runs = LongRuns()

    def run(self, request: Request, progress: Progress | None = None) -> Result:
        """Run `request` on a replica; progress streams back into `progress`."""
        progress = progress or no_progress
        packed, paths = pack_request(request)
        token = token_of(progress)
        stream = self.handle.options(stream=True, method_name="run").remote(packed)
        if token is not None:
            token.on_cancel(stream.cancel)

        def on_progress(item: dict) -> None:
            progress(item["fraction"], item["message"])

        try:
            result = self._follow(stream, PROGRESS, on_progress, token)
        finally:
            stream.cancel()  # no-op once the stream ended; else the replica stops too
        return restore_paths(result, paths)

    def start(self, request: Request) -> BackgroundRun:
        """Start a long run on a replica: iterate it for updates, `cancel(run.id)` stops it
        after the current step (the result keeps what was done), `run.result()`."""
        packed, paths = pack_request(request)
        board = self.studio.stop_board()

        def work(emit: Callable[[Any], None], stop: threading.Event) -> Result:
            key = uuid.uuid4().hex
            stream = self.handle.options(stream=True, method_name="start").remote(
                packed, board, key
            )
            finished = threading.Event()

            def post_stop() -> None:
                while not finished.is_set():
                    if stop.wait(STOP_POLL_S):
                        board.stop.remote(key)
                        return

            threading.Thread(target=post_stop, name=f"zss-stop-{key[:8]}", daemon=True).start()
            try:
                result = self._follow(stream, UPDATE, lambda item: emit(writable(item["update"])))
            finally:
                finished.set()
                board.forget.remote(key)
            return restore_paths(result, paths)

        return self._runs.start(work)

    def cancel(self, run_id: str) -> bool:
        """Ask a long run to stop after its current step; False if none such is running."""
        return self._runs.cancel(run_id)

    def running(self) -> list[str]:
        """The ids of the long runs this front end started that are in progress."""
        return self._runs.running()

    def request_from_recipe(self, recipe: Recipe) -> Request:
        return Engine.request_from_recipe(self, recipe)  # reads only name and tasks

    def run_recipe(self, recipe: Recipe, progress: Progress | None = None) -> Result:
        return self.run(self.request_from_recipe(recipe), progress)

    def request_types(self) -> list[type[Request]]:
        return list(self.tasks)

    def _follow(
        self, stream: Iterable[dict], kind: str, on_event: Callable[[dict], None], token=None
    ) -> Result:
        """Read a replica's events until its result; errors as the front end's own."""
        from ray.exceptions import RayActorError, TaskCancelledError
        from ray.serve.exceptions import (
            BackPressureError,
            DeploymentUnavailableError,
            ReplicaUnavailableError,
        )

        # cancelled on a replica: TaskCancelledError; while still queued here, before any
        # replica took it: one of the two CancelledErrors (asyncio's is a BaseException)
        cancelled = (TaskCancelledError, concurrent.futures.CancelledError, asyncio.CancelledError)

        ticket = uuid.uuid4().hex
        try:
            for item in stream:
                if item["kind"] == kind:
                    on_event(item)
                elif item["kind"] == STARTED:
                    self.studio._began(ticket, self.key, item["replica"])
                elif item["kind"] == RESULT:
                    return writable(item["result"])
                elif item["kind"] == ERROR:
                    raise_error(item)
        except cancelled as err:
            if token is not None:
                token.check()
            raise Cancelled() from err
        except (RayActorError, ReplicaUnavailableError) as err:
            log.warning("%s replica lost: %s", self.key, err)
            raise ServerError(
                f"The {self.key} replica stopped during the run (it is being replaced); "
                "nothing was saved. Try again."
            ) from err
        except (DeploymentUnavailableError, BackPressureError) as err:
            raise ServerError(
                f"The {self.key} engine cannot take the request now ({type(err).__name__}); "
                "try again in a moment."
            ) from err
        finally:
            self.studio._ended(ticket)
        raise ServerError(f"The {self.key} replica ended the run without a result; try again.")
