"""The admin API's customers (organizations, users, groups) in-process, on both backends: each
route with its scope (and 403 with every other), no, a person's or a made-up token (401), another
account's token (404 with the services' not-found code, nothing of this account in the answer,
nothing changed), idempotent creates, hostile bodies that change nothing, the organization's cap,
cursor paging, and the invitation: a set-password link mailed, working once, and never in an
answer, a kept answer or the audit log."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.accounts import password_links
from offline_service.accounts.models import Organization, UserGroup
from offline_service.accounts.passwords import Cost
from offline_service.admin import tokens
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from tests.db import table
from tests.web.pages import PEOPLE_TABLES, link_in, mails, user, user_by_email
from tests.web.site import EMAILS, Site, error

NEW_PASSWORD = "a brand new passphrase 42"

Call = Callable[[Site], tuple[str, str, dict[str, Any] | None]]


def _org(site: Site, name: str = "Org A") -> Organization:
    with site.svc.store.read() as tx:
        found = tx.organization_by_name(site.acme.id, name)
    assert found is not None
    return found


def _team(site: Site) -> UserGroup:
    with site.svc.store.read() as tx:
        (found,) = tx.groups_by_name(site.acme.id, "Team A")
    return found


def _uid(site: Site, role: str) -> str:
    return user(site, role).id


# Every customers route: (method, path, JSON body) for a site, and the scope it needs.
ROUTES: dict[str, tuple[Scope, Call]] = {
    "list organizations": (Scope.CUSTOMERS_READ, lambda site: ("GET", "/v1/admin/organizations", None)),
    "create organization": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("POST", "/v1/admin/organizations", {"name": "Org C", "allowedUsers": 5}),
    ),
    "show organization": (
        Scope.CUSTOMERS_READ,
        lambda site: ("GET", f"/v1/admin/organizations/{_org(site).id}", None),
    ),
    "list an organization's groups": (
        Scope.CUSTOMERS_READ,
        lambda site: ("GET", f"/v1/admin/organizations/{_org(site).id}/groups", None),
    ),
    "list users": (Scope.CUSTOMERS_READ, lambda site: ("GET", "/v1/admin/users", None)),
    "list an organization's users": (
        Scope.CUSTOMERS_READ,
        lambda site: ("GET", f"/v1/admin/users?organization={_org(site).id}", None),
    ),
    "create user": (
        Scope.CUSTOMERS_WRITE,
        lambda site: (
            "POST",
            "/v1/admin/users",
            {"email": "new@acme.example", "role": "user", "organizationId": _org(site).id},
        ),
    ),
    "show user": (Scope.CUSTOMERS_READ, lambda site: ("GET", f"/v1/admin/users/{_uid(site, 'user1')}", None)),
    **{
        f"{verb} user": (
            Scope.CUSTOMERS_WRITE,
            (lambda v: lambda site: ("POST", f"/v1/admin/users/{_uid(site, 'user1')}/{v}", None))(verb),
        )
        for verb in ("disable", "enable", "invite")
    },
    "create group": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("POST", "/v1/admin/groups", {"organizationId": _org(site).id, "name": "Team B"}),
    ),
    "rename group": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("PATCH", f"/v1/admin/groups/{_team(site).id}", {"name": "Team Z"}),
    ),
    "delete group": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("DELETE", f"/v1/admin/groups/{_team(site).id}", None),
    ),
    "add member": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("POST", f"/v1/admin/groups/{_team(site).id}/members/{_uid(site, 'user1')}", None),
    ),
    "remove member": (
        Scope.CUSTOMERS_WRITE,
        lambda site: ("DELETE", f"/v1/admin/groups/{_team(site).id}/members/{_uid(site, 'user2')}", None),
    ),
    "link license": (
        Scope.CUSTOMERS_WRITE,
        lambda site: (
            "POST",
            f"/v1/admin/groups/{_team(site).id}/licenses/{site.licenses['org_a'].id}",
            None,
        ),
    ),
    "unlink license": (
        Scope.CUSTOMERS_WRITE,
        lambda site: (
            "DELETE",
            f"/v1/admin/groups/{_team(site).id}/licenses/{site.licenses['group'].id}",
            None,
        ),
    ),
}
# The routes that name one of this account's things (by path or in the body).
NAMING = sorted(set(ROUTES) - {"list organizations", "create organization", "list users"})


def _send(site: Site, name: str, headers: dict[str, str]) -> httpx.Response:
    method, path, body = ROUTES[name][1](site)
    return site.client.request(method, path, json=body, headers=headers)


def _people(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the people tables (audit log included) and the organizations."""
    tables = (*PEOPLE_TABLES, "organizations", "admin_idempotency")
    return {t: table(site.svc.store, t) for t in tables}


