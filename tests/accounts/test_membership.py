"""The one set of membership operations, given the same hostile input by the vendor (the CLI's
scope) and by an organization admin (the portal's): the same code from both, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from offline_service.accounts import auth, membership
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.errors import Code
from offline_service.licensing import services as admin
from tests import people
from tests.accounts.orgs import DAY, PASSWORD, Org, add_user, refused
from tests.factories import NOW

SCOPES = ["vendor", "organization-admin"]


def _scope(o: Org, which: str) -> Scope:
    return Scope.vendor(o.w.account) if which == "vendor" else o.admin


CONTROL = ["\x00", "\x07", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"]


@pytest.mark.parametrize("which", SCOPES)
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"email": "not-an-email"}, Code.INVALID_ARGUMENT),
        ({"email": "a\x00b@a.example"}, Code.INVALID_ARGUMENT),
        ({"email": "bob@a.example"}, Code.CONFLICT),
        ({"email": "ZED@b.example"}, Code.CONFLICT),  # another organization's, same account
        ({"role": "owner"}, Code.INVALID_ARGUMENT),
        ({"first_name": "x" * 101}, Code.INVALID_ARGUMENT),  # refused, never cut to 100
        ({"first_name": "x" * 150}, Code.INVALID_ARGUMENT),
        ({"last_name": "y" * 101}, Code.INVALID_ARGUMENT),
        *[({"first_name": f"An{c}n"}, Code.INVALID_ARGUMENT) for c in CONTROL],
        *[({"last_name": f"Lee{c}Smith"}, Code.INVALID_ARGUMENT) for c in CONTROL],
    ],
)
def test_bad_new_users_get_the_same_code_in_every_scope(
    o: Org, which: str, fields: dict[str, str], code: Code
) -> None:
    before = o.state()
    values: dict[str, Any] = {"email": "new@a.example", "role": "user", **fields}
    org_a = o.ann.organization_id
    scope = _scope(o, which)
    refused(
        code,
        membership.create_user,
        o.w.store,
        scope,
        organization_id=org_a,
        now=NOW,
        link_lifetime=DAY,
        **values,
    )
    assert o.state() == before


@pytest.mark.parametrize("which", SCOPES)
def test_names_are_trimmed_and_may_be_as_long_as_the_limit(o: Org, which: str) -> None:
    scope, org_a = _scope(o, which), o.ann.organization_id
    user = membership.create_user(
        o.w.store,
        scope,
        email="long@a.example",
        role="user",
        organization_id=org_a,
        first_name=" " + "F" * membership.MAX_NAME + " ",
        last_name="L" * membership.MAX_NAME,
        now=NOW,
    ).user
    assert (user.first_name, user.last_name) == ("F" * membership.MAX_NAME, "L" * membership.MAX_NAME)
    group = membership.create_group(
        o.w.store, scope, name=" " + "G" * membership.MAX_GROUP_NAME, organization_id=org_a, now=NOW
    )
    assert group.name == "G" * membership.MAX_GROUP_NAME


BAD_GROUP_NAMES = [
    ("", Code.INVALID_ARGUMENT),
    ("   ", Code.INVALID_ARGUMENT),
    ("x" * 201, Code.INVALID_ARGUMENT),
    *[(f"Team{c}B", Code.INVALID_ARGUMENT) for c in CONTROL],
    ("Ops", Code.CONFLICT),
    (" Ops ", Code.CONFLICT),
]


@pytest.mark.parametrize("which", SCOPES)
@pytest.mark.parametrize(("name", "code"), BAD_GROUP_NAMES)
def test_bad_group_names_get_the_same_code_in_every_scope(o: Org, which: str, name: str, code: Code) -> None:
    scope, store = _scope(o, which), o.w.store
    before = o.state()
    refused(
        code, membership.create_group, store, scope, name=name, organization_id=o.ann.organization_id, now=NOW
    )
    other = membership.create_group(
        store, scope, name="Other", organization_id=o.ann.organization_id, now=NOW
    )
    renamed = o.state()
    refused(code, membership.rename_group, store, scope, other.id, name=name, now=NOW)
    assert o.state() == renamed != before


@pytest.mark.parametrize("which", SCOPES)
def test_another_organizations_user_or_license_is_not_found_in_every_scope(o: Org, which: str) -> None:
    """For an admin, another organization's ids are never confirmed; the vendor, who could see them,
    gets the same answer, so the code does not depend on who asks."""
    scope, store = _scope(o, which), o.w.store
    before = o.state()
    refused(Code.NOT_FOUND, membership.add_member, store, scope, o.ops.id, o.zed.id, now=NOW)
    refused(Code.NOT_FOUND, membership.add_member, store, scope, o.ops.id, o.stranger.id, now=NOW)
    refused(Code.NOT_FOUND, membership.add_member, store, scope, o.ops.id, "usr_" + "0" * 24, now=NOW)
    refused(Code.NOT_FOUND, membership.add_member, store, scope, "grp_" + "0" * 24, o.bob.id, now=NOW)
    for license in (o.b_license, o.free_license):
        refused(Code.LICENSE_NOT_FOUND, membership.link_license, store, scope, o.ops.id, license.id, now=NOW)
        refused(
            Code.LICENSE_NOT_FOUND, membership.unlink_license, store, scope, o.ops.id, license.id, now=NOW
        )
    assert o.state() == before
    membership.add_member(store, scope, o.ops.id, o.bob.id, now=NOW)
    membership.link_license(store, scope, o.ops.id, o.a_license.id, now=NOW)
    with store.read() as tx:
        assert tx.visible_license_ids(o.w.account.id, o.bob) == {o.a_license.id}


@pytest.mark.parametrize("which", SCOPES)
def test_adding_twice_is_one_membership_and_one_audit_entry(o: Org, which: str) -> None:
    scope = _scope(o, which)
    for _ in range(2):
        membership.add_member(o.w.store, scope, o.ops.id, o.bob.id, now=NOW)
        membership.link_license(o.w.store, scope, o.ops.id, o.a_license.id, now=NOW)
    actions = [action for _, action in o.audit()]
    assert actions.count("group.add_user") == 1 and actions.count("group.link_license") == 1


def test_only_the_vendor_creates_organizations(o: Org) -> None:
    before = o.state()
    refused(Code.FORBIDDEN, membership.create_organization, o.w.store, o.admin, name="Org C", now=NOW)
    assert o.state() == before
    vendor = Scope.vendor(o.w.account)
    for name in ("", "x" * 201, "Org\x00C", "Org\nC"):
        refused(Code.INVALID_ARGUMENT, membership.create_organization, o.w.store, vendor, name=name, now=NOW)
    refused(
        Code.INVALID_ARGUMENT,
        membership.create_organization,
        o.w.store,
        vendor,
        name="C",
        allowed_users=-1,
        now=NOW,
    )
    refused(Code.CONFLICT, membership.create_organization, o.w.store, vendor, name=" Org B ", now=NOW)
    assert o.state() == before
    org = membership.create_organization(o.w.store, vendor, name=" Org C ", now=NOW, allowed_users=0)
    assert (org.name, org.allowed_users) == ("Org C", 0)
    assert ("cli", "organization.create") in o.audit()


def test_an_organization_admin_belongs_to_an_organization(o: Org) -> None:
    vendor = Scope.vendor(o.w.account)
    refused(
        Code.INVALID_ARGUMENT,
        membership.create_user,
        o.w.store,
        vendor,
        email="x@example.com",
        role="organization-admin",
        now=NOW,
    )
    loner = add_user(o.w, "loner@example.com", Role.USER, None)
    refused(
        Code.INVALID_ARGUMENT,
        membership.update_user,
        o.w.store,
        vendor,
        loner.id,
        first_name="",
        last_name="",
        role="organization-admin",
        now=NOW,
    )


def test_the_admin_reaches_only_their_organization_by_name_too(o: Org) -> None:
    store = o.w.store
    refused(Code.NOT_FOUND, membership.organization_named, store, o.admin, "Org B")
    refused(Code.NOT_FOUND, membership.user_with_email, store, o.admin, "zed@b.example")
    refused(Code.LICENSE_NOT_FOUND, membership.license_with_key, store, o.admin, o.b_license.key)
    assert membership.organization_named(store, o.admin, "Org A").id == o.ann.organization_id
    vendor = Scope.vendor(o.w.account)
    assert membership.user_with_email(store, vendor, "ZED@b.example").id == o.zed.id
    assert membership.license_with_key(store, vendor, o.free_license.key).id == o.free_license.id


def test_a_group_name_in_two_organizations_is_ambiguous_for_the_vendor_only(o: Org) -> None:
    store, vendor = o.w.store, Scope.vendor(o.w.account)
    people.create_group(store, o.w.account, organization="Org B", name="Ops", now=NOW)
    refused(Code.CONFLICT, membership.group_named, store, vendor, "Ops")
    assert membership.group_named(store, o.admin, "Ops").id == o.ops.id
    refused(Code.NOT_FOUND, membership.group_named, store, vendor, "Nope")


# -- as the vendor sets people up (by name, as the CLI does) ----------------------------------------


def test_one_email_per_account_but_the_same_email_in_two_accounts(o: Org) -> None:
    refused(Code.CONFLICT, add_user, o.w, "ANN@a.example", Role.USER, "Org A")
    other, _ = admin.ensure_account(o.w.store, "third", now=NOW)
    add_user(o.w, "ann@a.example", Role.USER, None, account=other)
    for alias, account_id in (("default", o.w.account.id), ("third", other.id)):
        found = auth.authenticate(
            o.w.store,
            account_alias=alias,
            email="Ann@A.example",
            password=PASSWORD,
            address="10.0.0.1",
            now=NOW,
            cost=Cost.MINIMUM,
        )
        assert found.account_id == account_id


def test_who_sees_which_license(o: Org) -> None:
    u1 = add_user(o.w, "u1@a.example", Role.USER, "Org A")
    own = o.w.license(owner_user_email="u1@a.example")
    with o.w.store.read() as tx:
        seen = {u.email: tx.visible_license_ids(o.w.account.id, u) for u in (o.ann, o.bob, u1, o.zed)}
    assert seen["ann@a.example"] == {o.a_license.id}
    assert seen["u1@a.example"] == {own.id}
    assert seen["bob@a.example"] == frozenset()
    assert seen["zed@b.example"] == {o.b_license.id}
