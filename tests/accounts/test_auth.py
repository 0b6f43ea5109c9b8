"""Logins with back-off and the credentials that stand for a logged-in person (no HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline_service.accounts import auth
from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.errors import Code, OfflineServiceError
from tests import db, people
from tests.bursts import PasswordGate, burst
from tests.factories import NOW, World, make_world

PASSWORD = "correct horse battery"


@pytest.fixture
def w(tmp_path: Path, backend: str) -> Iterator[World]:
    world = make_world(tmp_path, backend=backend)
    people.create_organization(world.store, world.account, name="Org A", now=NOW)
    people.create_organization(world.store, world.account, name="Org B", now=NOW)
    yield world
    world.store.close()


def user(
    w: World, email: str, role: Role = Role.USER, org: str | None = "Org A", account: Account | None = None
) -> None:
    people.create_user(
        w.store,
        account or w.account,
        email=email,
        role=role,
        organization=org,
        password=PASSWORD,
        cost=Cost.MINIMUM,
        now=NOW,
    )


def login(
    w: World,
    email: str,
    password: str = PASSWORD,
    *,
    address: str = "10.0.0.1",
    now: int = NOW,
    alias: str = "default",
):  # type: ignore[no-untyped-def]
    return auth.authenticate(
        w.store,
        account_alias=alias,
        email=email,
        password=password,
        address=address,
        now=now,
        cost=Cost.MINIMUM,
    )


# -- logins and credentials --------------------------------------------------------------------


def test_login_failures_back_off_per_account_email_and_per_address(w: World) -> None:
    user(w, "ann@example.com")
    for _ in range(auth.FREE_FAILURES):
        with pytest.raises(OfflineServiceError) as info:
            login(w, "ann@example.com", "wrong password!")
        assert info.value.code is Code.INVALID_CREDENTIALS
    with pytest.raises(OfflineServiceError) as info:
        login(w, "ann@example.com", "wrong password!")
    assert info.value.code is Code.INVALID_CREDENTIALS
    # Now locked for this account+email, even with the right password and from another address.
    with pytest.raises(auth.LoginThrottled) as throttled:
        login(w, "ann@example.com", address="10.9.9.9")
    assert throttled.value.code is Code.RATE_LIMITED and throttled.value.retry_after == 2
    assert login(w, "ann@example.com", address="10.9.9.9", now=NOW + 2).email == "ann@example.com"


SEQUENTIAL_ALLOWANCE = auth.FREE_FAILURES + 1  # checks before the first lock, one at a time


def _wrong(w: World, *, now: int = NOW) -> Callable[[], object]:
    return lambda: login(w, "ann@example.com", "wrong password!", now=now)


def test_a_concurrent_burst_gets_no_more_password_checks_than_sequential_attempts(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    user(w, "ann@example.com")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(auth, "verify_password", gate)
    with burst(gate, 20, _wrong(w)) as b:
        b.wait_until_decided()
        assert gate.checks == SEQUENTIAL_ALLOWANCE
        # A right password inside the burst is refused too: the counter is already locked.
        with pytest.raises(auth.LoginThrottled):
            login(w, "ann@example.com", address="10.9.9.9")
    assert sorted(b.codes, key=str) == sorted(
        [Code.INVALID_CREDENTIALS] * SEQUENTIAL_ALLOWANCE + [Code.RATE_LIMITED] * (20 - SEQUENTIAL_ALLOWANCE),
        key=str,
    )
    assert gate.checks == SEQUENTIAL_ALLOWANCE


def test_a_right_password_inside_a_burst_is_refused(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    user(w, "ann@example.com")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(auth, "verify_password", gate)
    with burst(gate, SEQUENTIAL_ALLOWANCE, _wrong(w)) as b:
        b.wait_until_decided()  # all still being checked
        with pytest.raises(auth.LoginThrottled):
            login(w, "ann@example.com", address="10.9.9.9")
    assert b.codes == [Code.INVALID_CREDENTIALS] * SEQUENTIAL_ALLOWANCE


def test_a_burst_just_after_a_lock_expires_gets_one_check(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    user(w, "ann@example.com")
    for _ in range(SEQUENTIAL_ALLOWANCE):
        with pytest.raises(OfflineServiceError):
            login(w, "ann@example.com", "wrong password!")
    with pytest.raises(auth.LoginThrottled) as throttled:
        login(w, "ann@example.com", "wrong password!")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(auth, "verify_password", gate)
    with burst(gate, 12, _wrong(w, now=NOW + throttled.value.retry_after)) as b:
        b.wait_until_decided()
        assert gate.checks == 1
    assert b.codes.count(Code.INVALID_CREDENTIALS) == 1 and b.codes.count(Code.RATE_LIMITED) == 11


def test_a_right_password_while_locked_is_refused_and_counts_nothing(w: World) -> None:
    user(w, "ann@example.com")
    for _ in range(SEQUENTIAL_ALLOWANCE):
        with pytest.raises(OfflineServiceError):
            login(w, "ann@example.com", "wrong password!")
    with pytest.raises(auth.LoginThrottled) as throttled:
        login(w, "ann@example.com")
    assert throttled.value.retry_after == 2  # refused attempts do not lengthen the wait
    assert login(w, "ann@example.com", now=NOW + 2).email == "ann@example.com"


def test_successful_logins_never_throttle_their_address(w: World) -> None:
    # Each attempt is counted up front; a success gives its count back, so an office behind one
    # address can log in all day, and its failures before and after still add up.
    user(w, "ann@example.com")
    user(w, "bob@example.com")
    for _ in range(auth.FREE_FAILURES):
        with pytest.raises(OfflineServiceError) as info:
            login(w, "nobody@example.com", "wrong password!")
        assert info.value.code is Code.INVALID_CREDENTIALS
    for _ in range(3 * SEQUENTIAL_ALLOWANCE):
        assert login(w, "ann@example.com").email == "ann@example.com"
    with pytest.raises(OfflineServiceError) as info:
        login(w, "bob@example.com", "wrong password!")
    assert info.value.code is Code.INVALID_CREDENTIALS  # the address's sixth failure: now locked
    with pytest.raises(auth.LoginThrottled):
        login(w, "ann@example.com")


def test_unknown_account_and_unknown_email_fail_like_a_wrong_password(w: World) -> None:
    user(w, "ann@example.com")
    for alias, email in (("nope", "ann@example.com"), ("default", "nobody@example.com")):
        with pytest.raises(OfflineServiceError) as info:
            login(w, email, alias=alias, address="10.0.0.2")
        assert (info.value.code, info.value.message) == (
            Code.INVALID_CREDENTIALS,
            "invalid email or password",
        )


def test_credentials_expire_are_revocable_and_are_stored_hashed(w: World) -> None:
    user(w, "ann@example.com")
    ann = login(w, "ann@example.com")
    token = auth.issue_credential(w.store, ann, kind="session", lifetime=60, now=NOW)
    assert auth.resolve_credential(w.store, token, kind="session", now=NOW + 59)[0].id == ann.id
    for kind, now in (("access", NOW), ("session", NOW + 60)):
        with pytest.raises(OfflineServiceError) as info:
            auth.resolve_credential(w.store, token, kind=kind, now=now)
        assert info.value.code is Code.UNAUTHENTICATED
    stored = db.rows(w.store, "SELECT token_hash FROM credentials")
    assert all(token.encode() not in row[0] for row in stored)
    auth.revoke_credential(w.store, token, now=NOW + 1)
    with pytest.raises(OfflineServiceError):
        auth.resolve_credential(w.store, token, kind="session", now=NOW + 2)
