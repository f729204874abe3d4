"""How metrics read in the app: a label, a unit and a one-line meaning per key, declared once
beside each engine's metrics (`Result.metric_labels`), values in significant figures (2.2e-06,
not 0). metrics.json keeps the raw keys and values; this is only how a table shows them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

SIGNIFICANT = 3


@dataclass(frozen=True)
class Metric:
    """What one metric key means to a reader."""

    label: str
    unit: str = ""
    meaning: str = ""


@dataclass(frozen=True)
class MetricLabels:
    """An engine's metric declarations; `elsewhere`: patterns (regular expressions) of keys the
    tab shows in a table of their own (compression's rate table), left out of this one."""

    keys: dict[str, Metric] = field(default_factory=dict)
    elsewhere: tuple[str, ...] = ()

    def rows(self, metrics: dict[str, Any]) -> list[list[str]]:
        """[label, value with unit, meaning] per metric, in the metrics' order; a key with no
        declaration shows as it is."""
        rows = []
        for key, value in metrics.items():
            if any(re.fullmatch(pattern, key) for pattern in self.elsewhere):
                continue
            metric = self.keys.get(key, Metric(key))
            rows.append([metric.label, readable(value, metric.unit), metric.meaning])
        return rows


def readable(value: Any, unit: str = "") -> str:
    """A value as a reader sees it: numbers to SIGNIFICANT figures (integers whole), yes/no,
    the unit after numbers."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        text = f"{value:,}" if abs(value) >= 10_000 else str(value)
    elif isinstance(value, float):
        text = significant(value)
    elif value is None:
        return "n/a"
    elif isinstance(value, str):
        return value
    else:
        return json.dumps(value, default=str)
    return f"{text} {unit}" if unit else text


def significant(value: float, figures: int = SIGNIFICANT) -> str:
    """`value` to `figures` significant figures: 2.2e-06, 0.123, 12.3, 1.23e+04."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:.{figures}g}"
