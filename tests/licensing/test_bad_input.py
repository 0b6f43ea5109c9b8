"""Hostile and broken request files: the engine answers each with the exact code, never raises,
and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind
from offline_service.licensing.models import License
from tests.factories import NOW, Machine, World
from tests.handmade import activation_payload, compact, dumps, request_header


@dataclass
class Ctx:
    world: World
    machine: Machine
    license: License

    def payload(self, **changes: Any) -> dict[str, Any]:
        return activation_payload(self.machine, self.world.product.id, self.license.key, **changes)

    def header(self, **changes: Any) -> dict[str, Any]:
        return request_header(self.machine, **changes)

    def sign(
        self, header: bytes | dict[str, Any] | None = None, payload: bytes | dict[str, Any] | None = None
    ) -> bytes:
        """A correctly signed token over exactly these header and payload bytes."""
        h = header if isinstance(header, bytes) else dumps(header or self.header())
        p = payload if isinstance(payload, bytes) else dumps(payload or self.payload())
        return compact(h, p, self.machine.secret_key)

    def valid(self) -> bytes:
        return self.sign()


@pytest.fixture
def ctx(world: World) -> Ctx:
    return Ctx(world=world, machine=world.machine("hostile"), license=world.license(activations=1))


def _replace_signature(token: bytes, signature: str) -> bytes:
    h, p, _ = token.split(b".")
    return h + b"." + p + b"." + signature.encode()


def _non_canonical(segment: str) -> str:
    """The same bytes under a lenient decoder, with the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bits = {2: 4, 3: 2}[len(segment) % 4]
    changed = segment[:-1] + alphabet[alphabet.index(segment[-1]) | ((1 << spare_bits) - 1)]
    assert changed != segment
    assert base64.urlsafe_b64decode(changed + "=" * (-len(changed) % 4)) == b64url_decode(segment)
    return changed


def _nested_payload(ctx: Ctx, depth: int) -> bytes:
    text = dumps(ctx.payload(metadata={})).replace(
        b'"metadata":{}', b'"metadata":' + b"[" * depth + b"]" * depth
    )
    return text


