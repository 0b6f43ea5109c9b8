"""Membership operations as an organization admin does them (no HTTP): users within the cap,
set-password links, groups, members and license links; every one scoped, re-checked, atomic and
audited. What both scopes share is in test_membership.py."""

from __future__ import annotations

from offline_service.accounts import auth, membership, overview, password_links
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost, verify_password
from offline_service.accounts.scope import Scope
from offline_service.errors import Code
from tests import db, people
from tests.accounts.orgs import DAY, NEW_PASSWORD, PASSWORD, Org, add_user
from tests.accounts.orgs import refused as _refused
from tests.factories import NOW

# -- scope ---------------------------------------------------------------------------------------


def test_only_an_enabled_organization_admin_has_a_scope(o: Org) -> None:
    assert Scope.of_admin(o.ann) == Scope(o.w.account.id, o.ann.organization_id, f"user:{o.ann.id}", o.ann.id)
    _refused(Code.FORBIDDEN, Scope.of_admin, o.bob)


def test_an_admin_demoted_or_disabled_meanwhile_can_do_nothing(o: Org) -> None:
    scope = o.admin  # taken while ann was an admin (a session resolved before the change)
    second = membership.create_user(
        o.w.store, scope, email="eve@a.example", role="organization-admin", now=NOW, link_lifetime=DAY
    )[0]
    membership.update_user(
        o.w.store, Scope.of_admin(second), o.ann.id, first_name="", last_name="", role="user", now=NOW
    )
    before = o.state()
    _refused(Code.FORBIDDEN, membership.create_group, o.w.store, scope, name="Late", now=NOW)
    _refused(Code.FORBIDDEN, overview.view, o.w.store, scope)
    assert o.state() == before


# -- users ---------------------------------------------------------------------------------------


def test_create_user_makes_a_passwordless_user_and_a_link_that_sets_the_password(o: Org) -> None:
    user, token = membership.create_user(
        o.w.store,
        o.admin,
        email=" Carl@A.example ",
        role="user",
        first_name=" Carl ",
        last_name="Jones",
        now=NOW,
        link_lifetime=DAY,
    )
    assert (user.email, user.first_name, user.last_name, user.role) == (
        "Carl@A.example",
        "Carl",
        "Jones",
        Role.USER,
    )
    assert user.organization_id == o.ann.organization_id and user.password_hash is None
    assert o.audit()[:2] == [(f"user:{o.ann.id}", "user.password_link"), (f"user:{o.ann.id}", "user.create")]
    # The secret is not in the database, only its hash.
    rows = db.rows(o.w.store, "SELECT token_hash FROM password_tokens")
    assert rows == [(auth.token_hash(token),)]
    assert password_links.holder(o.w.store, token, now=NOW).id == user.id
    password_links.set_password(o.w.store, token, NEW_PASSWORD, now=NOW + 60, cost=Cost.MINIMUM)
    assert verify_password(NEW_PASSWORD, o.user(user.id).password_hash, Cost.MINIMUM)
    logged_in = auth.authenticate(
        o.w.store,
        account_alias="default",
        email="carl@a.example",
        password=NEW_PASSWORD,
        address="10.0.0.9",
        now=NOW + 61,
        cost=Cost.MINIMUM,
    )
    assert logged_in.id == user.id
    assert (f"user:{user.id}", "user.set_password") in o.audit()


def test_the_same_email_in_another_account_is_no_conflict(o: Org) -> None:
    membership.create_user(o.w.store, o.admin, email="new@x.example", role="user", now=NOW, link_lifetime=DAY)
    stranger = Scope.of_admin(o.stranger)
    membership.create_user(
        o.w.store, stranger, email="new@x.example", role="user", now=NOW, link_lifetime=DAY
    )


def test_the_cap_counts_enabled_users_only(o: Org) -> None:
    store, scope = o.w.store, o.admin
    create = membership.create_user
    third, _ = create(store, scope, email="c@a.example", role="user", now=NOW, link_lifetime=DAY)
    create(store, scope, email="d@a.example", role="user", now=NOW, link_lifetime=DAY)  # 4 of 4
    before = o.state()
    error = _refused(
        Code.USER_LIMIT, create, store, scope, email="e@a.example", role="user", now=NOW, link_lifetime=DAY
    )
    assert "4 allowed users" in error.message
    assert o.state() == before
    # The vendor's command line is held to the same cap.
    _refused(
        Code.USER_LIMIT,
        people.create_user,
        store,
        o.w.account,
        email="e@a.example",
        role=Role.USER,
        organization="Org A",
        now=NOW,
    )
    membership.set_disabled(store, scope, third.id, True, now=NOW)  # frees a place
    create(store, scope, email="e@a.example", role="user", now=NOW, link_lifetime=DAY)
    before = o.state()
    _refused(Code.USER_LIMIT, membership.set_disabled, store, scope, third.id, False, now=NOW)
    assert o.state() == before
    # Org B has no cap at all.
    for i in range(6):
        create(store, Scope.of_admin(o.zed), email=f"b{i}@b.example", role="user", now=NOW, link_lifetime=DAY)


