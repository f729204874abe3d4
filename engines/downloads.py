"""Fetching over the network: whether a server can be reached at all, a URL downloaded whole
(through a temp file, with a record of what arrived), and download errors in plain words."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from .files import atomic_write_text, atomic_writer, check_writable_folder, partial_files
from .hashing import file_sha256

RECORD_SUFFIX = ".download.json"
"""Next to a URL download: what was downloaded (url, bytes, sha256), written once it is whole."""
STALE_PARTIAL_S = 600.0
"""A download's temp file untouched this long belongs to a process that died (reads time out
after 60 s), so the next download removes it."""

PROBE_TIMEOUT_S = 3.0
"""How long a download waits to learn whether the server can be reached at all (name lookup
and TCP connect), so a machine without internet fails at once instead of after retries."""
_probes: dict[str, tuple[float, str]] = {}
PROBE_MEMORY_S = 30.0


def unreachable_reason(url: str) -> str:
    """Why the host of `url` cannot be reached now ("" when it can), known within
    PROBE_TIMEOUT_S; an answer is remembered for PROBE_MEMORY_S."""
    import socket
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    remembered = _probes.get(f"{host}:{port}")
    if remembered and time.monotonic() - remembered[0] < PROBE_MEMORY_S:
        return remembered[1]
    outcome: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            outcome.append("")
        except Exception as err:  # OSError for the network's own failures
            outcome.append(f"cannot reach {host}: {getattr(err, 'strerror', None) or err}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    reason = outcome[0] if outcome else f"cannot reach {host}: no answer in {PROBE_TIMEOUT_S:g} s"
    if reason:
        reason += " (no internet here? then fetch it elsewhere, or set HF_HUB_OFFLINE=1)"
    _probes[f"{host}:{port}"] = (time.monotonic(), reason)
    return reason


DOWNLOAD_FAILURES = {
    "GatedRepoError": "the repo is gated: accept its terms on the Hub, then log in with "
    "`hf auth login`",
    "RepositoryNotFoundError": "no such repo on the Hub (or it is private)",
    "RevisionNotFoundError": "no such revision in the repo",
    "EntryNotFoundError": "the repo has no such file",
    "RemoteEntryNotFoundError": "the repo has no such file",
    "LocalEntryNotFoundError": "the Hub could not be reached and no copy is cached",
    "OfflineModeIsEnabled": "HF_HUB_OFFLINE is set",
    "HTTPError": "the server refused",
    "ConnectionError": "the connection failed",
    "Timeout": "the server did not answer in time",
    "ReadTimeout": "the server did not answer in time",
}


def download_failure(err: BaseException) -> str:
    """A download error in plain words (huggingface_hub's class names are jargon to users)."""
    for cls in type(err).__mro__:
        if cls.__name__ in DOWNLOAD_FAILURES:
            return DOWNLOAD_FAILURES[cls.__name__]
    lines = str(err).strip().splitlines()
    return (lines[0][:200] if lines else type(err).__name__).rstrip(".")


def download_record_path(target: Path) -> Path:
    return target.with_name(target.name + RECORD_SUFFIX)


def downloaded_sha256(target: Path) -> str:
    """The SHA-256 the download record of `target` names (for a file `download_problem`
    passed: the file's own)."""
    return str(json.loads(download_record_path(target).read_text(encoding="utf-8"))["sha256"])


def download_problem(target: Path, expected_sha256: str | None) -> str | None:
    """Why the file at `target` is not a whole download (of the file whose checksum is
    `expected_sha256`, when known); None: it is. The record written after a download says how many
    bytes and which sha256 it had, so a file cut short or changed since does not pass."""
    if not target.is_file():
        return "not downloaded"
    record_path = download_record_path(target)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        size, sha256 = int(record["bytes"]), str(record["sha256"])
    except FileNotFoundError:
        return f"{target} has no download record (cut short, or not written by zsstudio)"
    except (OSError, ValueError, KeyError, TypeError):
        return f"the download record {record_path} is unreadable"
    if target.stat().st_size != size:
        return f"{target} is {target.stat().st_size} bytes; {size} were downloaded"
    if expected_sha256 and sha256 != expected_sha256:
        return f"{target} is not the file models.toml names (sha256 {sha256})"
    if file_sha256(target) != sha256:
        return f"{target} changed since it was downloaded"
    return None


def remove_stale_partials(target: Path) -> None:
    """Temp files of downloads that died mid-way (a killed process cannot clean up)."""
    now = time.time()
    for path in partial_files(target):
        try:
            if now - path.stat().st_mtime > STALE_PARTIAL_S:
                path.unlink()
        except OSError:
            pass


def download_url(url: str, target: Path, sha256: str | None) -> str:
    """Fetch `url` into `target` through a temp file, renamed only once every byte the server
    announced arrived and the checksum (when known) holds; then write the download record.
    Returns the file's sha256."""
    import urllib.request

    from .stages import download_bar

    tqdm = download_bar()  # a run waiting on the download shows the bytes as they arrive
    check_writable_folder(target.parent)
    remove_stale_partials(target)
    digest = hashlib.sha256()
    received = 0
    with atomic_writer(target) as out:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(total=expected, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise OSError(f"the download stopped early: {received} of {expected} bytes arrived")
        if sha256 and digest.hexdigest() != sha256:
            raise ValueError(f"checksum mismatch: expected {sha256}, got {digest.hexdigest()}")
    record = {"url": url, "bytes": received, "sha256": digest.hexdigest()}
    atomic_write_text(download_record_path(target), json.dumps(record, indent=2) + "\n")
    return digest.hexdigest()
