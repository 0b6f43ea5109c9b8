"""JWS Compact Serialization (RFC 7515) with Ed25519 (RFC 8037), strict on every byte.

Pure and dependency-light (PyNaCl only) so the client SDK can embed it. ``alg`` and ``typ`` are
pinned by every verifier: anything but an Ed25519 algorithm name, or another ``typ``, is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service.errors import Code, OfflineServiceError

__all__ = [
    "ACCEPTED_ALGS",
    "EMITTED_ALG",
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "REQUEST_TYP",
    "RESPONSE_TYP",
    "Token",
    "decode",
    "encode",
    "encode_header",
    "encode_json",
    "jwk_thumbprint",
    "okp_jwk",
    "public_key_from_jwk",
    "strict_json",
    "strict_json_value",
    "unarmor",
]

MAX_FILE_BYTES = 16 * 1024
# Nesting allowed in strict JSON. The formats nest two levels; the bound keeps every parse (and every
# re-encoding) far from the interpreter's recursion limit, whoever wrote the bytes.
MAX_JSON_DEPTH = 32
REQUEST_TYP = "offline-request+jws"
RESPONSE_TYP = "offline-response+jws"
# RFC 9864 deprecates the polymorphic "EdDSA" in favour of "Ed25519". We emit "EdDSA" because it is
# what deployed JOSE libraries verify today, and accept both; the key type is pinned to OKP/Ed25519,
# so the ambiguity RFC 9864 removes cannot arise here. See docs/FORMAT.md.
EMITTED_ALG = "EdDSA"
ACCEPTED_ALGS = frozenset({"EdDSA", "Ed25519"})

_ARMOR = re.compile(rb"\A-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n(.*?)\r?\n-----END \1-----\Z", re.DOTALL)
# The compact form's characters: base64url and the two dots. ``bytes.translate`` deletes them at C
# speed; what is left is a character that does not belong (cheaper than a regular expression).
_COMPACT_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_HEADER_MEMBERS = {
    REQUEST_TYP: frozenset({"alg", "typ", "jwk"}),
    RESPONSE_TYP: frozenset({"alg", "typ", "kid"}),
}
_JWK_MEMBERS = frozenset({"kty", "crv", "x"})
_BYTES = (bytes, bytearray, memoryview)  # a tuple: isinstance with ``A | B`` builds the union per call


@dataclass(frozen=True, slots=True)
class Token:
    """A decoded, signature-checked JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    public_key: bytes


# Said when a file of another type is given: a response where a request is expected, or the reverse.
_WRONG_TYPE = {
    REQUEST_TYP: "this is not a request file (it may be a response file, which is applied on the machine)",
    RESPONSE_TYP: "this is not a response file (it may be a request file, which the vendor processes)",
}


def _fail(code: Code, message: str) -> OfflineServiceError:
    return OfflineServiceError(code, message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # "1e400" parses as infinity without passing through parse_constant.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


# Built once: json.loads/dumps with non-default arguments construct a new coder on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_constant=_reject_constant, parse_float=_finite_float
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"))
# A string (closed or not: the parser refuses an open one later), an opening or a closing bracket.
# Quotes, backslashes and brackets never occur inside a multi-byte UTF-8 sequence.
_NESTING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[{]|[\]}]', re.DOTALL)
_OPENING = frozenset(b"[{")


def _check_depth(data: bytes, limit: int) -> None:
    """One linear pass, before the recursive parser runs: ValueError if ``[``/``{`` outside strings
    nest deeper than ``limit``."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return  # the usual case, at C speed: no more openings than levels allowed
    depth = 0
    for match in _NESTING.finditer(data):
        first = data[match.start()]
        if first in _OPENING:
            depth += 1
            if depth > limit:
                raise ValueError(f"JSON nested deeper than {limit} levels")
        elif first != 0x22:  # a closing bracket; a string (0x22 is '"') changes nothing
            depth = max(depth - 1, 0)


def strict_json_value(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse UTF-8 JSON of any type; refuse duplicate names, NaN/Infinity (overflowing numbers
    included), lone surrogates and nesting deeper than ``max_depth``. ValueError for all of them."""
    if not isinstance(data, _BYTES):
        raise TypeError("data must be bytes")
    raw = bytes(data)
    text = raw.decode("utf-8")  # raises UnicodeDecodeError (a ValueError) on bad UTF-8
    _check_depth(raw, max_depth)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        # Cannot happen below the depth bound; kept so that to callers it could only be bad JSON.
        raise ValueError("JSON nested too deeply") from None
    # json accepts "\ud800" escapes; such strings cannot be stored or re-encoded as UTF-8.
    if "\\u" in text:
        _ENCODER.encode(value).encode("utf-8")
    return value


def strict_json(data: bytes) -> dict[str, Any]:
    """Parse a UTF-8 JSON object as ``strict_json_value`` does; ValueError for anything else."""
    value = strict_json_value(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def unarmor(data: bytes) -> bytes:
    """Strip surrounding whitespace and optional BEGIN/END armor lines; return the compact token."""
    body = data.strip()
    match = _ARMOR.match(body)
    if match:
        body = b"".join(match.group(2).split())
    return body


def okp_jwk(public_key: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public_key)}


