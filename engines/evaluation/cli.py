"""`zsstudio eval CAPABILITY [--data DIR] [--limit N] -o report/`."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from .. import capabilities
from ..errors import InputError
from .report import write_report
from .runner import run_items


def protocols() -> dict[str, str]:
    """Capability key -> the module of its evaluation protocol."""
    return {c.key: c.eval_protocol for c in capabilities.CAPABILITIES if c.eval_protocol}


def protocol(capability: str):
    return importlib.import_module(protocols()[capability])


def add_commands(subparsers, make_studio) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="run a capability's paper protocol and write a report beside the paper's figures",
        description="Runs the evaluation protocol of docs/<capability>.md and writes report.md, "
        "report.json and PNG plots into -o. Finished items are kept in -o/items/ and not redone "
        "when the command runs again into the same folder.",
    )
    parser.add_argument("capability", choices=sorted(protocols()))
    parser.add_argument("--data", type=Path, help="the data set (default: what the project ships)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    parser.add_argument("-o", "--output", type=Path, default=Path("report"), help="report folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name in protocols():
        protocol(name).add_arguments(parser)
    parser.set_defaults(handler=lambda args: run_eval(args, make_studio))


def run_eval(args: argparse.Namespace, make_studio) -> int:
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}.")
    if getattr(args, "backend", "local") != "local":  # evaluators reach into the models
        raise InputError("zsstudio eval runs the engines in this process: drop --backend ray.")
    module = protocol(args.capability)
    items = module.plan(args)  # checks the data and options before any model loads
    run = run_items(
        args.output,
        items,
        module.evaluator(make_studio(args), args),
        args.limit,
        f"eval {args.capability}",
        show_progress=not args.no_progress,
    )
    report = module.summarise(run.records, args)
    counts = {
        "items": len(run.records),
        "ran": run.ran,
        "reused": run.reused,
        "planned": len(items),
    }
    for path in write_report(args.output, report, counts):
        print(path)
    print(json.dumps({"run": counts, "ours": report.rows}, indent=2, default=str))
    return 0
