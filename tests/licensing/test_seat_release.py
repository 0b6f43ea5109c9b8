"""An organization admin releases a lost machine's seat (``licensing.seat_release``), on every
backend: the vendor's per-product setting, who may, what it counts, what it refuses without
changing anything, and releases racing in real processes."""

from __future__ import annotations

import multiprocessing
import queue
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from offline_service.accounts import membership
from offline_service.accounts.models import Role, User
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing import seat_release
from offline_service.licensing import services as admin
from offline_service.licensing.models import UNLIMITED, License
from offline_service.settings import Settings
from offline_service.store import open_store
from tests import db, people
from tests.factories import NOW, Machine, World

TIMEOUT = 120


@dataclass
class Setup:
    w: World
    ann: User  # admin of Org A, which owns ``lic``
    bob: User  # a user of Org A
    zed: User  # admin of Org B
    stranger: User  # admin of an organization of another account
    lic: License
    machines: dict[str, Machine] = field(default_factory=dict)

    def activate(self, name: str, license: License | None = None) -> str:
        lic = license or self.lic
        machine = self.machines.setdefault(name, self.w.machine(name))
        outcome = self.w.process(machine.request(Kind.ACTIVATION, self.w.product.id, license_key=lic.key))
        assert outcome.ok, outcome
        return str(outcome.activation_id)

    def allow(self, allowed: bool = True) -> None:
        admin.set_customer_release(self.w.store, self.w.account, self.w.product.id, allowed, now=NOW)

    def license(self) -> License:
        return self.w.reload_license(self.lic.key)

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        return {**self.w.snapshot(), "audit_log": db.table(self.w.store, "audit_log")}


def _user(w: World, email: str, role: Role, org: str | None, account: Any = None) -> User:
    return people.create_user(
        w.store,
        account or w.account,
        email=email,
        role=role,
        organization=org,
        password="correct horse battery",
        cost=Cost.MINIMUM,
        now=NOW,
    )


def _setup(w: World, *, deactivations: int = 2) -> Setup:
    for name in ("Org A", "Org B"):
        people.create_organization(w.store, w.account, name=name, now=NOW)
    other, _ = admin.ensure_account(w.store, "other", now=NOW)
    people.create_organization(w.store, other, name="Org A", now=NOW)
    return Setup(
        w=w,
        ann=_user(w, "ann@a.example", Role.ORGANIZATION_ADMIN, "Org A"),
        bob=_user(w, "bob@a.example", Role.USER, "Org A"),
        zed=_user(w, "zed@b.example", Role.ORGANIZATION_ADMIN, "Org B"),
        stranger=_user(w, "ann@a.example", Role.ORGANIZATION_ADMIN, "Org A", account=other),
        lic=w.license(activations=3, deactivations=deactivations, owner_organization="Org A"),
    )


@pytest.fixture
def s(world: World) -> Setup:
    return _setup(world)


def _refused(code: Code, s: Setup, user: User, license_id: str, activation_id: str) -> None:
    before = s.state()
    with pytest.raises(OfflineServiceError) as info:
        seat_release.release_seat(s.w.store, user, license_id, activation_id, now=NOW + 60)
    assert info.value.code is code, info.value
    assert s.state() == before  # nothing changed, not even the audit log


# -- the vendor's setting ----------------------------------------------------------------------


def test_the_setting_is_off_by_default_and_the_vendor_turns_it_on_and_off(s: Setup) -> None:
    assert s.w.product.customer_release is False
    s.allow()
    with s.w.store.read() as tx:
        assert tx.product(s.w.account.id, s.w.product.id).customer_release is True  # type: ignore[union-attr]
    s.allow(False)
    with s.w.store.read() as tx:
        assert tx.product(s.w.account.id, s.w.product.id).customer_release is False  # type: ignore[union-attr]
    details = [
        dict(e.detail) for e in db_audit(s) if e.action == "product.update" and e.product_id == s.w.product.id
    ]
    assert details == [{"customerRelease": "off"}, {"customerRelease": "on"}]  # newest first


def test_the_setting_of_a_product_of_another_account_is_not_found(s: Setup) -> None:
    other, _ = admin.ensure_account(s.w.store, "other", now=NOW)
    with pytest.raises(OfflineServiceError) as info:
        admin.set_customer_release(s.w.store, other, s.w.product.id, True, now=NOW)
    assert info.value.code is Code.PRODUCT_NOT_FOUND


def db_audit(s: Setup) -> list[Any]:
    with s.w.store.read() as tx:
        return list(tx.audit_entries(s.w.account.id, 1000))


# -- a release -------------------------------------------------------------------------------


