"""The ``offline-service`` command: a thin adapter over admin, engine, keyring and batch."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
