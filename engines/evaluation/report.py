"""Writing an evaluation's report: `report.json` (everything, machine-readable), `report.md`
(our table beside the papers' figures with their sources, the plots, the notes) and the plots
as PNG files, all into the output folder."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..outputs import write_bytes
from .papers import MISSING, figures_for


@dataclass
class Report:
    capability: str
    title: str
    protocol: str  # one paragraph: what was run, on what, how it was measured
    columns: list[str]  # the keys of `rows` shown in report.md, in order
    rows: list[dict[str, Any]]  # our figures, one row per method / setting (from runs)
    records: list[dict[str, Any]]  # every item's record
    settings: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    notes: list[str] = field(default_factory=list)

    def to_dict(self, run: dict[str, Any]) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "title": self.title,
            "version": __version__,
            "protocol": self.protocol,
            "settings": self.settings,
            "run": run,
            "ours": self.rows,
            "papers": [dataclasses.asdict(f) for f in figures_for(self.capability)],
            "papers_missing": MISSING.get(self.capability),
            "plots": sorted(self.plots),
            "notes": self.notes,
            "items": self.records,
        }


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else ("nan" if math.isnan(value) else f"{value:.4g}")
    return str(value).replace("|", "\\|")


def table(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def markdown(report: Report, run: dict[str, Any]) -> str:
    lines = [f"# {report.title}", "", report.protocol, ""]
    lines += [
        f"Items: {run['items']} ({run['ran']} run now, {run['reused']} read back from an "
        f"earlier run). Version {__version__}.",
        "",
        "## Ours (measured in this run)",
        "",
        *table(report.columns, report.rows),
        "",
        "## Papers and peers (typed in, with their sources)",
        "",
    ]
    figures = figures_for(report.capability)
    if figures:
        rows = [dataclasses.asdict(f) for f in figures]
        lines += table(["method", "metric", "value", "setting", "source"], rows)
        lines.append("")
    if report.capability in MISSING:
        lines += [MISSING[report.capability], ""]
    if report.plots:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({name})" for name in sorted(report.plots)]
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    lines += ["Per-item figures are in report.json (`items`) and items/*.json.", ""]
    return "\n".join(lines)


def write_report(output: Path, report: Report, run: dict[str, Any]) -> list[Path]:
    output = Path(output)
    written = []
    for name, png in report.plots.items():
        written.append(write_bytes(output / name, png))
    data = json.dumps(report.to_dict(run), indent=2, default=_default, allow_nan=True)
    written.append(write_bytes(output / "report.json", data.encode("utf-8")))
    written.append(write_bytes(output / "report.md", markdown(report, run).encode("utf-8")))
    return written


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def mean(values) -> float | None:
    """Mean of the finite values, None when there are none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else None


def mean_or_note(values) -> float | str | None:
    """The mean of the numbers among `values`; when there are none, the note a metric left in
    their place ("not available (model video.dino missing)"); None when there is neither."""
    values = list(values)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers:
        return mean(numbers)
    return next((v for v in values if isinstance(v, str)), None)
