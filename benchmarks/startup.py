"""Start-up benchmark: time until the page is served, and the cost of building the app
relative to importing gradio and torch, measured in the same run. Prints JSON.

    python benchmarks/startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_BASELINE = """
import time
t = time.perf_counter()
import gradio, torch
print(time.perf_counter() - t)
"""

IMPORT_APP = """
import json, sys, time
t = time.perf_counter()
import app
demo = app.build_demo()
elapsed = time.perf_counter() - t
torch_imported = "torch" in sys.modules
loaded = len(demo.studio.manager.status()["loaded"])
print(json.dumps({"seconds": elapsed, "torch_imported": torch_imported, "loaded": loaded}))
"""


def python(code: str) -> str:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_page(timeout: float = 120.0) -> float:
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200 and b"<html" in response.read(2048).lower():
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"page not served within {timeout} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    baseline, build, page, details = [], [], [], {}
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        baseline.append(float(python(IMPORT_BASELINE)))
        details = json.loads(python(IMPORT_APP))
        build.append(details["seconds"])
        page.append(time_to_page())
    result = {
        "benchmark": "startup",
        "repeats": args.repeats,
        "page_served_s_median": round(statistics.median(page), 2),
        "page_served_s_all": [round(x, 2) for x in page],
        "import_gradio_torch_s_median": round(statistics.median(baseline), 2),
        "import_app_build_demo_s_median": round(statistics.median(build), 2),
        "ratio_app_build_to_gradio_torch": round(
            statistics.median(build) / statistics.median(baseline), 3
        ),
        "torch_imported_by_app": details["torch_imported"],
        "weights_loaded_at_start": details["loaded"],
        "targets": {"page_served_s": 10.0, "ratio": 1.5, "weights_loaded_at_start": 0},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