def _actor(site: Site, headers: dict[str, str]) -> str:
    """The audit actor of the admin token behind ``headers``."""
    secret = headers["authorization"].removeprefix("Bearer ")
    return tokens.authenticate(site.svc.store, secret, now=site.svc.now(), address="127.0.0.1").actor


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_customers_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    scope = ROUTES[name][0]
    others = site.admin_auth(*[s.value for s in Scope if s is not scope])
    allowed = site.admin_auth(scope.value)
    before = _people(site)
    assert error(_send(site, name, others)) == (403, "FORBIDDEN")
    assert _people(site) == before
    answer = _send(site, name, allowed)
    assert answer.status_code == (201 if name.startswith("create") else 200), answer.text


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_customers_route_refuses_no_token_a_persons_token_and_a_made_up_one(site: Site, name: str) -> None:
    before = _people(site)
    for headers in (
        {},
        site.auth("admin_a"),
        {"authorization": "Bearer ofs_admin_" + "A" * 43},
        {"authorization": "Basic x"},
    ):
        assert error(_send(site, name, headers)) == (401, "UNAUTHENTICATED"), headers
    # the person's login is a credential, and audited: compare the rest
    assert {t: rows for t, rows in _people(site).items() if t not in ("credentials", "audit_log")} == {
        t: rows for t, rows in before.items() if t not in ("credentials", "audit_log")
    }


@pytest.mark.parametrize("name", NAMING)
def test_another_accounts_token_finds_none_of_this_accounts_customers(site: Site, name: str) -> None:
    headers = site.admin_auth(account="other")
    before, state = _people(site), site.state()
    answer = _send(site, name, headers)
    assert error(answer) == (404, "NOT_FOUND")
    for secret in ("Org A", "Team A", _org(site).id, _team(site).id, _uid(site, "user1"), EMAILS["user2"]):
        assert secret not in answer.text
    assert _people(site) == before and site.state() == state


def test_another_accounts_token_lists_only_its_own(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_READ.value, account="other")
    orgs = site.client.get("/v1/admin/organizations", headers=headers).json()
    assert orgs == {"organizations": [], "nextCursor": None}
    users = site.client.get("/v1/admin/users", headers=headers).json()["users"]
    assert [u["id"] for u in users] == [_uid(site, "other")]
    filtered = site.client.get(f"/v1/admin/users?organization={_org(site).id}", headers=headers)
    assert error(filtered) == (404, "NOT_FOUND")


