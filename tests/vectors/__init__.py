"""Known-answer vectors, stored as JSON files in this directory and read by one loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load"]

_DIR = Path(__file__).parent


def load(name: str) -> Any:
    """The parsed contents of ``tests/vectors/<name>.json``."""
    return json.loads((_DIR / f"{name}.json").read_text("utf-8"))
