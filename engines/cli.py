"""`zsstudio`: the command line: the registry, recipes, and each engine's commands (from its
`cli` module)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, capabilities, scratch
from .commands import add_studio_options, progress_bar, save_and_report
from .errors import InputError, StudioError
from .files import check_can_create, describe_os_error


def _studio(args: argparse.Namespace):
    from .commands import studio_from_args

    return studio_from_args(args)


def cmd_models(args: argparse.Namespace) -> int:
    from .registry import Registry, override_variable

    registry = Registry.load(args.models)
    rows = []
    for engine in registry.engines():
        missing = {spec.key for spec, _ in registry.missing(engine)}
        for spec in registry.components(engine):
            rows.append(
                {
                    "component": spec.key,
                    "source": spec.source,
                    "files": spec.files,
                    "license": spec.license,
                    "downloaded": "no" if spec.key in missing else "yes",
                    "only_for": spec.optional,
                    "override": override_variable(engine, spec.name),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for engine in registry.engines():
        print(f"{engine}:")
        mine = [row for row in rows if row["component"].startswith(f"{engine}.")]
        for row in mine:
            here = "here   " if row["downloaded"] == "yes" else "MISSING"
            only = f" (only for {row['only_for']})" if row["only_for"] else ""
            print(f"  {here} {row['component']:<20} {row['source']} [{row['files']}]{only}")
            print(f"{'':<10}licence: {row['license']}; override: {row['override']}")
        if any(row["downloaded"] == "no" for row in mine):
            print(f"  fetch what is missing: zsstudio download {engine}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .registry import Registry

    registry = Registry.load(args.models)
    targets = registry.engines() if args.capability == "all" else [args.capability]
    unknown = [t for t in targets if t not in registry.engines()]
    if unknown:
        raise InputError(
            f"Unknown capability {unknown[0]!r}; choose from all, {', '.join(registry.engines())}."
        )
    failed = 0
    for engine in targets:
        for spec in registry.components(engine):
            try:
                resolved = registry.resolve(engine, spec.name, download=True, force=args.force)
                print(f"{spec.key}: {resolved.path}")
            except StudioError as err:
                failed += 1
                print(f"{spec.key}: FAILED: {err}", file=sys.stderr)
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from .base import Recipe

    recipe = Recipe.load(args.recipe, parse_inputs(args.input))
    if recipe.version != __version__:
        print(
            f"note: recipe made with version {recipe.version}, running {__version__}",
            file=sys.stderr,
        )
    studio = _studio(args)
    engine = studio.engine(recipe.engine)
    for line in recorded_models(studio, engine.name, recipe.models, args.latest_models):
        print(line, file=sys.stderr)
    with progress_bar(recipe.engine) as progress:
        result = engine.run_recipe(recipe, progress)
    return save_and_report(result, args.output)


def recorded_models(studio, engine: str, models: dict, latest: bool) -> list[str]:
    """Check the recipe's `models` table and, unless `latest`, pin the revisions it recorded
    for this run (`engines.pins`); the lines saying which models run."""
    from .pins import check_recorded, pin_recorded
    from .studio import Studio

    if latest:
        check_recorded(studio.registry, engine, models)
        return ["models: the ones models.toml names now (--latest-models), not the recorded ones"]
    if not isinstance(studio, Studio):
        check_recorded(studio.registry, engine, models)
        return [
            "models: each Ray Serve replica runs the ones its models.toml names; the revisions "
            "this recipe recorded are not applied there"
        ]
    return pin_recorded(studio.registry, engine, models)


def parse_inputs(pairs: list[str] | None) -> dict[str, str]:
    """--input NAME=PATH options as {name: path}."""
    given = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--input takes NAME=PATH (e.g. voice=me.wav), got {pair!r}.")
        given[name.strip()] = path.strip()
    return given


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsstudio", description="Zero-Shot Studio engines from the command line."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_studio_options(parser, device_default="auto")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the model registry")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=cmd_models)

    download = commands.add_parser("download", help="pre-fetch weights from the Hub")
    download.add_argument("capability", help="a capability key, or all")
    download.add_argument(
        "--force", action="store_true", help="download again, replacing the copies here"
    )
    download.set_defaults(handler=cmd_download)

    run = commands.add_parser(
        "run", help="re-run a recipe: its recipe.json, the folder holding it, or a recipe zip"
    )
    run.add_argument("recipe", type=Path)
    run.add_argument(
        "--input",
        action="append",
        metavar="NAME=PATH",
        help="an input file from elsewhere (e.g. voice=me.wav), checked against the sha256 the "
        "recipe recorded; repeat for several",
    )
    run.add_argument(
        "--latest-models",
        action="store_true",
        help="run the model revisions models.toml names now, not the ones the recipe recorded",
    )
    run.add_argument("-o", "--output", type=Path, default=Path("outputs"), help="output folder")
    run.set_defaults(handler=cmd_run)

    from .serving.config import add_command as add_serve_command

    add_serve_command(commands)

    for capability in capabilities.CAPABILITIES:
        importlib.import_module(capability.cli_module).add_commands(commands, _studio)
    from .evaluation.cli import add_commands as add_eval_command

    add_eval_command(commands, _studio)
    return parser


def check_output_location(args: argparse.Namespace) -> None:
    """Refuse an output location that cannot be written before any model runs (-o is a file
    when it has a suffix, else a folder)."""
    output = getattr(args, "output", None)
    if isinstance(output, Path):
        check_can_create(output.parent if output.suffix else output)
    for extra in ("decoded",):  # further output files some commands take
        path = getattr(args, extra, None)
        if isinstance(path, Path):
            check_can_create(path.parent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    scratch.sweep()  # what killed runs left
    try:
        check_output_location(args)
        return args.handler(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a read-only, missing or full output location
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
