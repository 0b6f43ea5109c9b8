"""The ``offline-service`` command: a thin adapter over admin, engine, keyring and batch.

The command is the service's, so it needs the ``server`` extra. A base install (the client SDK a
vendor embeds) has the command too, as the package declares it; there ``main`` says what to install
and exits 2 rather than failing with a traceback somewhere inside a verb. ``_main`` is imported
only after that check, so nothing it imports can fail first.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["SERVER_EXTRA_HINT", "build_parser", "main", "missing_server_modules"]

SERVER_EXTRA_HINT = "pip install 'offline-service[server]'"

# The distributions of the `server` extra and the names they are imported by (python-multipart
# is `python_multipart` since 0.0.13, `multipart` before).
_SERVER_DISTRIBUTIONS = {
    "starlette": ("starlette",),
    "jinja2": ("jinja2",),
    "python-multipart": ("python_multipart", "multipart"),
    "uvicorn": ("uvicorn",),
}


def missing_server_modules() -> list[str]:
    """The distributions of the ``server`` extra that cannot be imported here (none when installed)."""
    return [
        dist
        for dist, names in _SERVER_DISTRIBUTIONS.items()
        if not any(importlib.util.find_spec(name) is not None for name in names)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``offline-service``; exit status 2 with an install hint when the server extra is missing."""
    missing = missing_server_modules()
    if missing:
        print(
            f"offline-service: the service needs the server extra ({', '.join(missing)} not installed);"
            f" install it with: {SERVER_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 2
    from offline_service.cli._main import main as _main

    return _main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``offline-service`` (its verbs and options, for help and the docs' checks)."""
    from offline_service.cli._main import build_parser as _build_parser

    return _build_parser()
