"""The organization admin's pages, in process, for every role: the admin of Org A manages Org A;
users get FORBIDDEN; Org B's admin and the other account's user find nothing of Org A; every change
is audited, and every refusal changes nothing."""

from __future__ import annotations

import logging
import re

import pytest

from offline_service.accounts.mail import MAIL_DIR
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.branding import services as branding
from offline_service.web.auth import SESSION_COOKIE
from offline_service.web.kit import mask_key
from tests import people
from tests.db import execute
from tests.factories import NOW
from tests.web.pages import (
    PEOPLE,
    client,
    link_in,
    log_in,
    mails,
    people_state,
    post,
    refused,
    team_a,
    text,
    user,
    user_by_email,
)
from tests.web.site import EMAILS, PASSWORD, Site, SiteFactory

NEW_PASSWORD = "a brand new passphrase 7"


def _routes(site: Site) -> list[tuple[str, str, dict[str, str]]]:
    """Every route of the admin pages, with Org A's ids and a form that would succeed for admin_a."""
    user2, group = user(site, "user2"), team_a(site)
    org_a, linked = site.licenses["org_a"], site.licenses["group"]
    return [
        ("GET", "/organization/users", {}),
        ("POST", "/organization/users", {"email": "new@acme.example", "role": "user"}),
        ("GET", f"/organization/users/{user2.id}", {}),
        ("POST", f"/organization/users/{user2.id}", {"first_name": "X", "last_name": "Y", "role": "user"}),
        ("GET", f"/organization/users/{user2.id}/disable", {}),
        ("POST", f"/organization/users/{user2.id}/disable", {}),
        ("POST", f"/organization/users/{user2.id}/enable", {}),
        ("POST", f"/organization/users/{user2.id}/password-link", {}),
        ("GET", "/organization/groups", {}),
        ("POST", "/organization/groups", {"name": "Lab"}),
        ("GET", f"/organization/groups/{group.id}", {}),
        ("POST", f"/organization/groups/{group.id}", {"name": "Renamed"}),
        ("POST", f"/organization/groups/{group.id}/members", {"user": user(site, "user1").id}),
        ("POST", f"/organization/groups/{group.id}/members/{user2.id}/remove", {}),
        ("POST", f"/organization/groups/{group.id}/licenses", {"license": org_a.id}),
        ("POST", f"/organization/groups/{group.id}/licenses/{linked.id}/unlink", {}),
        ("GET", f"/organization/groups/{group.id}/delete", {}),
        ("POST", f"/organization/groups/{group.id}/delete", {}),  # last: the group is gone after it
    ]


def test_anonymous_visitors_are_sent_to_log_in_and_change_nothing(site: Site) -> None:
    browser = client(site)
    before = people_state(site)
    for method, path, form in _routes(site):
        response = post(browser, path, form) if method == "POST" else browser.get(path)
        assert response.status_code == 303, (method, path)
        assert response.headers["location"].startswith("/login?next="), path
    assert people_state(site) == before


@pytest.mark.parametrize("role", ["user1", "user2", "other"])
def test_people_who_are_not_admins_are_forbidden_everywhere(site: Site, role: str) -> None:
    browser = log_in(site, role)
    before = people_state(site)
    for method, path, form in _routes(site):
        response = post(browser, path, form) if method == "POST" else browser.get(path)
        assert response.status_code == 403, (role, method, path)
        assert (
            "Code: FORBIDDEN" in response.text
            and "This page is for organization admins only." in response.text
        )
        assert "<h1>Not allowed</h1>" in response.text and 'href="/licenses"' in response.text  # a way back
    assert people_state(site) == before
    # Nor does their navigation offer the admin pages.
    page = browser.get("/")
    assert 'href="/organization/users"' not in page.text and 'href="/organization/groups"' not in page.text