def test_the_life_cycle_is_audited_as_the_token(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_READ.value, Scope.CUSTOMERS_WRITE.value)
    actor = _actor(site, headers)
    org = site.client.post("/v1/admin/organizations", json={"name": " Org C "}, headers=headers).json()
    assert (org["name"], org["allowedUsers"]) == ("Org C", None)
    made = site.client.post(
        "/v1/admin/users",
        json={
            "email": "carol@c.example",
            "role": "organization-admin",
            "organizationId": org["id"],
            "firstName": "Carol",
            "lastName": "C",
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    carol = made.json()
    assert carol["role"] == "organization-admin" and carol["disabled"] is False and "invitation" not in carol
    assert user_by_email(site, "carol@c.example").password_hash is None  # no password over this API
    group = site.client.post(
        "/v1/admin/groups", json={"organizationId": org["id"], "name": "Ops"}, headers=headers
    ).json()
    assert (group["memberIds"], group["licenseIds"]) == ([], [])
    member = f"/v1/admin/groups/{group['id']}/members/{carol['id']}"
    assert site.client.post(member, headers=headers).json() == {
        "groupId": group["id"],
        "userId": carol["id"],
        "member": True,
    }
    assert site.client.post(member, headers=headers).status_code == 200  # again: no change
    groups = site.client.get(f"/v1/admin/organizations/{org['id']}/groups", headers=headers).json()["groups"]
    assert [(g["name"], g["memberIds"]) for g in groups] == [("Ops", [carol["id"]])]
    shown = site.client.get(f"/v1/admin/organizations/{org['id']}", headers=headers).json()
    assert (shown["users"], shown["enabledUsers"], shown["groups"], shown["licenses"]) == (1, 1, 1, 0)
    disabled = site.client.post(f"/v1/admin/users/{carol['id']}/disable", headers=headers).json()
    assert disabled["disabled"] is True
    shown = site.client.get(f"/v1/admin/organizations/{org['id']}", headers=headers).json()
    assert (shown["users"], shown["enabledUsers"]) == (1, 0)
    assert (
        site.client.post(f"/v1/admin/users/{carol['id']}/enable", headers=headers).json()["disabled"] is False
    )
    assert site.client.delete(member, headers=headers).json()["member"] is False
    assert error(site.client.delete(member, headers=headers)) == (404, "NOT_FOUND")
    actions = [(e.action, e.actor) for e in reversed(site.audit()) if e.actor == actor]
    assert [a for a, _ in actions] == [
        "organization.create",
        "user.create",
        "group.create",
        "group.add_user",
        "user.disable",
        "user.enable",
        "group.remove_user",
    ]


def test_the_organization_detail_counts_its_users_groups_and_licenses(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_READ.value)
    shown = site.client.get(f"/v1/admin/organizations/{_org(site).id}", headers=headers).json()
    assert (shown["name"], shown["users"], shown["enabledUsers"], shown["groups"], shown["licenses"]) == (
        "Org A",
        3,
        3,
        1,
        2,
    )
    groups = site.client.get(f"/v1/admin/organizations/{_org(site).id}/groups", headers=headers).json()
    assert groups["groups"] == [
        {
            "id": _team(site).id,
            "organizationId": _org(site).id,
            "name": "Team A",
            "createdAt": _team(site).created_at,
            "memberIds": [_uid(site, "user2")],
            "licenseIds": [site.licenses["group"].id],
        }
    ]


def test_a_license_of_another_organization_or_account_is_not_linked(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    team = _team(site)
    before = _people(site)
    for license in ("org_b", "nobody", "user1", "other"):
        answer = site.client.post(
            f"/v1/admin/groups/{team.id}/licenses/{site.licenses[license].id}", headers=headers
        )
        assert error(answer) == (404, "LICENSE_NOT_FOUND"), license
    # a user of another organization is not added
    answer = site.client.post(f"/v1/admin/groups/{team.id}/members/{_uid(site, 'admin_b')}", headers=headers)
    assert error(answer) == (404, "NOT_FOUND")
    assert _people(site) == before
    linked = site.client.post(
        f"/v1/admin/groups/{team.id}/licenses/{site.licenses['org_a'].id}", headers=headers
    )
    assert linked.json()["linked"] is True
    with site.svc.store.read() as tx:
        assert tx.group_license_ids(team.id) == {site.licenses["org_a"].id, site.licenses["group"].id}


# -- the organization's cap ------------------------------------------------------------------------


def test_the_allowed_users_cap_holds_for_creates_and_enables(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    org = site.client.post(
        "/v1/admin/organizations", json={"name": "Small", "allowedUsers": 1}, headers=headers
    ).json()

    def create(email: str) -> httpx.Response:
        body = {"email": email, "role": "user", "organizationId": org["id"]}
        return site.client.post("/v1/admin/users", json=body, headers=headers)

    first = create("one@small.example")
    assert first.status_code == 201
    assert error(create("two@small.example")) == (409, "USER_LIMIT")
    site.client.post(f"/v1/admin/users/{first.json()['id']}/disable", headers=headers)
    assert create("two@small.example").status_code == 201
    assert error(site.client.post(f"/v1/admin/users/{first.json()['id']}/enable", headers=headers)) == (
        409,
        "USER_LIMIT",
    )
    assert user_by_email(site, "one@small.example").disabled


def test_two_enables_racing_for_the_last_place_enable_one(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    org = site.client.post(
        "/v1/admin/organizations", json={"name": "Small", "allowedUsers": 1}, headers=headers
    ).json()
    ids = []
    for email in ("one@small.example", "two@small.example"):
        body = {"email": email, "role": "user", "organizationId": org["id"]}
        made = site.client.post("/v1/admin/users", json=body, headers=headers).json()
        site.client.post(f"/v1/admin/users/{made['id']}/disable", headers=headers)
        ids.append(made["id"])
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def enable(user_id: str) -> None:
        start.wait()
        answers.append(site.client.post(f"/v1/admin/users/{user_id}/enable", headers=headers))

    threads = [threading.Thread(target=enable, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    with site.svc.store.read() as tx:
        assert tx.enabled_user_count(site.acme.id, org["id"]) == 1


# -- idempotency -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "table_name"),
    [
        ("/v1/admin/organizations", {"name": "Org C"}, "organizations"),
        ("/v1/admin/users", {"email": "new@acme.example", "role": "user"}, "users"),
        ("/v1/admin/groups", {"name": "Team C"}, "user_groups"),
    ],
)
def test_a_retried_create_answers_the_first_answer_and_creates_one(
    site: Site, path: str, body: dict[str, Any], table_name: str
) -> None:
    if path.endswith("groups"):
        body = {**body, "organizationId": _org(site).id}
    headers = {**site.admin_auth(Scope.CUSTOMERS_WRITE.value), "idempotency-key": "crm-1"}
    count = len(table(site.svc.store, table_name))
    first = site.client.post(path, json=body, headers=headers)
    again = site.client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(table(site.svc.store, table_name)) == count + 1
    changed = {k: "x@acme.example" if k == "email" else "x" for k in ("name", "email") if k in body}
    other = site.client.post(path, json={**body, **changed}, headers=headers)
    assert error(other) == (409, "IDEMPOTENCY_KEY_REUSED")
    # without a key, the same body again is refused as a duplicate name or email
    assert error(site.client.post(path, json=body, headers=site.admin_auth(Scope.CUSTOMERS_WRITE.value))) == (
        409,
        "CONFLICT",
    )
    assert len(table(site.svc.store, table_name)) == count + 1


def test_hostile_bodies_change_nothing(site: Site) -> None:
    headers = {**site.admin_auth(Scope.CUSTOMERS_WRITE.value), "idempotency-key": "k"}
    org = _org(site).id
    before, state = _people(site), site.state()
    refused: list[tuple[str, Any]] = [
        ("/v1/admin/organizations", {}),
        ("/v1/admin/organizations", {"name": ""}),
        ("/v1/admin/organizations", {"name": "   "}),
        ("/v1/admin/organizations", {"name": "x" * 201}),
        ("/v1/admin/organizations", {"name": "Org\x00C"}),
        ("/v1/admin/organizations", {"name": "Org\nC"}),
        ("/v1/admin/organizations", {"name": 5}),
        ("/v1/admin/organizations", {"name": "C", "allowedUsers": -1}),
        ("/v1/admin/organizations", {"name": "C", "allowedUsers": 2**31}),
        ("/v1/admin/organizations", {"name": "C", "allowedUsers": "5"}),
        ("/v1/admin/organizations", {"name": "C", "allowedUsers": True}),
        ("/v1/admin/organizations", {"name": "C", "color": "red"}),
        ("/v1/admin/organizations", ["name"]),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "user", "password": "hunter2 hunter2"}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "boss"}),
        ("/v1/admin/users", {"email": "a@acme.example"}),
        ("/v1/admin/users", {"email": "not an email", "role": "user"}),
        ("/v1/admin/users", {"email": "a\x00@acme.example", "role": "user"}),
        ("/v1/admin/users", {"email": "a@" + "x" * 300 + ".example", "role": "user"}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "user", "firstName": "A\x1b[31m"}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "user", "lastName": "x" * 101}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "user", "invite": "yes"}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "user", "organizationId": "Org A"}),
        ("/v1/admin/users", {"email": "a@acme.example", "role": "organization-admin"}),
        ("/v1/admin/users", {"email": EMAILS["user1"], "role": "user"}),  # taken
        ("/v1/admin/groups", {"organizationId": org}),
        ("/v1/admin/groups", {"organizationId": org, "name": "Team A"}),  # taken
        ("/v1/admin/groups", {"organizationId": org, "name": "x" * 201}),
        ("/v1/admin/groups", {"organizationId": org, "name": "T\x7f"}),
        ("/v1/admin/groups", {"organizationId": "org_" + "0" * 32, "name": "T"}),
        ("/v1/admin/groups", {"name": "T"}),
    ]
    for path, body in refused:
        answer = site.client.post(path, json=body, headers=headers)
        assert answer.status_code in (400, 404, 409), (path, body, answer.text)
    for path in (
        "/v1/admin/users/usr_x/disable",
        f"/v1/admin/users/{org}/invite",
        "/v1/admin/groups/grp_1/members/usr_1",
        f"/v1/admin/groups/{_team(site).id}/licenses/{_uid(site, 'user1')}",
    ):
        assert error(site.client.post(path, headers=headers)) == (400, "INVALID_ARGUMENT"), path
    assert _people(site) == before and site.state() == state
    assert mails(site) == []


