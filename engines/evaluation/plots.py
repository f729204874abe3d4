"""The report's plots as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

Series = dict[str, Sequence[tuple[float, float]]]


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 4.4), dpi=100, layout="tight")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def curves(series: Series, xlabel: str, ylabel: str, title: str, logx: bool = False) -> bytes:
    """One line with markers per label, points sorted by x; a label with one point is a dot."""
    figure = _figure()
    axes = figure.add_subplot()
    for label, points in series.items():
        points = sorted(p for p in points if p[0] is not None and p[1] is not None)
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o", linestyle="-" if len(points) > 1 else "none", label=label)
    if logx:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if series:
        axes.legend(fontsize="small")
    return _png(figure)


def histogram(groups: dict[str, Sequence[float]], xlabel: str, title: str, bins=10) -> bytes:
    """Overlaid histograms, one per group (e.g. guided and unguided IoU per box)."""
    figure = _figure()
    axes = figure.add_subplot()
    for label, values in groups.items():
        if values:
            axes.hist(list(values), bins=bins, range=(0.0, 1.0), alpha=0.5, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.set_title(title)
    if any(groups.values()):
        axes.legend(fontsize="small")
    return _png(figure)


def bars(values: dict[str, float], ylabel: str, title: str) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    labels = list(values)
    axes.bar(range(len(labels)), [values[k] for k in labels])
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return _png(figure)
