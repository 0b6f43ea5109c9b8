"""Hand-built JWS tokens for tests that need bytes our own encoder would never produce."""

from __future__ import annotations

import json
from typing import Any

import nacl.bindings

from offline_service._b64 import b64url_encode
from offline_service.fileformat import jws
from tests.factories import NOW, Machine


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8, as the service itself writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def compact(header: bytes, payload: bytes, secret_key: bytes) -> bytes:
    """Sign the raw header and payload bytes exactly as given, with no re-serialisation."""
    h = b64url_encode(header)
    p = b64url_encode(payload)
    signature = nacl.bindings.crypto_sign(f"{h}.{p}".encode("ascii"), secret_key)[:64]
    return f"{h}.{p}.{b64url_encode(signature)}".encode("ascii")


def request_header(machine: Machine, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(machine.public_key)}
    header.update(changes)
    return header


def activation_payload(machine: Machine, product_id: str, license_key: str, **changes: Any) -> dict[str, Any]:
    """A valid activation payload; ``changes`` replace or add members."""
    payload: dict[str, Any] = {
        "v": 1,
        "kind": "activation",
        "productId": product_id,
        "licenseKey": license_key,
        "fingerprint": machine.fingerprint,
        "hostname": "host",
        "os": "Linux",
        "appVersion": "1.0.0",
        "metadata": {},
        "iat": NOW,
        "nonce": "bm9uY2Utbm9uY2Utbm9uY2U",
    }
    payload.update(changes)
    return payload
