"""Each route module imports on its own, in a fresh interpreter: the domain adapters import web's
infrastructure (auth, kit, services) and web.app imports the adapters, so a cycle would show only
when an adapter is the first module imported (as in a worker process or a one-file test run)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "offline_service.licensing.activations",
    "offline_service.licensing.api",
    "offline_service.licensing.cli",
    "offline_service.licensing.offline",
    "offline_service.licensing.pages",
    "offline_service.licensing.trials",
    "offline_service.web.api",
    "offline_service.web.kit",
    "offline_service.cli.context",
]


# One interpreter for all: before each import, every offline_service module is forgotten, so each
# module on the list is the first of the package to be imported (third-party ones stay loaded).
_SCRIPT = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "offline_service"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        sys.exit(f"{name}: {exc}")
"""


def test_each_route_module_imports_first() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *MODULES], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
