"""Identifiers and license keys: random, prefixed by type, safe in file names and URLs."""

from __future__ import annotations

import secrets
import time

__all__ = [
    "LICENSE_KEY_ALPHABET",
    "email_key",
    "new_id",
    "new_license_key",
    "new_nonce",
    "normalize_license_key",
]

# Crockford base32: no I, L, O or U, so keys survive being read aloud or typed from paper.
LICENSE_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """``prefix_`` + 48-bit millisecond time + 80 random bits, in hex (like UUIDv7).

    Time-ordered ids keep database inserts at the end of the primary-key index instead of
    scattered across it, which matters when thousands are written per second."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


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