# Each case builds a file from the context; every one must be answered with exactly this code.
Case = Callable[[Ctx], bytes]
CASES: dict[str, tuple[Case, Code]] = {
    # -- not a JWS at all
    "empty": (lambda c: b"", Code.MALFORMED_REQUEST),
    "whitespace only": (lambda c: b" \r\n\t\n", Code.MALFORMED_REQUEST),
    "binary garbage": (lambda c: bytes(range(256)) * 8, Code.MALFORMED_REQUEST),
    "huge, 1 MiB": (lambda c: b"A" * (1 << 20), Code.REQUEST_TOO_LARGE),
    "huge valid token padded with garbage": (
        lambda c: c.valid() + b"." + b"A" * 20000,
        Code.REQUEST_TOO_LARGE,
    ),
    "two segments": (lambda c: c.valid().rsplit(b".", 1)[0], Code.MALFORMED_REQUEST),
    "four segments": (lambda c: c.valid() + b".AAAA", Code.MALFORMED_REQUEST),
    "truncated in the payload": (lambda c: c.valid()[: len(c.valid()) // 2], Code.MALFORMED_REQUEST),
    "truncated by one char": (lambda c: c.valid()[:-1], Code.MALFORMED_REQUEST),
    # 84 characters always decode to 63 bytes: well-formed base64url, but not an Ed25519 signature.
    "truncated by two chars": (lambda c: c.valid()[:-2], Code.BAD_SIGNATURE),
    "padded base64": (lambda c: c.valid() + b"==", Code.MALFORMED_REQUEST),
    "standard base64 alphabet": (lambda c: _standard_alphabet(c), Code.MALFORMED_REQUEST),
    "JWS JSON serialization": (
        lambda c: dumps(
            dict(zip(("protected", "payload", "signature"), c.valid().decode().split("."), strict=True))
        ),
        Code.MALFORMED_REQUEST,
    ),
    "mismatched armor": (
        lambda c: b"-----BEGIN OFFLINE REQUEST-----\n" + c.valid() + b"\n-----END OFFLINE RESPONSE-----\n",
        Code.MALFORMED_REQUEST,
    ),
    "utf-8 BOM": (lambda c: b"\xef\xbb\xbf" + c.valid(), Code.MALFORMED_REQUEST),
    "non-ASCII byte inside the token": (
        lambda c: c.valid()[:10] + b"\xff" + c.valid()[11:],
        Code.MALFORMED_REQUEST,
    ),
    # -- algorithm
    "alg HS256, Ed25519 signature": (lambda c: c.sign(header=c.header(alg="HS256")), Code.BAD_SIGNATURE),
    "alg HS256 keyed with the public key": (
        lambda c: _hs256_with_public_key(c),
        Code.BAD_SIGNATURE,
    ),
    "alg RS256": (lambda c: c.sign(header=c.header(alg="RS256")), Code.BAD_SIGNATURE),
    "alg ES256": (lambda c: c.sign(header=c.header(alg="ES256")), Code.BAD_SIGNATURE),
    "alg Ed448": (lambda c: c.sign(header=c.header(alg="Ed448")), Code.BAD_SIGNATURE),
    "alg lowercase": (lambda c: c.sign(header=c.header(alg="eddsa")), Code.BAD_SIGNATURE),
    "alg missing": (
        lambda c: c.sign(header={k: v for k, v in c.header().items() if k != "alg"}),
        Code.BAD_SIGNATURE,
    ),
    "alg as a list": (lambda c: c.sign(header=c.header(alg=["EdDSA"])), Code.BAD_SIGNATURE),
    "alg as an object": (lambda c: c.sign(header=c.header(alg={"EdDSA": 1})), Code.BAD_SIGNATURE),
    "alg none, empty signature": (
        lambda c: (
            b64url_encode(dumps(c.header(alg="none"))).encode()
            + b"."
            + b64url_encode(dumps(c.payload())).encode()
            + b"."
        ),
        Code.MALFORMED_REQUEST,
    ),
    "alg none, with a signature": (lambda c: c.sign(header=c.header(alg="none")), Code.BAD_SIGNATURE),
    # -- typ and header members
    "typ JWT": (lambda c: c.sign(header=c.header(typ="JWT")), Code.MALFORMED_REQUEST),
    "typ of a response": (lambda c: c.sign(header=c.header(typ=jws.RESPONSE_TYP)), Code.MALFORMED_REQUEST),
    "typ in other case": (
        lambda c: c.sign(header=c.header(typ="Offline-Request+JWS")),
        Code.MALFORMED_REQUEST,
    ),
    "typ missing": (
        lambda c: c.sign(header={k: v for k, v in c.header().items() if k != "typ"}),
        Code.MALFORMED_REQUEST,
    ),
    "extra header member kid": (lambda c: c.sign(header=c.header(kid="abc")), Code.MALFORMED_REQUEST),
    "extra header member crit": (
        lambda c: c.sign(header=c.header(crit=["exp"], exp=1)),
        Code.MALFORMED_REQUEST,
    ),
    "extra header member b64": (lambda c: c.sign(header=c.header(b64=False)), Code.MALFORMED_REQUEST),
    "jwk missing": (
        lambda c: c.sign(header={k: v for k, v in c.header().items() if k != "jwk"}),
        Code.MALFORMED_REQUEST,
    ),
    "jwk with private d": (
        lambda c: c.sign(
            header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "d": b64url_encode(c.machine.seed)})
        ),
        Code.MALFORMED_REQUEST,
    ),
    "jwk with kid": (
        lambda c: c.sign(header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "kid": "x"})),
        Code.MALFORMED_REQUEST,
    ),
    "jwk kty EC": (
        lambda c: c.sign(header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "kty": "EC"})),
        Code.MALFORMED_REQUEST,
    ),
    "jwk crv X25519": (
        lambda c: c.sign(header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "crv": "X25519"})),
        Code.MALFORMED_REQUEST,
    ),
    "jwk x too short": (
        lambda c: c.sign(
            header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "x": b64url_encode(b"\x01" * 31)})
        ),
        Code.MALFORMED_REQUEST,
    ),
    "jwk x a number": (
        lambda c: c.sign(header=c.header(jwk={**jws.okp_jwk(c.machine.public_key), "x": 7})),
        Code.MALFORMED_REQUEST,
    ),
    "jwk as a string": (lambda c: c.sign(header=c.header(jwk="key")), Code.MALFORMED_REQUEST),
    "jwk of another key": (
        lambda c: c.sign(header=c.header(jwk=jws.okp_jwk(Machine("other").public_key))),
        Code.BAD_SIGNATURE,
    ),
    # -- duplicate members
    "duplicate header member": (
        lambda c: c.sign(header=dumps(c.header())[:-1] + b',"typ":"' + jws.REQUEST_TYP.encode() + b'"}'),
        Code.MALFORMED_REQUEST,
    ),
    "duplicate payload member": (
        lambda c: c.sign(payload=dumps(c.payload())[:-1] + b',"licenseKey":"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"}'),
        Code.MALFORMED_REQUEST,
    ),
    "duplicate metadata member": (
        lambda c: c.sign(
            payload=dumps(c.payload()).replace(b'"metadata":{}', b'"metadata":{"a":"1","a":"2"}')
        ),
        Code.MALFORMED_REQUEST,
    ),
    # -- wrong types and values in the payload
    "v as a string": (lambda c: c.sign(payload=c.payload(v="1")), Code.UNSUPPORTED_VERSION),
    "v true": (lambda c: c.sign(payload=c.payload(v=True)), Code.UNSUPPORTED_VERSION),
    "v missing": (
        lambda c: c.sign(payload={k: v for k, v in c.payload().items() if k != "v"}),
        Code.UNSUPPORTED_VERSION,
    ),
    "iat as a string": (lambda c: c.sign(payload=c.payload(iat=str(NOW))), Code.MALFORMED_REQUEST),
    "iat true": (lambda c: c.sign(payload=c.payload(iat=True)), Code.MALFORMED_REQUEST),
    "iat a float": (lambda c: c.sign(payload=c.payload(iat=float(NOW))), Code.MALFORMED_REQUEST),
    "iat negative": (lambda c: c.sign(payload=c.payload(iat=-1)), Code.MALFORMED_REQUEST),
    "iat past year 9999": (
        lambda c: c.sign(payload=c.payload(iat=messages.MAX_TIME + 1)),
        Code.MALFORMED_REQUEST,
    ),
    "iat with 5000 digits": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(str(NOW).encode(), b"9" * 5000)),
        Code.MALFORMED_REQUEST,
    ),
    "licenseKey a number": (lambda c: c.sign(payload=c.payload(licenseKey=12345)), Code.MALFORMED_REQUEST),
    "licenseKey null": (lambda c: c.sign(payload=c.payload(licenseKey=None)), Code.MALFORMED_REQUEST),
    "licenseKey with a control character": (
        lambda c: c.sign(payload=c.payload(licenseKey=c.license.key + "\n")),
        Code.MALFORMED_REQUEST,
    ),
    "metadata a list": (lambda c: c.sign(payload=c.payload(metadata=["a", "b"])), Code.MALFORMED_REQUEST),
    "metadata value a number": (
        lambda c: c.sign(payload=c.payload(metadata={"a": 1})),
        Code.MALFORMED_REQUEST,
    ),
    "metadata value an object": (
        lambda c: c.sign(payload=c.payload(metadata={"a": {}})),
        Code.MALFORMED_REQUEST,
    ),
    "metadata empty key": (lambda c: c.sign(payload=c.payload(metadata={"": "x"})), Code.MALFORMED_REQUEST),
    "metadata too many entries": (
        lambda c: c.sign(payload=c.payload(metadata={str(i): "" for i in range(33)})),
        Code.MALFORMED_REQUEST,
    ),
    "fingerprint a number": (lambda c: c.sign(payload=c.payload(fingerprint=1)), Code.MALFORMED_REQUEST),
    "fingerprint with a space": (
        lambda c: c.sign(payload=c.payload(fingerprint="a b")),
        Code.MALFORMED_REQUEST,
    ),
    "productId too long": (lambda c: c.sign(payload=c.payload(productId="p" * 65)), Code.MALFORMED_REQUEST),
    "nonce too short": (lambda c: c.sign(payload=c.payload(nonce="short")), Code.MALFORMED_REQUEST),
    "hostname too long": (lambda c: c.sign(payload=c.payload(hostname="h" * 256)), Code.MALFORMED_REQUEST),
    "hostname with NUL": (lambda c: c.sign(payload=c.payload(hostname="a\x00b")), Code.MALFORMED_REQUEST),
    "payload a list": (lambda c: c.sign(payload=b"[]"), Code.MALFORMED_REQUEST),
    "payload null": (lambda c: c.sign(payload=b"null"), Code.MALFORMED_REQUEST),
    "payload empty": (lambda c: c.sign(payload=b""), Code.MALFORMED_REQUEST),
    "header a list": (lambda c: c.sign(header=b"[]"), Code.MALFORMED_REQUEST),
    # -- kinds and members
    "unknown kind": (lambda c: c.sign(payload=c.payload(kind="upgrade")), Code.MALFORMED_REQUEST),
    "kind in other case": (lambda c: c.sign(payload=c.payload(kind="Activation")), Code.MALFORMED_REQUEST),
    "kind a number": (lambda c: c.sign(payload=c.payload(kind=1)), Code.MALFORMED_REQUEST),
    "kind missing": (
        lambda c: c.sign(payload={k: v for k, v in c.payload().items() if k != "kind"}),
        Code.MALFORMED_REQUEST,
    ),
    "extra payload member": (lambda c: c.sign(payload=c.payload(admin=True)), Code.MALFORMED_REQUEST),
    "member of another kind": (
        lambda c: c.sign(payload=c.payload(activationId="act_1")),
        Code.MALFORMED_REQUEST,
    ),
    "trial with a license key": (lambda c: c.sign(payload=c.payload(kind="trial")), Code.MALFORMED_REQUEST),
    # -- JSON that Python accepts and the format does not
    "lone surrogate in a payload string": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(b'"host"', b'"\\ud800"')),
        Code.MALFORMED_REQUEST,
    ),
    "lone surrogate in a metadata key": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(b'"metadata":{}', b'"metadata":{"\\udfff":"x"}')),
        Code.MALFORMED_REQUEST,
    ),
    "lone surrogate in the header": (
        lambda c: c.sign(header=dumps(c.header())[:-1] + b',"x":"\\ud800"}'),
        Code.MALFORMED_REQUEST,
    ),
    "NaN": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(str(NOW).encode(), b"NaN")),
        Code.MALFORMED_REQUEST,
    ),
    "Infinity": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(str(NOW).encode(), b"Infinity")),
        Code.MALFORMED_REQUEST,
    ),
    "-Infinity in the header": (
        lambda c: c.sign(header=dumps(c.header())[:-1] + b',"x":-Infinity}'),
        Code.MALFORMED_REQUEST,
    ),
    # 100000 "[" would be refused by size first; 10000 fits in a file and is far past the recursion limit.
    "deeply nested header": (lambda c: c.sign(header=b"[" * 5_000 + b"]" * 5_000), Code.MALFORMED_REQUEST),
    "deeply nested unclosed header": (lambda c: c.sign(header=b"[" * 11_000), Code.MALFORMED_REQUEST),
    "deeply nested payload": (lambda c: c.sign(payload=_nested_payload(c, 5_000)), Code.MALFORMED_REQUEST),
    "non-canonical base64url signature": (
        lambda c: _replace_signature(c.valid(), _non_canonical(c.valid().decode().split(".")[2])),
        Code.MALFORMED_REQUEST,
    ),
    "non-UTF-8 header": (
        lambda c: c.sign(header=dumps(c.header())[:-1] + b',"x":"\xff\xfe"}'),
        Code.MALFORMED_REQUEST,
    ),
    "non-UTF-8 payload": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(b'"host"', b'"h\xe9te"')),
        Code.MALFORMED_REQUEST,
    ),
    "overlong UTF-8": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(b'"host"', b'"\xc0\xaf"')),
        Code.MALFORMED_REQUEST,
    ),
    "UTF-8 encoded surrogate": (
        lambda c: c.sign(payload=dumps(c.payload()).replace(b'"host"', b'"\xed\xa0\x80"')),
        Code.MALFORMED_REQUEST,
    ),
}


