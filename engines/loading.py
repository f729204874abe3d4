"""Loading `from_pretrained` folders: one place that turns a missing or incomplete download into
ModelUnavailable naming the component, and refuses weights left randomly initialised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ModelUnavailable
from .registry import ResolvedModel


def unavailable(resolved: ResolvedModel, reason: str) -> ModelUnavailable:
    spec = resolved.spec
    return ModelUnavailable(spec.key, spec.source, spec.fix(), reason)


def pretrained(resolved: ResolvedModel, cls: Any, subfolder: str | None = None, **kwargs) -> Any:
    """`cls.from_pretrained(folder)` for a model (transformers or diffusers), strict: a
    checkpoint that leaves any parameter uninitialised is refused, as is one that does not
    load at all."""
    folder = _folder(resolved, subfolder)
    try:
        loaded = cls.from_pretrained(folder, output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise unavailable(resolved, _where(subfolder) + _first_line(err)) from err
    model, info = loaded if isinstance(loaded, tuple) else (loaded, {})
    missing = sorted(str(k) for k in info.get("missing_keys") or [])
    mismatched = sorted(
        str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or []
    )
    if missing or mismatched:
        problems = [f"missing: {_listed(missing)}"] if missing else []
        problems += [f"mis-shaped: {_listed(mismatched)}"] if mismatched else []
        raise unavailable(
            resolved,
            f"{_where(subfolder)}the checkpoint leaves {len(missing) + len(mismatched)} weights "
            f"missing or mis-shaped ({'; '.join(problems)}); it is incomplete, for another "
            f"model, or {_versions(cls, folder)}",
        )
    return model


LISTED_KEYS = 20
"""How many missing keys a refusal names (a checkpoint for another model misses hundreds)."""


def _listed(keys: list[str]) -> str:
    more = len(keys) - LISTED_KEYS
    return ", ".join(keys[:LISTED_KEYS]) + (f" and {more} more" if more > 0 else "")


def _versions(cls: Any, folder: Path) -> str:
    """Which library version wrote the checkpoint (its config says) and which one reads it,
    since a key renamed between versions reads as missing."""
    import importlib.metadata
    import json

    library = "diffusers" if cls.__module__.startswith("diffusers") else "transformers"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    written = config.get("_diffusers_version") or config.get("transformers_version")
    wrote = f"written by {library} {written}" if written else "written by another version"
    installed = importlib.metadata.version(library)
    return f"{wrote} and read by {library} {installed}, whose key names differ"


def pretrained_files(resolved: ResolvedModel, cls: Any, subfolder: str | None = None, **kwargs):
    """`cls.from_pretrained(folder)` for what has no weights (tokenizers, processors,
    schedulers): a folder that does not load becomes ModelUnavailable."""
    folder = _folder(resolved, subfolder)
    try:
        return cls.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise unavailable(resolved, _where(subfolder) + _first_line(err)) from err


def _folder(resolved: ResolvedModel, subfolder: str | None) -> Path:
    folder = resolved.folder / subfolder if subfolder else resolved.folder
    if not folder.exists():
        raise unavailable(resolved, f"no {subfolder or folder.name}/ folder in {resolved.folder}")
    return folder


def _where(subfolder: str | None) -> str:
    return f"{subfolder}/ does not load: " if subfolder else ""


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