def test_an_admin_releases_a_seat_counted_as_a_deactivation(s: Setup) -> None:
    s.allow()
    lost, kept = s.activate("lost"), s.activate("kept")
    assert (s.license().used_activations, s.license().used_deactivations) == (2, 0)

    returned = seat_release.release_seat(s.w.store, s.ann, s.lic.id, lost, now=NOW + 60)

    assert (returned.used_activations, returned.used_deactivations) == (1, 1)
    assert (s.license().used_activations, s.license().used_deactivations) == (1, 1)
    with s.w.store.read() as tx:
        by_id = {a.id: a for a in tx.activations(s.lic.id)}
    assert by_id[lost].deactivated_at == NOW + 60 and by_id[kept].deactivated_at is None
    [entry] = [e for e in db_audit(s) if e.action == seat_release.ACTION]
    assert (entry.actor, entry.code, entry.license_id, entry.activation_id) == (
        f"user:{s.ann.id}",
        "OK",
        s.lic.id,
        lost,
    )
    assert entry.detail["fingerprint"] == "fp-lost"
    # The freed seat is taken by another machine like any other; the lost one's old file is refused.
    s.activate("new")
    assert s.license().used_activations == 2


def test_a_release_of_an_unlimited_license_needs_no_deactivation_left(world: World) -> None:
    s = _setup(world, deactivations=UNLIMITED)
    s.allow()
    for name in ("m1", "m2", "m3"):
        seat_release.release_seat(s.w.store, s.ann, s.lic.id, s.activate(name), now=NOW)
    assert (s.license().used_activations, s.license().used_deactivations) == (0, 3)


def test_the_view_of_the_confirmation_page(s: Setup) -> None:
    s.allow()
    activation_id = s.activate("lost")
    view = seat_release.release_view(s.w.store, s.ann, s.lic.id, activation_id)
    assert (view.activation.id, view.license.id, view.product.id) == (activation_id, s.lic.id, s.w.product.id)
    assert view.refusal is None and view.deactivations_left == 2


# -- refusals --------------------------------------------------------------------------------


def test_nobody_may_release_while_the_product_does_not_allow_it(s: Setup) -> None:
    activation_id = s.activate("lost")
    _refused(Code.RELEASE_NOT_ALLOWED, s, s.ann, s.lic.id, activation_id)
    with pytest.raises(OfflineServiceError) as info:
        seat_release.release_view(s.w.store, s.ann, s.lic.id, activation_id)
    assert info.value.code is Code.RELEASE_NOT_ALLOWED
    s.allow()
    s.allow(False)  # turned off again
    _refused(Code.RELEASE_NOT_ALLOWED, s, s.ann, s.lic.id, activation_id)


def test_only_an_admin_of_the_owning_organization_may_release(s: Setup) -> None:
    s.allow()
    activation_id = s.activate("lost")
    _refused(Code.FORBIDDEN, s, s.bob, s.lic.id, activation_id)
    _refused(Code.LICENSE_NOT_FOUND, s, s.zed, s.lic.id, activation_id)
    _refused(Code.LICENSE_NOT_FOUND, s, s.stranger, s.lic.id, activation_id)
    _refused(Code.FORBIDDEN, s, replace(s.ann, disabled=True), s.lic.id, activation_id)
    for user, code in ((s.bob, Code.FORBIDDEN), (s.zed, Code.LICENSE_NOT_FOUND)):
        with pytest.raises(OfflineServiceError) as info:
            seat_release.release_view(s.w.store, user, s.lic.id, activation_id)
        assert info.value.code is code


def test_a_license_of_no_organization_is_not_found(s: Setup) -> None:
    s.allow()
    own = s.w.license(owner_user_email="bob@a.example")
    activation_id = s.activate("bobs", own)
    _refused(Code.LICENSE_NOT_FOUND, s, s.ann, own.id, activation_id)


def test_an_admin_demoted_since_the_session_began_is_refused_in_the_transaction(s: Setup) -> None:
    s.allow()
    activation_id = s.activate("lost")
    # Another admin of Org A takes ann's role; ann's session still holds the User it began with.
    other_admin = _user(s.w, "amy@a.example", Role.ORGANIZATION_ADMIN, "Org A")
    membership.update_user(
        s.w.store,
        Scope.of_admin(other_admin),
        s.ann.id,
        first_name="",
        last_name="",
        role=Role.USER.value,
        now=NOW,
    )
    _refused(Code.FORBIDDEN, s, s.ann, s.lic.id, activation_id)