def test_update_user_changes_names_and_role_and_audits_what_changed(o: Org) -> None:
    updated = membership.update_user(
        o.w.store, o.admin, o.bob.id, first_name="Bob", last_name="Smith", role="organization-admin", now=NOW
    )
    assert (updated.first_name, updated.last_name, updated.role) == ("Bob", "Smith", Role.ORGANIZATION_ADMIN)
    assert o.user(o.bob.id) == updated
    with o.w.store.read() as tx:
        entry = tx.audit_entries(o.w.account.id, limit=1)[0]
    assert entry.action == "user.update" and entry.detail["changed"] == "first_name,last_name,role"
    # The same again changes nothing and adds no entry.
    count = len(o.audit())
    membership.update_user(
        o.w.store, o.admin, o.bob.id, first_name="Bob", last_name="Smith", role="organization-admin", now=NOW
    )
    assert len(o.audit()) == count


def test_an_admin_cannot_lock_themselves_out(o: Org) -> None:
    before = o.state()
    _refused(
        Code.SELF_LOCKOUT,
        membership.update_user,
        o.w.store,
        o.admin,
        o.ann.id,
        first_name="Ann",
        last_name="",
        role="user",
        now=NOW,
    )
    _refused(Code.SELF_LOCKOUT, membership.set_disabled, o.w.store, o.admin, o.ann.id, True, now=NOW)
    assert o.state() == before
    # Renaming oneself is fine.
    membership.update_user(
        o.w.store, o.admin, o.ann.id, first_name="Ann", last_name="Lee", role="organization-admin", now=NOW
    )


def test_disabling_ends_every_session_token_and_link_at_once(o: Org) -> None:
    store = o.w.store
    session = auth.issue_credential(store, o.bob, kind="session", lifetime=3600, now=NOW)
    access = auth.issue_credential(store, o.bob, kind="access", lifetime=3600, now=NOW)
    _, link = membership.send_password_link(store, o.admin, o.bob.id, now=NOW, link_lifetime=DAY)
    mine = auth.issue_credential(store, o.ann, kind="session", lifetime=3600, now=NOW)
    membership.set_disabled(store, o.admin, o.bob.id, True, now=NOW + 1)
    for token, kind in ((session, "session"), (access, "access")):
        _refused(Code.UNAUTHENTICATED, auth.resolve_credential, store, token, kind=kind, now=NOW + 2)
    _refused(Code.INVALID_PASSWORD_LINK, password_links.holder, store, link, now=NOW + 2)
    assert db.rows(store, "SELECT COUNT(*) FROM password_tokens") == [(0,)]
    # Enabling again does not bring them back; the admin's own session is untouched.
    membership.set_disabled(store, o.admin, o.bob.id, False, now=NOW + 3)
    _refused(Code.UNAUTHENTICATED, auth.resolve_credential, store, session, kind="session", now=NOW + 4)
    assert auth.resolve_credential(store, mine, kind="session", now=NOW + 4)[0].id == o.ann.id
    assert [a for _, a in o.audit()[:2]] == ["user.enable", "user.disable"]
    # Disabling a disabled user (a double submit) changes nothing.
    membership.set_disabled(store, o.admin, o.bob.id, True, now=NOW + 5)
    count = len(o.audit())
    membership.set_disabled(store, o.admin, o.bob.id, True, now=NOW + 6)
    assert len(o.audit()) == count


def test_a_new_link_ends_the_old_one_and_the_password_keeps_working(o: Org) -> None:
    store = o.w.store
    _, first = membership.send_password_link(store, o.admin, o.bob.id, now=NOW, link_lifetime=DAY)
    _, second = membership.send_password_link(store, o.admin, o.bob.id, now=NOW, link_lifetime=DAY)
    _refused(Code.INVALID_PASSWORD_LINK, password_links.holder, store, first, now=NOW)
    assert password_links.holder(store, second, now=NOW).id == o.bob.id
    assert verify_password(PASSWORD, o.user(o.bob.id).password_hash, Cost.MINIMUM)
    membership.set_disabled(store, o.admin, o.bob.id, True, now=NOW)
    _refused(
        Code.CONFLICT, membership.send_password_link, store, o.admin, o.bob.id, now=NOW, link_lifetime=DAY
    )


