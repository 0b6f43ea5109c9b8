"""Offline activation processing: signed request and response files for air-gapped machines."""

from .decisions import Policy
from .engine import Engine, Outcome
from .errors import Code, OfflineServiceError
from .keyring import Keyring
from .messages import Kind, Request, Response, parse_request, parse_response
from .store import SQLiteStore, Store

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