def jwk_thumbprint(public_key: bytes) -> str:
    """RFC 7638 SHA-256 thumbprint of an Ed25519 public key (members in lexicographic order)."""
    canonical = b'{"crv":"Ed25519","kty":"OKP","x":"' + b64url_encode(public_key).encode() + b'"}'
    return b64url_encode(hashlib.sha256(canonical).digest())


def public_key_from_jwk(jwk: Any) -> bytes:
    """The 32-byte key of an OKP/Ed25519 public JWK; ValueError for anything else."""
    if not isinstance(jwk, dict) or set(jwk) != _JWK_MEMBERS:
        raise ValueError("jwk must have exactly kty, crv and x")
    if jwk["kty"] != "OKP" or jwk["crv"] != "Ed25519" or not isinstance(jwk["x"], str):
        raise ValueError("jwk must be an OKP Ed25519 public key")
    key = b64url_decode(jwk["x"])
    if len(key) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return key


def encode_header(header: Mapping[str, Any]) -> str:
    """The base64url protected header; signers of many tokens compute it once."""
    return b64url_encode(_ASCII_ENCODER.encode(header).encode())


def encode(header: Mapping[str, Any] | str, payload: Mapping[str, Any], secret_key: bytes) -> str:
    """Sign ``payload`` with a 64-byte libsodium Ed25519 secret key; return the compact JWS.
    ``header`` is a dict, or the output of ``encode_header``."""
    h = header if isinstance(header, str) else encode_header(header)
    return encode_json(h, _ENCODER.encode(payload), secret_key)


def encode_json(header: str, payload: str, secret_key: bytes) -> str:
    """``encode`` of a payload already written as compact JSON text (``messages.response_json``),
    under a header from ``encode_header``."""
    h = header
    p = b64url_encode(payload.encode())
    signing_input = f"{h}.{p}".encode("ascii")
    signature = nacl.bindings.crypto_sign(signing_input, secret_key)[:64]
    return f"{h}.{p}.{b64url_encode(signature)}"


def decode(
    data: bytes,
    *,
    typ: str,
    keys: Mapping[str, bytes] | None = None,
    malformed: Code = Code.MALFORMED_REQUEST,
    too_large: Code = Code.REQUEST_TOO_LARGE,
    unknown_key: Code = Code.BAD_SIGNATURE,
) -> Token:
    """Verify and decode a compact JWS of the given ``typ``.

    Requests carry their public key as ``jwk`` in the protected header; responses name theirs by
    ``kid``, looked up in ``keys``. Raises OfflineServiceError; signature failures say only "invalid".
    """
    if not isinstance(data, _BYTES):
        raise TypeError("data must be bytes")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise _fail(too_large, f"file is larger than {MAX_FILE_BYTES} bytes")
    token = unarmor(data)
    parts = token.split(b".")
    if len(parts) != 3 or not all(parts) or token.translate(None, _COMPACT_CHARS):
        raise _fail(
            malformed,
            "this is not a signed request or response file: its text is damaged or it is another file",
        )
    h64, p64, s64 = parts
    try:
        header = strict_json(b64url_decode(h64))
    except ValueError as exc:
        raise _fail(malformed, f"the file's header cannot be read ({exc}): the file is damaged") from None
    alg = header.get("alg")
    # A list or object "alg" is unhashable: check the type first so it is refused, not a TypeError.
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGS:
        raise _fail(Code.BAD_SIGNATURE, "invalid signature algorithm")
    if header.get("typ") != typ:
        raise _fail(malformed, _WRONG_TYPE.get(typ, f"this is not a file of type {typ}"))
    if set(header) != _HEADER_MEMBERS[typ]:
        raise _fail(
            malformed,
            "the file's header is not the one the format allows: the file was not written by the app",
        )
    if typ == REQUEST_TYP:
        try:
            public_key = public_key_from_jwk(header["jwk"])
        except ValueError as exc:
            raise _fail(malformed, f"the machine's public key in the file is not valid ({exc})") from None
    else:
        kid = header["kid"]
        found = keys.get(kid) if keys is not None and isinstance(kid, str) else None
        if found is None:
            raise _fail(
                unknown_key,
                "signed by a key this app has not pinned: a response made for another set-up or product,"
                " or signed after a key rotation this app version does not know",
            )
        public_key = found
    try:
        signature = b64url_decode(s64)
        payload_bytes = b64url_decode(p64)
    except ValueError:
        raise _fail(malformed, "the file's text is damaged (a character that does not belong)") from None
    if len(signature) != 64:
        raise _fail(Code.BAD_SIGNATURE, "invalid signature")
    try:
        nacl.bindings.crypto_sign_open(signature + h64 + b"." + p64, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise _fail(Code.BAD_SIGNATURE, "invalid signature") from None
    try:
        payload = strict_json(payload_bytes)
    except ValueError as exc:
        raise _fail(malformed, f"the file's content cannot be read ({exc}): the file is damaged") from None
    return Token(header=header, payload=payload, public_key=public_key)
