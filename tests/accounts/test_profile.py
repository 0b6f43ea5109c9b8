"""A person's own changes (no HTTP): names, email, password, preferences, sessions and personal
access tokens; each re-checks the person, needs the password where it should, and is audited."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from offline_service.accounts import auth, profile
from offline_service.accounts.models import Role, User
from offline_service.accounts.passwords import Cost, verify_password
from offline_service.errors import Code, OfflineServiceError
from tests import people
from tests.bursts import PasswordGate, burst
from tests.db import rows
from tests.factories import NOW, World, make_world

PASSWORD = "correct horse battery"
NEW = "a brand new passphrase 7"
ADDRESS = "10.0.0.7"
HOUR = 3600


@pytest.fixture
def w(tmp_path: Path, backend: str) -> Iterator[World]:
    world = make_world(tmp_path, backend=backend)
    for email in ("ann@example.com", "bob@example.com"):
        people.create_user(
            world.store,
            world.account,
            email=email,
            role=Role.USER,
            password=PASSWORD,
            cost=Cost.MINIMUM,
            now=NOW,
        )
    yield world
    world.store.close()


def _user(w: World, email: str = "ann@example.com") -> User:
    with w.store.read() as tx:
        found = tx.user_by_email(w.account.id, email)
    assert found is not None
    return found


def _refused(code: Code, call: Any, *args: Any, **kw: Any) -> OfflineServiceError:
    with pytest.raises(OfflineServiceError) as info:
        call(*args, **kw)
    assert info.value.code is code, info.value
    return info.value


def _actions(w: World) -> list[str]:
    with w.store.read() as tx:
        return [e.action for e in tx.audit_entries(w.account.id, limit=100)]


def test_names_are_checked_and_saved(w: World) -> None:
    ann = profile.update_name(w.store, _user(w), first_name=" Ann ", last_name="Lee", now=NOW)
    assert (_user(w).first_name, _user(w).last_name) == ("Ann", "Lee") == (ann.first_name, ann.last_name)
    assert _actions(w)[0] == "profile.name"
    _refused(
        Code.INVALID_ARGUMENT, profile.update_name, w.store, ann, first_name="\x00", last_name="", now=NOW
    )


def test_email_change_needs_the_password_and_a_free_address(w: World) -> None:
    ann = _user(w)
    _refused(
        Code.WRONG_PASSWORD,
        profile.change_email,
        w.store,
        ann,
        email="ann@new.example",
        password="wrong wrong wrong",
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    _refused(
        Code.CONFLICT,
        profile.change_email,
        w.store,
        ann,
        email="BOB@example.com",
        password=PASSWORD,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    _refused(
        Code.INVALID_ARGUMENT,
        profile.change_email,
        w.store,
        ann,
        email="Ann@Example.com",
        password=PASSWORD,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    assert _user(w).email == "ann@example.com"
    profile.change_email(
        w.store, ann, email="ann@new.example", password=PASSWORD, address=ADDRESS, now=NOW, cost=Cost.MINIMUM
    )
    assert _user(w, "ann@new.example").id == ann.id
    with w.store.read() as tx:
        entry = tx.audit_entries(w.account.id, limit=1)[0]
    assert entry.action == "profile.email" and dict(entry.detail) == {
        "old": "ann@example.com",
        "new": "ann@new.example",
    }
    # The old address no longer logs in; the new one does.
    login = auth.authenticate(
        w.store,
        account_alias="default",
        email="ann@new.example",
        password=PASSWORD,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    assert login.id == ann.id


def test_wrong_current_passwords_count_toward_the_login_back_off(w: World) -> None:
    ann = _user(w)
    for _ in range(auth.FREE_FAILURES + 1):
        _refused(
            Code.WRONG_PASSWORD,
            profile.change_email,
            w.store,
            ann,
            email="x@new.example",
            password="wrong wrong wrong",
            address=ADDRESS,
            now=NOW,
            cost=Cost.MINIMUM,
        )
    # Now even the right password waits, here and at the login.
    _refused(
        Code.RATE_LIMITED,
        profile.change_email,
        w.store,
        ann,
        email="x@new.example",
        password=PASSWORD,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    _refused(
        Code.RATE_LIMITED,
        auth.authenticate,
        w.store,
        account_alias="default",
        email="ann@example.com",
        password=PASSWORD,
        address="10.9.9.9",
        now=NOW,
        cost=Cost.MINIMUM,
    )
    assert _actions(w).count("profile.password_check") == auth.FREE_FAILURES + 1


def test_a_burst_of_wrong_current_passwords_gets_no_more_checks_than_one_at_a_time(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = _user(w)
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(profile, "verify_password", gate)

    def wrong() -> object:
        return profile.change_email(
            w.store, ann, email="x@new.example", password="wrong wrong wrong", address=ADDRESS, now=NOW
        )

    with burst(gate, 16, wrong) as b:
        b.wait_until_decided()
        assert gate.checks == auth.FREE_FAILURES + 1
        # The right password waits too, here and at the login.
        _refused(
            Code.RATE_LIMITED,
            profile.change_email,
            w.store,
            ann,
            email="x@new.example",
            password=PASSWORD,
            address="10.9.9.9",
            now=NOW,
            cost=Cost.MINIMUM,
        )
    assert b.codes.count(Code.WRONG_PASSWORD) == auth.FREE_FAILURES + 1
    assert b.codes.count(Code.RATE_LIMITED) == 16 - auth.FREE_FAILURES - 1
    assert _user(w).email == "ann@example.com"


def test_a_right_current_password_gives_its_attempt_back(w: World) -> None:
    # Each check is counted before the password is verified; a right one gives the address its
    # attempt back and clears the person's counter, as a login does.
    ann = [_user(w)]

    def change(email: str, password: str) -> User:
        ann[0] = profile.change_email(
            w.store, ann[0], email=email, password=password, address=ADDRESS, now=NOW, cost=Cost.MINIMUM
        )
        return ann[0]

    for _ in range(auth.FREE_FAILURES):
        _refused(Code.WRONG_PASSWORD, change, "x@new.example", "wrong wrong wrong")
    assert change("ann@new.example", PASSWORD).email == "ann@new.example"
    assert change("ann@example.com", PASSWORD).email == "ann@example.com"
    _refused(Code.WRONG_PASSWORD, change, "x@new.example", "wrong wrong wrong")  # the address's sixth
    _refused(Code.RATE_LIMITED, change, "x@new.example", PASSWORD)


def test_password_change_ends_every_other_session_and_token_but_this_one(w: World) -> None:
    ann = _user(w)
    store = w.store
    this = auth.issue_credential(store, ann, kind="session", lifetime=HOUR, now=NOW)
    other = auth.issue_credential(store, ann, kind="session", lifetime=HOUR, now=NOW)
    api = auth.issue_credential(store, ann, kind="access", lifetime=HOUR, now=NOW)
    _, personal = profile.create_personal_token(store, ann, name="script", days=30, now=NOW)
    bobs = auth.issue_credential(store, _user(w, "bob@example.com"), kind="session", lifetime=HOUR, now=NOW)
    ended = profile.change_password(
        store,
        ann,
        current_password=PASSWORD,
        new_password=NEW,
        keep=this,
        address=ADDRESS,
        now=NOW + 1,
        cost=Cost.MINIMUM,
    )
    assert ended == 3
    assert verify_password(NEW, _user(w).password_hash, Cost.MINIMUM)
    assert auth.resolve_credential(store, this, kind="session", now=NOW + 2)[0].id == ann.id
    assert auth.resolve_credential(store, bobs, kind="session", now=NOW + 2)[0].email == "bob@example.com"
    for token, kind in ((other, "session"), (api, "access"), (personal, "personal")):
        _refused(Code.UNAUTHENTICATED, auth.resolve_credential, store, token, kind=kind, now=NOW + 2)
    assert _actions(w)[0] == "profile.password"


@pytest.mark.parametrize(
    ("current", "new", "code"),
    [
        ("wrong wrong wrong", NEW, Code.WRONG_PASSWORD),
        (PASSWORD, "short", Code.INVALID_ARGUMENT),
        (PASSWORD, "ann@example.com", Code.INVALID_ARGUMENT),
        (PASSWORD, PASSWORD, Code.INVALID_ARGUMENT),
    ],
)
def test_bad_password_changes_change_nothing(w: World, current: str, new: str, code: Code) -> None:
    ann = _user(w)
    session = auth.issue_credential(w.store, ann, kind="session", lifetime=HOUR, now=NOW)
    other = auth.issue_credential(w.store, ann, kind="session", lifetime=HOUR, now=NOW)
    _refused(
        code,
        profile.change_password,
        w.store,
        ann,
        current_password=current,
        new_password=new,
        keep=session,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    assert _user(w).password_hash == ann.password_hash
    assert auth.resolve_credential(w.store, other, kind="session", now=NOW)[0].id == ann.id


def test_a_password_changed_meanwhile_is_a_conflict(w: World) -> None:
    stale = _user(w)
    profile.change_password(
        w.store,
        stale,
        current_password=PASSWORD,
        new_password=NEW,
        keep="",
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    # ``stale`` still carries the old hash, which the old password matches: the write must notice.
    _refused(
        Code.CONFLICT,
        profile.change_email,
        w.store,
        stale,
        email="ann@new.example",
        password=PASSWORD,
        address=ADDRESS,
        now=NOW,
        cost=Cost.MINIMUM,
    )


def test_preferences(w: World) -> None:
    ann = _user(w)
    updated = profile.update_preferences(
        w.store,
        ann,
        time_zone="Europe/Paris",
        notify_new_activation=True,
        notify_license_expiry=False,
        now=NOW,
    )
    assert _user(w) == updated
    assert (updated.time_zone, updated.notify_new_activation, updated.notify_license_expiry) == (
        "Europe/Paris",
        True,
        False,
    )
    # The label the profile page offers is read back as its name.
    labelled = profile.update_preferences(
        w.store,
        ann,
        time_zone="Asia/Tokyo (UTC+09:00)",
        notify_new_activation=True,
        notify_license_expiry=False,
        now=NOW,
    )
    assert labelled.time_zone == "Asia/Tokyo"
    updated = profile.update_preferences(
        w.store,
        labelled,
        time_zone=" Europe/Paris ",
        notify_new_activation=True,
        notify_license_expiry=False,
        now=NOW,
    )
    assert updated.time_zone == "Europe/Paris"
    for zone in ("Mars/Olympus", "", "../../etc/passwd", "europe/paris", "Factory", "Etc/GMT+3"):
        _refused(
            Code.INVALID_ARGUMENT,
            profile.update_preferences,
            w.store,
            ann,
            time_zone=zone,
            notify_new_activation=False,
            notify_license_expiry=False,
            now=NOW,
        )
    assert _user(w) == updated


def test_personal_tokens_are_named_shown_once_listed_and_revocable(w: World) -> None:
    ann, store = _user(w), w.store
    credential, token = profile.create_personal_token(store, ann, name=" nightly ", days=7, now=NOW)
    assert token.startswith(profile.PERSONAL_TOKEN_PREFIX) and len(token) > 40
    assert (credential.name, credential.kind, credential.expires_at) == (
        "nightly",
        "personal",
        NOW + 7 * 86400,
    )
    assert token.encode() not in b"".join(r[0] for r in rows(store, "SELECT token_hash FROM credentials"))
    user, used = auth.resolve_credential(store, token, kind=("access", "personal"), now=NOW + 10)
    assert user.id == ann.id and used.id == credential.id
    # Last use is recorded, at most every few minutes.
    listed = profile.credentials(store, ann, now=NOW + 20).personal
    assert [(c.id, c.last_used_at) for c in listed] == [(credential.id, NOW + 10)]
    auth.resolve_credential(store, token, kind="personal", now=NOW + 20)
    assert profile.credentials(store, ann, now=NOW + 30).personal[0].last_used_at == NOW + 10
    auth.resolve_credential(store, token, kind="personal", now=NOW + 10 + auth.TOUCH_EVERY)
    assert (
        profile.credentials(store, ann, now=NOW + 30).personal[0].last_used_at == NOW + 10 + auth.TOUCH_EVERY
    )
    # It expires, is revocable, and nobody else can revoke it.
    _refused(
        Code.UNAUTHENTICATED, auth.resolve_credential, store, token, kind="personal", now=NOW + 7 * 86400
    )
    bob = _user(w, "bob@example.com")
    _refused(Code.NOT_FOUND, profile.revoke, store, bob, credential.id, personal=True, now=NOW)
    _refused(Code.NOT_FOUND, profile.revoke, store, ann, credential.id, personal=False, now=NOW)
    profile.revoke(store, ann, credential.id, personal=True, now=NOW + 40)
    _refused(Code.UNAUTHENTICATED, auth.resolve_credential, store, token, kind="personal", now=NOW + 41)
    _refused(Code.NOT_FOUND, profile.revoke, store, ann, credential.id, personal=True, now=NOW + 42)
    assert _actions(w)[:2] == ["token.revoke", "token.create"]


@pytest.mark.parametrize(
    ("name", "days"), [("", 30), ("x" * 101, 30), ("tab\there", 30), ("ok", 0), ("ok", 366)]
)
def test_bad_personal_tokens_are_refused(w: World, name: str, days: int) -> None:
    _refused(
        Code.INVALID_ARGUMENT, profile.create_personal_token, w.store, _user(w), name=name, days=days, now=NOW
    )
    assert profile.credentials(w.store, _user(w), now=NOW).personal == []


def test_at_most_twenty_live_personal_tokens(w: World) -> None:
    ann = _user(w)
    made = [profile.create_personal_token(w.store, ann, name=f"t{i}", days=7, now=NOW)[0] for i in range(20)]
    _refused(Code.CONFLICT, profile.create_personal_token, w.store, ann, name="one more", days=7, now=NOW)
    profile.revoke(w.store, ann, made[0].id, personal=True, now=NOW)
    profile.create_personal_token(w.store, ann, name="one more", days=7, now=NOW)


def test_sessions_list_and_revoke(w: World) -> None:
    ann, store = _user(w), w.store
    auth.issue_credential(
        store, ann, kind="session", lifetime=HOUR, now=NOW, user_agent="Firefox", address="10.1.1.1"
    )
    auth.issue_credential(store, ann, kind="access", lifetime=HOUR, now=NOW + 1)
    auth.issue_credential(store, ann, kind="session", lifetime=10, now=NOW - 20)  # expired
    found = profile.credentials(store, ann, now=NOW + 5)
    assert [(c.kind, c.user_agent, c.address) for c in found.sign_ins] == [
        ("access", "", ""),
        ("session", "Firefox", "10.1.1.1"),
    ]
    profile.revoke(store, ann, found.sign_ins[1].id, personal=False, now=NOW + 6)
    assert [c.kind for c in profile.credentials(store, ann, now=NOW + 7).sign_ins] == ["access"]
    _refused(Code.NOT_FOUND, profile.revoke, store, ann, "", personal=False, now=NOW)
    assert _actions(w)[0] == "session.revoke"


def test_a_disabled_person_changes_nothing(w: World) -> None:
    ann = _user(w)
    with w.store.write() as tx:
        tx.update_user(replace(ann, disabled=True))
    _refused(Code.UNAUTHENTICATED, profile.update_name, w.store, ann, first_name="A", last_name="B", now=NOW)
    _refused(Code.UNAUTHENTICATED, profile.create_personal_token, w.store, ann, name="x", days=7, now=NOW)
