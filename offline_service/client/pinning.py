"""The vendor's public keys as the client trusts them: a JWKS filtered down to one product's Ed25519 keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import ACCEPTED_ALGS, jwk_thumbprint, okp_jwk, public_key_from_jwk

__all__ = ["pinned_jwks", "pinned_keys"]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


def _bad(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.INVALID_ARGUMENT, f"JWKS: {message}")


def pinned_keys(jwks: Any, product_id: str) -> dict[str, bytes]:
    """kid -> Ed25519 public key for the keys of ``jwks`` that may sign for ``product_id``.

    Keys of other types, other uses or algorithms, and keys whose ``product`` names another product
    are left out. A key without ``kid`` is named by its RFC 7638 thumbprint.
    """
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise _bad("must be an object with a keys array")
    keys: dict[str, bytes] = {}
    for index, jwk in enumerate(jwks["keys"]):
        if not isinstance(jwk, Mapping):
            raise _bad(f"key {index} is not an object")
        if _PRIVATE_MEMBERS & set(jwk):
            # A private key in a file meant to be public is a leak; refuse rather than spread it.
            raise _bad(f"key {index} contains private key material; use the public JWKS")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if "product" in jwk and jwk["product"] != product_id:
            continue
        alg = jwk.get("alg", "EdDSA")
        # str first: an unhashable list or object would raise TypeError from the set lookup.
        if jwk.get("use", "sig") != "sig" or not isinstance(alg, str) or alg not in ACCEPTED_ALGS:
            continue
        try:
            public_key = public_key_from_jwk({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk.get("x")})
        except ValueError as exc:
            raise _bad(f"key {index}: {exc}") from None
        kid = jwk.get("kid", jwk_thumbprint(public_key))
        if not isinstance(kid, str) or not kid:
            raise _bad(f"key {index}: kid must be a non-empty string")
        if keys.get(kid, public_key) != public_key:
            raise _bad(f"two different keys are named {kid!r}")
        keys[kid] = public_key
    return keys


def pinned_jwks(keys: Mapping[str, bytes], product_id: str) -> dict[str, Any]:
    """A minimal JWKS of ``keys`` for storing; reading it back with ``pinned_keys`` gives ``keys``."""
    out = []
    for kid, public_key in sorted(keys.items()):
        jwk: dict[str, Any] = okp_jwk(public_key)
        jwk.update(kid=kid, use="sig", product=product_id)
        out.append(jwk)
    return {"keys": out}
