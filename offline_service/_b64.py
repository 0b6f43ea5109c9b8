"""Strict, canonical base64url without padding (RFC 7515 section 2)."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(rb"\A[A-Za-z0-9_-]*\Z")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url; refuse padding, other alphabets and non-canonical trailing bits.

    Non-canonical encodings would let a single character of a signed file change while the decoded
    bytes (and so the signature) stay valid, which breaks "any change to a file is rejected".
    """
    raw = text.encode("ascii") if isinstance(text, str) else text
    if not _ALPHABET.match(raw) or len(raw) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc
    if base64.urlsafe_b64encode(data).rstrip(b"=") != raw:
        raise ValueError("non-canonical base64url")
    return data