# -- paging ------------------------------------------------------------------------------------


def test_user_pages_miss_and_repeat_nothing_and_filter_by_organization(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_READ.value, Scope.CUSTOMERS_WRITE.value)
    for n in range(4):
        body = {"email": f"u{n}@acme.example", "role": "user", "organizationId": _org(site, "Org B").id}
        assert site.client.post("/v1/admin/users", json=body, headers=headers).status_code == 201
    with site.svc.store.read() as tx:
        every = {u.id for u in tx.users_page(site.acme.id, limit=1000)}
    for query, expected in (
        ("", every),
        (f"&organization={_org(site, 'Org B').id}", {u for u in every if user_in(site, u, "Org B")}),
    ):
        seen: list[str] = []
        cursor = None
        while True:
            url = "/v1/admin/users?limit=2" + query + (f"&cursor={cursor}" if cursor else "")
            page = site.client.get(url, headers=headers).json()
            seen += [u["id"] for u in page["users"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(seen) == expected, query
    assert len([u for u in every if user_in(site, u, "Org B")]) == 5
    orgs = site.client.get("/v1/admin/organizations?limit=1", headers=headers).json()
    rest = site.client.get(f"/v1/admin/organizations?cursor={orgs['nextCursor']}", headers=headers).json()
    both = orgs["organizations"] + rest["organizations"]
    # by id: made in the same millisecond, the two may come in either order of their names
    assert [o["id"] for o in both] == sorted(o["id"] for o in both) and rest["nextCursor"] is None
    assert sorted(o["name"] for o in both) == ["Org A", "Org B"]
    for query in ("cursor=abc", "limit=0", "limit=201", "organization=Org%20A", "cursor=usr_1"):
        assert error(site.client.get(f"/v1/admin/users?{query}", headers=headers))[0] == 400, query


def user_in(site: Site, user_id: str, org: str) -> bool:
    with site.svc.store.read() as tx:
        found = tx.user(site.acme.id, user_id)
    return found is not None and found.organization_id == _org(site, org).id


# -- invitations -------------------------------------------------------------------------------


def _secret_of(link: str) -> str:
    return link.partition("token=")[2]


def test_an_invited_user_gets_a_working_link_that_no_answer_or_log_holds(site: Site) -> None:
    headers = {
        **site.admin_auth(Scope.CUSTOMERS_READ.value, Scope.CUSTOMERS_WRITE.value),
        "idempotency-key": "invite-1",
    }
    body = {"email": "dora@acme.example", "role": "user", "organizationId": _org(site).id, "invite": True}
    made = site.client.post("/v1/admin/users", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["invitation"]["expiresAt"] == site.svc.now() + site.svc.settings.password_link_lifetime
    ((_, mail),) = mails(site)
    assert mail["To"] == "dora@acme.example"
    secret = _secret_of(link_in(mail))
    assert len(secret) >= 40
    again = site.client.post("/v1/admin/users", json=body, headers=headers)  # a replay mails nothing
    assert again.json() == made.json() and len(mails(site)) == 1
    shown = site.client.get(f"/v1/admin/users/{made.json()['id']}", headers=headers)
    for text in (made.text, again.text, shown.text, repr(table(site.svc.store, "admin_idempotency"))):
        assert secret not in text
    assert all(secret not in str(e.detail) for e in site.audit())
    # the link sets a password, once
    password_links.set_password(site.svc.store, secret, NEW_PASSWORD, now=site.svc.now(), cost=Cost.MINIMUM)
    login = site.client.post(
        "/v1/accounts/login",
        json={"accountAlias": "acme", "email": "dora@acme.example", "password": NEW_PASSWORD},
    )
    assert login.status_code == 200, login.text
    with pytest.raises(OfflineServiceError):
        password_links.holder(site.svc.store, secret, now=site.svc.now())


def test_a_new_invitation_ends_the_earlier_link(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    url = f"/v1/admin/users/{_uid(site, 'user1')}/invite"
    first = site.client.post(url, headers=headers)
    assert first.status_code == 200 and first.json()["email"] == EMAILS["user1"]
    second = site.client.post(url, headers=headers)
    (_, one), (_, two) = mails(site)
    old, new = _secret_of(link_in(one)), _secret_of(link_in(two))
    assert old != new and old not in first.text and new not in second.text
    with pytest.raises(OfflineServiceError):
        password_links.holder(site.svc.store, old, now=site.svc.now())
    assert password_links.holder(site.svc.store, new, now=site.svc.now()).id == _uid(site, "user1")
    assert all(old not in str(e.detail) and new not in str(e.detail) for e in site.audit())
    # a disabled user is not invited
    site.client.post(f"/v1/admin/users/{_uid(site, 'user1')}/disable", headers=headers)
    assert error(site.client.post(url, headers=headers)) == (409, "CONFLICT")
    assert len(mails(site)) == 2


def test_without_a_public_address_an_invitation_changes_nothing(make_site: Callable[..., Site]) -> None:
    site = make_site(public_url=None)
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    before = _people(site)
    body = {"email": "eve@acme.example", "role": "user", "invite": True}
    assert error(site.client.post("/v1/admin/users", json=body, headers=headers)) == (400, "INVALID_ARGUMENT")
    invite = site.client.post(f"/v1/admin/users/{_uid(site, 'user1')}/invite", headers=headers)
    assert error(invite) == (400, "INVALID_ARGUMENT")
    assert _people(site) == before and mails(site) == []
    # without an invitation, the user is made (and can be invited later, once there is an address)
    assert (
        site.client.post("/v1/admin/users", json={**body, "invite": False}, headers=headers).status_code
        == 201
    )


class _Refusing:
    """A mailer whose relay is away."""

    def send(self, message: Any) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "cannot use the mail directory /secret/path")


def test_a_mail_that_cannot_be_sent_is_a_503_and_the_user_stays(site: Site) -> None:
    site.svc.mailer = _Refusing()
    headers = {**site.admin_auth(Scope.CUSTOMERS_WRITE.value), "idempotency-key": "invite-2"}
    body = {"email": "fay@acme.example", "role": "user", "invite": True}
    answer = site.client.post("/v1/admin/users", json=body, headers=headers)
    assert error(answer) == (503, "STORAGE_ERROR") and "/secret" not in answer.text
    fay = user_by_email(site, "fay@acme.example")
    assert f"/v1/admin/users/{fay.id}/invite" in answer.json()["message"]
    again = site.client.post("/v1/admin/users", json=body, headers=headers)  # the kept 201
    assert again.status_code == 201 and again.json()["id"] == fay.id
    invite = site.client.post(f"/v1/admin/users/{fay.id}/invite", headers=headers)
    assert error(invite) == (503, "STORAGE_ERROR") and "/secret" not in invite.text


# -- renaming and deleting a group -----------------------------------------------------------------


def test_a_group_is_renamed_and_a_taken_or_bad_name_changes_nothing(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    team = _team(site)
    path = f"/v1/admin/groups/{team.id}"
    answer = site.client.patch(path, json={"name": "  Team Z "}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "id": team.id,
        "organizationId": team.organization_id,
        "name": "Team Z",
        "createdAt": team.created_at,
    }
    assert [(e.action, e.actor) for e in site.audit()[:1]] == [("group.rename", _actor(site, headers))]
    create = {**headers, "idempotency-key": "b"}
    made = site.client.post(
        "/v1/admin/groups", json={"organizationId": team.organization_id, "name": "Team B"}, headers=create
    )
    assert made.status_code == 201, made.text
    before, state = _people(site), site.state()
    assert error(site.client.patch(path, json={"name": "Team B"}, headers=headers)) == (409, "CONFLICT")
    for body in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "T\x00Z"},
        {"name": "T\nZ"},
        {"name": 5},
        {"name": None},
        {"name": "T", "organizationId": _org(site, "Org B").id},
        ["name"],
    ):
        assert error(site.client.patch(path, json=body, headers=headers)) == (400, "INVALID_ARGUMENT"), body
    assert error(site.client.patch("/v1/admin/groups/grp_x", json={"name": "T"}, headers=headers)) == (
        400,
        "INVALID_ARGUMENT",
    )
    assert (
        error(site.client.patch("/v1/admin/groups/grp_" + "0" * 32, json={"name": "T"}, headers=headers))[0]
        == 404
    )
    assert _people(site) == before and site.state() == state


def test_a_deleted_group_takes_its_members_and_links_but_not_users_or_licenses(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    team = _team(site)
    members = site.client.get(  # user2 sees the group's license through it
        f"/v1/admin/organizations/{team.organization_id}/groups",
        headers=site.admin_auth(Scope.CUSTOMERS_READ.value),
    ).json()["groups"]
    assert members[0]["memberIds"] == [_uid(site, "user2")]
    assert members[0]["licenseIds"] == [site.licenses["group"].id]
    kept = {t: table(site.svc.store, t) for t in ("users", "licenses", "activations", "organizations")}
    answer = site.client.delete(f"/v1/admin/groups/{team.id}", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"removed": team.id}
    assert {t: table(site.svc.store, t) for t in kept} == kept
    assert table(site.svc.store, "group_members") == [] and table(site.svc.store, "group_licenses") == []
    with site.svc.store.read() as tx:
        assert tx.groups_by_name(site.acme.id, "Team A") == []
    assert [(e.action, e.actor) for e in site.audit()[:1]] == [("group.delete", _actor(site, headers))]
    before = _people(site)
    assert error(site.client.delete(f"/v1/admin/groups/{team.id}", headers=headers)) == (404, "NOT_FOUND")
    assert error(site.client.patch(f"/v1/admin/groups/{team.id}", json={"name": "X"}, headers=headers)) == (
        404,
        "NOT_FOUND",
    )
    assert _people(site) == before


def test_two_renames_racing_to_one_name_rename_one_group(site: Site) -> None:
    headers = site.admin_auth(Scope.CUSTOMERS_WRITE.value)
    team = _team(site)
    other = site.client.post(
        "/v1/admin/groups",
        json={"organizationId": team.organization_id, "name": "Team B"},
        headers={**headers, "idempotency-key": "b"},
    ).json()["id"]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def rename(group_id: str) -> None:
        start.wait()
        answer = site.client.patch(f"/v1/admin/groups/{group_id}", json={"name": "Shared"}, headers=headers)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=rename, args=(g,)) for g in (team.id, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    with site.svc.store.read() as tx:
        assert len(tx.groups_by_name(site.acme.id, "Shared")) == 1
