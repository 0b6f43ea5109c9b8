"""Interoperability with joserfc, an independent JOSE implementation: it verifies what we sign,
and we accept what it signs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jws as jose_jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, OKPKey

from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind
from offline_service.ids import new_nonce
from tests.factories import NOW, World

# joserfc 1.8 warns (SecurityWarning) whenever "EdDSA" is used, because RFC 9864 deprecates that
# name. We emit "EdDSA" on purpose (see offline_service/fileformat/jws.py), and warnings are errors in this
# project, so that one warning is allowed here and nowhere else.
pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


def _activate(world: World) -> tuple[Any, str]:
    lic = world.license(activations=2, metadata={"seats": "team"})
    outcome = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert outcome.ok, outcome
    return outcome, lic.key


def test_joserfc_verifies_an_engine_response_against_our_jwks(world: World) -> None:
    outcome, _ = _activate(world)
    jwks = world.keyring.jwks()
    assert {"product", "status"} <= set(jwks["keys"][0])  # our extra members, which joserfc must tolerate
    key_set = KeySet.import_key_set(jwks)

    verified = jose_jws.deserialize_compact(outcome.response, key_set, algorithms=["EdDSA"])

    ours = messages.parse_response(outcome.response.encode(), world.keyring.public_keys())
    assert verified.headers() == {"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": ours.kid}
    assert json.loads(verified.payload) == ours.raw
    assert ours.raw["usedActivations"] == 1
    assert ours.raw["metadata"] == {"seats": "team"}


def test_joserfc_verifies_with_the_single_imported_key(world: World) -> None:
    outcome, _ = _activate(world)
    (jwk,) = world.keyring.jwks(world.product.id)["keys"]
    # Only the RFC members, in case a stricter import path ever refuses our extra ones.
    key = OKPKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "kid", "use", "alg")})
    assert key.thumbprint() == jwk["kid"]
    verified = jose_jws.deserialize_compact(outcome.response, key, algorithms=["EdDSA"])
    assert json.loads(verified.payload)["activationId"] == outcome.activation_id


def test_joserfc_rejects_a_response_with_a_changed_payload(world: World) -> None:
    outcome, _ = _activate(world)
    h, _, s = outcome.response.split(".")
    forged = jws.encode({"x": 1}, {"usedActivations": 0}, b"\x00" * 64).split(".")[1]
    key_set = KeySet.import_key_set(world.keyring.jwks())
    with pytest.raises(BadSignatureError):
        jose_jws.deserialize_compact(f"{h}.{forged}.{s}", key_set, algorithms=["EdDSA"])


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_engine_accepts_a_request_signed_by_joserfc(world: World, alg: str) -> None:
    lic = world.license(activations=1)
    key = OKPKey.generate_key("Ed25519")
    public_jwk = key.as_dict(private=False)
    assert set(public_jwk) == {"kty", "crv", "x"}
    header = {"alg": alg, "typ": jws.REQUEST_TYP, "jwk": public_jwk}
    payload = messages.request_payload(
        kind=Kind.ACTIVATION,
        product_id=world.product.id,
        fingerprint="fp-joserfc",
        issued_at=NOW,
        nonce=new_nonce(),
        license_key=lic.key,
        hostname="jose-host",
    )
    token = jose_jws.serialize_compact(header, json.dumps(payload), key, algorithms=[alg])

    outcome = world.process(token.encode())

    assert outcome.ok, outcome
    response = messages.parse_response(outcome.response.encode(), world.keyring.public_keys())
    assert response.machine_key_thumbprint == key.thumbprint()
    assert response.fingerprint == "fp-joserfc"
    assert world.reload_license(lic.key).used_activations == 1
