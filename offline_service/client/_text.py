"""Times as people read them in messages: UTC, second precision, ISO 8601."""

from __future__ import annotations

import time

__all__ = ["utc"]


def utc(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