def test_other_organizations_and_accounts_are_not_found(o: Org) -> None:
    store, scope = o.w.store, o.admin
    before = o.state()
    for user in (o.zed, o.stranger):
        _refused(
            Code.NOT_FOUND,
            membership.update_user,
            store,
            scope,
            user.id,
            first_name="x",
            last_name="y",
            role="user",
            now=NOW,
        )
        _refused(Code.NOT_FOUND, membership.set_disabled, store, scope, user.id, True, now=NOW)
        _refused(
            Code.NOT_FOUND, membership.send_password_link, store, scope, user.id, now=NOW, link_lifetime=DAY
        )
        _refused(Code.NOT_FOUND, membership.add_member, store, scope, o.ops.id, user.id, now=NOW)
    zeds = membership.create_group(store, Scope.of_admin(o.zed), name="Zed's", now=NOW)
    before = o.state()
    _refused(Code.NOT_FOUND, membership.rename_group, store, scope, zeds.id, name="Mine", now=NOW)
    _refused(Code.NOT_FOUND, membership.add_member, store, scope, zeds.id, o.bob.id, now=NOW)
    _refused(Code.NOT_FOUND, membership.link_license, store, scope, zeds.id, o.a_license.id, now=NOW)
    for lic in (o.b_license, o.free_license):
        _refused(Code.LICENSE_NOT_FOUND, membership.link_license, store, scope, o.ops.id, lic.id, now=NOW)
    _refused(Code.LICENSE_NOT_FOUND, membership.link_license, store, scope, o.ops.id, "lic_nope", now=NOW)
    assert o.state() == before


def test_groups_members_and_license_links(o: Org) -> None:
    store, scope = o.w.store, o.admin
    lab = membership.create_group(store, scope, name=" Lab ", now=NOW)
    assert lab.name == "Lab" and lab.organization_id == o.ann.organization_id
    _refused(Code.CONFLICT, membership.create_group, store, scope, name="Ops", now=NOW)
    _refused(Code.INVALID_ARGUMENT, membership.create_group, store, scope, name="  ", now=NOW)
    # Another organization may have a group of the same name.
    membership.create_group(store, Scope.of_admin(o.zed), name="Lab", now=NOW)
    membership.add_member(store, scope, lab.id, o.bob.id, now=NOW)
    membership.add_member(store, scope, lab.id, o.bob.id, now=NOW)  # again: nothing new
    membership.link_license(store, scope, lab.id, o.a_license.id, now=NOW)
    membership.link_license(store, scope, lab.id, o.a_license.id, now=NOW)
    with store.read() as tx:
        assert tx.visible_license_ids(o.w.account.id, o.bob) == {o.a_license.id}
    view = overview.view(store, scope)
    assert [g.group.name for g in view.groups] == ["Lab", "Ops"]
    assert view.group(lab.id).member_ids == {o.bob.id} and view.group(lab.id).license_ids == {o.a_license.id}
    assert {x.id for x in view.licenses} == {o.a_license.id}
    assert [u.email for u in view.users] == ["ann@a.example", "bob@a.example"] and view.enabled_users == 2
    renamed = membership.rename_group(store, scope, lab.id, name="Laboratory", now=NOW)
    assert renamed.name == "Laboratory"
    _refused(Code.CONFLICT, membership.rename_group, store, scope, lab.id, name="Ops", now=NOW)
    membership.unlink_license(store, scope, lab.id, o.a_license.id, now=NOW)
    _refused(Code.NOT_FOUND, membership.unlink_license, store, scope, lab.id, o.a_license.id, now=NOW)
    membership.remove_member(store, scope, lab.id, o.bob.id, now=NOW)
    _refused(Code.NOT_FOUND, membership.remove_member, store, scope, lab.id, o.bob.id, now=NOW)
    with store.read() as tx:
        assert tx.visible_license_ids(o.w.account.id, o.bob) == frozenset()
    actions = [a for actor, a in o.audit() if actor == f"user:{o.ann.id}"]
    assert actions == [
        "group.remove_user",
        "group.unlink_license",
        "group.rename",
        "group.link_license",
        "group.add_user",
        "group.create",
    ]


def test_the_vendor_scope_reaches_every_organization_and_users_of_none(o: Org) -> None:
    store, vendor = o.w.store, Scope.vendor(o.w.account)
    loner = add_user(o.w, "loner@example.com", Role.USER, None)
    membership.set_disabled(store, vendor, o.zed.id, True, now=NOW)
    membership.set_disabled(store, vendor, loner.id, True, now=NOW)
    membership.set_disabled(store, vendor, loner.id, False, now=NOW)
    _refused(Code.NOT_FOUND, membership.set_disabled, store, vendor, o.stranger.id, True, now=NOW)
    assert ("cli", "user.disable") in o.audit()