def _standard_alphabet(c: Ctx) -> bytes:
    """The same token in the standard base64 alphabet (``+/``), which base64url forbids."""
    # A run of U+00FF (UTF-8 c3 bf) puts six 1-bits in a row at every alignment, so "_" appears.
    token = c.sign(payload=c.payload(hostname="\xff" * 12))
    assert b"_" in token
    return token.replace(b"_", b"/").replace(b"-", b"+")


def _hs256_with_public_key(c: Ctx) -> bytes:
    """The classic algorithm-confusion forgery: HMAC keyed with the (public) verification key."""
    h = b64url_encode(dumps(c.header(alg="HS256")))
    p = b64url_encode(dumps(c.payload()))
    mac = hmac.new(c.machine.public_key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url_encode(mac)}".encode()


def test_the_base_file_is_valid(ctx: Ctx) -> None:
    """Every case is a change to this file, so it must itself be accepted."""
    before = ctx.world.snapshot()
    outcome = ctx.world.process(ctx.valid())
    assert outcome.ok, outcome
    assert ctx.world.snapshot() != before


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(ctx: Ctx, name: str) -> None:
    build, code = CASES[name]
    data = build(ctx)
    before = ctx.world.snapshot()

    outcome = ctx.world.process(data)

    assert outcome.code is code, outcome
    assert outcome.response is None
    assert ctx.world.snapshot() == before


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_in_a_batch_does_not_affect_its_neighbours(ctx: Ctx, name: str) -> None:
    build, code = CASES[name]
    good = ctx.machine.request(Kind.TRIAL, ctx.world.product.id)
    outcomes = ctx.world.engine.process_many(
        [good, build(ctx), good], account_id=ctx.world.account.id, now=NOW
    )
    assert [o.code for o in outcomes] == [Code.OK, code, Code.OK]


