"""Identifiers and license keys: random, prefixed by type, safe in file names and URLs."""

from __future__ import annotations

import secrets

__all__ = ["LICENSE_KEY_ALPHABET", "new_id", "new_license_key", "new_nonce"]

# Crockford base32: no I, L, O or U, so keys survive being read aloud or typed from paper.
LICENSE_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """``prefix_`` followed by 96 random bits in hex, e.g. ``act_3f2a...``."""
    return f"{prefix}_{secrets.token_hex(12)}"


def new_license_key() -> str:
    """Five groups of five Crockford base32 characters: 125 random bits."""
    chars = "".join(secrets.choice(LICENSE_KEY_ALPHABET) for _ in range(25))
    return "-".join(chars[i : i + 5] for i in range(0, 25, 5))


def new_nonce() -> str:
    """A 128-bit request nonce, base64url."""
    return secrets.token_urlsafe(16)
