"""Known-answer tests: RFC 8032 Ed25519 and the RFC 8037 Ed25519 JWS example, against our codec."""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.bindings
import nacl.exceptions
import pytest

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from tests.vectors import load

RFC8032 = load("rfc8032_ed25519")["vectors"]
RFC8037 = load("rfc8037_ed25519_jws")


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def test_rfc8032_file_holds_every_section_7_1_vector() -> None:
    # A truncated table would silently weaken every test below.
    assert _ids(RFC8032) == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]
    sizes = [len(bytes.fromhex(v["message"])) for v in RFC8032]
    assert sizes == [0, 1, 2, 1023, 64]
    assert bytes.fromhex(RFC8032[4]["message"]) == hashlib.sha512(b"abc").digest()


@pytest.mark.parametrize("vector", RFC8032, ids=_ids(RFC8032))
def test_rfc8032_public_key_from_seed(vector: dict[str, str]) -> None:
    public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(bytes.fromhex(vector["secret_key"]))
    assert public_key.hex() == vector["public_key"]
    assert secret_key == bytes.fromhex(vector["secret_key"] + vector["public_key"])


@pytest.mark.parametrize("vector", RFC8032, ids=_ids(RFC8032))
def test_rfc8032_signature(vector: dict[str, str]) -> None:
    _, secret_key = nacl.bindings.crypto_sign_seed_keypair(bytes.fromhex(vector["secret_key"]))
    message = bytes.fromhex(vector["message"])
    signed = nacl.bindings.crypto_sign(message, secret_key)
    assert signed[:64].hex() == vector["signature"]
    assert signed[64:] == message


@pytest.mark.parametrize("vector", RFC8032, ids=_ids(RFC8032))
def test_rfc8032_signature_verifies_and_a_changed_message_does_not(vector: dict[str, str]) -> None:
    public_key = bytes.fromhex(vector["public_key"])
    signature = bytes.fromhex(vector["signature"])
    message = bytes.fromhex(vector["message"])
    assert nacl.bindings.crypto_sign_open(signature + message, public_key) == message
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.bindings.crypto_sign_open(signature + message + b"\x00", public_key)


@pytest.mark.parametrize("vector", RFC8032, ids=_ids(RFC8032))
def test_rfc8032_keys_through_our_jws_codec(vector: dict[str, str]) -> None:
    """A request signed with the vector's key decodes to the vector's public key; a response
    verifies under the key's RFC 7638 kid and is refused under any other vector's key."""
    seed = bytes.fromhex(vector["secret_key"])
    public_key = bytes.fromhex(vector["public_key"])
    _, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
    payload = {"message": vector["message"]}

    request = jws.encode(
        {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(public_key)}, payload, secret_key
    )
    token = jws.decode(request.encode(), typ=jws.REQUEST_TYP)
    assert token.public_key == public_key
    assert token.payload == payload

    kid = jws.jwk_thumbprint(public_key)
    response = jws.encode({"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": kid}, payload, secret_key)
    assert jws.decode(response.encode(), typ=jws.RESPONSE_TYP, keys={kid: public_key}).payload == payload
    # Ed25519 is deterministic: the token's signature is exactly libsodium's over the signing input.
    signing_input = response.rsplit(".", 1)[0].encode()
    expected = nacl.bindings.crypto_sign(signing_input, secret_key)[:64]
    assert b64url_decode(response.rsplit(".", 1)[1]) == expected

    other = next(bytes.fromhex(v["public_key"]) for v in RFC8032 if v["public_key"] != vector["public_key"])
    with pytest.raises(OfflineServiceError) as info:
        jws.decode(response.encode(), typ=jws.RESPONSE_TYP, keys={kid: other})
    assert info.value.code is Code.BAD_SIGNATURE


# -- RFC 8037 Appendix A ---------------------------------------------------------------------


def _rfc8037_keys() -> tuple[bytes, bytes]:
    seed = b64url_decode(RFC8037["private_jwk"]["d"])
    public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
    return public_key, secret_key


def test_rfc8037_a2_public_key_and_jwk() -> None:
    public_key, _ = _rfc8037_keys()
    assert b64url_encode(public_key) == RFC8037["private_jwk"]["x"]
    assert jws.okp_jwk(public_key) == RFC8037["public_jwk"]
    assert jws.public_key_from_jwk(RFC8037["public_jwk"]) == public_key


def test_rfc8037_a3_thumbprint() -> None:
    public_key, _ = _rfc8037_keys()
    digest = hashlib.sha256(RFC8037["thumbprint_input"].encode()).digest()
    assert digest.hex() == RFC8037["thumbprint_sha256_hex"]
    assert b64url_encode(digest) == RFC8037["thumbprint"]
    assert jws.jwk_thumbprint(public_key) == RFC8037["thumbprint"]


def test_rfc8037_a4_signing_reproduces_the_rfc_signature() -> None:
    _, secret_key = _rfc8037_keys()
    h = b64url_encode(RFC8037["protected_header"].encode())
    p = b64url_encode(RFC8037["payload"].encode())
    assert (h, p) == (RFC8037["protected_header_b64"], RFC8037["payload_b64"])
    signature = nacl.bindings.crypto_sign(f"{h}.{p}".encode(), secret_key)[:64]
    assert b64url_encode(signature) == RFC8037["signature_b64"]
    assert f"{h}.{p}.{b64url_encode(signature)}" == RFC8037["compact"]
    # Our encoder writes the protected header byte for byte as the RFC does.
    assert jws.encode({"alg": "EdDSA"}, {}, secret_key).split(".")[0] == RFC8037["protected_header_b64"]


def test_rfc8037_a5_the_rfc_signature_verifies() -> None:
    public_key, _ = _rfc8037_keys()
    h, p, s = RFC8037["compact"].split(".")
    signature = b64url_decode(s)
    assert len(signature) == 64
    assert nacl.bindings.crypto_sign_open(signature + f"{h}.{p}".encode(), public_key) == f"{h}.{p}".encode()
    assert b64url_decode(p) == RFC8037["payload"].encode()


def test_rfc8037_example_is_not_an_offline_request() -> None:
    """Correctly signed, but with no ``typ`` and no ``jwk``: our strict decoder refuses it."""
    with pytest.raises(OfflineServiceError) as info:
        jws.decode(RFC8037["compact"].encode(), typ=jws.REQUEST_TYP)
    assert info.value.code is Code.MALFORMED_REQUEST


# -- strict JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1e400}',
        b'{"a": -1e400}',
        b'{"a": NaN}',
        b'{"a": 1, "a": 1}',
        b'{"a": "\\udc00"}',
        b"\xef\xbb\xbf{}",
        b"[" * (jws.MAX_JSON_DEPTH + 1) + b"]" * (jws.MAX_JSON_DEPTH + 1),
        b"[" * 100_000,
    ],
)
def test_strict_json_refuses_with_value_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        jws.strict_json_value(text)


def test_strict_json_nesting_bound_counts_brackets_outside_strings_only() -> None:
    deepest = b"[" * jws.MAX_JSON_DEPTH + b'"[[[{{{\\"[["' + b"]" * jws.MAX_JSON_DEPTH
    value = jws.strict_json_value(deepest)
    for _ in range(jws.MAX_JSON_DEPTH):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == '[[[{{{"[['
    assert jws.strict_json_value(b"[[1]]", max_depth=2) == [[1]]
    with pytest.raises(ValueError, match="nested"):
        jws.strict_json_value(b"[[[1]]]", max_depth=2)


def test_strict_json_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        jws.strict_json_value("{}")  # type: ignore[arg-type]
