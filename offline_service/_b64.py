"""Strict, canonical base64url without padding (RFC 7515 section 2)."""

from __future__ import annotations

import binascii

_TO_STD = bytes.maketrans(b"-_", b"+/")
_FROM_STD = bytes.maketrans(b"+/", b"-_")
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Value of each alphabet character, for the trailing-bits check.
_VALUE = {c: i for i, c in enumerate(_STD_ALPHABET)}
_PAD = (b"", b"", b"==", b"=")
_TEXT = (str, bytes, bytearray, memoryview)  # a tuple: isinstance with ``A | B`` builds the union per call


def b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_FROM_STD).decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url; refuse padding, other alphabets and non-canonical trailing bits.

    Non-canonical encodings would let a single character of a signed file change while the decoded
    bytes (and so the signature) stay valid, which breaks "any change to a file is rejected".
    """
    if not isinstance(text, _TEXT):
        # bytes(n) of an int would silently make n zero bytes; a wrong type is a TypeError.
        raise TypeError("base64url text must be str or bytes")
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    rest = len(raw) % 4
    if rest == 1 or b"+" in raw or b"/" in raw or b"=" in raw:
        raise ValueError("not unpadded base64url")
    std = raw.translate(_TO_STD)
    try:
        data = binascii.a2b_base64(std + _PAD[rest], strict_mode=True)
    except binascii.Error:
        raise ValueError("not unpadded base64url") from None
    # The last character of a 2- or 3-character tail carries 4 or 2 unused bits that must be zero.
    if rest and _VALUE[std[-1]] & (0x0F if rest == 2 else 0x03):
        raise ValueError("non-canonical base64url")
    return data
