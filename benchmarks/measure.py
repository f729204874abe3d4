"""What the engine benchmarks share: time an engine's runs after a warm-up, read the peak memory,
and run each mode in a process of its own (so each peak is its own)."""

from __future__ import annotations

import json
import statistics
import subprocess
import time


def time_runs(engine, warm_up, request, repeats: int, cuda: bool) -> tuple[float, int, dict]:
    """(median seconds of `repeats` runs of `request`, peak bytes, the last run's metrics).
    Peak: CUDA's peak allocated bytes on a GPU, the process's peak resident set elsewhere."""
    import torch

    engine.run(warm_up)  # loads the models, warms the kernels
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds, metrics = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        metrics = engine.run(request).metrics
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return statistics.median(seconds), peak, metrics


def run_in_process(command: list[str], what: str) -> dict:
    """Run a benchmark worker (`command`) and return the JSON object its last line prints."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
