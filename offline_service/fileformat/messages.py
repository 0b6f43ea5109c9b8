"""The version-1 request and response payloads: typed, validated, and nothing else accepted.

docs/FORMAT.md is the normative description; this module is its executable form.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from offline_service._b64 import b64url_decode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws

__all__ = [
    "FORMAT_VERSION",
    "THUMBPRINT",
    "Kind",
    "Request",
    "Response",
    "looks_like_response",
    "parse_request",
    "parse_response",
    "request_payload",
    "response_json",
    "response_payload",
    "validate_metadata",
]

FORMAT_VERSION = 1
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 1024

_ID = re.compile(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
_FINGERPRINT = re.compile(r"\A[A-Za-z0-9+/=_.:-]{1,128}\Z")
# 22 base64url characters carry 128 bits, the least a nonce may have; 86 carry 512.
_NONCE = re.compile(r"\A[A-Za-z0-9_-]{22,86}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Counts fit a signed 32-bit integer in every client language.
MAX_COUNT = 2**31 - 1
# Largest time the format accepts (year 9999): keeps arithmetic and SQLite integers in range.
MAX_TIME = 253402300799


class Kind(enum.StrEnum):
    ACTIVATION = "activation"
    DEACTIVATION = "deactivation"
    TRIAL = "trial"


@dataclass(frozen=True, slots=True)
class Request:
    """A signature-checked request. ``machine_key`` is the raw Ed25519 public key that signed it."""

    kind: Kind
    product_id: str
    fingerprint: str
    machine_key: bytes
    machine_key_thumbprint: str
    issued_at: int
    nonce: str
    hostname: str = ""
    os: str = ""
    app_version: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    license_key: str | None = None
    activation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A signature-checked response, as the client sees it."""

    kind: Kind
    kid: str
    product_id: str
    activation_id: str
    fingerprint: str
    machine_key_thumbprint: str
    issued_at: int
    apply_before: int
    request_nonce: str
    license_id: str | None = None
    status: str | None = None
    expires_at: int | None = None
    allowed_activations: int | None = None
    used_activations: int | None = None
    allowed_deactivations: int | None = None
    used_deactivations: int | None = None
    trial_ends_at: int | None = None
    deactivated_at: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


# -- field validators: each raises ValueError with the member's name -------------------------


