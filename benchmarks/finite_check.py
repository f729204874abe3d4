"""Whether a run's outputs are finite: the output of every model's forward, encode and decode
call (latents, features, images, waveforms), and every float array a Result holds.

`FiniteCheck(modules, poison=True)` also turns the first model's outputs into NaN: how the
full-size check's own test proves a non-finite output fails it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

WRAPPED_METHODS = ("encode", "decode", "encode_image", "encode_text", "generate")
LIBRARIES = ("engines", "diffusers", "transformers", "open_clip")


def top_level_modules(parts: dict[str, Any], depth: int = 4) -> dict[str, nn.Module]:
    """The torch models an engine's parts hold, outermost first ({path: module}): the
    modules found walking the parts (dicts, sequences, pipelines' components, our and the
    model libraries' objects), not their submodules; each module once."""
    found: dict[str, nn.Module] = {}
    seen: set[int] = set()

    def walk(obj: Any, path: str, level: int) -> None:
        if id(obj) in seen or level > depth or obj is None:
            return
        seen.add(id(obj))
        if isinstance(obj, nn.Module):
            if not any(obj is other for other in found.values()):
                found[path] = obj
            return
        if isinstance(obj, dict):
            items = list(obj.items())
        elif isinstance(obj, (list, tuple)):
            items = list(enumerate(obj))
        elif isinstance(getattr(obj, "components", None), dict):  # a diffusers pipeline
            items = list(obj.components.items())
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(LIBRARIES):
            items = list(vars(obj).items())
        else:
            return
        for key, value in items:
            walk(value, f"{path}.{key}", level + 1)

    for name, part in parts.items():
        walk(part, name, 0)
    return found


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif hasattr(value, "sample") and isinstance(value.sample, torch.Tensor):  # DecoderOutput
        yield value.sample


def _finite(value: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(value) if t.is_floating_point())


def _poisoned(value: Any) -> Any:
    """`value` with its first float tensor made NaN (the same structure otherwise); the NaN is
    computed from the tensor, so it stays in autograd's graph as a model's own NaN would."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value + float("nan")
    if isinstance(value, tuple) and value:
        return (_poisoned(value[0]), *value[1:])
    if isinstance(value, dict) and value:  # ModelOutput is a dict
        key = next(iter(value))
        value[key] = _poisoned(value[key])
    elif hasattr(value, "sample") and isinstance(value.sample, torch.Tensor):
        value.sample = _poisoned(value.sample)
    return value


class FiniteCheck:
    """Within `with check:`, counts the calls of `modules` (forward, and the methods in
    WRAPPED_METHODS) and those whose outputs hold a NaN or an inf."""

    def __init__(self, modules: dict[str, nn.Module], poison: bool = False):
        self.modules = modules
        self.poison = next(iter(modules), None) if poison else None
        self.calls = 0
        self.bad_calls = 0
        self.first_bad: str | None = None
        self._undo: list = []

    def _record(self, name: str, output: Any) -> Any:
        if name.split(":")[0] == self.poison:
            output = _poisoned(output)
        self.calls += 1
        if not _finite(output):
            self.bad_calls += 1
            self.first_bad = self.first_bad or name
        return output

    def __enter__(self) -> FiniteCheck:
        for name, module in self.modules.items():
            handle = module.register_forward_hook(
                lambda _m, _i, output, name=name: self._record(name, output)
            )
            self._undo.append(handle.remove)
            for method in WRAPPED_METHODS:
                original = getattr(module, method, None)
                if callable(original) and method not in vars(module):
                    setattr(module, method, self._wrapped(f"{name}:{method}", original))
                    self._undo.append(lambda m=module, n=method: delattr(m, n))
        return self

    def _wrapped(self, name: str, original):
        def call(*args, **kwargs):
            return self._record(name, original(*args, **kwargs))

        return call

    def __exit__(self, *exc) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def result_is_finite(result: Any) -> bool:
    """Every float array or tensor a Result holds (images, frames, waveforms, latents)."""

    def arrays(value: Any, level: int = 0):
        if level > 3:
            return
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, torch.Tensor):
            yield value.detach().cpu().numpy()
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from arrays(item, level + 1)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                if field.name not in ("recipe", "metrics", "history"):
                    yield from arrays(getattr(value, field.name), level + 1)

    return all(
        bool(np.isfinite(a).all()) for a in arrays(result) if np.issubdtype(a.dtype, np.floating)
    )
