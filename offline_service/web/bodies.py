"""Request bodies of the JSON API: bounded in size and nesting, parsed strictly, and every failure a
stable code (a 400, or a 413 for size), never an exception the error handler has to log."""

from __future__ import annotations

from typing import Any

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES, MAX_JSON_DEPTH, strict_json_value

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "parse_json_object"]

# The web app's body limit for everything but uploads: a request file and a little framing.
MAX_BODY_BYTES = 4 * MAX_FILE_BYTES
MAX_DEPTH = MAX_JSON_DEPTH


def parse_json_object(
    raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """The JSON object ``raw`` holds. REQUEST_TOO_LARGE over ``max_bytes``; MALFORMED_REQUEST for
    anything that is not strict JSON (bad UTF-8, duplicate names, NaN/Infinity, nesting deeper than
    ``max_depth``); INVALID_ARGUMENT for valid JSON that is not an object."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("raw must be bytes")
    if len(raw) > max_bytes:
        raise OfflineServiceError(Code.REQUEST_TOO_LARGE, f"the body is larger than {max_bytes} bytes")
    try:
        value = strict_json_value(raw, max_depth=max_depth)
    except ValueError as exc:
        raise OfflineServiceError(Code.MALFORMED_REQUEST, f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the body must be a JSON object")
    return value
