"""The portal's details, in process: roles in words, one word per state as a badge, confirmation
pages before disabling a user and deleting a group, and the username field of password forms."""

from __future__ import annotations

import re

import pytest

from offline_service.accounts import membership
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.web.kit import mask_key, templates
from tests.db import table
from tests.web.pages import (
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
)
from tests.web.site import EMAILS, Site

# -- roles and states ----------------------------------------------------------------------------


def test_roles_are_shown_as_words_never_as_their_value(site: Site) -> None:
    admin = log_in(site, "admin_a")
    user2, me = user(site, "user2"), user(site, "admin_a")
    for path in (
        "/",
        "/organization/users",
        f"/organization/users/{user2.id}",
        f"/organization/users/{me.id}",
    ):
        page = admin.get(path)
        shown = text(page.text)
        assert "organization-admin" not in shown, path
        assert "Organization admin" in shown, path
    users = admin.get("/organization/users")
    # The form still posts the value; the person reads the words.
    assert '<option value="organization-admin">Organization admin</option>' in users.text
    assert '<option value="user" selected>User</option>' in users.text
    row = re.search(
        r"<tr>\s*<th scope=\"row\"><a href=\"/organization/users/" + user2.id + r".*?</tr>", users.text, re.S
    )
    assert row and re.search(r"<td[^>]*>User</td>", row.group(0))


@pytest.mark.parametrize(
    ("value", "word", "css"),
    [
        ("active", "Active", "state-active"),
        ("live", "Active", "state-active"),
        ("deactivated", "Deactivated", "state-deactivated"),
        ("suspended", "Suspended", "state-suspended"),
        ("revoked", "Revoked", "state-revoked"),
        ("expired", "Expired", "state-expired"),
        ("enabled", "Enabled", "state-enabled"),
        ("disabled", "Disabled", "state-disabled"),
    ],
)
def test_the_state_macro_shows_one_word_as_a_badge(value: str, word: str, css: str) -> None:
    shown = templates.env.from_string('{% from "_macros.html" import state %}{{ state(v) }}').render(v=value)
    assert shown == f'<span class="state {css}">{word}</span>'


def test_users_are_enabled_or_disabled_badges(site: Site) -> None:
    admin = log_in(site, "admin_a")
    user1 = user(site, "user1")
    assert post(admin, f"/organization/users/{user1.id}/disable").status_code == 303
    users = admin.get("/organization/users").text
    assert '<span class="state state-disabled">Disabled</span>' in users
    assert '<span class="state state-enabled">Enabled</span>' in users
    assert ">disabled<" not in users and ">enabled<" not in users
    assert (
        '<span class="state state-disabled">Disabled</span>'
        in admin.get(f"/organization/users/{user1.id}").text
    )
    # A disabled member is marked the same way on the group page.
    group = team_a(site)
    assert post(admin, f"/organization/groups/{group.id}/members", {"user": user1.id}).status_code == 303
    assert (
        '<span class="state state-disabled">Disabled</span>'
        in admin.get(f"/organization/groups/{group.id}").text
    )


def test_licenses_show_their_state_as_a_badge(site: Site) -> None:
    page = log_in(site, "user2").get("/licenses").text
    assert '<span class="state state-active">Active</span>' in page
    dashboard = log_in(site, "admin_a").get("/").text
    assert '<span class="state state-active">Active</span>' in dashboard


# -- disabling a user asks first -----------------------------------------------------------------


