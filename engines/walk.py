"""What a value holds, by one rule: dict values, list, tuple and set items, dataclass fields,
and (`attributes=True`) a plain object's attributes and a `components` property. The model
manager searches it for torch modules to count an engine's weights; the Serve wire maps it to
move a result's tensors and copy its read-only arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

_NOTHING_INSIDE = (str, bytes, int, float, bool, type(None), type)


def held(value: Any, attributes: bool = False) -> list[Any]:
    """What `value` holds directly."""
    if isinstance(value, _NOTHING_INSIDE):
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    inside = []
    components = getattr(type(value), "components", None)
    if attributes and isinstance(components, property):  # diffusers pipelines, engines' Parts
        try:
            inside.append(value.components)
        except Exception:  # a property that cannot answer now holds nothing to count
            pass
    if dataclasses.is_dataclass(value):
        inside.extend(getattr(value, f.name, None) for f in dataclasses.fields(value))
    elif attributes and isinstance(getattr(value, "__dict__", None), dict):
        if not isinstance(value, ModuleType):
            inside.extend(vars(value).values())
    return inside


def find(
    values: Iterable[Any], wanted: Callable[[Any], bool], depth: int, seen: set | None = None
) -> Iterator[Any]:
    """Each value that is `wanted`, among `values` or held in them (attributes included) up to
    `depth` levels down; each object is visited once, and a wanted one is not looked into."""
    seen = set() if seen is None else seen
    for value in values:
        if id(value) in seen:
            continue
        seen.add(id(value))
        if wanted(value):
            yield value
        elif depth > 0:
            yield from find(held(value, attributes=True), wanted, depth - 1, seen)


def map_leaves(value: Any, change: Callable[[Any], Any], depth: int = 3) -> Any:
    """`change` applied to what `value` holds in dicts, lists, tuples and dataclass fields, up
    to `depth` levels down. What is left unchanged is returned as it is; a dataclass holding
    something changed is changed in place (frozen ones too)."""
    if depth < 0:
        return value
    if isinstance(value, dict):
        moved = {key: map_leaves(item, change, depth - 1) for key, item in value.items()}
        return value if _same(moved.values(), value.values()) else moved
    if isinstance(value, (list, tuple)):
        items = [map_leaves(item, change, depth - 1) for item in value]
        if _same(items, value):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = map_leaves(old, change, depth - 1)
            if new is not old:
                object.__setattr__(value, field.name, new)
        return value
    return change(value)


def _same(new: Iterable, old: Iterable) -> bool:
    return all(a is b for a, b in zip(new, old, strict=True))
