"""What crosses between the app (front end) and a Serve replica.

A request travels as itself with every input file read into bytes (`pack_request`): the
replica writes them into a folder of its own (`unpacked`), so nothing depends on the front
end's disk. The replica answers with a stream of events, in order: `started` (which replica),
`progress` or `update` events, then one `result` or `error`. Results travel as themselves
(their arrays and bytes go through Ray's object store), torch tensors moved to the CPU first so
a front end without a GPU can read them. Errors we raise for users keep their kind and message
(`error_event`, `raise_error`).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .. import errors
from ..base import Request, Result
from ..errors import InputError, StudioError
from ..fields import VALUE, declared_fields
from ..walk import map_leaves

STARTED, PROGRESS, UPDATE, RESULT, ERROR = "started", "progress", "update", "result", "error"


@dataclass(frozen=True)
class InputFile:
    """An input file's name and contents, in place of its path on the front end."""

    name: str
    data: bytes


def pack_request(request: Request) -> tuple[Request, dict[str, str]]:
    """A copy of `request` whose file inputs (fields declared with `value()` naming a file on
    this machine) are InputFiles, and {field: path here} to give back to the result's recipe."""
    packed = copy.copy(request)
    paths: dict[str, str] = {}
    for declared, spec in declared_fields(type(request)):
        value = getattr(request, declared.name)
        if spec.kind != VALUE or not isinstance(value, (str, os.PathLike)) or not str(value):
            continue
        path = Path(value)
        if path.is_dir():
            raise InputError(
                f"{spec.label} is a folder ({path.name}); the engines run on Ray Serve replicas "
                "that cannot see this machine's folders: give it as a zip."
            )
        if path.is_file():  # anything else ("example", a missing file) the replica judges
            setattr(packed, declared.name, InputFile(path.name, path.read_bytes()))
            paths[declared.name] = str(value)
    return packed, paths


@contextmanager
def unpacked(request: Request, folder: Path) -> Iterator[Request]:
    """`request` with each InputFile written under `folder` and named by its path there (and
    its arrays writable)."""
    local = copy.copy(request)
    for declared, _ in declared_fields(type(request)):
        value = getattr(request, declared.name)
        if isinstance(value, InputFile):
            target = folder / declared.name / _safe_name(value.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(value.data)
            setattr(local, declared.name, str(target))
    yield writable(local)


def _safe_name(name: str) -> str:
    """The file's own name (so the recipe records the same name as in-process), never a path."""
    name = Path(name.replace("\\", "/")).name
    return name if name not in ("", ".", "..") else "file"


def restore_paths(result: Result, paths: dict[str, str]) -> Result:
    """The result with its recipe naming the input files where they are on the front end (the
    replica's copies are gone; the contents, and so the recorded sha256, are the same)."""
    params = result.recipe.params
    for name, path in paths.items():
        if name in params:
            params[name] = path
    return result


def on_host(value: Any) -> Any:
    """`value` with the torch tensors it holds moved to the CPU (see `engines.walk.map_leaves`)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return value
    return map_leaves(value, lambda x: x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def writable(value: Any) -> Any:
    """`value` with the read-only NumPy arrays it holds copied. Ray hands arrays over straight
    from its object store, read-only; engines and tabs may write into theirs, as in-process."""
    import numpy as np

    def copied(x: Any) -> Any:
        return x.copy() if isinstance(x, np.ndarray) and not x.flags.writeable else x

    return map_leaves(value, copied)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, **fields}


def error_event(err: StudioError) -> dict[str, Any]:
    """An error for the front end: the nearest kind `engines.errors` knows, its message, and
    its plain attributes (OutOfMemory's `retry`, ModelUnavailable's `component`, ...)."""
    kind = next(c.__name__ for c in type(err).__mro__ if getattr(errors, c.__name__, None) is c)
    plain = (str, int, float, bool, type(None))
    attributes = {k: v for k, v in vars(err).items() if isinstance(v, plain)}
    return event(ERROR, error=kind, message=str(err), attributes=attributes)


def raise_error(event: dict[str, Any]) -> NoReturn:
    """Raise on the front end the error a replica sent: same kind, same message."""
    kind = getattr(errors, str(event.get("error")), None)
    if not (isinstance(kind, type) and issubclass(kind, StudioError)):
        kind = StudioError
    err = kind.__new__(kind)  # their __init__ signatures differ; the message is all we need
    Exception.__init__(err, event.get("message", ""))
    for name, value in (event.get("attributes") or {}).items():
        setattr(err, name, value)
    raise err
