from __future__ import annotations

from typing import Any

import nacl.bindings
import pytest

from offline_service import Code, OfflineServiceError
from offline_service.client.pinning import pinned_jwks, pinned_keys
from offline_service.fileformat.jws import jwk_thumbprint, okp_jwk


def key(n: int) -> bytes:
    return nacl.bindings.crypto_sign_seed_keypair(bytes([n]) * 32)[0]


def jwk(n: int, **members: Any) -> dict[str, Any]:
    return {**okp_jwk(key(n)), **members}


def test_keys_for_this_product_only() -> None:
    jwks = {
        "keys": [
            jwk(1, kid="a", product="prod_1", status="active", use="sig", alg="EdDSA"),
            jwk(2, kid="b", product="prod_2"),
            jwk(3, kid="c"),  # no product member: trusted for any product
            jwk(4, kid="d", product="prod_1", status="retired", alg="Ed25519"),
            {"kty": "RSA", "kid": "e", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "kid": "f", "x": okp_jwk(key(5))["x"]},
            jwk(6, kid="g", use="enc"),
            jwk(7, kid="h", alg="ES256"),
            jwk(8, kid="i", alg=["EdDSA"]),
            jwk(9, kid="j", product=["prod_1"]),
        ]
    }
    assert pinned_keys(jwks, "prod_1") == {"a": key(1), "c": key(3), "d": key(4)}


def test_kid_defaults_to_the_thumbprint() -> None:
    assert pinned_keys({"keys": [jwk(1)]}, "p") == {jwk_thumbprint(key(1)): key(1)}


def test_pinned_jwks_reads_back() -> None:
    keys = {"a": key(1), "b": key(2)}
    assert pinned_keys(pinned_jwks(keys, "prod_1"), "prod_1") == keys
    assert pinned_keys(pinned_jwks(keys, "prod_1"), "prod_2") == {}


@pytest.mark.parametrize(
    ("jwks", "fragment"),
    [
        ([], "keys array"),
        ({"keys": {}}, "keys array"),
        ({"keys": ["x"]}, "not an object"),
        ({"keys": [jwk(1, d="secret")]}, "private"),
        ({"keys": [jwk(1, x="AAAA")]}, "32 bytes"),
        ({"keys": [jwk(1, kid=5)]}, "kid"),
        ({"keys": [jwk(1, kid="a"), jwk(2, kid="a")]}, "two different keys"),
    ],
)
def test_bad_jwks(jwks: Any, fragment: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        pinned_keys(jwks, "p")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert fragment in info.value.message


def test_same_key_twice_is_fine() -> None:
    assert pinned_keys({"keys": [jwk(1, kid="a"), jwk(1, kid="a")]}, "p") == {"a": key(1)}
