"""Re-running a recipe on the models it recorded.

A recipe's `models` table records, per component, where its weights came from (`source`: a
Hub repo, a URL, or "local") and which ones they were (`revision`: the Hub commit, the file's
SHA-256, or for a local copy `local:sha256:` and the hash of its contents). `pin_recorded`
reads that table for `zsstudio run`: Hub components resolve at the recorded commit; what
cannot be pinned (a URL file, a local copy, a component overridden on this machine) is
checked where it can be and named in one line where it cannot. The table is a file someone
sent: it names models only by Hub id or URL, never by a path on this machine (overrides come
from the environment or --models).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InputError, ModelUnavailable
from .registry import LOCAL_REVISION, ComponentSpec, Registry, local_revision

COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
LOCAL_HASH = re.compile(re.escape(LOCAL_REVISION) + r"[0-9a-f]{64}")
LOCAL_SOURCE = "local"


def check_recorded(registry: Registry, engine: str, models: object) -> dict[str, dict]:
    """The recipe's `models` table, refused (InputError) unless it names only components the
    engine has, each by a Hub id, a URL or "local" with a revision that is not a path."""
    if not isinstance(models, dict):
        raise InputError(f"A recipe's `models` must be a JSON object, got {models!r}.")
    known = registry.specs.get(engine, {})
    for name, entry in models.items():
        if name not in known:
            raise InputError(
                f"This recipe records a model {name!r} that the {engine} engine does not have; "
                f"its models: {', '.join(known) or 'none'}."
            )
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("source"), str)
            and isinstance(entry.get("revision"), str)
        ):
            raise InputError(
                f"The recipe's entry for model {engine}.{name} is not readable: it needs a "
                "`source` and a `revision`."
            )
        source, revision = entry["source"], entry["revision"]
        url = source.startswith(("https://", "http://"))
        local = source == LOCAL_SOURCE and LOCAL_HASH.fullmatch(revision) is not None
        if not (url or local or (HUB_ID.fullmatch(source) and ".." not in source)):
            variable = known[name].variable
            raise InputError(
                f"This recipe names {source!r}@{revision!r} for model {engine}.{name}: a recipe "
                f"names models by Hub id or URL, not by a path. To use a copy on this machine, "
                f"set {variable} (or pass --models) instead."
            )
    return models


def pin_recorded(registry: Registry, engine: str, models: object) -> list[str]:
    """Pin the Hub revisions the recipe recorded (`registry.pins`) and check the rest; returns
    what to tell the user, one line each: what was pinned, and each model that differs from
    the recorded one or cannot be checked."""
    pinned, notes = [], []
    for name, entry in check_recorded(registry, engine, models).items():
        spec = registry.spec(engine, name)
        revision = entry["revision"]
        if os.environ.get(spec.variable):
            notes.append(_overridden(spec, entry))
        elif spec.url:
            if revision == (spec.sha256 or _downloaded_sha256(registry, spec)):
                pinned.append(f"{spec.key} (sha256 {revision[:12]})")
            else:
                notes.append(_other_file(registry, spec, revision))
        elif revision.startswith(LOCAL_REVISION):
            notes.append(
                f"{spec.key}: the recipe used a local copy ({_short(revision)}), none is set "
                f"here: running {spec.source}; set {spec.variable} to that copy to run it."
            )
        elif registry.canonical_repo(entry["source"]) != spec.repo:
            notes.append(
                f"{spec.key}: the recipe used {entry['source']}, models.toml now names "
                f"{spec.repo}: running {spec.source}."
            )
        elif not COMMIT.fullmatch(revision):
            notes.append(
                f"{spec.key}: the recipe recorded revision {revision!r}, a name rather than a "
                f"commit: running {spec.source} as it is now."
            )
        else:
            registry.pins[spec.key] = revision
            pinned.append(f"{spec.key} at {revision[:12]}")
    lines = []
    if pinned:
        lines.append(
            f"models: as the recipe recorded them: {', '.join(pinned)} "
            "(--latest-models runs the ones models.toml names now)"
        )
    return lines + [line for line in notes if line]


def _overridden(spec: ComponentSpec, entry: dict) -> str:
    """A component this machine overrides: checked against the recipe when both are local
    copies, named otherwise ("" when the copy is the recorded one)."""
    revision = entry["revision"]
    if spec.local_path and revision.startswith(LOCAL_REVISION):
        path = Path(spec.local_path).expanduser()
        if path.exists() and local_revision(path) == revision:
            return ""
        return (
            f"{spec.key}: the local copy {spec.variable} names is not the one the recipe used "
            f"({_short(revision)}): running with it anyway."
        )
    recorded = "a local copy" if revision.startswith(LOCAL_REVISION) else entry["source"]
    return (
        f"{spec.key}: {spec.variable} overrides what the recipe used ({recorded}, "
        f"{_short(revision)}) with {spec.source}; they cannot be compared."
    )


def _downloaded_sha256(registry: Registry, spec: ComponentSpec) -> str | None:
    """The SHA-256 of the file downloaded for a URL component (None: not downloaded)."""
    try:
        return registry.resolve_spec(spec, download=False).revision
    except ModelUnavailable:
        return None


def _other_file(registry: Registry, spec: ComponentSpec, revision: str) -> str:
    here = spec.sha256 or _downloaded_sha256(registry, spec)
    if here is None:
        return (
            f"{spec.key}: {spec.url} has no published checksum and is not downloaded yet, so "
            f"whether it is the file the recipe used (sha256 {revision[:12]}) is not checked."
        )
    where = "models.toml now names" if spec.sha256 else "the file here is"
    return (
        f"{spec.key}: the recipe used the file with sha256 {revision[:12]}, {where} "
        f"{here[:12]}: running with that."
    )


def _short(revision: str) -> str:
    if revision.startswith(LOCAL_REVISION):
        return f"sha256 {revision.removeprefix(LOCAL_REVISION)[:12]}"
    return revision[:12]