def _int(obj: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = obj.get(name)
    if value is None and optional:
        return None
    # bool is an int subclass in Python; JSON true is not a number.
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _count(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if type(value) is not int or not -1 <= value <= MAX_COUNT:
        raise ValueError(f"{name} must be an integer")
    return value


def _text(obj: Mapping[str, Any], name: str, limit: int, *, optional: bool = False) -> str:
    value = obj.get(name, "" if optional else None)
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        raise ValueError(f"{name} must be a string of at most {limit} printable characters")
    return value


def _match(obj: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"{name} is missing or badly formed")
    return value


def _metadata(obj: Mapping[str, Any], name: str) -> dict[str, str]:
    value = obj.get(name, {})
    if not isinstance(value, dict) or len(value) > MAX_METADATA_ENTRIES:
        raise ValueError(f"{name} must be an object of at most {MAX_METADATA_ENTRIES} members")
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY or _CONTROL.search(key):
            raise ValueError(f"{name} keys must be 1-{MAX_METADATA_KEY} printable characters")
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE or _CONTROL.search(item):
            raise ValueError(
                f"{name} values must be strings of at most {MAX_METADATA_VALUE} printable characters"
            )
    return value


def validate_metadata(value: Any, name: str = "metadata") -> dict[str, str]:
    """Check metadata against the limits every request and response must meet (ValueError)."""
    return _metadata({name: value}, name)


_REQUEST_COMMON = frozenset(
    {
        "v",
        "kind",
        "productId",
        "fingerprint",
        "hostname",
        "os",
        "appVersion",
        "metadata",
        "iat",
        "nonce",
    }
)
_REQUEST_MEMBERS = {
    Kind.ACTIVATION: _REQUEST_COMMON | {"licenseKey"},
    Kind.DEACTIVATION: _REQUEST_COMMON | {"activationId"},
    Kind.TRIAL: _REQUEST_COMMON,
}


def parse_request(data: bytes) -> Request:
    """Verify a request file's signature and validate its payload. Raises OfflineServiceError."""
    token = jws.decode(data, typ=jws.REQUEST_TYP)
    p = token.payload
    if p.get("v") != FORMAT_VERSION or type(p.get("v")) is not int:
        raise OfflineServiceError(Code.UNSUPPORTED_VERSION, f"format version {p.get('v')!r} is not supported")
    try:
        kind = Kind(str(p.get("kind")))
    except ValueError:
        raise OfflineServiceError(
            Code.MALFORMED_REQUEST,
            "this request is of a kind this service does not know (activation, deactivation or trial)",
        ) from None
    unexpected = set(p) - _REQUEST_MEMBERS[kind]
    try:
        if unexpected:
            raise ValueError(f"members this kind of request does not have: {', '.join(sorted(unexpected))}")
        issued_at = _int(p, "iat")
        assert issued_at is not None
        return Request(
            kind=kind,
            product_id=_match(p, "productId", _ID),
            fingerprint=_match(p, "fingerprint", _FINGERPRINT),
            machine_key=token.public_key,
            machine_key_thumbprint=jws.jwk_thumbprint(token.public_key),
            issued_at=issued_at,
            nonce=_match(p, "nonce", _NONCE),
            hostname=_text(p, "hostname", 255, optional=True),
            os=_text(p, "os", 128, optional=True),
            app_version=_text(p, "appVersion", 64, optional=True),
            metadata=_metadata(p, "metadata"),
            license_key=_text(p, "licenseKey", 128) if kind is Kind.ACTIVATION else None,
            activation_id=_match(p, "activationId", _ID) if kind is Kind.DEACTIVATION else None,
        )
    except ValueError as exc:
        raise OfflineServiceError(Code.MALFORMED_REQUEST, str(exc)) from None


def looks_like_response(data: bytes) -> bool:
    """Whether ``data`` says it is a response file (its header's ``typ``), read without checking
    anything else: only to tell a person who uploads a response where it belongs, never to decide."""
    if len(data) > jws.MAX_FILE_BYTES:
        return False
    header, dot, _ = jws.unarmor(data).partition(b".")
    if not dot:
        return False
    try:
        return jws.strict_json(b64url_decode(header)).get("typ") == jws.RESPONSE_TYP
    except ValueError:
        return False


def request_payload(
    *,
    kind: Kind,
    product_id: str,
    fingerprint: str,
    issued_at: int,
    nonce: str,
    hostname: str = "",
    os: str = "",
    app_version: str = "",
    metadata: Mapping[str, str] | None = None,
    license_key: str | None = None,
    activation_id: str | None = None,
) -> dict[str, Any]:
    """The payload dict of a request, members in the documented order."""
    payload: dict[str, Any] = {"v": FORMAT_VERSION, "kind": kind.value, "productId": product_id}
    if kind is Kind.ACTIVATION:
        payload["licenseKey"] = license_key
    if kind is Kind.DEACTIVATION:
        payload["activationId"] = activation_id
    payload.update(
        fingerprint=fingerprint,
        hostname=hostname,
        os=os,
        appVersion=app_version,
        metadata=dict(metadata or {}),
        iat=issued_at,
        nonce=nonce,
    )
    return payload


def response_payload(response: Response) -> dict[str, Any]:
    """The payload dict of a response; members that do not apply to its kind are left out."""
    payload: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "kind": response.kind.value,
        "productId": response.product_id,
        "activationId": response.activation_id,
        "fingerprint": response.fingerprint,
        "machineKeyThumbprint": response.machine_key_thumbprint,
    }
    if response.kind is Kind.TRIAL:
        payload["trialEndsAt"] = response.trial_ends_at
    else:
        payload.update(
            licenseId=response.license_id,
            status=response.status,
            expiresAt=response.expires_at,
            allowedActivations=response.allowed_activations,
            usedActivations=response.used_activations,
            allowedDeactivations=response.allowed_deactivations,
            usedDeactivations=response.used_deactivations,
            metadata=dict(response.metadata),
        )
    if response.kind is Kind.DEACTIVATION:
        payload["deactivatedAt"] = response.deactivated_at
    payload.update(
        iat=response.issued_at,
        applyBefore=response.apply_before,
        requestNonce=response.request_nonce,
    )
    return payload


# JSON string literal of a text, as the payload encoder (``ensure_ascii=False``) writes it; in C.
_quote = json.encoder.encode_basestring
_METADATA_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def response_json(response: Response) -> str:
    """``response_payload(response)`` as compact JSON, the same text ``jws.encode`` would write,
    filled into a fixed template: the engine signs one per request, and a dict plus the encoder
    cost several times more."""
    r = response
    kind = r.kind
    head = (
        f'{{"v":{FORMAT_VERSION},"kind":{_quote(kind.value)},"productId":{_quote(r.product_id)},'
        f'"activationId":{_quote(r.activation_id)},"fingerprint":{_quote(r.fingerprint)},'
        f'"machineKeyThumbprint":{_quote(r.machine_key_thumbprint)}'
    )
    tail = f'"iat":{r.issued_at},"applyBefore":{r.apply_before},"requestNonce":{_quote(r.request_nonce)}}}'
    if kind is Kind.TRIAL:
        return f'{head},"trialEndsAt":{_number(r.trial_ends_at)},{tail}'
    metadata = _METADATA_ENCODER.encode(dict(r.metadata)) if r.metadata else "{}"
    license = (
        f'"licenseId":{"null" if r.license_id is None else _quote(r.license_id)},'
        f'"status":{"null" if r.status is None else _quote(r.status)},'
        f'"expiresAt":{_number(r.expires_at)},'
        f'"allowedActivations":{_number(r.allowed_activations)},'
        f'"usedActivations":{_number(r.used_activations)},'
        f'"allowedDeactivations":{_number(r.allowed_deactivations)},'
        f'"usedDeactivations":{_number(r.used_deactivations)},'
        f'"metadata":{metadata}'
    )
    if kind is Kind.DEACTIVATION:
        return f'{head},{license},"deactivatedAt":{_number(r.deactivated_at)},{tail}'
    return f"{head},{license},{tail}"


_RESPONSE_COMMON = frozenset(
    {
        "v",
        "kind",
        "productId",
        "activationId",
        "fingerprint",
        "machineKeyThumbprint",
        "iat",
        "applyBefore",
        "requestNonce",
    }
)
_LICENSE_MEMBERS = frozenset(
    {
        "licenseId",
        "status",
        "expiresAt",
        "allowedActivations",
        "usedActivations",
        "allowedDeactivations",
        "usedDeactivations",
        "metadata",
    }
)
_RESPONSE_MEMBERS = {
    Kind.ACTIVATION: _RESPONSE_COMMON | _LICENSE_MEMBERS,
    Kind.DEACTIVATION: _RESPONSE_COMMON | _LICENSE_MEMBERS | {"deactivatedAt"},
    Kind.TRIAL: _RESPONSE_COMMON | {"trialEndsAt"},
}
THUMBPRINT = "[A-Za-z0-9_-]{43}"  # an RFC 7638 SHA-256 thumbprint, base64url without padding
_THUMBPRINT = re.compile(rf"\A{THUMBPRINT}\Z")
_STATUS = frozenset({"active", "suspended", "revoked"})


def parse_response(data: bytes, keys: Mapping[str, bytes]) -> Response:
    """Verify a response file against pinned public keys (kid -> key) and validate its payload."""
    token = jws.decode(
        data,
        typ=jws.RESPONSE_TYP,
        keys=keys,
        malformed=Code.MALFORMED_RESPONSE,
        too_large=Code.MALFORMED_RESPONSE,
        unknown_key=Code.UNKNOWN_SIGNING_KEY,
    )
    p = token.payload
    try:
        if p.get("v") != FORMAT_VERSION or type(p.get("v")) is not int:
            raise ValueError("unsupported format version")
        kind = Kind(str(p.get("kind")))
        if set(p) != _RESPONSE_MEMBERS[kind]:
            raise ValueError("unexpected or missing members")
        common: dict[str, Any] = dict(
            kind=kind,
            kid=token.header["kid"],
            product_id=_match(p, "productId", _ID),
            activation_id=_match(p, "activationId", _ID),
            fingerprint=_match(p, "fingerprint", _FINGERPRINT),
            machine_key_thumbprint=_match(p, "machineKeyThumbprint", _THUMBPRINT),
            issued_at=_int(p, "iat"),
            apply_before=_int(p, "applyBefore"),
            request_nonce=_match(p, "requestNonce", _NONCE),
            raw=p,
        )
        if kind is Kind.TRIAL:
            return Response(**common, trial_ends_at=_int(p, "trialEndsAt"))
        # str first: an unhashable list or object would raise TypeError from the set lookup.
        if not isinstance(p.get("status"), str) or p["status"] not in _STATUS:
            raise ValueError("status is not a license status")
        return Response(
            **common,
            license_id=_match(p, "licenseId", _ID),
            status=p["status"],
            expires_at=_int(p, "expiresAt", optional=True),
            allowed_activations=_count(p, "allowedActivations"),
            used_activations=_count(p, "usedActivations"),
            allowed_deactivations=_count(p, "allowedDeactivations"),
            used_deactivations=_count(p, "usedDeactivations"),
            metadata=_metadata(p, "metadata"),
            deactivated_at=_int(p, "deactivatedAt") if kind is Kind.DEACTIVATION else None,
        )
    except ValueError as exc:
        raise OfflineServiceError(Code.MALFORMED_RESPONSE, str(exc)) from None
