"""Fixed keys, and tokens signed over arbitrary header and payload bytes, so that the fuzzer reaches
the checks behind the signature (strict JSON, members) and not only the signature check."""

from __future__ import annotations

import nacl.bindings

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service.fileformat import jws

MACHINE_SEED = bytes(range(32))
SERVICE_SEED = bytes(range(32, 64))
MACHINE_PUBLIC, MACHINE_SECRET = nacl.bindings.crypto_sign_seed_keypair(MACHINE_SEED)
SERVICE_PUBLIC, SERVICE_SECRET = nacl.bindings.crypto_sign_seed_keypair(SERVICE_SEED)
KID = jws.jwk_thumbprint(SERVICE_PUBLIC)

# Modes: the first byte of an input says what the rest is.
RAW, PAYLOAD, HEADER_AND_PAYLOAD = 0, 1, 2


def sign_segments(header: bytes, payload: bytes, secret_key: bytes) -> bytes:
    """A compact JWS over the raw bytes of a header and a payload (neither need be JSON)."""
    signing_input = f"{b64url_encode(header)}.{b64url_encode(payload)}".encode("ascii")
    signature = nacl.bindings.crypto_sign(signing_input, secret_key)[:64]
    return signing_input + b"." + b64url_encode(signature).encode("ascii")


def token_of(data: bytes, header: bytes, secret_key: bytes) -> bytes:
    """The file a fuzz input stands for: the bytes as they are, a signed payload, or a signed header
    and payload separated by the first newline."""
    if not data:
        return b""
    mode, rest = data[0] % 3, data[1:]
    if mode == RAW:
        return rest
    if mode == PAYLOAD:
        return sign_segments(header, rest, secret_key)
    head, _, payload = rest.partition(b"\n")
    return sign_segments(head, payload, secret_key)


def seeds_of(token: bytes) -> list[bytes]:
    """The three inputs that stand for one valid token, one per mode."""
    h64, p64, _ = token.split(b".")
    header, payload = b64url_decode(h64), b64url_decode(p64)
    return [
        bytes([RAW]) + token,
        bytes([PAYLOAD]) + payload,
        bytes([HEADER_AND_PAYLOAD]) + header + b"\n" + payload,
    ]
