"""What every engine's `zsstudio` commands share: arguments derived from the request's field
declarations, a progress bar, and writing a result's files."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import Progress, Request, Result
from .errors import InputError
from .fields import BOOL, CHOICE, FLOAT, INT, FieldSpec, declared_fields, field_default

BACKENDS = ("local", "ray")


def add_studio_options(parser: argparse.ArgumentParser, device_default: str | None) -> None:
    """--device, --models, --gpu-budget, --backend and --ray-address: how the studio is set
    up, for app.py and zsstudio."""
    parser.add_argument("--device", default=device_default, help="auto, cuda, cuda:N, mps or cpu")
    parser.add_argument("--models", default=None, metavar="PATH", help="an alternate models.toml")
    parser.add_argument(
        "--gpu-budget",
        type=float,
        default=None,
        metavar="GB",
        help="weight memory engines may hold together (default: 85%% of a CUDA device; one "
        "engine at a time on CPU and MPS)",
    )
    parser.add_argument(
        "--low-memory",
        action="store_true",
        help="the low-memory levers for engines that do not fit a 12 GB GPU (subject video): "
        "VAE slicing, memory-efficient attention, model CPU offload (sequential below 8 GB)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: the engines run in this process; ray: on Ray Serve deployments "
        "(`zsstudio serve`, the scale extra)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --backend ray: the Ray cluster (default: the one on this machine)",
    )


def studio_from_args(args: argparse.Namespace):
    """The Studio the options ask for: in this process, or on Ray Serve (a RayStudio, whose
    replicas take device and memory budget from serve.yaml)."""
    backend = getattr(args, "backend", "local")
    if backend == "ray":
        given = [
            f
            for f in ("device", "gpu_budget", "low_memory")
            if getattr(args, f, None) not in (None, "auto", False)
        ]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise InputError(
                f"{flag} is set per deployment in serve.yaml (args, ray_actor_options) under "
                "--backend ray."
            )
        from .serving.client import RayStudio

        return RayStudio.connect(args.ray_address, models=args.models)
    if getattr(args, "ray_address", None):
        raise InputError("--ray-address needs --backend ray.")
    from .studio import Studio

    return Studio(
        device=args.device,
        models=args.models,
        gpu_budget_gb=args.gpu_budget,
        low_memory=getattr(args, "low_memory", False),
    )


def flags_of(name: str, spec: FieldSpec) -> tuple[str, ...]:
    return spec.cli or (f"--{name.replace('_', '-')}",)


def help_of(spec: FieldSpec, default: Any) -> str:
    parts = [spec.help] if spec.help else []
    if spec.kind in (INT, FLOAT) and spec.range_text():
        parts.append(spec.range_text())
    if default not in (None, "") and spec.kind != BOOL:
        parts.append(f"default {default}")
    if spec.sized is not None:
        parts.append(f"default {spec.sized_text()}")
    return "; ".join(parts)


def add_request_arguments(
    parser: argparse.ArgumentParser,
    request_type: type[Request],
    skip: Iterable[str] = (),
) -> None:
    """One option per declared field of `request_type` (unless its declaration keeps it off
    the CLI, or it is in `skip`): flag, type, default, choices and help from the declaration.
    Ranges are checked by the request, so the message is the same as in the app."""
    skipped = set(skip)
    for field, spec in declared_fields(request_type):
        if spec.cli is None or field.name in skipped:
            continue
        default = field_default(field)
        options: dict[str, Any] = {
            "dest": field.name,
            "default": default,
            "help": help_of(spec, default),
        }
        if spec.kind == BOOL:
            options["action"] = argparse.BooleanOptionalAction
        elif spec.kind == CHOICE:
            options["choices"] = spec.choices
            options["type"] = type(spec.choices[0])
        elif spec.kind == INT:
            options["type"] = int
            options["metavar"] = "N"
        elif spec.kind == FLOAT:
            options["type"] = float
            options["metavar"] = "X"
        parser.add_argument(*flags_of(field.name, spec), **options)
    parser.set_defaults(request_type=request_type)


def request_from_args(request_type: type[Request], args: argparse.Namespace, **values) -> Request:
    """The request from parsed arguments (the declared ones) plus `values` given by the
    command itself (files, boxes); validated before any model loads."""
    names = {f.name for f in dataclasses.fields(request_type)}
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    request = request_type(**{**given, **values})
    request.validate()
    return request


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A Progress callback drawing a tqdm bar on stderr while the block runs."""
    from tqdm.auto import tqdm

    # a percentage with no rate: engines report fractions, not counted items
    bar = tqdm(
        total=100,
        desc=description,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    )

    def update(fraction: float, what: str = "") -> None:
        bar.n = round(max(0.0, min(1.0, fraction)) * 100, 1)
        if what:
            bar.set_postfix_str(what, refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def save_and_report(result: Result, folder: Path) -> int:
    """Write a result's files into `folder`, print their paths and the metrics as JSON."""
    for path in result.save(folder):
        print(path)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def run_and_save(make_studio, args: argparse.Namespace, engine: str, request: Request) -> int:
    """The usual engine command: run the request with a progress bar, save into -o."""
    with progress_bar(engine) as progress:
        result = make_studio(args).engine(engine).run(request, progress)
    return save_and_report(result, args.output)