def test_the_admin_of_another_organization_finds_nothing_of_org_a(site: Site) -> None:
    browser = log_in(site, "admin_b")
    before = people_state(site)
    for method, path, form in _routes(site):
        if path in ("/organization/users", "/organization/groups"):
            continue  # their own lists
        if method == "POST":  # refused: back to the page of the form, which is not found either
            response = refused(browser, post(browser, path, form), "NOT_FOUND", status=404)
        else:
            response = browser.get(path)
        assert response.status_code == 404, (method, path, response.text)
        assert "NOT_FOUND" in response.text
    assert people_state(site) == before
    # Their own lists show their organization only.
    users = browser.get("/organization/users").text
    assert EMAILS["admin_b"] in users and EMAILS["user2"] not in users and EMAILS["admin_a"] not in users
    assert "Team A" not in browser.get("/organization/groups").text


def test_admin_a_cannot_touch_org_b_or_the_other_account(site: Site) -> None:
    browser = log_in(site, "admin_a")
    admin_b, stranger = user(site, "admin_b"), user(site, "other")
    group = team_a(site)
    before = people_state(site)
    for target in (admin_b, stranger):
        for suffix in ("", "/disable", "/enable", "/password-link"):
            response = post(browser, f"/organization/users/{target.id}{suffix}", {"role": "user"})
            refused(browser, response, "NOT_FOUND", status=404)
        assert browser.get(f"/organization/users/{target.id}").status_code == 404
        member = post(browser, f"/organization/groups/{group.id}/members", {"user": target.id})
        assert "Team A" in refused(browser, member, "NOT_FOUND").text  # the group's page, saying why
    for name in ("org_b", "nobody", "user1", "other"):  # not Org A's own: not linkable
        response = post(
            browser, f"/organization/groups/{group.id}/licenses", {"license": site.licenses[name].id}
        )
        refused(browser, response, "LICENSE_NOT_FOUND")
    assert people_state(site) == before
    # The Org B group id is not found either.
    b_browser = log_in(site, "admin_b")
    post(b_browser, "/organization/groups", {"name": "B team"})
    b_group = next(g for g in _groups(site, "admin_b") if g != group.id)
    assert browser.get(f"/organization/groups/{b_group}").status_code == 404


def _groups(site: Site, role: str) -> list[str]:
    me = user(site, role)
    with site.svc.store.read() as tx:
        assert me.organization_id is not None
        return [g.id for g in tx.organization_groups(site.acme.id, me.organization_id)]


def test_every_admin_route_works_for_the_admin_of_org_a_and_is_audited(site: Site) -> None:
    browser = log_in(site, "admin_a")
    admin_a = user(site, "admin_a")
    for method, path, form in _routes(site):
        count = len(site.audit())
        response = post(browser, path, form) if method == "POST" else browser.get(path)
        if method == "GET":
            assert response.status_code == 200, path
            assert 'aria-current="page"' in response.text
            continue
        assert response.status_code == 303, (path, response.text)
        assert "?done=" in response.headers["location"]
        newest = site.audit()[0]
        assert len(site.audit()) > count and newest.actor == f"user:{admin_a.id}", path
        assert browser.get(response.headers["location"]).status_code == 200
    actions = [e.action for e in site.audit() if e.actor == f"user:{admin_a.id}"]
    assert set(actions) >= {
        "user.create",
        "user.update",
        "user.disable",
        "user.enable",
        "user.password_link",
        "group.create",
        "group.rename",
        "group.add_user",
        "group.remove_user",
        "group.link_license",
        "group.unlink_license",
        "group.delete",
    }


