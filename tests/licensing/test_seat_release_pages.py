"""The portal's "Release seat" for an organization admin, in process: who sees the link and the
confirmation page, what the page says, the post/redirect/get, and every refusal changing nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.licensing import seat_release
from offline_service.licensing import services as admin
from offline_service.licensing.models import License
from offline_service.web.kit import FLASH_COOKIE, mask_key
from tests import people
from tests.factories import NOW
from tests.web.portal import PASSWORD, Portal, activation, csrf_of, shown_text, submit, upload

LONG = "lost-" + "0123456789abcdef" * 2  # a fingerprint long enough to be shortened on the page
FINGERPRINT = f"fp-{LONG}"


def _activate(portal: Portal, license: License, name: str = LONG) -> str:
    """A live activation of ``license``, made by its organization's admin; its id."""
    client = portal.login("alice@example.com")
    data = activation(portal, license, name, hostname=f"{name[:4]}-laptop")
    posted = submit(client, "/activate", {"validity": "7"}, files=upload(data))
    assert posted.status_code == 303, posted.text
    with portal.svc.store.read() as tx:
        [found] = [a for a in tx.activations(license.id) if a.fingerprint == f"fp-{name}"]
    return found.id


def _allow(portal: Portal, allowed: bool = True) -> None:
    admin.set_customer_release(portal.svc.store, portal.acme, portal.product.id, allowed, now=NOW)


def _path(license: License, activation_id: str) -> str:
    return f"/licenses/{license.id}/release/{activation_id}"


def _post(client: TestClient, license: License, activation_id: str) -> Any:
    """POST the release with a valid CSRF token (taken from the dashboard, which every person sees).
    A refusal answers like a release, with a 303 (a reload repeats nothing): back to the
    confirmation page with the problem in a flash cookie; that page is returned, as a browser
    shows it."""
    token = csrf_of(client.get("/").text)
    path = _path(license, activation_id)
    posted = client.post(path, data={"csrf": token})
    if posted.status_code == 303 and posted.headers["location"] == path:
        assert f"{FLASH_COOKIE}=" in posted.headers.get("set-cookie", ""), posted.headers
        return client.get(path)
    return posted


def _usage(portal: Portal, license: License) -> tuple[int, int]:
    with portal.svc.store.read() as tx:
        found = tx.license_by_id(portal.acme.id, license.id)
    assert found is not None
    return found.used_activations, found.used_deactivations


