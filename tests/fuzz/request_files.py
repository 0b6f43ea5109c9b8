"""Request files, as the service reads them: ``messages.parse_request`` (and ``jws.decode``)."""

from __future__ import annotations

import json

from offline_service.errors import OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind
from tests.factories import NOW, Machine
from tests.fuzz._signing import (
    MACHINE_PUBLIC,
    MACHINE_SECRET,
    MACHINE_SEED,
    seeds_of,
    sign_segments,
    token_of,
)

MAX_LEN = 20_000  # above the 16 KiB file limit, so the size check is reached too
_HEADER = json.dumps({"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(MACHINE_PUBLIC)}).encode()


def seeds() -> list[bytes]:
    machine = Machine(fingerprint="fp-fuzz", seed=MACHINE_SEED)
    files = [
        machine.request(Kind.ACTIVATION, "prod_1", license_key="ABCD-EFGH-IJKL-MNOP", nonce="n" * 22),
        machine.request(Kind.DEACTIVATION, "prod_1", activation_id="act_1", nonce="d" * 43),
        machine.request(Kind.TRIAL, "prod_1", nonce="t" * 86, metadata={"seat": "1", "team": "x y"}),
        machine.request(Kind.TRIAL, "p", issued_at=NOW, hostname="", os="", app_version="", nonce="u" * 22),
    ]
    armored = b"-----BEGIN OFFLINE REQUEST-----\n" + files[0] + b"\n-----END OFFLINE REQUEST-----\n"
    return [seed for token in files for seed in seeds_of(token)] + [b"\x00" + armored]


def one_input(data: bytes) -> None:
    token = token_of(data, _HEADER, MACHINE_SECRET)
    try:
        request = messages.parse_request(token)
    except OfflineServiceError:
        return
    # Whatever was accepted is exactly what the format allows and reads back the same.
    assert request.machine_key_thumbprint == jws.jwk_thumbprint(request.machine_key)
    decoded = jws.decode(token, typ=jws.REQUEST_TYP)
    assert decoded.payload["productId"] == request.product_id
    assert decoded.payload["nonce"] == request.nonce
    if request.machine_key == MACHINE_PUBLIC:
        payload = messages.request_payload(
            kind=request.kind,
            product_id=request.product_id,
            fingerprint=request.fingerprint,
            issued_at=request.issued_at,
            nonce=request.nonce,
            hostname=request.hostname,
            os=request.os,
            app_version=request.app_version,
            metadata=request.metadata,
            license_key=request.license_key,
            activation_id=request.activation_id,
        )
        again = sign_segments(_HEADER, json.dumps(payload).encode(), MACHINE_SECRET)
        assert messages.parse_request(again) == request
