"""Offline activation processing: signed request and response files for air-gapped machines.

Names are imported on first use, so that an app embedding only the client SDK
(``offline_service.client``) does not load the engine, the store or sqlite3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Code",
    "Engine",
    "Keyring",
    "Kind",
    "OfflineServiceError",
    "Outcome",
    "Policy",
    "Request",
    "Response",
    "SQLiteStore",
    "Store",
    "parse_request",
    "parse_response",
]
__version__ = "0.1.0"

_HOMES = {
    "Code": "errors",
    "OfflineServiceError": "errors",
    "Engine": "licensing.engine",
    "Outcome": "licensing.engine",
    "Keyring": "fileformat.keyring",
    "Kind": "fileformat.messages",
    "Request": "fileformat.messages",
    "Response": "fileformat.messages",
    "parse_request": "fileformat.messages",
    "parse_response": "fileformat.messages",
    "Policy": "licensing.decisions",
    "SQLiteStore": "store",
    "Store": "store",
}

if TYPE_CHECKING:
    from offline_service.errors import Code, OfflineServiceError
    from offline_service.fileformat.keyring import Keyring
    from offline_service.fileformat.messages import Kind, Request, Response, parse_request, parse_response
    from offline_service.licensing.decisions import Policy
    from offline_service.licensing.engine import Engine, Outcome
    from offline_service.store import SQLiteStore, Store


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'offline_service' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