def test_disabling_a_user_asks_for_confirmation_first(site: Site) -> None:
    admin = log_in(site, "admin_a")
    user1 = user(site, "user1")
    page = admin.get(f"/organization/users/{user1.id}").text
    # The user page links to the question; it holds no form that disables at once.
    assert f'href="/organization/users/{user1.id}/disable"' in page
    assert f'action="/organization/users/{user1.id}/disable"' not in page
    before = people_state(site)
    ask = admin.get(f"/organization/users/{user1.id}/disable")
    assert ask.status_code == 200 and people_state(site) == before  # asking changes nothing
    shown = text(ask.text)
    assert re.search(r"<h1>Disable [^<]+\?</h1>", ask.text) and EMAILS["user1"] in shown
    assert f'action="/organization/users/{user1.id}/disable"' in ask.text and 'name="csrf"' in ask.text
    assert f'href="/organization/users/{user1.id}"' in ask.text  # the way back
    done = post(admin, f"/organization/users/{user1.id}/disable")
    assert (
        done.status_code == 303
        and done.headers["location"] == f"/organization/users/{user1.id}?done=disabled"
    )
    assert user(site, "user1").disabled
    assert site.audit()[0].action == "user.disable"
    # Asked again: nothing to confirm.
    again = admin.get(f"/organization/users/{user1.id}/disable")
    assert "is already disabled" in text(again.text) and "<form" not in again.text.split("<main", 1)[1]


def test_the_confirmation_is_not_offered_for_oneself_nor_outside_the_organization(site: Site) -> None:
    admin = log_in(site, "admin_a")
    me = user(site, "admin_a")
    mine = admin.get(f"/organization/users/{me.id}/disable")
    assert mine.status_code == 200 and "You cannot disable yourself" in text(mine.text)
    assert f'action="/organization/users/{me.id}/disable"' not in mine.text
    for target in (user(site, "admin_b"), user(site, "other")):
        assert admin.get(f"/organization/users/{target.id}/disable").status_code == 404
    assert (
        log_in(site, "user1").get(f"/organization/users/{user(site, 'user2').id}/disable").status_code == 403
    )
    anonymous = client(site).get(f"/organization/users/{me.id}/disable")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


# -- deleting a group ----------------------------------------------------------------------------


