"""Shared test setup: offline by construction, and a guard that fails any test that opens a
non-loopback socket."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # any Ray a test starts stays on loopback
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to reach anything but this machine."""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


_attempts: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _checked(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not _is_loopback(str(host)):
                _attempts.append(f"{host}:{address[1]}")
                raise NetworkBlocked(f"test tried to open a socket to {host}:{address[1]}")
        return real(self, address)

    return connect


socket.socket.connect = _checked(_real_connect)
socket.socket.connect_ex = _checked(_real_connect_ex)


@pytest.fixture(autouse=True)
def no_network():
    """Fail the test if it tried to reach a non-loopback address, even if the code under test
    swallowed the error."""
    _attempts.clear()
    yield
    if _attempts:
        attempts = ", ".join(sorted(set(_attempts)))
        _attempts.clear()
        pytest.fail(f"test opened a non-loopback socket: {attempts}")


@pytest.fixture(scope="module")
def one_thread():
    """For a test module of tiny torch models (`pytestmark = pytest.mark.usefixtures(
    "one_thread")`): they gain nothing from threads and lose a lot to thread contention on a
    busy machine. Restores the thread count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def local_model(monkeypatch):
    """Point one registry component at a local folder or file, as a user would offline."""
    from engines.registry import override_variable

    def point(engine: str, component: str, path) -> None:
        monkeypatch.setenv(override_variable(engine, component), str(path))

    return point


@pytest.fixture(scope="session")
def tiny_sd15_dir(tmp_path_factory):
    """A tiny Stable Diffusion 1.5 folder, built once per test session."""
    from tiny_models import save_tiny_sd15_pipeline

    return save_tiny_sd15_pipeline(tmp_path_factory.mktemp("tiny-sd15"))


@pytest.fixture(scope="session")
def clip_tokenizer_dir(tmp_path_factory):
    from tiny_models import write_clip_tokenizer

    folder = tmp_path_factory.mktemp("clip-tokenizer")
    write_clip_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_video_dirs(tiny_sd15_dir, tmp_path_factory):
    """Every subject-video component, tiny and in its real layout, by registry name."""
    from tiny_layout import save_tiny_grounding_dino
    from tiny_video import (
        save_tiny_clip,
        save_tiny_clipseg,
        save_tiny_dino,
        save_tiny_ip_adapter,
        save_tiny_motion_adapter,
    )

    make = tmp_path_factory.mktemp
    return {
        "sd15": tiny_sd15_dir,
        "motion_adapter": save_tiny_motion_adapter(make("tiny-motion-adapter")),
        "ip_adapter": save_tiny_ip_adapter(make("tiny-ip-adapter")),
        "clip": save_tiny_clip(make("tiny-clip")),
        "dino": save_tiny_dino(make("tiny-dino")),
        "detector": save_tiny_grounding_dino(make("tiny-grounding-dino-video")),
        "segmenter": save_tiny_clipseg(make("tiny-clipseg")),
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose call failed (`item.failed_call`), so a fixture can keep evidence."""
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True
    return report


def pytest_collection_modifyitems(config, items):
    """Soak tests (minutes long) run only when selected: `pytest -m soak`."""
    if "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="a long soak: select it with -m soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
