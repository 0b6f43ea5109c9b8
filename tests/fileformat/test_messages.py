"""Response payload validation: a correctly signed response with a bad payload is still refused,
always with our own error."""

from __future__ import annotations

from typing import Any

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.messages import Kind, looks_like_response, parse_response
from tests.factories import World


def _signed_response(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    lic = world.license()
    outcome = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert outcome.ok and outcome.response is not None
    token = jws.decode(outcome.response.encode(), typ=jws.RESPONSE_TYP, keys=world.keyring.public_keys())
    return token.header, token.payload


def _resign(world: World, header: dict[str, Any], payload: dict[str, Any]) -> bytes:
    signer = world.keyring.signer(world.product.id)
    return jws.encode(header, payload, signer.secret_key).encode()


def test_resigned_response_round_trips(world: World) -> None:
    header, payload = _signed_response(world)
    response = parse_response(_resign(world, header, payload), world.keyring.public_keys())
    assert response.raw == payload


@pytest.mark.parametrize(
    "change",
    [
        {"status": ["active"]},
        {"status": {"active": True}},
        {"status": "expired"},
        {"v": 2},
        {"kind": "upgrade"},
        {"kind": ["activation"]},
        {"usedActivations": "1"},
        {"usedActivations": True},
        {"usedActivations": -2},
        {"expiresAt": 1.5},
        {"metadata": []},
        {"machineKeyThumbprint": "short"},
        {"applyBefore": None},
        {"extra": 1},
        {"trialEndsAt": 1},
    ],
    ids=repr,
)
def test_signed_response_with_a_bad_payload_is_malformed(world: World, change: dict[str, Any]) -> None:
    header, payload = _signed_response(world)
    payload.update(change)
    with pytest.raises(OfflineServiceError) as info:
        parse_response(_resign(world, header, payload), world.keyring.public_keys())
    assert info.value.code is Code.MALFORMED_RESPONSE


@pytest.mark.parametrize("member", ["iat", "applyBefore", "requestNonce", "licenseId", "metadata"])
def test_signed_response_missing_a_member_is_malformed(world: World, member: str) -> None:
    header, payload = _signed_response(world)
    del payload[member]
    with pytest.raises(OfflineServiceError) as info:
        parse_response(_resign(world, header, payload), world.keyring.public_keys())
    assert info.value.code is Code.MALFORMED_RESPONSE


def test_response_by_an_unknown_key(world: World) -> None:
    header, payload = _signed_response(world)
    with pytest.raises(OfflineServiceError) as info:
        parse_response(_resign(world, header, payload), {})
    assert info.value.code is Code.UNKNOWN_SIGNING_KEY


def test_request_is_not_a_response(world: World) -> None:
    data = world.machine().request(Kind.TRIAL, world.product.id)
    with pytest.raises(OfflineServiceError) as info:
        parse_response(data, world.keyring.public_keys())
    assert info.value.code is Code.MALFORMED_RESPONSE


def test_a_response_file_is_told_from_a_request_by_its_header(world: World) -> None:
    """Only to word a refusal: the header's typ, read without any check, and never an error."""
    header, payload = _signed_response(world)
    response = _resign(world, header, payload)
    assert looks_like_response(response)
    assert looks_like_response(b"\n" + response + b"\r\n")  # as downloaded, or pasted
    armored = b"-----BEGIN OFFLINE RESPONSE-----\n" + response + b"\n-----END OFFLINE RESPONSE-----"
    assert looks_like_response(armored)
    unsigned = jws.encode_header(header).encode() + b".e30.AAAA"  # the header alone decides
    assert looks_like_response(unsigned)
    assert not looks_like_response(
        world.machine().request(Kind.ACTIVATION, world.product.id, license_key="K")
    )
    for data in (
        b"",
        b"not a file",
        b"...",
        b"\xff\xfe.x.y",
        jws.encode_header({**header, "typ": "offline-request+jws"}).encode() + b".e30.AAAA",
        b"W10.e30.AAAA",  # a header that is not an object
        b"eyJ0eXAiOiJvZmZsaW5lLXJlc3BvbnNlK2p3cyIsInR5cCI6IngifQ.e30.AAAA",  # typ twice
        response + b"x" * jws.MAX_FILE_BYTES,
    ):
        assert not looks_like_response(data), data[:40]