def test_an_activation_of_another_license_is_not_found(s: Setup) -> None:
    s.allow()
    other = s.w.license(owner_organization="Org A")
    elsewhere = s.activate("elsewhere", other)
    _refused(Code.ACTIVATION_NOT_FOUND, s, s.ann, s.lic.id, elsewhere)
    _refused(Code.ACTIVATION_NOT_FOUND, s, s.ann, s.lic.id, "act_" + "0" * 32)


def test_a_deactivated_machine_is_a_conflict(s: Setup) -> None:
    s.allow()
    activation_id = s.activate("lost")
    seat_release.release_seat(s.w.store, s.ann, s.lic.id, activation_id, now=NOW)
    _refused(Code.CONFLICT, s, s.ann, s.lic.id, activation_id)
    view = seat_release.release_view(s.w.store, s.ann, s.lic.id, activation_id)
    assert view.refusal is not None and view.refusal.code is Code.CONFLICT
    assert (s.license().used_activations, s.license().used_deactivations) == (0, 1)


def test_no_release_without_a_deactivation_left(world: World) -> None:
    s = _setup(world, deactivations=1)
    s.allow()
    first, second = s.activate("m1"), s.activate("m2")
    seat_release.release_seat(s.w.store, s.ann, s.lic.id, first, now=NOW)
    _refused(Code.DEACTIVATION_LIMIT, s, s.ann, s.lic.id, second)
    view = seat_release.release_view(s.w.store, s.ann, s.lic.id, second)
    assert view.refusal is not None and view.refusal.code is Code.DEACTIVATION_LIMIT
    assert view.deactivations_left == 0
    # The engine's deactivations and the admin's releases draw on the same allowance.
    request = s.machines["m2"].request(Kind.DEACTIVATION, s.w.product.id, activation_id=second)
    assert s.w.process(request).code == Code.DEACTIVATION_LIMIT


def test_a_release_after_the_engine_used_the_last_deactivation_is_refused(world: World) -> None:
    s = _setup(world, deactivations=1)
    s.allow()
    first, second = s.activate("m1"), s.activate("m2")
    request = s.machines["m1"].request(Kind.DEACTIVATION, s.w.product.id, activation_id=first)
    assert s.w.process(request).ok
    _refused(Code.DEACTIVATION_LIMIT, s, s.ann, s.lic.id, second)


# -- races in real processes -----------------------------------------------------------------


def _worker(
    settings: Settings, user: User, license_id: str, activation_id: str, barrier: Any, results: Any
) -> None:
    """Runs in a spawned process: open the store afresh, wait for the others, release."""
    try:
        store = open_store(settings)
        try:
            barrier.wait(timeout=TIMEOUT)
            try:
                seat_release.release_seat(store, user, license_id, activation_id, now=NOW + 60)
                results.put("OK")
            except OfflineServiceError as exc:
                results.put(exc.code.value)
        finally:
            store.close()
    except BaseException as exc:  # reported to the parent, which fails the test with it
        results.put(f"CRASH {exc!r}")
        raise


def _race(s: Setup, activation_ids: list[str]) -> list[str]:
    """Release each activation in its own process, all at once; the codes, sorted."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(activation_ids))
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_worker, args=(s.w.settings(), s.ann, s.lic.id, a, barrier, results))
        for a in activation_ids
    ]
    for p in processes:
        p.start()
    try:
        codes = [results.get(timeout=TIMEOUT) for _ in processes]
    except queue.Empty:
        pytest.fail("a worker process did not report")
    finally:
        for p in processes:
            p.join(timeout=TIMEOUT)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes), codes
    return sorted(codes)


@pytest.mark.slow
def test_racing_releases_of_one_machine_count_once(world: World) -> None:
    s = _setup(world, deactivations=3)
    s.allow()
    activation_id = s.activate("lost")

    codes = _race(s, [activation_id] * 4)

    assert codes == ["CONFLICT"] * 3 + ["OK"], codes
    assert (s.license().used_activations, s.license().used_deactivations) == (0, 1)
    assert len([e for e in db_audit(s) if e.action == seat_release.ACTION]) == 1


@pytest.mark.slow
def test_racing_releases_of_different_machines_take_the_last_deactivation_once(world: World) -> None:
    s = _setup(world, deactivations=1)
    s.allow()
    machines = [s.activate(f"m{i}") for i in range(3)]

    codes = _race(s, machines)

    assert codes == ["DEACTIVATION_LIMIT"] * 2 + ["OK"], codes
    assert (s.license().used_activations, s.license().used_deactivations) == (2, 1)
    live = db.rows(
        s.w.store,
        "SELECT COUNT(*) FROM activations WHERE license_id = ? AND deactivated_at IS NULL",
        s.lic.id,
    )
    assert live[0][0] == 2
