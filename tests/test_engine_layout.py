"""Every engine package has the same layout, so a reader finds a thing where it is in the
others: requests.py (what it takes), results.py (what it returns), loading.py (its models from
the registry), engine.py (the Engine) and cli.py (its commands)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from engines.base import Engine, Request, Result
from engines.capabilities import CAPABILITIES

LAYOUT = ("requests", "results", "loading", "engine", "cli")
PACKAGES = [cap.engine_module for cap in CAPABILITIES]


def test_every_capability_has_an_engine_package():
    assert len(PACKAGES) == 6
    for package in PACKAGES:
        assert (Path(importlib.import_module(package).__file__).name) == "__init__.py", package


@pytest.mark.parametrize("package", PACKAGES)
def test_an_engine_package_has_the_common_modules(package):
    folder = Path(importlib.import_module(package).__file__).parent
    missing = [name for name in LAYOUT if not (folder / f"{name}.py").is_file()]
    assert not missing, f"{package} lacks {', '.join(f'{m}.py' for m in missing)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_requests_results_and_the_engine_live_in_their_modules(package):
    """Each Request subclass the package defines is in requests.py, each Result subclass in
    results.py, each Engine in engine.py."""
    homes = {Request: "requests", Result: "results", Engine: "engine"}
    folder = Path(importlib.import_module(package).__file__).parent
    found = {kind: [] for kind in homes}
    for info in pkgutil.iter_modules([str(folder)]):
        module = importlib.import_module(f"{package}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue  # imported here, defined elsewhere
            for kind, home in homes.items():
                if issubclass(cls, kind) and cls is not kind:
                    found[kind].append(cls)
                    assert info.name == home, f"{cls.__name__} is in {info.name}.py, not {home}.py"
    assert all(found.values()), f"{package}: {found}"
