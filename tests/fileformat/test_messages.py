"""Response payload validation: a correctly signed response with a bad payload is still refused,
always with our own error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.messages import (
    Kind,
    Response,
    looks_like_response,
    parse_response,
    response_json,
    response_payload,
)
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


_texts = st.text(max_size=20)  # any text: quotes, backslashes, controls, non-ASCII
_counts = st.none() | st.integers(min_value=-1, max_value=2**31 - 1)


@given(
    kind=st.sampled_from(Kind),
    strings=st.lists(_texts, min_size=6, max_size=6),
    license_id=st.none() | _texts,
    status=st.none() | _texts,
    numbers=st.lists(_counts, min_size=7, max_size=7),
    times=st.lists(st.integers(min_value=0, max_value=2**40), min_size=2, max_size=2),
    metadata=st.dictionaries(_texts, _texts, max_size=3),
)
def test_response_json_is_the_payload_as_jws_encodes_it(
    kind: Kind,
    strings: list[str],
    license_id: str | None,
    status: str | None,
    numbers: list[int | None],
    times: list[int],
    metadata: dict[str, str],
) -> None:
    """The engine signs ``response_json``; it must be byte for byte what ``jws.encode`` writes for
    ``response_payload``, which the client SDK and docs/FORMAT.md describe."""
    response = Response(
        kind=kind,
        kid=strings[0],
        product_id=strings[1],
        activation_id=strings[2],
        fingerprint=strings[3],
        machine_key_thumbprint=strings[4],
        issued_at=times[0],
        apply_before=times[1],
        request_nonce=strings[5],
        license_id=license_id,
        status=status,
        expires_at=numbers[0],
        allowed_activations=numbers[1],
        used_activations=numbers[2],
        allowed_deactivations=numbers[3],
        used_deactivations=numbers[4],
        trial_ends_at=numbers[5],
        deactivated_at=numbers[6],
        metadata=metadata,
    )
    assert response_json(response) == jws._ENCODER.encode(response_payload(response))
