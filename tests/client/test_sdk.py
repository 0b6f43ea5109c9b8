from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_service import Code, Kind, OfflineServiceError
from offline_service._b64 import b64url_decode
from offline_service.client import Client
from offline_service.client.state import MAX_PENDING, StateDir
from offline_service.fileformat import jws, messages
from offline_service.licensing import services as admin
from offline_service.licensing.models import License
from tests.client.conftest import Installation, MakeClient, forge, snapshot
from tests.factories import NOW, World, make_world

DAY = 86_400


def request_and_process(
    world: World, inst: Installation, lic: License, *, at: int = NOW + 20, **kw: Any
) -> bytes:
    token = inst.client.activation_request(product_id=world.product.id, license_key=lic.key)
    outcome = world.process(token.encode(), now=at, **kw)
    assert outcome.ok, outcome
    return str(outcome.response).encode()


def activated(world: World, inst: Installation, jwks: dict[str, Any], **kw: Any) -> tuple[License, bytes]:
    lic = world.license(**kw)
    data = request_and_process(world, inst, lic)
    inst.client.activate(data, jwks=jwks)
    return lic, data


def refused(inst: Installation, data: bytes, jwks: dict[str, Any], code: Code) -> OfflineServiceError:
    """Assert that activating ``data`` fails with ``code`` and leaves the state directory untouched."""
    before = snapshot(inst.path)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activate(data, jwks=jwks)
    assert info.value.code is code, info.value
    assert snapshot(inst.path) == before
    return info.value


# -- requests ------------------------------------------------------------------------------------


def test_activation_request_is_a_strict_v1_request(world: World, make_client: MakeClient) -> None:
    inst = make_client(now=NOW + 10.9)
    token = inst.client.activation_request(
        product_id=world.product.id, license_key="  ABCDE-12345  ", app_version="2.1", metadata={"seat": "a"}
    )
    header = jws.strict_json(b64url_decode(token.split(".")[0]))
    assert header.keys() == {"alg", "typ", "jwk"}
    assert (header["alg"], header["typ"]) == ("EdDSA", "offline-request+jws")
    req = messages.parse_request(token.encode())
    assert req.kind is Kind.ACTIVATION
    assert req.license_key == "ABCDE-12345"
    assert req.issued_at == NOW + 10
    assert req.app_version == "2.1" and req.metadata == {"seat": "a"}
    assert len(req.fingerprint) == 64 and req.hostname and req.os


def test_requests_share_one_machine_key_and_are_remembered(world: World, make_client: MakeClient) -> None:
    inst = make_client()
    first = messages.parse_request(inst.client.trial_request(product_id=world.product.id).encode())
    second = messages.parse_request(
        inst.client.activation_request(product_id=world.product.id, license_key="K").encode()
    )
    assert first.kind is Kind.TRIAL
    assert first.machine_key == second.machine_key
    assert first.nonce != second.nonce
    assert [p["kind"] for p in inst.client.status()["pending"]] == ["trial", "activation"]


def test_long_hostname_and_os_are_truncated(world: World, make_client: MakeClient) -> None:
    token = make_client().client.activation_request(
        product_id=world.product.id, license_key="K", hostname="h" * 300, os_name="o\n" * 100
    )
    req = messages.parse_request(token.encode())
    assert req.hostname == "h" * 255 and req.os == "o" * 100


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"fingerprint": "has space"}, "fingerprint"),
        ({"fingerprint": "x" * 129}, "fingerprint"),
        ({"product_id": "bad id!"}, "productId"),
        ({"license_key": "   "}, "license key"),
        ({"app_version": "v" * 65}, "appVersion"),
    ],
)
def test_bad_request_arguments_are_refused(
    world: World, make_client: MakeClient, kw: dict[str, Any], fragment: str
) -> None:
    args: dict[str, Any] = {"product_id": world.product.id, "license_key": "K", **kw}
    inst = make_client()
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activation_request(**args)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert fragment in info.value.message
    assert not (inst.path / "state.json").exists()


def test_open_requests_are_bounded(world: World, make_client: MakeClient) -> None:
    inst = make_client()
    for _ in range(MAX_PENDING + 3):
        inst.client.trial_request(product_id=world.product.id)
    assert len(inst.client.status()["pending"]) == MAX_PENDING


