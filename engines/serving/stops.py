"""Stop for long runs across processes. A GAN adaptation or a NeRF fit stops early and keeps
what it has, so Stop cannot be a cancelled request (that would lose the result): the front end
posts the run's key here and the replica running it, waiting on that key, stops the run after
its current step and still sends the result. One board per front end, owned by it, so it goes
when the front end does (the replica then takes that as a stop, too)."""

from __future__ import annotations

import asyncio

import ray


@ray.remote(num_cpus=0)
class StopBoard:
    def __init__(self) -> None:
        self._stops: dict[str, asyncio.Event] = {}

    def _event(self, key: str) -> asyncio.Event:
        return self._stops.setdefault(key, asyncio.Event())

    async def stop(self, key: str) -> None:
        self._event(key).set()

    async def wait(self, key: str) -> bool:
        """Returns once `stop(key)` was called."""
        await self._event(key).wait()
        return True

    async def forget(self, key: str) -> None:
        self._stops.pop(key, None)
