"""Renaming and deleting a group (``membership.rename_group``, ``delete_group``), by the vendor and
by an organization admin: the new name checked as a create's and unique in the organization; a
delete takes the memberships and license links with it in one transaction, never the users, the
licenses or their seats; another organization's group is NOT_FOUND, nothing changed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from offline_service.accounts import membership
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from tests import db
from tests.accounts.orgs import Org, refused
from tests.factories import NOW

SCOPES = ["vendor", "organization-admin"]


def _scope(o: Org, which: str) -> Scope:
    return Scope.vendor(o.w.account) if which == "vendor" else o.admin


def _lab(o: Org, scope: Scope) -> Any:
    """Group Lab of Org A, with bob as a member and Org A's license linked."""
    lab = membership.create_group(
        o.w.store, scope, name="Lab", now=NOW, organization_id=o.ann.organization_id
    )
    membership.add_member(o.w.store, scope, lab.id, o.bob.id, now=NOW)
    membership.link_license(o.w.store, scope, lab.id, o.a_license.id, now=NOW)
    return lab


def _licenses(o: Org) -> dict[str, list[tuple[Any, ...]]]:
    return {t: db.table(o.w.store, t) for t in ("licenses", "activations", "users", "organizations")}


@pytest.mark.parametrize("which", SCOPES)
def test_a_rename_is_trimmed_and_audited_and_the_same_name_changes_nothing(o: Org, which: str) -> None:
    scope = _scope(o, which)
    renamed = membership.rename_group(o.w.store, scope, o.ops.id, name="  Operations ", now=NOW)
    assert (renamed.id, renamed.name, renamed.organization_id) == (
        o.ops.id,
        "Operations",
        o.ops.organization_id,
    )
    with o.w.store.read() as tx:
        assert [g.name for g in tx.groups_by_name(o.w.account.id, "Operations")] == ["Operations"]
    assert o.audit()[0] == (scope.actor, "group.rename")
    before = o.state()
    assert (
        membership.rename_group(o.w.store, scope, o.ops.id, name="Operations", now=NOW).name == "Operations"
    )
    assert o.state() == before


@pytest.mark.parametrize("which", SCOPES)
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Lab", Code.CONFLICT),
        (" Lab ", Code.CONFLICT),
        ("", Code.INVALID_ARGUMENT),
        ("   ", Code.INVALID_ARGUMENT),
        ("x" * 201, Code.INVALID_ARGUMENT),
        ("Dev\x00Ops", Code.INVALID_ARGUMENT),
        ("Dev\nOps", Code.INVALID_ARGUMENT),
    ],
)
def test_a_bad_or_taken_new_name_changes_nothing(o: Org, which: str, name: str, code: Code) -> None:
    scope = _scope(o, which)
    _lab(o, scope)
    before = o.state()
    refused(code, membership.rename_group, o.w.store, scope, o.ops.id, name=name, now=NOW)
    assert o.state() == before


def test_another_organization_may_have_the_new_name(o: Org) -> None:
    membership.create_group(o.w.store, Scope.of_admin(o.zed), name="Lab", now=NOW)
    assert membership.rename_group(o.w.store, o.admin, o.ops.id, name="Lab", now=NOW).name == "Lab"


@pytest.mark.parametrize("which", SCOPES)
def test_a_delete_takes_memberships_and_links_but_not_users_licenses_or_seats(o: Org, which: str) -> None:
    scope = _scope(o, which)
    lab = _lab(o, scope)
    membership.add_member(o.w.store, scope, o.ops.id, o.bob.id, now=NOW)
    kept = _licenses(o)
    gone = membership.delete_group(o.w.store, scope, lab.id, now=NOW)
    assert gone.id == lab.id
    assert _licenses(o) == kept
    with o.w.store.read() as tx:
        assert [g.id for g in tx.organization_groups(o.w.account.id, o.ann.organization_id)] == [o.ops.id]
        assert tx.group_member_ids(lab.id) == frozenset() and tx.group_license_ids(lab.id) == frozenset()
        assert tx.group_member_ids(o.ops.id) == {o.bob.id}  # the other group keeps its members
        assert tx.visible_license_ids(o.w.account.id, o.bob) == frozenset()
    assert o.audit()[0] == (scope.actor, "group.delete")
    before = o.state()
    refused(Code.NOT_FOUND, membership.delete_group, o.w.store, scope, lab.id, now=NOW)
    refused(Code.NOT_FOUND, membership.rename_group, o.w.store, scope, lab.id, name="Back", now=NOW)
    assert o.state() == before
    # The name is free again.
    membership.create_group(o.w.store, scope, name="Lab", now=NOW, organization_id=o.ann.organization_id)


def test_an_admin_cannot_rename_or_delete_another_organizations_or_accounts_group(o: Org) -> None:
    zeds = membership.create_group(o.w.store, Scope.of_admin(o.zed), name="Zed's", now=NOW)
    theirs = membership.create_group(o.w.store, Scope.of_admin(o.stranger), name="Theirs", now=NOW)
    before = o.state()
    for group in (zeds, theirs):
        refused(Code.NOT_FOUND, membership.rename_group, o.w.store, o.admin, group.id, name="Mine", now=NOW)
        refused(Code.NOT_FOUND, membership.delete_group, o.w.store, o.admin, group.id, now=NOW)
    # Nor can the vendor of this account reach the other account's group.
    vendor = Scope.vendor(o.w.account)
    refused(Code.NOT_FOUND, membership.rename_group, o.w.store, vendor, theirs.id, name="Mine", now=NOW)
    refused(Code.NOT_FOUND, membership.delete_group, o.w.store, vendor, theirs.id, now=NOW)
    assert o.state() == before


def test_a_delete_that_fails_midway_leaves_everything(o: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = _lab(o, o.admin)
    before = o.state()

    def broken(*args: Any, **kw: Any) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "the audit log is full")

    monkeypatch.setattr(membership, "_audit", broken)  # after the rows went, inside the transaction
    refused(Code.STORAGE_ERROR, membership.delete_group, o.w.store, o.admin, lab.id, now=NOW)
    assert o.state() == before


def test_two_renames_racing_to_one_name_rename_one(o: Org) -> None:
    lab = _lab(o, o.admin)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def rename(group_id: str) -> None:
        start.wait()
        try:
            membership.rename_group(o.w.store, o.admin, group_id, name="Shared", now=NOW)
            outcomes.append("renamed")
        except OfflineServiceError as exc:
            outcomes.append(exc.code.value)

    threads = [threading.Thread(target=rename, args=(g,)) for g in (o.ops.id, lab.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted(["renamed", Code.CONFLICT.value])
    with o.w.store.read() as tx:
        names = sorted(g.name for g in tx.organization_groups(o.w.account.id, o.ann.organization_id))
    assert names in (["Lab", "Shared"], ["Ops", "Shared"])