# -- armor and whitespace are accepted ----------------------------------------------------------


def _wrap(token: bytes, width: int, newline: bytes) -> bytes:
    return newline.join(token[i : i + width] for i in range(0, len(token), width))


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(
            lambda t: b"-----BEGIN OFFLINE REQUEST-----\n" + t + b"\n-----END OFFLINE REQUEST-----\n",
            id="armor",
        ),
        pytest.param(
            lambda t: (
                b"\r\n  \t-----BEGIN OFFLINE REQUEST-----\r\n"
                + t
                + b"\r\n-----END OFFLINE REQUEST-----\r\n\r\n"
            ),
            id="armor-crlf-and-whitespace",
        ),
        pytest.param(
            lambda t: (
                b"-----BEGIN OFFLINE REQUEST-----\n"
                + _wrap(t, 64, b"\n")
                + b"\n-----END OFFLINE REQUEST-----"
            ),
            id="armor-wrapped-at-64",
        ),
        pytest.param(lambda t: b"\n\n  " + t + b"  \n", id="bare-with-whitespace"),
    ],
)
def test_armor_and_surrounding_whitespace_are_accepted(ctx: Ctx, framing: Callable[[bytes], bytes]) -> None:
    token = ctx.valid()
    outcome = ctx.world.process(framing(token))
    assert outcome.ok, outcome
    # The very same request: processing the bare token now only reissues.
    again = ctx.world.process(token)
    assert (again.ok, again.reissued, again.activation_id) == (True, True, outcome.activation_id)


