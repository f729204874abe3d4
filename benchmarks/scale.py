"""Scaling benchmark: requests per second through Ray Serve with 1 and 2 replicas of the
compression engine on tiny models, and the per-request overhead of the Ray path against the
engine in-process, all measured in one run on a local Ray. Prints JSON.

    python benchmarks/scale.py [--requests 200] [--clients 8] [--side 128]

The request is a decompress of a `--side` px photo's .zsc file (fixed coder, K=16): small
enough that the overhead shows, big enough to be real work. The in-process figures run the same
request on the same engine in this process. Overhead: median latency of sequential requests
through `RemoteEngine.run` (the path the app takes: Serve handle, streamed events, result
back) minus the in-process median. Throughput: `--clients` threads sending `--requests` in all,
as the app's worker threads would. On a 2-core machine the front end, Ray and both replicas
share the two cores, so 2 replicas cannot double 1; on more cores they come closer. A replica
runs one request at a time; `--ongoing` (max_ongoing_requests) is how many it queues: with
few, the front end's router waits and retries for a free replica, which costs throughput on
requests this short (not on real ones, which take seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
# before anything imports ray: keeps the benchmark's Ray on loopback (tests/serve_cluster.py)
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent front-end threads")
    parser.add_argument("--latency-requests", type=int, default=100, help="sequential requests")
    parser.add_argument("--side", type=int, default=128, help="the photo's size in px")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs the local Ray may use")
    parser.add_argument(
        "--ongoing", type=int, default=8, help="max_ongoing_requests of each replica"
    )
    return parser.parse_args(argv)


def latencies(run, request, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        run(request)
        seconds.append(time.perf_counter() - started)
    return seconds


def throughput(run, request, total: int, clients: int) -> tuple[float, dict[str, int]]:
    """(requests per second, requests served per replica) for `total` requests sent by
    `clients` threads."""
    left = [total]
    served: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            replica = run(request).metrics.get("replica", "in-process")
            with lock:
                served[replica] = served.get(replica, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started), served


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 2),
    }


def wait_for_replicas(count: int, timeout_s: float = 300) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get("compression")
        if app is not None:
            (deployment,) = app.deployments.values()
            if dict(deployment.replica_states) == {"RUNNING": count}:
                return
        time.sleep(0.5)
    raise SystemExit(f"the compression deployment did not reach {count} running replicas")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from serve_cluster import compression_config, local_ray, replica_env
    from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

    from engines.compression import CompressRequest, DecompressRequest

    scratch = Path(tempfile.mkdtemp(prefix="zss-scale-"))
    models = tiny_amused_in(scratch)
    local, undo = compression_studio(models, scratch / "cache")
    engine = local.engine("compression")
    photo = tiny_photo(args.side, args.side)
    zsc = engine.run(CompressRequest(photo, 16, "fixed", baselines=False)).zsc
    request = DecompressRequest(zsc)
    latencies(engine.run, request, 5)  # warm-up
    here = latencies(engine.run, request, args.latency_requests)
    here_rps, _ = throughput(engine.run, request, args.requests, args.clients)
    undo()

    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "ray_cpus": args.cpus,
            "python": platform.python_version(),
        },
        "request": f"decompress a {args.side}x{args.side} px .zsc (K=16, fixed coder), tiny aMUSEd",
        "clients": args.clients,
        "max_ongoing_requests": args.ongoing,
        "requests_per_run": args.requests,
        "in_process": {"requests_per_s": round(here_rps, 1), **summary(here)},
    }
    env = replica_env(models, scratch / "cache")
    # Ray prints its shutdown notes on stdout: keep stdout for the JSON
    with contextlib.redirect_stdout(sys.stderr), local_ray(num_cpus=args.cpus):
        from engines.serving.client import RayStudio
        from engines.serving.config import deploy

        studio = None
        for replicas in (1, 2):
            deploy(compression_config(env, replicas, args.cpus / 2, args.ongoing))
            wait_for_replicas(replicas)
            studio = studio or RayStudio.connect()
            remote = studio.engine("compression")
            throughput(remote.run, request, 10 * replicas, 2 * replicas)  # warm-up, each replica
            entry: dict = {}
            if replicas == 1:
                there = latencies(remote.run, request, args.latency_requests)
                entry.update(summary(there))
                overhead = statistics.median(there) - statistics.median(here)
                report["ray_overhead_per_request_ms"] = round(1000 * overhead, 2)
            rps, served = throughput(remote.run, request, args.requests, args.clients)
            entry.update(requests_per_s=round(rps, 1), served_per_replica=sorted(served.values()))
            report[f"ray_{replicas}_replica{'s' if replicas > 1 else ''}"] = entry
    one, two = report["ray_1_replica"], report["ray_2_replicas"]
    report["speedup_2_vs_1_replica"] = round(two["requests_per_s"] / one["requests_per_s"], 2)
    report["overhead_goal_ms"] = 50
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