def _links(site: Site, group_id: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    members = [r for r in table(site.svc.store, "group_members") if group_id in r]
    licenses = [r for r in table(site.svc.store, "group_licenses") if group_id in r]
    return members, licenses


def test_deleting_a_group_asks_then_deletes_it_with_its_members_and_licenses(site: Site) -> None:
    admin = log_in(site, "admin_a")
    group, linked = team_a(site), site.licenses["group"]
    user2 = log_in(site, "user2")
    assert mask_key(linked.key) in user2.get("/licenses").text
    assert user2.get(f"/licenses/{linked.id}").status_code == 200
    page = admin.get(f"/organization/groups/{group.id}").text
    assert f'href="/organization/groups/{group.id}/delete"' in page
    before = people_state(site)
    ask = admin.get(f"/organization/groups/{group.id}/delete")
    assert ask.status_code == 200 and people_state(site) == before
    shown = text(ask.text)
    assert "Delete the group Team A?" in shown
    # Who loses what: user2 sees the linked license only through Team A.
    assert f"{EMAILS['user2']}: {mask_key(linked.key)}" in shown
    assert f'action="/organization/groups/{group.id}/delete"' in ask.text
    done = post(admin, f"/organization/groups/{group.id}/delete")
    assert done.status_code == 303 and done.headers["location"] == "/organization/groups?done=group-deleted"
    listing = admin.get(done.headers["location"])
    assert "The group was deleted." in listing.text and "Team A" not in text(listing.text)
    with site.svc.store.read() as tx:
        assert tx.group(site.acme.id, group.id) is None
        assert tx.license_by_id(site.acme.id, linked.id) is not None  # the license stays
    assert _links(site, group.id) == ([], [])
    entry = site.audit()[0]
    assert entry.action == "group.delete" and entry.actor == f"user:{user(site, 'admin_a').id}"
    assert (
        entry.detail["group"] == group.id
        and entry.detail["members"] == "1"
        and entry.detail["licenses"] == "1"
    )
    # user2 lost the license at once, in the session they already had.
    assert mask_key(linked.key) not in user2.get("/licenses").text
    assert user2.get(f"/licenses/{linked.id}").status_code == 404
    # The admin still sees it: the organization owns it.
    assert mask_key(linked.key) in admin.get("/licenses").text
    # Deleted once: the second time there is nothing to delete.
    refused(admin, post(admin, f"/organization/groups/{group.id}/delete"), "NOT_FOUND", status=404)
    assert admin.get(f"/organization/groups/{group.id}/delete").status_code == 404


def test_a_member_keeps_a_license_another_group_also_gives_them(site: Site) -> None:
    admin = log_in(site, "admin_a")
    group, linked, user2 = team_a(site), site.licenses["group"], user(site, "user2")
    lab = post(admin, "/organization/groups", {"name": "Lab"}).headers["location"].split("/")[3].split("?")[0]
    assert post(admin, f"/organization/groups/{lab}/members", {"user": user2.id}).status_code == 303
    assert post(admin, f"/organization/groups/{lab}/licenses", {"license": linked.id}).status_code == 303
    ask = text(admin.get(f"/organization/groups/{group.id}/delete").text)
    assert "Nobody loses a license" in ask
    assert post(admin, f"/organization/groups/{group.id}/delete").status_code == 303
    assert mask_key(linked.key) in log_in(site, "user2").get("/licenses").text
    assert _links(site, lab) != ([], [])


def test_only_the_admin_of_the_groups_organization_can_delete_it(site: Site) -> None:
    group = team_a(site)
    cases = [
        (role, status, log_in(site, role))
        for role, status in (("admin_b", 404), ("other", 403), ("user1", 403), ("user2", 403))
    ]
    before = people_state(site)
    for role, status, browser in cases:
        assert browser.get(f"/organization/groups/{group.id}/delete").status_code == status, role
        answer = post(browser, f"/organization/groups/{group.id}/delete")
        if status == 403:  # not an admin: refused before any form is looked at
            assert answer.status_code == 403, role
        else:  # an admin of another organization: back to the group's page, which is not found
            refused(browser, answer, "NOT_FOUND", status=404)
    anonymous = client(site)
    response = post(anonymous, f"/organization/groups/{group.id}/delete")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert people_state(site) == before


def test_delete_group_is_scoped_to_the_admins_own_organization(site: Site) -> None:
    """The store call is scoped too: Org B's admin gets NOT_FOUND and nothing is written."""
    group = team_a(site)
    before = people_state(site)
    with pytest.raises(OfflineServiceError) as refused:
        membership.delete_group(site.svc.store, Scope.of_admin(user(site, "admin_b")), group.id, now=0)
    assert refused.value.code is Code.NOT_FOUND
    assert people_state(site) == before


# -- password forms name their username ----------------------------------------------------------

_USERNAME = re.compile(r"<input [^>]*autocomplete=\"username\"[^>]*>")


def _username_fields(html: str) -> list[str]:
    return _USERNAME.findall(html)


def test_password_forms_carry_a_hidden_username_field(site: Site) -> None:
    profile = log_in(site, "user2").get("/profile").text
    fields = _username_fields(profile)
    assert len(fields) == 2  # the change-email and change-password forms
    for field in fields:
        assert f'value="{EMAILS["user2"]}"' in field and " hidden" in field and " readonly" in field
        assert "name=" not in field  # not sent with the form
    for form in re.findall(r"<form [^>]*action=\"/profile/(?:email|password)\".*?</form>", profile, re.S):
        assert len(_username_fields(form)) == 1
    # The set-password page of a mailed link names the person too.
    admin = log_in(site, "admin_a")
    assert post(admin, f"/organization/users/{user(site, 'user1').id}/password-link").status_code == 303
    [(_, mail)] = mails(site)
    page = client(site).get(link_in(mail)).text
    [field] = _username_fields(page)
    assert f'value="{EMAILS["user1"]}"' in field and " hidden" in field