# -- types at the API boundary ----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 123, 1.5, ["AAAA"], object()])
def test_b64url_decode_refuses_non_text(value: Any) -> None:
    with pytest.raises(TypeError):
        b64url_decode(value)


@pytest.mark.parametrize(
    "text", ["AAAA=", "AA==", "A", "AAAAA", "AB", "AAB", "+/+/", "AA AA", "AA\n", "é", b"\xffAA", "A.AA"]
)
def test_b64url_decode_refuses_bad_encodings(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", bytes(range(256))])
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.encode()) == data


@pytest.mark.parametrize("value", [None, "a.b.c", 123, ["a.b.c"]])
def test_jws_decode_refuses_non_bytes(value: Any) -> None:
    with pytest.raises(TypeError):
        jws.decode(value, typ=jws.REQUEST_TYP)


def test_jws_decode_accepts_bytes_like(ctx: Ctx) -> None:
    token = ctx.valid()
    for data in (token, bytearray(token), memoryview(token)):
        assert jws.decode(data, typ=jws.REQUEST_TYP).public_key == ctx.machine.public_key


def test_engine_answers_non_bytes_with_an_outcome(ctx: Ctx) -> None:
    before = ctx.world.snapshot()
    outcome = ctx.world.process(ctx.valid().decode())
    assert outcome.code is Code.MALFORMED_REQUEST
    assert ctx.world.snapshot() == before


