"""The `--auth` login, slowed down for guessers: each failed attempt makes the same client's
next attempt wait longer (0.5 s, 1 s, 2 s, ... up to 8 s); a correct login resets it.

Gradio calls the auth function with the user name and password only, so `ClientAddress`, an
ASGI middleware, remembers the connecting address for it (`login_app_kwargs()` installs it).
That address is the peer's: an `X-Forwarded-For` header is believed only from the proxies the
user names (`--trusted-proxy`), since uvicorn by default believes it from 127.0.0.1 and a
rotating header would then give every guess a fresh back-off. Behind a named proxy the back-off
keys on the address the proxy reports. Whatever the addresses, a global ceiling caps failed
logins per minute.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("zss_client", default=None)
"""The address of the client whose request is being handled (set by ClientAddress)."""
ANONYMOUS = "unknown client"
FAILURES_PER_MINUTE = 60
"""Failed logins from all clients together in one minute past which attempts are refused
unchecked until the minute has passed."""

log = logging.getLogger(__name__)


def trusted_proxies(addresses: Sequence[str]) -> str:
    """The `--trusted-proxy` values checked (addresses or networks) and joined as uvicorn's
    FORWARDED_ALLOW_IPS; raises ValueError naming a value that is neither."""
    for address in addresses:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {address!r} is not an IP address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/8)."
            ) from None
    return ",".join(addresses)


def believe_forwarded_for(addresses: Sequence[str]) -> None:
    """Make the server believe `X-Forwarded-For` only from `addresses` (none: from no one).
    uvicorn reads FORWARDED_ALLOW_IPS when Gradio builds its server, so this must run before
    `launch`; an empty value matches no peer."""
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies(addresses)


class ClientAddress:
    """ASGI middleware: makes each HTTP request's client address visible through CLIENT."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        client = scope.get("client")
        token = CLIENT.set(client[0] if client else None)
        try:
            return await self.app(scope, receive, send)
        finally:
            CLIENT.reset(token)


def login_app_kwargs() -> dict:
    """`app_kwargs` for `demo.launch` that install ClientAddress."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(ClientAddress)]}


@dataclass
class _Attempts:
    failures: int = 0
    next_try: float = 0.0  # clock time before which this client's next attempt waits


class LoginGuard:
    """Checks one user name and password; pass `guard.check` as Gradio's `auth`."""

    def __init__(
        self,
        username: str,
        password: str,
        first_delay: float = 0.5,
        max_delay: float = 8.0,
        forget_after: float = 900.0,
        max_clients: int = 4096,
        failures_per_minute: int = FAILURES_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable] = asyncio.sleep,
    ):
        self._username = username.encode()
        self._password = password.encode()
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_clients = max_clients
        self.failures_per_minute = failures_per_minute
        self.clock = clock
        self.sleep = sleep
        self._clients: dict[str, _Attempts] = {}
        self._recent_failures: collections.deque[float] = collections.deque()

    def delay(self, failures: int) -> float:
        """How long the attempt after `failures` failed ones waits."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay, self.first_delay * 2 ** (failures - 1))

    def failures(self, client: str | None = None) -> int:
        attempts = self._clients.get(client or ANONYMOUS)
        return attempts.failures if attempts else 0

    async def check(self, username: str, password: str) -> bool:
        """True for the right user name and password, after this client's back-off. Runs on
        Gradio's event loop: waiting is an `await`, so it holds up no one else."""
        client = CLIENT.get() or ANONYMOUS
        now = self.clock()
        if self._over_ceiling(now):
            return False  # too many failures from everyone this minute: refused unchecked
        attempts = self._attempts(client, now)
        start = max(now, attempts.next_try)
        if start - now > self.max_delay:
            return False  # a burst of parallel guesses: refused unchecked, not queued
        if attempts.failures:
            # book this slot, so parallel attempts from the client queue one after another
            attempts.next_try = start + self.delay(attempts.failures)
        if start > now:
            await self.sleep(start - now)
        right_user = hmac.compare_digest(username.encode(), self._username)
        right_password = hmac.compare_digest(password.encode(), self._password)
        if right_user and right_password:
            self._clients.pop(client, None)
            return True
        attempts.failures += 1
        self._recent_failures.append(self.clock())
        attempts.next_try = max(attempts.next_try, self.clock() + self.delay(attempts.failures))
        return False

    def _over_ceiling(self, now: float) -> bool:
        while self._recent_failures and now - self._recent_failures[0] > 60.0:
            self._recent_failures.popleft()
        over = len(self._recent_failures) >= self.failures_per_minute
        if over and len(self._recent_failures) == self.failures_per_minute:
            log.warning(
                "%d failed logins in the last minute: refusing logins until it has passed",
                self.failures_per_minute,
            )
        return over

    def _attempts(self, client: str, now: float) -> _Attempts:
        attempts = self._clients.get(client)
        if attempts is not None and now - attempts.next_try > self.forget_after:
            attempts = None  # failures long ago are forgiven
        if attempts is None:
            if len(self._clients) >= self.max_clients:
                self._forget_oldest(now)
            attempts = self._clients[client] = _Attempts()
        return attempts

    def _forget_oldest(self, now: float) -> None:
        stale = [c for c, a in self._clients.items() if now - a.next_try > self.forget_after]
        for client in stale or sorted(self._clients, key=lambda c: self._clients[c].next_try)[:1]:
            del self._clients[client]
