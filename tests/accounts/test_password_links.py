"""Set-password links: one use, an expiry, only a hash stored, and the mail that carries them."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from offline_service.accounts import auth, membership, password_links
from offline_service.accounts.models import Account, Organization, Role, User
from offline_service.accounts.passwords import Cost, verify_password
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from tests import people
from tests.factories import NOW, World, make_world

PASSWORD = "correct horse battery"
NEW = "a brand new passphrase 7"
HOUR = 3600


@pytest.fixture
def w(tmp_path: Path, backend: str) -> Iterator[World]:
    world = make_world(tmp_path, backend=backend)
    people.create_organization(world.store, world.account, name="Org A", now=NOW)
    people.create_user(
        world.store,
        world.account,
        email="ann@a.example",
        role=Role.ORGANIZATION_ADMIN,
        organization="Org A",
        password=PASSWORD,
        cost=Cost.MINIMUM,
        now=NOW,
    )
    yield world
    world.store.close()


def _admin(w: World) -> Scope:
    with w.store.read() as tx:
        ann = tx.user_by_email(w.account.id, "ann@a.example")
    assert ann is not None
    return Scope.of_admin(ann)


def _invite(w: World, email: str = "new@a.example", lifetime: int = HOUR) -> tuple[User, str]:
    return membership.create_user(
        w.store, _admin(w), email=email, role="user", now=NOW, link_lifetime=lifetime
    )


def _invalid(w: World, token: str, password: str = NEW, now: int = NOW) -> None:
    with pytest.raises(OfflineServiceError) as info:
        password_links.set_password(w.store, token, password, now=now, cost=Cost.MINIMUM)
    assert info.value.code is Code.INVALID_PASSWORD_LINK


def _hash(w: World, user: User) -> str | None:
    with w.store.read() as tx:
        found = tx.user(w.account.id, user.id)
    assert found is not None
    return found.password_hash


def test_a_link_works_once(w: World) -> None:
    user, token = _invite(w)
    password_links.set_password(w.store, token, NEW, now=NOW, cost=Cost.MINIMUM)
    first = _hash(w, user)
    assert first is not None and verify_password(NEW, first, Cost.MINIMUM)
    _invalid(w, token, "another passphrase 99")
    assert _hash(w, user) == first


def test_a_link_expires(w: World) -> None:
    user, token = _invite(w, lifetime=HOUR)
    assert password_links.holder(w.store, token, now=NOW + HOUR - 1).id == user.id
    _invalid(w, token, now=NOW + HOUR)
    assert _hash(w, user) is None


@pytest.mark.parametrize("token", ["", "x", "x" * 43, "x" * 5000])
def test_unknown_links_are_invalid_and_say_nothing_more(w: World, token: str) -> None:
    _invalid(w, token)
    with pytest.raises(OfflineServiceError) as info:
        password_links.holder(w.store, token, now=NOW)
    assert info.value.message == "this set-password link is not valid; ask your administrator for a new one"


def test_a_weak_password_changes_nothing_and_the_link_still_works(w: World) -> None:
    user, token = _invite(w)
    for weak in ("short", "aaaaaaaaaaaaaaaa", "new@a.example"):
        with pytest.raises(OfflineServiceError) as info:
            password_links.set_password(w.store, token, weak, now=NOW, cost=Cost.MINIMUM)
        assert info.value.code is Code.INVALID_ARGUMENT
    assert _hash(w, user) is None
    password_links.set_password(w.store, token, NEW, now=NOW, cost=Cost.MINIMUM)


def test_setting_a_password_by_link_ends_every_session_of_the_person(w: World) -> None:
    with w.store.read() as tx:
        ann = tx.user_by_email(w.account.id, "ann@a.example")
    assert ann is not None
    session = auth.issue_credential(w.store, ann, kind="session", lifetime=HOUR, now=NOW)
    _, token = membership.send_password_link(w.store, _admin(w), ann.id, now=NOW, link_lifetime=HOUR)
    password_links.set_password(w.store, token, NEW, now=NOW + 1, cost=Cost.MINIMUM)
    with pytest.raises(OfflineServiceError):
        auth.resolve_credential(w.store, session, kind="session", now=NOW + 2)
    with w.store.read() as tx:
        entry = tx.audit_entries(w.account.id, limit=1)[0]
    assert (entry.actor, entry.action, entry.detail["revoked"]) == (
        f"user:{ann.id}",
        "user.set_password",
        "1",
    )
    assert token not in str(entry)


def test_a_link_starts_with_the_custom_domain_or_the_public_url_and_never_with_nothing() -> None:
    assert password_links.base_url(public_url="https://portal.example/base", custom_domain=None) == (
        "https://portal.example/base"
    )
    assert (
        password_links.base_url(public_url="https://portal.example", custom_domain="licenses.acme.example")
        == "https://licenses.acme.example"
    )
    assert password_links.base_url(public_url=None, custom_domain="licenses.acme.example") == (
        "https://licenses.acme.example"
    )
    with pytest.raises(OfflineServiceError) as info:
        password_links.base_url(public_url=None, custom_domain=None)
    assert info.value.code is Code.INVALID_ARGUMENT and "OFFLINE_SERVICE_PUBLIC_URL" in info.value.message


def test_the_link_and_the_mail() -> None:
    url = password_links.link("https://portal.example/base/", "tok-en_1")
    assert url == "https://portal.example/base/set-password?token=tok-en_1"
    assert parse_qs(urlsplit(url).query) == {"token": ["tok-en_1"]}
    user = User(
        id="usr_1",
        account_id="acc_1",
        email="zoë@a.example",
        role=Role.USER,
        created_at=NOW,
        first_name="Zoë",
    )
    mail = password_links.message(
        sender="Acme <licenses@acme.example>",
        user=user,
        account=Account(id="acc_1", alias="acme", name="Acme", created_at=NOW),
        organization=Organization(id="org_1", account_id="acc_1", name="Org A", created_at=NOW),
        url=url,
        expires_at=NOW + 72 * HOUR,
        now=NOW,
    )
    raw = mail.as_bytes(policy=email.policy.SMTP)
    assert url.encode() in raw  # on one line, readable in the raw file
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    body = parsed.get_content()  # type: ignore[attr-defined]
    assert "Hello Zoë" in body and "of Org A" in body and "2027-01-18 08:00 UTC" in body
    assert "account  acme" in body and "email    zoë@a.example" in body
    assert parsed["Message-ID"].endswith("@acme.example>")
    assert parsed["Subject"] == "Set your password for the license portal"
