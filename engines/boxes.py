"""Reading a labelled box (a layout phrase box, a video keyframe) from whatever a caller gives:
the dataclass itself, a mapping of its fields, or its five values in order."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from .errors import InputError


def label_and_coords(cls, value: Any, noun: str, shape: str) -> tuple[Any, list[float]]:
    """(label, [x0, y0, x1, y1]) of a `cls` value (a dataclass whose fields are a label and the
    four coordinates); InputError saying what `noun` looks like (`shape`) when it is not one,
    or when a coordinate is not a finite number."""
    names = [f.name for f in fields(cls)]
    try:
        if isinstance(value, Mapping):
            unknown = set(value) - set(names)
            if unknown:
                raise InputError(f"Unknown {noun} keys {sorted(unknown)}; a {noun} has {names}.")
            label, x0, y0, x1, y1 = (value[name] for name in names)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            label, x0, y0, x1, y1 = value
        else:
            raise TypeError
        coords = [float(c) for c in (x0, y0, x1, y1)]
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"A {noun} is {shape}; got {value!r}.") from err
    if not all(math.isfinite(c) for c in coords):
        raise InputError(f"The {noun}'s coordinates must be finite numbers; got {value!r}.")
    return label, coords
