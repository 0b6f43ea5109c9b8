"""Known-answer vectors, stored as files in this directory (JSON, or SQL under ``migrations/``) and
read by one loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load", "sql_files"]

_DIR = Path(__file__).parent


def load(name: str) -> Any:
    """The parsed contents of ``tests/vectors/<name>.json``."""
    return json.loads((_DIR / f"{name}.json").read_text("utf-8"))


def sql_files(folder: str) -> dict[int, str]:
    """The ``NNNN_name.sql`` files of ``tests/vectors/<folder>``, by version."""
    return {
        int(path.name.split("_", 1)[0]): path.read_text("utf-8") for path in (_DIR / folder).glob("*.sql")
    }
