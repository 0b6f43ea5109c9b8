"""Response files, as the client SDK reads them: ``messages.parse_response`` against pinned keys."""

from __future__ import annotations

import json

from offline_service.errors import OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind, Response
from tests.factories import NOW
from tests.fuzz._signing import KID, SERVICE_PUBLIC, SERVICE_SECRET, seeds_of, token_of

MAX_LEN = 20_000
_HEADER = json.dumps({"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": KID}).encode()
_KEYS = {KID: SERVICE_PUBLIC}


def _sign(response: Response) -> bytes:
    header = {"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": KID}
    return jws.encode(header, messages.response_payload(response), SERVICE_SECRET).encode()


def seeds() -> list[bytes]:
    common = dict(
        kid=KID,
        product_id="prod_1",
        activation_id="act_1",
        fingerprint="fp-fuzz",
        machine_key_thumbprint=jws.jwk_thumbprint(SERVICE_PUBLIC),
        issued_at=NOW,
        apply_before=NOW + 86_400,
        request_nonce="n" * 22,
    )
    license = dict(
        license_id="lic_1",
        status="active",
        expires_at=None,
        allowed_activations=-1,
        used_activations=0,
        allowed_deactivations=3,
        used_deactivations=2**31 - 1,
        metadata={"plan": "pro"},
    )
    responses = [
        Response(kind=Kind.ACTIVATION, **common, **license),  # type: ignore[arg-type]
        Response(kind=Kind.DEACTIVATION, deactivated_at=NOW, **common, **license),  # type: ignore[arg-type]
        Response(kind=Kind.TRIAL, trial_ends_at=NOW + 14 * 86_400, **common),  # type: ignore[arg-type]
    ]
    return [seed for response in responses for seed in seeds_of(_sign(response))]


def one_input(data: bytes) -> None:
    token = token_of(data, _HEADER, SERVICE_SECRET)
    try:
        response = messages.parse_response(token, _KEYS)
    except OfflineServiceError:
        return
    # A response the client accepts holds exactly the members of its kind, read back unchanged.
    assert response.kid in _KEYS
    assert messages.response_payload(response) == response.raw
    assert jws.decode(token, typ=jws.RESPONSE_TYP, keys=_KEYS).payload == response.raw
