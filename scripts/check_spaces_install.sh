#!/usr/bin/env bash
# What a Hugging Face Space does with this repo, checked here: a fresh venv with the README
# front matter's gradio (sdk_version, which a Space installs itself) and requirements.txt, and
# nothing else; then the app imported, built and served once (no model loads).
#
#   scripts/check_spaces_install.sh        (or: make spaces-check)
#
# It checks that
#   - `pip install -r requirements.txt` resolves in an empty venv, and `pip check` agrees;
#   - requirements.txt keeps the sdk_version gradio (pip neither up- nor downgrades it);
#   - every module of app.py, engines/ and tabs/ imports with what that installed;
#   - app.build_demo() builds every tab, and the app serves its config once launched.
#
# torch: requirements.txt asks for torch>=2.4, which on this machine resolves to a CUDA build
# (about 3 GB of nvidia wheels). A Space with a GPU wants that; this check does not, so it
# first installs the CPU build (SPACES_CHECK_TORCH, default the local torch 2.13.0 CPU wheel and
# its torchvision), which satisfies the requirement, and pip keeps it. SPACES_CHECK_TORCH=""
# leaves torch to requirements.txt, as a Space does.
#
# The venv goes in a temporary folder, removed at the end (KEEP_VENV=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3.11}
TORCH=${SPACES_CHECK_TORCH-torch==2.13.0 torchvision==0.28.0}
SDK_VERSION=$(sed -n 's/^sdk_version: *//p' README.md | head -1)

WORK=$(mktemp -d -t zss-spaces-XXXXXX)
if [ -z "${KEEP_VENV:-}" ]; then
  trap 'rm -rf "$WORK"' EXIT
fi
VENV=$WORK/venv
started=$SECONDS
step() { printf '[%4ds] %s\n' "$((SECONDS - started))" "$*"; }

step "fresh venv in $VENV ($($PYTHON --version))"
$PYTHON -m venv "$VENV"
# -qq: errors only (this machine's pip configuration warns about every local index it skips)
PIP=("$VENV/bin/python" -m pip -qq --disable-pip-version-check)
if [ -n "$TORCH" ]; then
  step "pip install $TORCH (CPU build first; see the top of this script)"
  # shellcheck disable=SC2086  # TORCH is a list of requirements
  "${PIP[@]}" install $TORCH
fi
step "pip install gradio==$SDK_VERSION -r requirements.txt (the Space's gradio, then ours)"
"${PIP[@]}" install "gradio==$SDK_VERSION"
"${PIP[@]}" install -r requirements.txt
step "pip check"
"$VENV/bin/python" -m pip check

step "import every module, build the app, serve it once"
cd "$WORK"  # not the repo root: only the venv and the path given below provide modules
HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONPATH="$ROOT" \
  "$VENV/bin/python" - "$ROOT" <<'EOF'
import importlib
import importlib.metadata
import json
import pkgutil
import sys
import urllib.request
from pathlib import Path

import yaml

root = Path(sys.argv[1])
modules = ["app"]
for package in ("engines", "tabs"):
    importlib.import_module(package)
    found = pkgutil.walk_packages([str(root / package)], prefix=f"{package}.")
    modules += sorted(info.name for info in found)
# The Ray Serve replica side is the `scale` extra (pip install zero-shot-studio[scale]), which a
# Space does not install: those modules may only miss Ray itself.
SCALE_ONLY = {"engines.serving.deployment", "engines.serving.stops"}
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if not (name in SCALE_ONLY and err.name == "ray"):
            failed[name] = f"{type(err).__name__}: {err}"
    except Exception as err:  # report every module that does not import, then fail
        failed[name] = f"{type(err).__name__}: {err}"
assert not failed, f"modules that do not import from requirements.txt alone: {failed}"
print(f"imported {len(modules)} modules")

import app  # noqa: E402

demo = app.build_demo(device="cpu")
tabs = [block.label for block in demo.blocks.values() if type(block).__name__ == "Tab"]
print(f"built the app: {len(demo.blocks)} blocks, tabs {', '.join(tabs)}")
demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
try:
    with urllib.request.urlopen(f"{demo.local_url.rstrip('/')}/config", timeout=30) as answer:
        config = json.load(answer)
finally:
    demo.close()
print(f"served: gradio {config['version']}, {len(config['components'])} components")

front = yaml.safe_load((root / "README.md").read_text(encoding="utf-8").split("---\n")[1])
installed = importlib.metadata.version("gradio")
assert installed == str(front["sdk_version"]), (
    f"requirements.txt moved gradio to {installed}; README front matter says sdk_version "
    f"{front['sdk_version']} (what the Space runs)"
)
print(f"gradio {installed} == README sdk_version")
EOF
step "ok: requirements.txt alone builds and serves the app"
