"""A local Ray for the serving tests and the scale benchmark: 2 CPUs, no dashboard, loopback
only, usage reporting off; the compression engine on tiny aMUSEd models deployed from a Serve
config like the shipped serve.yaml, replicas pointed at the models by environment variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.registry import override_variable
from engines.serving.deployment import SLOW_PROGRESS_FILE

RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report to the network
    "RAY_DEDUP_LOGS": "0",
    # Ray 2.60 turns a loopback node address (`_node_ip_address="127.0.0.1"`, `ray start
    # --node-ip-address`) into the machine's interface address unless clusters are switched off,
    # as on macOS and Windows; then GCS, raylet and workers bind and connect on loopback only.
    # Read when `ray` is imported, so tests/conftest.py sets it for every process first.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def loopback_only() -> None:
    """Keep every Ray this process (and its children) starts on loopback; before `import ray`."""
    os.environ.update(RAY_ENV)


def replica_env(models: Path, cache: Path, slow_file: Path | None = None) -> dict[str, str]:
    """The environment the replicas need: the tiny models, a cache, offline, few threads."""
    env = {
        override_variable("compression", "amused"): str(models),
        "ZSS_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    if slow_file is not None:
        env[SLOW_PROGRESS_FILE] = str(slow_file)
    return env


def compression_config(
    env: dict[str, str], replicas: int = 2, cpus: float = 0.5, ongoing: int = 2
) -> dict:
    """A Serve config with one application, compression, as serve.yaml writes it."""
    return {
        "proxy_location": "Disabled",
        "applications": [
            {
                "name": "compression",
                "route_prefix": None,
                "import_path": "engines.serving.deployment:build_app",
                "args": {"engine": "compression", "device": "cpu"},
                "runtime_env": {"env_vars": env},
                "deployments": [
                    {
                        "name": "EngineDeployment",
                        "num_replicas": replicas,
                        "max_ongoing_requests": ongoing,
                        "ray_actor_options": {"num_cpus": cpus},
                    }
                ],
            }
        ],
    }


@contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[None]:
    """Ray on this machine for the block; Serve and Ray shut down after it."""
    loopback_only()
    import ray
    from ray import serve

    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()
