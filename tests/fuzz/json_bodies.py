"""JSON request bodies of the web API: ``web.bodies.parse_json_object``."""

from __future__ import annotations

import json
from typing import Any

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.web.bodies import MAX_BODY_BYTES, MAX_DEPTH, parse_json_object

MAX_LEN = MAX_BODY_BYTES + 1024
_CODES = frozenset({Code.MALFORMED_REQUEST, Code.INVALID_ARGUMENT, Code.REQUEST_TOO_LARGE})


def seeds() -> list[bytes]:
    bodies: list[Any] = [
        {"accountAlias": "acme", "email": "user1@example.com", "password": "correct horse battery"},
        {"offlineRequest": "eyJh.eyJi.c2ln", "responseValidity": 86_400},
        {"productId": "prod_1", "offlineRequest": "x\u00e9\u20ac\U0001f600"},
        {"name": "ci", "expiresInDays": 30, "nested": [[{"a": [1.5, -2e10, True, None]}]]},
        [],
        "text",
    ]
    return [json.dumps(b, ensure_ascii=a).encode() for b in bodies for a in (True, False)] + [
        b'{"a": 1, "a": 2}',
        b'{"a": NaN}',
        b'{"a": "\\ud800\\udc00"}',
        b"[" * 40,
    ]


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    assert len({name for name, _ in pairs}) == len(pairs), "a duplicate member name was accepted"
    return dict(pairs)


def one_input(data: bytes) -> None:
    try:
        value = parse_json_object(data)
    except OfflineServiceError as exc:
        assert exc.code in _CODES, exc.code
        return
    # Accepted: an object, within the bounds, the same as the standard parser reads it, and
    # unchanged through an encode and a second strict parse.
    assert isinstance(value, dict)
    assert len(data) <= MAX_BODY_BYTES
    assert _depth(value) <= MAX_DEPTH
    assert json.loads(data.decode("utf-8"), object_pairs_hook=_unique) == value
    assert jws.strict_json_value(json.dumps(value, ensure_ascii=False).encode()) == value
