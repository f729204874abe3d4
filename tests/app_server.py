"""Launch a built demo on a free loopback port for end-to-end tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(demo, **options) -> Iterator[str]:
    """Serve `demo` on 127.0.0.1 without blocking (more `launch` keywords in `options`, such
    as the app's css); yields its URL and closes it afterwards."""
    demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
        **options,
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