def test_any_open_request_may_be_answered(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    lic = world.license()
    first = inst.client.activation_request(product_id=world.product.id, license_key=lic.key)
    inst.client.activation_request(product_id=world.product.id, license_key=lic.key)
    outcome = world.process(first.encode(), now=NOW + 20)
    inst.client.activate(str(outcome.response).encode(), jwks=jwks)
    assert inst.client.status()["valid"]
    assert len(inst.client.status()["pending"]) == 1


# -- activation round trips ----------------------------------------------------------------------


def test_activation_round_trip(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    lic = world.license(activations=2, metadata={"tier": "pro"})
    data = request_and_process(world, inst, lic)
    resp = inst.client.activate(data, jwks=jwks)
    assert resp.kind is Kind.ACTIVATION and resp.license_id == lic.id
    doc = inst.client.status()
    assert doc["activated"] and doc["valid"] and doc["code"] == "OK"
    assert doc["licenseId"] == lic.id and doc["activationId"] == resp.activation_id
    assert doc["productId"] == world.product.id and doc["status"] == "active"
    assert (doc["allowedActivations"], doc["usedActivations"]) == (2, 1)
    assert doc["metadata"] == {"tier": "pro"} and doc["expiresAt"] is None
    assert doc["machineKeyThumbprint"] == resp.machine_key_thumbprint
    assert doc["pending"] == []
    assert inst.client.check() == resp


def test_applying_the_same_response_again_is_harmless(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    _, data = activated(world, inst, jwks)
    inst.client.activate(data, jwks=jwks)
    assert inst.client.status()["valid"]


def test_trial_round_trip(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    outcome = world.process(inst.client.trial_request(product_id=world.product.id).encode(), now=NOW + 20)
    resp = inst.client.activate(str(outcome.response).encode(), jwks=jwks)
    assert resp.kind is Kind.TRIAL and resp.trial_ends_at == NOW + 20 + 14 * DAY
    doc = inst.client.status()
    assert doc["valid"] and doc["kind"] == "trial" and doc["trialEndsAt"] == NOW + 20 + 14 * DAY
    inst.clock.now = NOW + 20 + 14 * DAY
    doc = inst.client.status()
    assert (doc["valid"], doc["code"]) == (False, "TRIAL_EXPIRED")


def test_a_license_replaces_a_trial_but_not_the_reverse(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    trial = world.process(inst.client.trial_request(product_id=world.product.id).encode(), now=NOW + 20)
    activated(world, inst, jwks)
    assert inst.client.status()["kind"] == "activation"
    refused(inst, str(trial.response).encode(), jwks, Code.CONFLICT)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.trial_request(product_id=world.product.id)
    assert info.value.code is Code.CONFLICT


def test_status_before_activation(make_client: MakeClient) -> None:
    inst = make_client()
    doc = inst.client.status()
    assert (doc["activated"], doc["valid"], doc["code"]) == (False, False, "NOT_ACTIVATED")
    assert not inst.path.exists()  # reading status creates nothing
    with pytest.raises(OfflineServiceError) as info:
        inst.client.check()
    assert info.value.code is Code.NOT_ACTIVATED


def test_status_moves_the_clock_high_water_mark(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    inst.clock.now = NOW + 5000
    assert inst.client.status()["valid"]
    inst.clock.now = NOW + 5000 - 601
    doc = inst.client.status()
    assert (doc["valid"], doc["code"]) == (False, "CLOCK_ROLLBACK")
    assert doc["licenseId"] is not None  # the response verified; only the clock is wrong
    inst.clock.now = NOW + 5000 - 600
    assert inst.client.status()["valid"]


def test_invalid_status_writes_only_the_clock_mark(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    activated(world, inst, jwks, expires_at=NOW + 1000)
    inst.clock.now = NOW + 1000
    key, state = (inst.path / "machine-key").read_bytes(), StateDir(inst.path).load()
    assert inst.client.status()["code"] == "LICENSE_EXPIRED"
    # A failed check raises the high-water mark too (issue 9), and changes nothing else.
    assert StateDir(inst.path).load() == replace(state, last_seen=NOW + 1000)
    assert (inst.path / "machine-key").read_bytes() == key


def test_status_uses_the_jwks_given_to_the_client(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    other = make_world(tmp_path / "other")
    try:
        strict = Client(
            inst.path, jwks=other.keyring.jwks(), clock=inst.clock, machine_id=lambda: "machine-1"
        )
        assert strict.status()["code"] == "UNKNOWN_SIGNING_KEY"
    finally:
        other.store.close()


# -- refusals ------------------------------------------------------------------------------------


def test_response_for_another_machine(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    a, b = make_client("a"), make_client("b", machine="machine-2")
    b.client.activation_request(product_id=world.product.id, license_key="K")
    data = request_and_process(world, a, world.license())
    refused(b, data, jwks, Code.WRONG_MACHINE)


def test_same_fingerprint_other_installation_key(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    a, b = make_client("a"), make_client("b")
    b.client.activation_request(product_id=world.product.id, license_key="K")
    data = request_and_process(world, a, world.license())
    assert a.client.status()["fingerprint"] == b.client.status()["fingerprint"]
    refused(b, data, jwks, Code.WRONG_MACHINE)


def test_state_copied_to_another_machine(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    elsewhere = Client(inst.path, clock=inst.clock, machine_id=lambda: "machine-2")
    assert elsewhere.status()["code"] == "WRONG_MACHINE"


def test_response_for_another_product(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    other = admin.create_product(world.store, world.keyring, world.account, name="Other", now=NOW)
    inst.client.activation_request(product_id=other.id, license_key="K")
    untagged = {
        "keys": [{k: v for k, v in key.items() if k != "product"} for key in world.keyring.jwks()["keys"]]
    }
    refused(inst, data, untagged, Code.WRONG_PRODUCT)
    # With the JWKS as published, the first product's key is not trusted for the second at all.
    refused(inst, data, world.keyring.jwks(), Code.UNKNOWN_SIGNING_KEY)


def test_tampered_response(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    h, p, s = data.split(b".")
    i = len(p) // 2
    flipped = h + b"." + p[:i] + (b"A" if p[i : i + 1] != b"A" else b"B") + p[i + 1 :] + b"." + s
    refused(inst, flipped, jwks, Code.BAD_SIGNATURE)


def test_unknown_signing_key(world: World, make_client: MakeClient, tmp_path: Path) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    other = make_world(tmp_path / "other")
    try:
        refused(inst, data, other.keyring.jwks(), Code.UNKNOWN_SIGNING_KEY)
    finally:
        other.store.close()


def test_response_applied_too_late(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license(), response_validity=60)
    inst.clock.now = NOW + 20 + 60
    refused(inst, data, jwks, Code.RESPONSE_EXPIRED)
    inst.clock.now = NOW + 20 + 59
    inst.client.activate(data, jwks=jwks)


def test_clock_behind_the_response(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license(), at=NOW + 10_000)
    inst.clock.now = NOW + 10_000 - 601
    refused(inst, data, jwks, Code.CLOCK_ROLLBACK)


def test_clock_behind_what_was_seen(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    inst.clock.now = NOW + 2 * DAY
    assert inst.client.status()["valid"]
    # Issued 300 s before the high-water mark, applied 700 s before it: only the mark catches it.
    data = request_and_process(world, inst, world.license(), at=NOW + 2 * DAY - 300)
    inst.clock.now = NOW + 2 * DAY - 700
    refused(inst, data, jwks, Code.CLOCK_ROLLBACK)


@pytest.mark.parametrize(
    ("status", "code"), [("suspended", Code.LICENSE_SUSPENDED), ("revoked", Code.LICENSE_REVOKED)]
)
def test_license_not_in_good_standing(
    world: World, make_client: MakeClient, jwks: dict[str, Any], status: str, code: Code
) -> None:
    inst = make_client()
    real = messages.parse_response(
        request_and_process(world, inst, world.license()), world.keyring.public_keys()
    )
    refused(inst, forge(world, real, status=status), jwks, code)


def test_expired_license(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license(expires_at=NOW + 100))
    inst.clock.now = NOW + 100
    refused(inst, data, jwks, Code.LICENSE_EXPIRED)


def test_deactivation_receipt_is_not_an_activation(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    receipt = world.process(inst.client.deactivation_request().encode(), now=NOW + 30)
    err = refused(inst, str(receipt.response).encode(), jwks, Code.MALFORMED_RESPONSE)
    assert "receipt" in err.message


def test_response_without_a_request(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    a, b = make_client("a"), make_client("b")
    data = request_and_process(world, a, world.license())
    refused(b, data, jwks, Code.WRONG_MACHINE)
    assert not b.path.exists()


def test_insecure_machine_key(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    (inst.path / "machine-key").chmod(0o644)
    refused(inst, data, jwks, Code.INSECURE_KEY_FILE)
    for call in (inst.client.status, lambda: inst.client.trial_request(product_id=world.product.id)):
        with pytest.raises(OfflineServiceError) as info:
            call()
        assert info.value.code is Code.INSECURE_KEY_FILE


# The response is built once; each example only tampers with it, so sharing the world is safe.
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("tamper")
    world = make_world(root)
    client = Client(root / "app", clock=lambda: NOW + 10, machine_id=lambda: "m")
    lic = world.license()
    token = client.activation_request(product_id=world.product.id, license_key=lic.key)
    data = str(world.process(token.encode(), now=NOW + 20).response).encode()
    yield client, data, world.keyring.jwks(world.product.id), root / "app"
    world.store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_changed_byte_is_refused(pristine: Any, data: st.DataObject) -> None:
    client, response, keys, path = pristine
    i = data.draw(st.integers(0, len(response) - 1))
    delta = data.draw(st.integers(1, 255))
    tampered = response[:i] + bytes([response[i] ^ delta]) + response[i + 1 :]
    before = snapshot(path)
    with pytest.raises(OfflineServiceError):
        client.activate(tampered, jwks=keys)
    assert snapshot(path) == before


# -- deactivation --------------------------------------------------------------------------------


def test_deactivation_frees_the_seat(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic, _ = activated(world, inst, jwks, activations=1)
    activation_id = inst.client.status()["activationId"]
    out = tmp_path / "deactivate.req"
    token = inst.client.deactivate(out)
    assert out.read_text() == token + "\n"
    assert inst.client.status()["code"] == "NOT_ACTIVATED"
    outcome = world.process(out.read_bytes(), now=NOW + 30)
    assert outcome.ok, outcome
    assert outcome.kind is Kind.DEACTIVATION and outcome.activation_id == activation_id
    assert world.reload_license(lic.key).used_activations == 0
    receipt = inst.client.verify_receipt(str(outcome.response).encode())  # pinned JWKS kept
    assert receipt.kind is Kind.DEACTIVATION and receipt.activation_id == activation_id


def test_old_response_cannot_be_reapplied_after_deactivation(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    _, data = activated(world, inst, jwks)
    inst.client.deactivate(tmp_path / "d.req")
    refused(inst, data, jwks, Code.UNEXPECTED_RESPONSE)


def test_deactivation_request_alone_keeps_the_activation(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    req = messages.parse_request(inst.client.deactivation_request().encode())
    assert req.kind is Kind.DEACTIVATION and req.activation_id == inst.client.status()["activationId"]
    assert inst.client.status()["valid"]
    with pytest.raises(OfflineServiceError) as info:
        inst.client.forget_activation(activation_id="act_other")
    assert info.value.code is Code.CONFLICT
    inst.client.forget_activation(activation_id=req.activation_id)
    assert inst.client.status()["code"] == "NOT_ACTIVATED"


def test_failed_write_keeps_the_activation(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.deactivate(tmp_path / "missing-dir" / "d.req")
    assert info.value.code is Code.STORAGE_ERROR
    assert inst.client.status()["valid"]


def test_nothing_to_deactivate(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    with pytest.raises(OfflineServiceError) as info:
        inst.client.deactivation_request()
    assert info.value.code is Code.NOT_ACTIVATED
    outcome = world.process(inst.client.trial_request(product_id=world.product.id).encode(), now=NOW + 20)
    inst.client.activate(str(outcome.response).encode(), jwks=jwks)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.deactivation_request()
    assert info.value.code is Code.NOT_ACTIVATED and "trial" in info.value.message


def test_receipt_must_be_a_deactivation(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    _, data = activated(world, inst, jwks)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.verify_receipt(data)
    assert info.value.code is Code.MALFORMED_RESPONSE


def test_activation_elsewhere_blocks_a_request_for_another_product(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    activated(world, inst, jwks)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activation_request(product_id="prod_other", license_key="K")
    assert info.value.code is Code.CONFLICT


# -- construction --------------------------------------------------------------------------------


def test_clock_offset_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        Client(tmp_path, allowed_clock_offset=-1)
    with pytest.raises(TypeError):
        Client(tmp_path, allowed_clock_offset=1.5)  # type: ignore[arg-type]


def test_response_must_be_bytes(world: World, make_client: MakeClient, jwks: dict[str, Any]) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    with pytest.raises(TypeError):
        inst.client.activate(data.decode(), jwks=jwks)  # type: ignore[arg-type]


def test_no_jwks_at_all(world: World, make_client: MakeClient) -> None:
    inst = make_client()
    data = request_and_process(world, inst, world.license())
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activate(data)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_jwks_given_to_the_constructor(world: World, tmp_path: Path, jwks: dict[str, Any]) -> None:
    client = Client(tmp_path / "app", jwks=jwks, clock=lambda: NOW + 10, machine_id=lambda: "m")
    lic = world.license()
    token = client.activation_request(product_id=world.product.id, license_key=lic.key)
    client.activate(str(world.process(token.encode(), now=NOW + 20).response).encode())
    assert client.check().license_id == lic.id
