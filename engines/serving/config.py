"""serve.yaml: a Ray Serve config file (what `serve deploy` takes), one application per
capability, each `engines.serving.deployment:build_app` with `args: {engine: <key>}` and its
`EngineDeployment` configured: `num_replicas` or `autoscaling_config`, `ray_actor_options`
(`num_cpus`, `num_gpus`, fractions allowed), `max_ongoing_requests`.

`zsstudio serve --config serve.yaml` checks the file against Ray's own schema and ours, then
deploys it the way `serve deploy` does: on the cluster at `--ray-address`, or on a Ray it
starts on this machine and keeps running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..capabilities import keys
from ..errors import InputError, StudioError
from .client import check_reachable, import_ray

BUILDER = "engines.serving.deployment:build_app"
READY_TIMEOUT_S = 600.0
"""How long `deploy` waits for every application to run (replicas load their models first)."""


def read_config(path: str | Path) -> dict[str, Any]:
    """The YAML file as a dict, or an InputError saying why not."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"Serve config {path} does not exist.") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"Serve config {path} is not readable YAML: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"Serve config {path} must be a mapping with `applications:`.")
    return data


def validate(config: dict[str, Any]):
    """The config as Ray's ServeDeploySchema, checked also for what our applications need:
    our builder, a known capability in `args.engine`, one application per capability."""
    import_ray()
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        schema = ServeDeploySchema.model_validate(config)
    except ValidationError as err:
        raise InputError(f"Not a valid Ray Serve config: {err}") from err
    for app in schema.applications:
        engine = (app.args or {}).get("engine")
        if app.import_path != BUILDER:
            raise InputError(
                f"Application {app.name!r}: import_path must be {BUILDER}, not {app.import_path}."
            )
        if engine not in keys():
            raise InputError(f"Application {app.name!r}: args.engine {engine!r} is no capability.")
        if app.name != engine:
            raise InputError(
                f"Application {app.name!r} serves {engine}: name it {engine!r}, the front end "
                "finds each engine by its capability key."
            )
    return schema


def deploy(config: dict[str, Any], wait_s: float = READY_TIMEOUT_S) -> list[str]:
    """Deploy every application of `config` on the Ray this process is connected to, as
    `serve deploy` does, and wait until they run; returns their names."""
    schema = validate(config)
    # Ray's own CLI (`serve run`/`serve deploy`) applies a config file through these two calls;
    # they keep every override of the file (replicas, autoscaling, actor options, runtime_env)
    from ray.serve._private.api import serve_start

    client = serve_start(
        http_options=schema.http_options.model_dump(),
        proxy_location=schema.proxy_location,
    )
    client.deploy_apps(schema)
    names = [app.name for app in schema.applications]
    wait_until_running(names, wait_s)
    return names


def wait_until_running(names: list[str], wait_s: float) -> None:
    """Wait for the applications to run; a failed one is an error with Serve's message."""
    from ray import serve

    deadline = time.monotonic() + wait_s
    while True:
        apps = serve.status().applications
        states = {name: _state(apps.get(name)) for name in names}
        for name, state in states.items():
            if state == "DEPLOY_FAILED":
                raise StudioError(f"Application {name} failed to deploy: {apps[name].message}")
        waiting = [name for name, state in states.items() if state != "RUNNING"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            said = "; ".join(
                f"{name}: {message}"
                for name in waiting
                if name in apps
                for message in [apps[name].message]
                + [d.message for d in apps[name].deployments.values()]
                if message
            )
            raise StudioError(
                f"Still not running after {wait_s:.0f} s: {', '.join(waiting)}. {said}".strip()
            )
        time.sleep(0.5)


def _state(app) -> str:
    return "" if app is None else str(getattr(app.status, "value", app.status))


def add_command(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve the engines with Ray Serve (the scale extra), from a serve.yaml"
    )
    serve.add_argument("--config", type=Path, default=Path("serve.yaml"), help="the Serve config")
    serve.add_argument(
        "--check", action="store_true", help="only check the config against Ray's schema"
    )
    serve.add_argument(
        "--ray-address",
        default=argparse.SUPPRESS,  # the top-level --ray-address counts as well
        metavar="ADDR",
        help="deploy on this Ray cluster (default: start Ray here and serve until Ctrl-C)",
    )
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    config = read_config(args.config)
    if args.check:
        validate(config)
        print(f"{args.config}: a valid Ray Serve config for {len(config['applications'])} apps")
        return 0
    ray = import_ray()
    address = getattr(args, "ray_address", None)
    try:
        check_reachable(address)
        ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InputError(f"Cannot reach Ray at {address}: {str(err).splitlines()[0]}") from err
    names = deploy(config)
    gcs = ray.get_runtime_context().gcs_address
    print(f"serving {', '.join(names)}; the app: python app.py --backend ray --ray-address {gcs}")
    if address is not None:
        return 0  # the applications stay on that cluster
    print("Ctrl-C stops them.", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from ray import serve

        serve.shutdown()
    return 0
