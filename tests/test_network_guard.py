"""The guard that keeps tests offline."""

from __future__ import annotations

import socket

import pytest
from conftest import NetworkBlocked, _attempts


def test_non_loopback_connection_is_blocked():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkBlocked):
            sock.connect(("198.51.100.7", 443))
    finally:
        sock.close()
    assert _attempts == ["198.51.100.7:443"]
    _attempts.clear()  # this test wanted the attempt; do not fail it


def test_loopback_connection_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket()
    try:
        client.connect(server.getsockname())
    finally:
        client.close()
        server.close()
