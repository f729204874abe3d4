"""The loss history of an adaptation: its terms' names for a plot, and a CSV file (no torch)."""

from __future__ import annotations

import csv
import io

LOSS_LABELS = {  # every term an adaptation records, with its name in the loss plot
    "total": "total",
    "directional": "directional (NADA)",
    "directional_moment": "directional moment",
    "moment_mean": "mean direction",
    "moment_cov": "covariance x lambda_cov",
    "ewc": "EWC x lambda_ewc",
    "relation": "relation x lambda_rel",
}


def history_csv(history: list[dict[str, float]]) -> str:
    """The loss history as CSV: iteration, then one column per loss term."""
    names = sorted({name for row in history for name in row} - {"iteration"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["iteration", *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()
