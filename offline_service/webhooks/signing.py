"""Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is ``whsec_`` and the
base64 of random bytes; a delivery is signed with HMAC-SHA256 over ``id.timestamp.body``, sent as
``v1,<base64>`` in the ``webhook-signature`` header. During a rotation's grace the header carries
one signature per secret, separated by spaces, as the specification allows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = ["PREFIX", "SECRET_BYTES", "headers", "new_secret", "signature"]

PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of SECRET_BYTES random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    if not isinstance(secret, str):
        raise TypeError("the secret is text")
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(PREFIX) :], validate=True)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(signing: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt: id, timestamp (each attempt's own), and a signature by
    each secret of ``signing`` (the current one, and a rotated one during its grace)."""
    if isinstance(signing, str) or not signing:
        raise TypeError("signing is a sequence of one or more secrets")
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in signing),
    }