def _other_admin(portal: Portal, account: Account, email: str, organization: str) -> TestClient:
    """An admin of an organization that owns none of acme's licenses (in acme, or in another
    account, where an organization may have the same name and an admin the same email)."""
    store = portal.svc.store
    people.create_organization(store, account, name=organization, now=NOW)
    people.create_user(
        store,
        account,
        email=email,
        role=Role.ORGANIZATION_ADMIN,
        organization=organization,
        password=PASSWORD,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    return portal.login(email, account=account.alias)


# -- the organization admin --------------------------------------------------------------------


def test_the_admin_releases_a_seat_through_the_confirmation_page(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    kept = _activate(portal, portal.org_only, "kept")
    alice = portal.login("alice@example.com")

    page = alice.get(f"/licenses/{portal.org_only.id}")
    assert page.status_code == 200
    links = re.findall(r'href="(/licenses/[^"]+/release/[^"]+)"', page.text)
    assert sorted(links) == sorted([_path(portal.org_only, lost), _path(portal.org_only, kept)])
    assert "Release seat" in page.text

    confirm = alice.get(_path(portal.org_only, lost))
    assert confirm.status_code == 200
    text = shown_text(confirm.text)
    assert "lost-laptop" in text  # the hostname
    assert FINGERPRINT[:8] in text and FINGERPRINT[-4:] in text  # the shortened fingerprint
    assert mask_key(portal.org_only.key) in text and "App" in text
    assert "The seat becomes free" in text
    assert "deactivations: 2 left, 1 after this one" in text
    # What is true of the machine: it keeps its stored activation offline; the license has no expiry.
    assert "keeps working offline" in text and "with no end, as the license does not expire" in text
    assert _usage(portal, portal.org_only) == (2, 0)  # a GET changes nothing

    posted = alice.post(_path(portal.org_only, lost), data={"csrf": csrf_of(confirm.text)})
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/licenses/{portal.org_only.id}?done=released"
    assert _usage(portal, portal.org_only) == (1, 1)

    after = alice.get(posted.headers["location"])
    text = shown_text(after.text)
    assert "The seat is free again" in text and "Deactivated" in text
    assert re.findall(r'href="(/licenses/[^"]+/release/[^"]+)"', after.text) == [_path(portal.org_only, kept)]
    # The dashboard's activity says it in words, by "you".
    dashboard = shown_text(alice.get("/").text)
    assert "Seat of a lost machine released by an organization admin" in dashboard
    with portal.svc.store.read() as tx:
        entries = [e for e in tx.audit_entries(portal.acme.id, 100) if e.action == seat_release.ACTION]
    assert [(e.actor.startswith("user:"), e.activation_id) for e in entries] == [(True, lost)]


def test_the_users_of_the_license_see_the_release_in_words(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_linked)
    assert _post(portal.login("alice@example.com"), portal.org_linked, lost).status_code == 303
    bob = shown_text(portal.login("bob@example.com").get("/").text)
    assert "Seat of a lost machine released by an organization admin" in bob and "another user" in bob


def test_the_confirmation_page_says_when_no_deactivation_is_left(portal: Portal) -> None:
    _allow(portal)
    first, second, third = (_activate(portal, portal.org_only, n) for n in ("m1", "m2", "m3"))
    alice = portal.login("alice@example.com")
    for done in (first, second):  # the license allows two
        assert _post(alice, portal.org_only, done).status_code == 303
    before = portal.snapshot()

    confirm = alice.get(_path(portal.org_only, third))
    assert confirm.status_code == 409
    assert "DEACTIVATION_LIMIT" in confirm.text and "cannot be released here" in confirm.text
    assert 'method="post" action="/licenses/' not in confirm.text  # no button
    refused = _post(alice, portal.org_only, third)
    assert refused.status_code == 409 and "DEACTIVATION_LIMIT" in refused.text
    assert portal.snapshot() == before


def test_a_second_release_of_the_same_machine_is_refused(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    alice = portal.login("alice@example.com")
    assert _post(alice, portal.org_only, lost).status_code == 303
    before = portal.snapshot()
    again = _post(alice, portal.org_only, lost)
    assert again.status_code == 409 and "CONFLICT" in again.text
    assert portal.snapshot() == before and _usage(portal, portal.org_only) == (0, 1)


def test_a_post_without_the_csrf_token_is_refused(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    alice = portal.login("alice@example.com")
    before = portal.snapshot()
    for data in ({}, {"csrf": "x" * 43}):
        response = alice.post(_path(portal.org_only, lost), data=data)
        assert response.status_code == 403 and "CSRF_FAILED" in response.text
    assert portal.snapshot() == before


# -- everyone else -----------------------------------------------------------------------------


def test_with_the_setting_off_there_is_no_button_and_no_release(portal: Portal) -> None:
    lost = _activate(portal, portal.org_only)
    alice = portal.login("alice@example.com")
    page = alice.get(f"/licenses/{portal.org_only.id}")
    assert page.status_code == 200 and "/release/" not in page.text and "Release seat" not in page.text
    before = portal.snapshot()
    confirm = alice.get(_path(portal.org_only, lost))
    assert confirm.status_code == 403 and "RELEASE_NOT_ALLOWED" in confirm.text
    posted = _post(alice, portal.org_only, lost)
    assert posted.status_code == 403 and "RELEASE_NOT_ALLOWED" in posted.text
    assert portal.snapshot() == before


def test_a_user_of_the_license_sees_no_button_and_is_forbidden(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_linked)
    bob = portal.login("bob@example.com")
    page = bob.get(f"/licenses/{portal.org_linked.id}")
    assert page.status_code == 200 and "/release/" not in page.text and "Release seat" not in page.text
    before = portal.snapshot()
    assert bob.get(_path(portal.org_linked, lost)).status_code == 403
    posted = _post(bob, portal.org_linked, lost)
    assert posted.status_code == 403 and "FORBIDDEN" in posted.text
    assert portal.snapshot() == before


@pytest.mark.parametrize("who", ["admin of another organization", "admin of another account"])
def test_other_admins_are_told_the_license_does_not_exist(portal: Portal, who: str) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    if who == "admin of another organization":
        client = _other_admin(portal, portal.acme, "dave@example.com", "Initech")
    else:  # the same organization name and the same email, in another vendor's account
        client = _other_admin(portal, portal.other, "alice@example.com", "Globex")
    assert client.get(f"/licenses/{portal.org_only.id}").status_code == 404
    before = portal.snapshot()
    for response in (client.get(_path(portal.org_only, lost)), _post(client, portal.org_only, lost)):
        assert response.status_code == 404, response
        assert "LICENSE_NOT_FOUND" in response.text and "lost-laptop" not in response.text
    assert portal.snapshot() == before


@pytest.mark.parametrize("email", ["carol@example.com", "bob@example.com"])
def test_users_who_cannot_see_the_license_are_forbidden_like_on_every_admin_page(
    portal: Portal, email: str
) -> None:
    # carol: a user of no organization; bob of account "other". Neither is an admin, so neither
    # gets further than FORBIDDEN, which says nothing about the license.
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    client = (
        portal.login(email)
        if email.startswith("carol")
        else portal.login(email, account="other", password="another staple 42")
    )
    before = portal.snapshot()
    for response in (client.get(_path(portal.org_only, lost)), _post(client, portal.org_only, lost)):
        assert response.status_code == 403 and "FORBIDDEN" in response.text
        assert "lost-laptop" not in response.text and mask_key(portal.org_only.key) not in response.text
    assert portal.snapshot() == before


def test_an_activation_of_another_license_is_not_found(portal: Portal) -> None:
    _allow(portal)
    elsewhere = _activate(portal, portal.org_linked)
    alice = portal.login("alice@example.com")
    before = portal.snapshot()
    assert alice.get(_path(portal.org_only, elsewhere)).status_code == 404
    assert _post(alice, portal.org_only, elsewhere).status_code == 404
    assert portal.snapshot() == before


@pytest.mark.parametrize(
    "path",
    [
        "/licenses/x/release/act_1",
        "/licenses/{lic}/release/act_%3Cscript%3E",
        "/licenses/{lic}/release/" + "a" * 5000,
        "/licenses/{lic}/release/{lic}",
    ],
)
def test_hostile_ids_are_refused_in_words(portal: Portal, path: str) -> None:
    _allow(portal)
    alice = portal.login("alice@example.com")
    before = portal.snapshot()
    for response in (
        alice.get(path.format(lic=portal.org_only.id)),
        alice.post(path.format(lic=portal.org_only.id), data={"csrf": csrf_of(alice.get("/").text)}),
    ):
        assert response.status_code == 400 and "INVALID_ARGUMENT" in response.text
        assert "<script>" not in response.text
    assert portal.snapshot() == before


def test_logged_out_goes_to_the_login_page(portal: Portal) -> None:
    _allow(portal)
    lost = _activate(portal, portal.org_only)
    response = portal.client().get(_path(portal.org_only, lost))
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