def test_creating_a_user_mails_a_link_that_sets_the_password_and_logs_in(site: Site) -> None:
    admin = log_in(site, "admin_a")
    response = post(
        admin,
        "/organization/users",
        {"email": "carl@acme.example", "first_name": "Carl", "last_name": "Jones", "role": "user"},
    )
    assert response.status_code == 303
    carl = user_by_email(site, "carl@acme.example")
    assert response.headers["location"] == f"/organization/users/{carl.id}?done=created"
    page = admin.get(response.headers["location"])
    assert "The user was added and sent a link to set their password." in page.text
    assert "Enabled invited, no password yet" in text(page.text)
    [(path, mail)] = mails(site)
    assert path.parent == site.svc.settings.data_dir / MAIL_DIR and path.stat().st_mode & 0o777 == 0o600
    assert mail["To"] == "carl@acme.example"
    link = link_in(mail)
    assert (
        "account  acme" in mail.get_content()
        and "http://testserver/set-password?token=" in mail.get_content()
    )
    # The new person opens the link in their own browser.
    carls = client(site)
    form = carls.get(link)
    assert form.status_code == 200 and "carl@acme.example" in form.text
    mismatch = post(
        carls, "/set-password", {"token": link.split("=", 1)[1], "password": NEW_PASSWORD, "confirm": "x"}
    )
    assert mismatch.headers["location"] == link  # the link's page again
    assert NEW_PASSWORD not in mismatch.headers["set-cookie"]
    page = refused(carls, mismatch, "INVALID_ARGUMENT")
    assert "differ" in page.text and 'name="token"' in page.text
    weak = post(
        carls, "/set-password", {"token": link.split("=", 1)[1], "password": "short", "confirm": "short"}
    )
    assert 'name="token"' in refused(carls, weak, "INVALID_ARGUMENT").text
    posted = post(
        carls,
        "/set-password",
        {"token": link.split("=", 1)[1], "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert posted.status_code == 303 and "carl@acme.example" not in posted.headers["location"]
    done = carls.get(posted.headers["location"])
    assert done.status_code == 200 and "Your password is set." in done.text
    assert (
        'value="acme"' in done.text and 'value="carl@acme.example"' in done.text
    )  # the login form, filled in
    reloaded = carls.get(posted.headers["location"])  # a reload: the fields were shown once
    assert 'value="carl@acme.example"' not in reloaded.text
    assert SESSION_COOKIE not in carls.cookies  # logging in is still needed
    again = carls.get(link)
    assert (
        again.status_code == 400
        and "INVALID_PASSWORD_LINK" in again.text
        and 'name="password"' not in again.text
    )
    log_in(site, "user1", NEW_PASSWORD, email="carl@acme.example")


def test_the_link_uses_the_public_url_when_one_is_set(make_site: SiteFactory) -> None:
    site = make_site(public_url="https://licenses.vendor.example")
    admin = log_in(site, "admin_a")
    # Even a request with a forged Host header cannot point the link elsewhere.
    post(
        admin,
        "/organization/users",
        {"email": "dee@acme.example", "role": "user"},
        headers={"host": "evil.example"},
    )
    [(_, mail)] = mails(site)
    assert "https://licenses.vendor.example/set-password?token=" in mail.get_content()
    assert "evil.example" not in mail.get_content()


def test_without_a_public_url_the_server_warns_and_builds_no_link_from_the_host_header(
    make_site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="offline_service"):
        site = make_site(public_url=None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("OFFLINE_SERVICE_PUBLIC_URL" in w for w in warnings), warnings
    admin = log_in(site, "admin_a")
    before = people_state(site)
    answer = post(
        admin,
        "/organization/users",
        {"email": "dee@acme.example", "role": "user"},
        headers={"host": "evil.example"},
    )
    assert "OFFLINE_SERVICE_PUBLIC_URL" in text(refused(admin, answer, "INVALID_ARGUMENT").text)
    # Refused before anything happened: no user, no mail, and an earlier link still works.
    assert people_state(site) == before and mails(site) == []
    user2 = user(site, "user2")
    answer = post(admin, f"/organization/users/{user2.id}/password-link", headers={"host": "evil.example"})
    assert "OFFLINE_SERVICE_PUBLIC_URL" in text(refused(admin, answer, "INVALID_ARGUMENT").text)
    assert people_state(site) == before and mails(site) == []


def test_a_configured_public_url_gives_no_warning(
    make_site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="offline_service"):
        make_site(public_url="https://licenses.vendor.example")
    assert not [r for r in caplog.records if "OFFLINE_SERVICE_PUBLIC_URL" in r.getMessage()]


@pytest.mark.parametrize("public_url", [None, "https://licenses.vendor.example"])
def test_an_account_with_a_custom_domain_gets_links_on_its_domain(
    make_site: SiteFactory, public_url: str | None
) -> None:
    site = make_site(public_url=public_url)
    branding.customize(
        site.svc.store,
        site.acme,
        data_dir=site.svc.settings.data_dir,
        now=NOW,
        custom_domain="portal.acme.example",
    )
    admin = log_in(site, "admin_a")
    created = post(
        admin,
        "/organization/users",
        {"email": "dee@acme.example", "role": "user"},
        headers={"host": "evil.example"},
    )
    assert created.status_code == 303
    user2 = user(site, "user2")
    assert post(admin, f"/organization/users/{user2.id}/password-link").status_code == 303
    for _, mail in mails(site):
        assert "https://portal.acme.example/set-password?token=" in mail.get_content()
        assert "evil.example" not in mail.get_content() and "vendor.example" not in mail.get_content()
    assert len(mails(site)) == 2


def test_bad_new_users_are_explained_on_the_page_and_change_nothing(site: Site) -> None:
    admin = log_in(site, "admin_a")
    before = people_state(site)
    for form, code in (
        ({"email": "nope", "role": "user"}, "INVALID_ARGUMENT"),
        ({"email": EMAILS["admin_b"], "role": "user"}, "CONFLICT"),
        ({"email": "x@acme.example", "role": "superuser"}, "INVALID_ARGUMENT"),
        ({"email": "x@acme.example", "role": "user", "first_name": "y" * 101}, "INVALID_ARGUMENT"),
    ):
        response = refused(admin, post(admin, "/organization/users", form), code)
        assert f'value="{form["email"]}"' in response.text  # what was typed is kept
    assert people_state(site) == before
    assert mails(site) == []


def test_the_cap_of_allowed_users_is_enforced_and_shown(site: Site) -> None:
    execute(site.svc.store, "UPDATE organizations SET allowed_users = 3 WHERE name = 'Org A'")
    admin = log_in(site, "admin_a")
    assert "3 enabled users of 3 allowed" in text(admin.get("/organization/users").text)
    before = people_state(site)
    full = refused(
        admin, post(admin, "/organization/users", {"email": "x@acme.example", "role": "user"}), "USER_LIMIT"
    )
    assert "Your organization has all the users it may have." in full.text
    assert people_state(site) == before
    user1 = user(site, "user1")
    assert post(admin, f"/organization/users/{user1.id}/disable").status_code == 303
    assert post(admin, "/organization/users", {"email": "x@acme.example", "role": "user"}).status_code == 303
    refused(admin, post(admin, f"/organization/users/{user1.id}/enable"), "USER_LIMIT")


def test_disabling_a_user_ends_their_sessions_at_once(site: Site) -> None:
    victim = log_in(site, "user1")
    headers = site.auth("user1")
    assert victim.get("/").status_code == 200
    admin = log_in(site, "admin_a")
    assert post(admin, f"/organization/users/{user(site, 'user1').id}/disable").status_code == 303
    assert victim.get("/").status_code == 303  # to the login page
    assert site.client.get("/v1/me", headers=headers).status_code == 401
    page = admin.get(f"/organization/users/{user(site, 'user1').id}")
    assert "Enable this user" in page.text and "Disable this user" not in page.text


def test_an_admin_cannot_disable_or_demote_themselves(site: Site) -> None:
    admin = log_in(site, "admin_a")
    me = user(site, "admin_a")
    page = admin.get(f"/organization/users/{me.id}")
    assert "Disable this user" not in page.text  # not even offered
    before = people_state(site)
    refused(admin, post(admin, f"/organization/users/{me.id}/disable"), "SELF_LOCKOUT")
    demoted = post(admin, f"/organization/users/{me.id}", {"first_name": "", "last_name": "", "role": "user"})
    refused(admin, demoted, "SELF_LOCKOUT")
    assert people_state(site) == before
    assert admin.get("/organization/users").status_code == 200


def test_a_demoted_admin_loses_the_pages_at_once(site: Site) -> None:
    people.create_user(
        site.svc.store,
        site.acme,
        email="second@acme.example",
        role=Role.ORGANIZATION_ADMIN,
        organization="Org A",
        password=PASSWORD,
        cost=Cost.MINIMUM,
        now=NOW,
    )
    first = log_in(site, "admin_a")
    second = log_in(site, "admin_a", email="second@acme.example")
    me = user(site, "admin_a")
    assert post(second, f"/organization/users/{me.id}", {"role": "user"}).status_code == 303
    assert first.get("/organization/users").status_code == 403
    assert first.get("/").status_code == 200  # still logged in, as a user


def test_group_pages_link_members_and_licenses(site: Site) -> None:
    admin = log_in(site, "admin_a")
    created = post(admin, "/organization/groups", {"name": "Lab"})
    assert created.status_code == 303
    lab = created.headers["location"].split("/")[3].split("?")[0]
    page = admin.get(f"/organization/groups/{lab}")
    assert "No members yet." in page.text and "No license is linked" in page.text
    # The pickers offer Org A's users and licenses, nothing else.
    assert EMAILS["user1"] in page.text and EMAILS["admin_b"] not in page.text
    for name in ("org_a", "group"):
        assert f'value="{site.licenses[name].id}"' in page.text
    for name in ("org_b", "nobody", "user1", "other"):
        assert site.licenses[name].id not in page.text
    user1 = user(site, "user1")
    assert post(admin, f"/organization/groups/{lab}/members", {"user": user1.id}).status_code == 303
    assert (
        post(
            admin, f"/organization/groups/{lab}/licenses", {"license": site.licenses["org_a"].id}
        ).status_code
        == 303
    )
    page = admin.get(f"/organization/groups/{lab}")
    assert mask_key(site.licenses["org_a"].key) in page.text
    assert f"/organization/groups/{lab}/members/{user1.id}/remove" in page.text
    # user1 now sees the license through the group.
    licenses = log_in(site, "user1").get("/licenses").text
    assert mask_key(site.licenses["org_a"].key) in licenses
    duplicate = refused(admin, post(admin, "/organization/groups", {"name": "Team A"}), "CONFLICT")
    assert 'value="Team A"' in duplicate.text  # the name typed, kept
    refused(admin, post(admin, f"/organization/groups/{lab}", {"name": " "}), "INVALID_ARGUMENT")
    listing = text(admin.get("/organization/groups").text)
    assert re.search(r"Lab 1 1", listing) and re.search(r"Team A 1 1", listing)


@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_every_admin_post_needs_the_csrf_token(site: Site, token: str | None) -> None:
    admin = log_in(site, "admin_a")
    before = people_state(site)
    for method, path, form in _routes(site):
        if method != "POST":
            continue
        data = form if token is None else {**form, "csrf": token}
        response = admin.post(path, data=data)
        assert response.status_code == 403 and "CSRF_FAILED" in response.text, path
    assert people_state(site) == before


def test_resending_a_link_ends_the_earlier_one(site: Site) -> None:
    admin = log_in(site, "admin_a")
    post(admin, "/organization/users", {"email": "eve@acme.example", "role": "user"})
    eve = user_by_email(site, "eve@acme.example")
    sent = post(admin, f"/organization/users/{eve.id}/password-link")
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=link-sent")
    (_, first), (_, second) = mails(site)
    assert client(site).get(link_in(first)).status_code == 400
    assert client(site).get(link_in(second)).status_code == 200


@pytest.mark.parametrize("role", PEOPLE)
def test_the_navigation_offers_users_and_groups_to_admins_only(site: Site, role: str) -> None:
    page = log_in(site, role).get("/activations")
    assert 'href="/activations" aria-current="page"' in page.text and 'href="/profile"' in page.text
    admin = role in ("admin_a", "admin_b")
    assert ('href="/organization/users"' in page.text) is admin
    assert ('href="/organization/groups"' in page.text) is admin
