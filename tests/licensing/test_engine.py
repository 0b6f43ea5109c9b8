"""The engine's decisions: every rejection code (each changing nothing), and what is granted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nacl.bindings
import pytest

from offline_service._b64 import b64url_encode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.messages import Kind, Response, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import DAY
from offline_service.licensing.engine import Outcome
from offline_service.licensing.models import UNLIMITED, License, LicenseStatus
from tests.db import rows
from tests.factories import NOW, Machine, World, make_world


def activation(world: World, machine: Machine, lic: License, **kw: Any) -> bytes:
    return machine.request(Kind.ACTIVATION, world.product.id, license_key=lic.key, **kw)


def deactivation(world: World, machine: Machine, activation_id: str, **kw: Any) -> bytes:
    return machine.request(Kind.DEACTIVATION, world.product.id, activation_id=activation_id, **kw)


def granted(world: World, data: bytes, *, now: int = NOW, **kw: Any) -> Outcome:
    outcome: Outcome = world.process(data, now=now, **kw)
    assert outcome.ok, outcome
    assert outcome.response is not None
    return outcome


def rejected(world: World, data: bytes, code: Code, *, now: int = NOW, **kw: Any) -> Outcome:
    """Process ``data``, expect ``code``, and check that no state changed."""
    before = world.snapshot()
    outcome: Outcome = world.process(data, now=now, **kw)
    assert outcome.code is code, outcome
    assert not outcome.ok
    assert outcome.response is None
    assert outcome.message
    assert world.snapshot() == before
    return outcome


def response_of(world: World, outcome: Outcome) -> Response:
    assert outcome.response is not None
    return parse_response(outcome.response.encode(), world.keyring.public_keys())


def live_activations(world: World, license_id: str) -> int:
    with world.store.read() as tx:
        return sum(1 for a in tx.activations(license_id) if a.deactivated_at is None)


# -- every rejection code ---------------------------------------------------------------------


def test_outcome_codes_are_code_members_and_ok_is_never_an_error(world: World) -> None:
    lic = world.license()
    outcome = granted(world, activation(world, world.machine("a"), lic))
    assert outcome.code is Code.OK and outcome.ok
    refused = world.process(b"garbage")
    assert refused.code is Code.MALFORMED_REQUEST and not refused.ok
    with pytest.raises(ValueError, match="not of an error"):
        OfflineServiceError(Code.OK)


def test_malformed_request(world: World) -> None:
    rejected(world, b"this is not a request file", Code.MALFORMED_REQUEST)


def test_malformed_request_missing_member(world: World) -> None:
    lic = world.license()
    m = world.machine()
    payload = jws.decode(activation(world, m, lic), typ=jws.REQUEST_TYP).payload
    del payload["fingerprint"]
    rejected(world, m.sign(payload), Code.MALFORMED_REQUEST)


def test_unsupported_version(world: World) -> None:
    lic = world.license()
    rejected(world, activation(world, world.machine(), lic, v=2), Code.UNSUPPORTED_VERSION)


def test_bad_signature(world: World) -> None:
    lic = world.license()
    token = activation(world, world.machine("a"), lic).decode()
    h, p, _ = token.split(".")
    # A valid Ed25519 signature of the same input, by a key other than the one in the header.
    other = nacl.bindings.crypto_sign(f"{h}.{p}".encode(), world.machine("b").secret_key)[:64]
    rejected(world, f"{h}.{p}.{b64url_encode(other)}".encode(), Code.BAD_SIGNATURE)


def test_request_expired(world: World) -> None:
    lic = world.license()
    max_age = world.engine.policy.max_request_age
    assert max_age == 30 * DAY
    rejected(
        world, activation(world, world.machine(), lic, issued_at=NOW - max_age - 1), Code.REQUEST_EXPIRED
    )


def test_request_exactly_at_the_maximum_age_is_accepted(world: World) -> None:
    lic = world.license()
    granted(world, activation(world, world.machine(), lic, issued_at=NOW - 30 * DAY))


def test_request_from_future(world: World) -> None:
    lic = world.license()
    rejected(world, activation(world, world.machine(), lic, issued_at=NOW + 301), Code.REQUEST_FROM_FUTURE)


def test_request_within_the_clock_skew_is_accepted(world: World) -> None:
    lic = world.license()
    granted(world, activation(world, world.machine(), lic, issued_at=NOW + 300))


def test_product_not_found(world: World) -> None:
    lic = world.license()
    data = world.machine().request(Kind.ACTIVATION, "prod_does_not_exist", license_key=lic.key)
    rejected(world, data, Code.PRODUCT_NOT_FOUND)


def test_license_not_found(world: World) -> None:
    world.license()
    data = world.machine().request(
        Kind.ACTIVATION, world.product.id, license_key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"
    )
    rejected(world, data, Code.LICENSE_NOT_FOUND)


def test_product_mismatch(world: World) -> None:
    other = admin.create_product(world.store, world.keyring, world.account, name="Other", now=NOW)
    lic = world.license(product_id=other.id)
    rejected(world, activation(world, world.machine(), lic), Code.PRODUCT_MISMATCH)


@pytest.mark.parametrize(
    ("status", "code"),
    [(LicenseStatus.SUSPENDED, Code.LICENSE_SUSPENDED), (LicenseStatus.REVOKED, Code.LICENSE_REVOKED)],
)
def test_license_suspended_or_revoked(world: World, status: LicenseStatus, code: Code) -> None:
    lic = world.license()
    admin.set_license_status(world.store, world.account, lic.key, status, now=NOW)
    rejected(world, activation(world, world.machine(), lic), code)


def test_license_reactivated_after_suspension_works_again(world: World) -> None:
    lic = world.license()
    admin.set_license_status(world.store, world.account, lic.key, LicenseStatus.SUSPENDED, now=NOW)
    rejected(world, activation(world, world.machine(), lic), Code.LICENSE_SUSPENDED)
    admin.set_license_status(world.store, world.account, lic.key, LicenseStatus.ACTIVE, now=NOW)
    granted(world, activation(world, world.machine(), lic))


def test_license_expired_at_a_fixed_date(world: World) -> None:
    lic = world.license(expires_at=NOW, now=NOW - 1)
    rejected(world, activation(world, world.machine(), lic), Code.LICENSE_EXPIRED)


@pytest.mark.parametrize("expires_at", [NOW - DAY, NOW])
def test_a_license_is_never_created_expired(world: World, expires_at: int) -> None:
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as raised:
        world.license(expires_at=expires_at)
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert "is not in the future" in raised.value.message
    assert world.snapshot() == before


def test_license_not_yet_expired(world: World) -> None:
    lic = world.license(expires_at=NOW + 1)
    outcome = granted(world, activation(world, world.machine(), lic))
    assert response_of(world, outcome).expires_at == NOW + 1


def test_license_validity_starts_at_first_activation(world: World) -> None:
    lic = world.license(validity_days=10, activations=5)
    assert world.reload_license(lic.key).expires_at is None
    first = NOW + 100 * DAY  # long after the license was made: the clock starts now, not at creation
    outcome = granted(world, activation(world, world.machine("a"), lic, issued_at=first), now=first)
    ends = first + 10 * DAY
    assert response_of(world, outcome).expires_at == ends
    assert world.reload_license(lic.key).expires_at == ends

    # A second activation does not restart the clock.
    later = ends - 1
    outcome = granted(world, activation(world, world.machine("b"), lic, issued_at=later), now=later)
    assert response_of(world, outcome).expires_at == ends
    assert world.reload_license(lic.key).expires_at == ends

    rejected(
        world, activation(world, world.machine("c"), lic, issued_at=ends), Code.LICENSE_EXPIRED, now=ends
    )


def test_activation_limit(world: World) -> None:
    lic = world.license(activations=1)
    granted(world, activation(world, world.machine("a"), lic))
    rejected(world, activation(world, world.machine("b"), lic), Code.ACTIVATION_LIMIT)
    assert world.reload_license(lic.key).used_activations == 1


def test_deactivation_limit(world: World) -> None:
    lic = world.license(deactivations=0)
    m = world.machine()
    act = granted(world, activation(world, m, lic))
    assert act.activation_id is not None
    rejected(world, deactivation(world, m, act.activation_id), Code.DEACTIVATION_LIMIT)
    assert live_activations(world, lic.id) == 1


def test_activation_not_found(world: World) -> None:
    rejected(
        world, deactivation(world, world.machine(), "act_000000000000000000000000"), Code.ACTIVATION_NOT_FOUND
    )


def test_machine_key_mismatch_other_machine(world: World) -> None:
    lic = world.license()
    act = granted(world, activation(world, world.machine("a"), lic))
    assert act.activation_id is not None
    rejected(world, deactivation(world, world.machine("b"), act.activation_id), Code.MACHINE_KEY_MISMATCH)


def test_machine_key_mismatch_same_fingerprint_other_key(world: World) -> None:
    lic = world.license()
    m = world.machine("a")
    act = granted(world, activation(world, m, lic))
    assert act.activation_id is not None
    impostor = Machine(fingerprint=m.fingerprint)
    rejected(world, deactivation(world, impostor, act.activation_id), Code.MACHINE_KEY_MISMATCH)


def test_trial_not_allowed(tmp_path: Path, backend: str) -> None:
    world = make_world(tmp_path, trial_days=0, backend=backend)
    try:
        rejected(world, world.machine().request(Kind.TRIAL, world.product.id), Code.TRIAL_NOT_ALLOWED)
    finally:
        world.store.close()


def test_trial_not_allowed_on_a_product_without_trials(world: World) -> None:
    other = admin.create_product(world.store, world.keyring, world.account, name="No trials", now=NOW)
    rejected(world, world.machine().request(Kind.TRIAL, other.id), Code.TRIAL_NOT_ALLOWED)


def test_request_too_large(world: World) -> None:
    lic = world.license()
    metadata = {f"k{i}": "x" * 1000 for i in range(16)}
    data = activation(world, world.machine(), lic, metadata=metadata)
    assert len(data) > jws.MAX_FILE_BYTES
    rejected(world, data, Code.REQUEST_TOO_LARGE)


def test_request_size_limit_is_exact(world: World) -> None:
    lic = world.license()
    data = activation(world, world.machine(), lic)
    # Trailing whitespace is stripped before parsing but counts towards the size.
    padded = data + b"\n" * (jws.MAX_FILE_BYTES - len(data))
    rejected(world, padded + b"\n", Code.REQUEST_TOO_LARGE)
    granted(world, padded)


def test_request_replayed_after_deactivation(world: World) -> None:
    lic = world.license()
    m = world.machine()
    request = activation(world, m, lic)
    act = granted(world, request)
    assert act.activation_id is not None
    granted(world, deactivation(world, m, act.activation_id))
    rejected(world, request, Code.REQUEST_REPLAYED)
    # A fresh request from the same machine is a new activation.
    again = granted(world, activation(world, m, lic))
    assert again.activation_id != act.activation_id
    assert not again.reissued


def test_engine_refuses_a_non_positive_response_validity(world: World) -> None:
    lic = world.license()
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as info:
        world.process(activation(world, world.machine(), lic), response_validity=0)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert world.snapshot() == before


def test_license_filter_hides_licenses(world: World) -> None:
    lic = world.license()
    m = world.machine()
    rejected(world, activation(world, m, lic), Code.LICENSE_NOT_FOUND, license_filter=lambda _: False)
    act = granted(world, activation(world, m, lic))
    assert act.activation_id is not None
    rejected(
        world,
        deactivation(world, m, act.activation_id),
        Code.ACTIVATION_NOT_FOUND,
        license_filter=lambda found: found.id != lic.id,
    )


# -- what is granted --------------------------------------------------------------------------


def test_activation_response_claims(world: World) -> None:
    lic = world.license(activations=3, deactivations=2, metadata={"tier": "pro"})
    m = world.machine()
    request = activation(world, m, lic)
    nonce = jws.decode(request, typ=jws.REQUEST_TYP).payload["nonce"]
    outcome = granted(world, request)

    r = response_of(world, outcome)
    assert outcome.kind is Kind.ACTIVATION
    assert (outcome.product_id, outcome.license_id) == (world.product.id, lic.id)
    assert not outcome.reissued
    assert r.kind is Kind.ACTIVATION
    assert r.kid == world.keyring.signer(world.product.id).kid
    assert r.product_id == world.product.id
    assert r.activation_id == outcome.activation_id
    assert r.license_id == lic.id
    assert r.fingerprint == m.fingerprint
    assert r.machine_key_thumbprint == jws.jwk_thumbprint(m.public_key)
    assert r.request_nonce == nonce
    assert r.status == "active"
    assert r.expires_at is None
    assert (r.allowed_activations, r.used_activations) == (3, 1)
    assert (r.allowed_deactivations, r.used_deactivations) == (2, 0)
    assert dict(r.metadata) == {"tier": "pro"}
    assert r.issued_at == NOW
    assert r.deactivated_at is None

    with world.store.read() as tx:
        (stored,) = tx.activations(lic.id)
    assert stored.id == outcome.activation_id
    assert stored.machine_key == m.public_key
    assert (stored.hostname, stored.os, stored.app_version) == ("host-fp-m1", "Linux", "1.0.0")


def test_used_activations_counts_each_new_machine(world: World) -> None:
    lic = world.license(activations=3)
    for i in range(3):
        outcome = granted(world, activation(world, world.machine(f"m{i}"), lic))
        assert response_of(world, outcome).used_activations == i + 1
    assert world.reload_license(lic.key).used_activations == 3
    assert live_activations(world, lic.id) == 3


def test_reactivation_of_the_same_machine_is_idempotent(world: World) -> None:
    lic = world.license(activations=1)
    m = world.machine()
    first = granted(world, activation(world, m, lic))
    before = world.snapshot()
    # Another request (new nonce) from the same machine, and the very same file again.
    again = granted(world, activation(world, m, lic))
    assert again.activation_id == first.activation_id
    assert again.reissued
    assert response_of(world, again).used_activations == 1
    snapshot = world.snapshot()
    assert snapshot["licenses"] == before["licenses"]
    assert snapshot["activations"] == before["activations"]
    assert world.reload_license(lic.key).used_activations == 1


def test_reprocessing_the_same_activation_file(world: World) -> None:
    lic = world.license(activations=1)
    request = activation(world, world.machine(), lic)
    first = granted(world, request)
    before = world.snapshot()
    again = granted(world, request, now=NOW + DAY)
    assert (again.activation_id, again.reissued) == (first.activation_id, True)
    assert world.snapshot() == before
    assert response_of(world, again).issued_at == NOW + DAY


def test_another_installation_cannot_take_over_a_machines_seat(world: World) -> None:
    lic = world.license(activations=2)
    old = world.machine()
    first = granted(world, activation(world, old, lic))
    assert first.activation_id is not None
    intruder = Machine(fingerprint=old.fingerprint)  # same fingerprint, another installation key
    before = world.snapshot()
    refused = rejected(world, activation(world, intruder, lic), Code.MACHINE_KEY_MISMATCH)
    # The message names the command that frees the seat, with the activation's id.
    assert f"offline-service activation release {first.activation_id}" in refused.message
    assert world.snapshot() == before
    # The intruder cannot free the seat either; the rightful installation still can.
    rejected(world, deactivation(world, intruder, first.activation_id), Code.MACHINE_KEY_MISMATCH)
    done = granted(world, deactivation(world, old, first.activation_id))
    assert response_of(world, done).used_activations == 0


def test_vendor_release_frees_the_seat_of_a_lost_installation(world: World) -> None:
    lic = world.license(activations=1, deactivations=0)
    lost = world.machine()
    first = granted(world, activation(world, lost, lic))
    assert first.activation_id is not None
    reinstalled = Machine(fingerprint=lost.fingerprint)
    rejected(world, activation(world, reinstalled, lic), Code.MACHINE_KEY_MISMATCH)
    admin.release_activation(world.store, world.account, first.activation_id, now=NOW + 1)
    after = world.reload_license(lic.key)
    assert (after.used_activations, after.used_deactivations) == (0, 0)  # not counted as a deactivation
    again = granted(world, activation(world, reinstalled, lic), now=NOW + 2)
    assert again.activation_id != first.activation_id
    with pytest.raises(OfflineServiceError) as info:
        admin.release_activation(world.store, world.account, first.activation_id, now=NOW + 3)
    assert info.value.code is Code.CONFLICT
    other, _ = admin.ensure_account(world.store, "other", now=NOW)
    with pytest.raises(OfflineServiceError) as info:
        admin.release_activation(world.store, other, again.activation_id, now=NOW + 3)
    assert info.value.code is Code.ACTIVATION_NOT_FOUND


def test_deactivation_frees_the_seat(world: World) -> None:
    lic = world.license(activations=1, deactivations=1)
    a, b = world.machine("a"), world.machine("b")
    act = granted(world, activation(world, a, lic))
    assert act.activation_id is not None
    done = granted(world, deactivation(world, a, act.activation_id, issued_at=NOW + 10), now=NOW + 10)
    assert (done.kind, done.activation_id, done.license_id) == (Kind.DEACTIVATION, act.activation_id, lic.id)
    r = response_of(world, done)
    assert r.kind is Kind.DEACTIVATION
    assert r.deactivated_at == NOW + 10
    assert (r.used_activations, r.used_deactivations) == (0, 1)
    granted(world, activation(world, b, lic, issued_at=NOW + 20), now=NOW + 20)
    assert world.reload_license(lic.key).used_activations == 1


def test_deactivation_processed_twice_is_counted_once(world: World) -> None:
    lic = world.license(activations=2, deactivations=5)
    m = world.machine()
    act = granted(world, activation(world, m, lic))
    assert act.activation_id is not None
    request = deactivation(world, m, act.activation_id)
    first = granted(world, request)
    assert not first.reissued
    before = world.snapshot()

    receipt = granted(world, request, now=NOW + DAY)

    assert receipt.reissued
    assert receipt.activation_id == act.activation_id
    assert world.snapshot() == before
    r = response_of(world, receipt)
    assert r.deactivated_at == NOW  # the original time, not the time of the reprint
    assert (r.used_activations, r.used_deactivations) == (0, 1)
    license = world.reload_license(lic.key)
    assert (license.used_activations, license.used_deactivations) == (0, 1)


def test_unlimited_activations_and_deactivations(world: World) -> None:
    lic = world.license(activations=UNLIMITED, deactivations=UNLIMITED)
    machines = [world.machine(f"m{i}") for i in range(12)]
    outcomes = [granted(world, activation(world, m, lic)) for m in machines]
    r = response_of(world, outcomes[-1])
    assert (r.allowed_activations, r.used_activations) == (UNLIMITED, 12)
    for m, o in zip(machines[:5], outcomes[:5], strict=True):
        assert o.activation_id is not None
        granted(world, deactivation(world, m, o.activation_id))
    license = world.reload_license(lic.key)
    assert (license.used_activations, license.used_deactivations) == (7, 5)
    assert live_activations(world, lic.id) == 7


def test_trial_is_granted_once_per_product_and_fingerprint(world: World) -> None:
    m = world.machine()
    first = granted(world, m.request(Kind.TRIAL, world.product.id))
    ends = NOW + 14 * DAY
    assert first.trial_ends_at == ends
    assert not first.reissued
    r = response_of(world, first)
    assert (r.kind, r.trial_ends_at, r.license_id) == (Kind.TRIAL, ends, None)
    before = world.snapshot()

    # Much later, and with a new installation key: the same trial, never a longer one.
    later = NOW + 100 * DAY
    reinstalled = Machine(fingerprint=m.fingerprint)
    again = granted(world, reinstalled.request(Kind.TRIAL, world.product.id, issued_at=later), now=later)
    assert again.reissued
    assert again.activation_id == first.activation_id
    assert again.trial_ends_at == ends
    r = response_of(world, again)
    assert r.trial_ends_at == ends
    assert r.machine_key_thumbprint == jws.jwk_thumbprint(reinstalled.public_key)
    assert world.snapshot() == before

    other = granted(world, world.machine("other").request(Kind.TRIAL, world.product.id))
    assert other.activation_id != first.activation_id
    assert len(world.snapshot()["trials"]) == 2


def test_trial_is_per_product(world: World) -> None:
    m = world.machine()
    other = admin.create_product(world.store, world.keyring, world.account, name="B", now=NOW, trial_days=3)
    a = granted(world, m.request(Kind.TRIAL, world.product.id))
    b = granted(world, m.request(Kind.TRIAL, other.id))
    assert (a.trial_ends_at, b.trial_ends_at) == (NOW + 14 * DAY, NOW + 3 * DAY)


def test_response_validity_defaults_to_three_days(world: World) -> None:
    lic = world.license()
    r = response_of(world, granted(world, activation(world, world.machine(), lic)))
    assert r.apply_before - r.issued_at == 3 * DAY


def test_response_validity_can_be_requested(world: World) -> None:
    lic = world.license()
    r = response_of(
        world, granted(world, activation(world, world.machine(), lic), response_validity=10 * DAY)
    )
    assert r.apply_before == NOW + 10 * DAY


def test_response_validity_is_capped_by_the_product(world: World) -> None:
    lic = world.license()
    assert world.product.max_response_validity == admin.DEFAULT_MAX_RESPONSE_VALIDITY
    r = response_of(
        world, granted(world, activation(world, world.machine("a"), lic), response_validity=365 * DAY)
    )
    assert r.apply_before == NOW + admin.DEFAULT_MAX_RESPONSE_VALIDITY

    short = admin.create_product(
        world.store,
        world.keyring,
        world.account,
        name="Short",
        now=NOW,
        max_response_validity=3600,
        trial_days=1,
    )
    lic2 = world.license(product_id=short.id)
    data = world.machine("b").request(Kind.ACTIVATION, short.id, license_key=lic2.key)
    r = response_of(world, granted(world, data))
    assert r.apply_before == NOW + 3600  # the 3-day default is capped too
    r = response_of(world, granted(world, world.machine("b").request(Kind.TRIAL, short.id)))
    assert r.apply_before == NOW + 3600


def test_process_many_gives_one_outcome_per_file_in_order(world: World) -> None:
    lic = world.license(activations=1)
    a, b, c = world.machine("a"), world.machine("b"), world.machine("c")
    files = [
        activation(world, a, lic),
        b"garbage",
        activation(world, b, lic),  # the seat was taken by the first file of this same batch
        c.request(Kind.TRIAL, world.product.id),
        b"",
        deactivation(world, c, "act_unknown"),
        activation(world, a, lic),  # same machine again, within the batch: reissued
    ]
    outcomes = world.engine.process_many(files, account_id=world.account.id, now=NOW)
    assert [o.code for o in outcomes] == [
        Code.OK,
        Code.MALFORMED_REQUEST,
        Code.ACTIVATION_LIMIT,
        Code.OK,
        Code.MALFORMED_REQUEST,
        Code.ACTIVATION_NOT_FOUND,
        Code.OK,
    ]
    assert all(type(o.code) is Code for o in outcomes)
    assert [o.kind for o in outcomes] == [
        Kind.ACTIVATION,
        None,
        Kind.ACTIVATION,
        Kind.TRIAL,
        None,
        Kind.DEACTIVATION,
        Kind.ACTIVATION,
    ]
    assert outcomes[6].activation_id == outcomes[0].activation_id
    assert outcomes[6].reissued
    for o in outcomes:
        assert (o.response is not None) == o.ok
    assert response_of(world, outcomes[0]).fingerprint == a.fingerprint
    assert response_of(world, outcomes[3]).fingerprint == c.fingerprint
    assert world.reload_license(lic.key).used_activations == 1


def test_process_many_of_nothing(world: World) -> None:
    assert world.engine.process_many([], account_id=world.account.id, now=NOW) == []


def test_accounts_are_isolated(world: World) -> None:
    lic = world.license()
    m = world.machine()
    act = granted(world, activation(world, m, lic))
    assert act.activation_id is not None
    other, created = admin.ensure_account(world.store, "other", now=NOW)
    assert created
    other_product = admin.create_product(world.store, world.keyring, other, name="Theirs", now=NOW)

    def as_other(data: bytes, code: Code) -> None:
        before = world.snapshot()
        outcome = world.engine.process(data, account_id=other.id, now=NOW)
        assert outcome.code is code, outcome
        assert world.snapshot() == before

    # The first account's product, license and activation are invisible from the second.
    as_other(activation(world, world.machine("x"), lic), Code.PRODUCT_NOT_FOUND)
    as_other(world.machine("x").request(Kind.TRIAL, world.product.id), Code.PRODUCT_NOT_FOUND)
    as_other(
        world.machine("x").request(Kind.ACTIVATION, other_product.id, license_key=lic.key),
        Code.LICENSE_NOT_FOUND,
    )
    as_other(deactivation(world, m, act.activation_id), Code.PRODUCT_NOT_FOUND)
    as_other(
        m.request(Kind.DEACTIVATION, other_product.id, activation_id=act.activation_id),
        Code.ACTIVATION_NOT_FOUND,
    )
    assert world.reload_license(lic.key).used_activations == 1


# -- audit log --------------------------------------------------------------------------------


def _audit_rows(world: World) -> list[tuple[Any, ...]]:
    return rows(world.store, "SELECT * FROM audit_log ORDER BY id")


def test_every_decision_is_audited_and_the_license_key_never_is(world: World) -> None:
    lic = world.license(activations=1, deactivations=1)
    suspended = world.license()
    admin.set_license_status(world.store, world.account, suspended.key, LicenseStatus.SUSPENDED, now=NOW)
    unknown_key = "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ"
    a, b = world.machine("a"), world.machine("b")
    start = len(_audit_rows(world))

    first = world.process(activation(world, a, lic))
    assert first.activation_id is not None
    files = [
        activation(world, a, lic),  # reissued
        activation(world, b, lic),  # limit
        activation(world, b, suspended),
        b.request(Kind.ACTIVATION, world.product.id, license_key=unknown_key),
        activation(world, b, lic, v=2),
        b"\x00garbage",
        activation(world, b, lic, issued_at=NOW - 31 * DAY),
        deactivation(world, a, first.activation_id),
        b.request(Kind.TRIAL, world.product.id),
    ]
    outcomes = [first] + [world.process(f) for f in files]

    rows = _audit_rows(world)[start:]
    # columns: id, at, account_id, actor, action, code, product_id, license_id, activation_id, detail
    assert [r[5] for r in rows] == [o.code for o in outcomes]
    assert [r[4] for r in rows] == [o.kind.value if o.kind else "unknown" for o in outcomes]
    assert {r[2] for r in rows} == {world.account.id}
    assert Code.OK in {o.code for o in outcomes} and len({o.code for o in outcomes}) >= 6
    assert rows[1][9] and "reissued" in rows[1][9]

    text = repr(_audit_rows(world))
    for key in (lic.key, suspended.key, unknown_key):
        assert key not in text
        assert key.replace("-", "") not in text


def test_license_key_typed_in_lower_case_without_hyphens_or_with_o_for_zero(world: World) -> None:
    lic = world.license()
    typed = lic.key.replace("-", "").lower().replace("0", "o").replace("1", "l")
    outcome = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=typed))
    assert outcome.ok, outcome
    assert outcome.license_id == lic.id


def test_metadata_with_control_characters_is_malformed(world: World) -> None:
    lic = world.license()
    before = world.snapshot()
    data = world.machine().request(
        Kind.ACTIVATION, world.product.id, license_key=lic.key, metadata={"note": "line\nbreak"}
    )
    rejected(world, data, Code.MALFORMED_REQUEST)
    assert world.snapshot() == before


@pytest.mark.parametrize(
    "metadata", [{"k": "x" * 1025}, {"": "v"}, {"k": "bell\x07"}, {f"k{i}": "v" for i in range(33)}]
)
def test_license_metadata_is_held_to_the_response_limits(world: World, metadata: dict[str, str]) -> None:
    with pytest.raises(OfflineServiceError) as info:
        world.license(metadata=metadata)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_counts_must_fit_a_signed_32_bit_integer(world: World) -> None:
    with pytest.raises(OfflineServiceError) as info:
        world.license(activations=2**31)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert world.license(activations=2**31 - 1).allowed_activations == 2**31 - 1


def test_a_stale_request_is_audited_with_its_kind_and_product(world: World) -> None:
    lic = world.license()
    old = world.machine().request(
        Kind.ACTIVATION, world.product.id, license_key=lic.key, issued_at=NOW - 31 * DAY
    )
    rejected(world, old, Code.REQUEST_EXPIRED)
    with world.store.read() as tx:
        entry = tx.audit_entries(world.account.id, 1)[0]
    assert (entry.action, entry.code, entry.product_id) == ("activation", "REQUEST_EXPIRED", world.product.id)


def test_kinds_narrows_what_a_caller_may_send_and_refuses_unrecorded(world: World) -> None:
    lic = world.license()
    trial = world.machine("t").request(Kind.TRIAL, world.product.id)
    act = world.machine("a").request(Kind.ACTIVATION, world.product.id, license_key=lic.key)
    before = world.snapshot()
    refused = world.process(trial, kinds=frozenset({Kind.ACTIVATION}))
    assert (refused.code, refused.kind) == ("MALFORMED_REQUEST", Kind.TRIAL)
    assert world.snapshot() == before
    assert world.process(act, kinds=frozenset({Kind.ACTIVATION})).ok


def test_an_outcome_carries_the_verified_request_and_nothing_to_do_opens_no_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lic = world.license()
    outcome = world.process(
        world.machine("a").request(Kind.ACTIVATION, world.product.id, license_key=lic.key)
    )
    assert outcome.request is not None and outcome.request.hostname == "host-fp-a"
    assert world.process(b"garbage").request is None
    opened: list[str] = []
    for name in ("write", "read", "write_lock_if_free"):
        method = getattr(world.store, name)
        monkeypatch.setattr(world.store, name, lambda m=method, n=name: (opened.append(n), m())[1])
    sqlite = world.database_url is None
    # SQLite counts every row this store's connection wrote
    before = rows(world.store, "SELECT total_changes()") if sqlite else None
    assert world.engine.process_many([], account_id=world.account.id, now=NOW) == []
    assert opened == []
    if sqlite:
        assert rows(world.store, "SELECT total_changes()") == before