def test_strict_json_refuses_deep_nesting_with_value_error() -> None:
    with pytest.raises(ValueError):
        jws.strict_json(b"[" * 100_000)
    with pytest.raises(ValueError):
        jws.strict_json(b'{"a":' * 100_000)


def test_hostile_response_headers_raise_only_our_error() -> None:
    """Parsed before any signature check, so anyone can send these to a client."""
    signature = b64url_encode(b"\x00" * 64)
    headers = [
        b"[" * 10_000,
        dumps({"alg": ["EdDSA"], "typ": jws.RESPONSE_TYP, "kid": "k"}),
        dumps({"alg": {}, "typ": jws.RESPONSE_TYP, "kid": "k"}),
        dumps({"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": ["k"]}),
        dumps({"alg": "EdDSA", "typ": jws.RESPONSE_TYP, "kid": {"k": 1}}),
    ]
    for header in headers:
        token = f"{b64url_encode(header)}.e30.{signature}".encode()
        with pytest.raises(OfflineServiceError) as info:
            messages.parse_response(token, {"k": b"\x00" * 32})
        assert info.value.code in {Code.MALFORMED_RESPONSE, Code.BAD_SIGNATURE, Code.UNKNOWN_SIGNING_KEY}


def test_a_file_that_is_no_signed_file_is_told_in_plain_words(world: World) -> None:
    outcome = world.process(b"hello, this is not a request")
    assert outcome.code is Code.MALFORMED_REQUEST
    assert "not a signed request or response file" in outcome.message
    assert "JWS" not in outcome.message


def test_a_response_file_given_as_a_request_is_named(world: World) -> None:
    lic = world.license()
    granted = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert granted.response is not None
    outcome = world.process(granted.response.encode())
    assert outcome.code is Code.MALFORMED_REQUEST
    assert "not a request file (it may be a response file" in outcome.message
    assert "typ" not in outcome.message
