"""Identifiers and license keys: random, prefixed by type, safe in file names and URLs."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping

from offline_service.errors import Code, OfflineServiceError

__all__ = [
    "ALIAS_PATTERN",
    "ID_PREFIXES",
    "LICENSE_KEY_ALPHABET",
    "check_alias",
    "check_id",
    "email_key",
    "id_pattern",
    "is_alias",
    "is_id",
    "new_id",
    "new_license_key",
    "new_nonce",
    "normalize_license_key",
]

# Every kind of record id and its prefix. An id is the prefix, "_", and lower-case hex digits: 24
# in the first releases (96 random bits), 32 since ids are time-ordered (see new_id). Nothing else
# is an id, so an id is safe in a file name, a URL and a log line, and anything else can be refused
# at the boundary before it reaches the filesystem or a query.
ID_PREFIXES: Mapping[str, str] = {
    "account": "acc",
    "product": "prod",
    "license": "lic",
    "activation": "act",
    "trial": "trl",
    "organization": "org",
    "user": "usr",
    "group": "grp",
    "credential": "crd",  # a session, an API login or a personal access token (its public id)
    "release": "rel",
    "file": "file",
    "batch": "bat",  # a portal batch's kept result (licensing.batch_results)
    "admin_token": "adt",  # an admin API token's public id (admin.tokens); never its secret
    "webhook_endpoint": "whk",  # a webhook endpoint (webhooks.services)
    "webhook_delivery": "msg",  # one event for one endpoint: its webhook-id header
}
_ID_DIGITS = "[0-9a-f]{24,32}"
_IDS = {kind: re.compile(rf"{prefix}_{_ID_DIGITS}") for kind, prefix in ID_PREFIXES.items()}

# An account alias: what a person types at login. Letters, digits, ".", "_" and "-", starting with
# a letter or a digit, at most 64 characters.
ALIAS_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ALIAS = re.compile(ALIAS_PATTERN[1:-1])

# Crockford base32: no I, L, O or U, so keys survive being read aloud or typed from paper.
LICENSE_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """``prefix_`` + 48-bit millisecond time + 80 random bits, in hex (like UUIDv7).

    Time-ordered ids keep database inserts at the end of the primary-key index instead of
    scattered across it, which matters when thousands are written per second."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def id_pattern(kind: str) -> str:
    """The shape of ``kind``'s ids as a regular expression (ECMA and Python), for OpenAPI."""
    return f"^{ID_PREFIXES[kind]}_{_ID_DIGITS}$"


def is_id(value: object, kind: str) -> bool:
    """Whether ``value`` has the shape of an id of ``kind`` (it may still not exist)."""
    return isinstance(value, str) and _IDS[kind].fullmatch(value) is not None


def check_id(value: object, kind: str, name: str = "id") -> str:
    """``value`` if it has the shape of an id of ``kind``, else INVALID_ARGUMENT (the value itself
    is not echoed: it may be anything, of any length)."""
    if not is_id(value, kind):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"{name} must be a {kind} id: {ID_PREFIXES[kind]}_ and 24 to 32 hex digits",
        )
    assert isinstance(value, str)
    return value


def is_alias(value: object) -> bool:
    """Whether ``value`` has the shape of an account alias (it may still not exist)."""
    return isinstance(value, str) and _ALIAS.fullmatch(value) is not None


def check_alias(value: object, name: str = "account alias") -> str:
    """``value`` if it has the shape of an account alias, else INVALID_ARGUMENT."""
    if not is_alias(value):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"{name} is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    assert isinstance(value, str)
    return value


def new_license_key() -> str:
    """Five groups of five Crockford base32 characters: 125 random bits."""
    chars = "".join(secrets.choice(LICENSE_KEY_ALPHABET) for _ in range(25))
    return "-".join(chars[i : i + 5] for i in range(0, 25, 5))


# Crockford's rules for reading a key typed by a person: case-insensitive, I and L are 1, O is 0,
# and hyphens and spaces are only for readability.
_ALPHABET_SET = frozenset(LICENSE_KEY_ALPHABET)
_TYPED = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


def normalize_license_key(key: str) -> str:
    """The canonical form of a typed license key, for lookups: ``r2fyv-gcjq3...`` and
    ``R2FYVGCJQ3...`` are the same key. Keys not in our 5x5 format are only stripped."""
    compact = key.strip().upper().translate(_TYPED)
    if len(compact) == 25 and _ALPHABET_SET.issuperset(compact):
        return "-".join(compact[i : i + 5] for i in range(0, 25, 5))
    return key.strip()


def email_key(email: str) -> str:
    """The form an email is compared in: trimmed and case-folded (one person per email per account)."""
    return email.strip().casefold()


def new_nonce() -> str:
    """A 128-bit request nonce, base64url."""
    return secrets.token_urlsafe(16)
