"""The ``offline-service`` command: a thin adapter over admin, engine, keyring and batch."""

from offline_service.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
