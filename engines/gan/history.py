"""The loss history of an adaptation as rows for a plot or a CSV file (no torch)."""

from __future__ import annotations

import csv
import io
from typing import Any

LOSS_LABELS = {
    "total": "total",
    "directional": "directional (NADA)",
    "directional_moment": "directional moment",
    "moment_mean": "mean direction",
    "moment_cov": "covariance x lambda_cov",
    "ewc": "EWC x lambda_ewc",
    "relation": "relation x lambda_rel",
}


def loss_rows(history: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Long-format rows (iteration, loss, value) for plotting the weighted loss terms."""
    return [
        {"iteration": row["iteration"], "loss": LOSS_LABELS.get(name, name), "value": value}
        for row in history
        for name, value in row.items()
        if name != "iteration"
    ]


def history_csv(history: list[dict[str, float]]) -> str:
    """The loss history as CSV: iteration, then one column per loss term."""
    names = sorted({name for row in history for name in row} - {"iteration"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["iteration", *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()
