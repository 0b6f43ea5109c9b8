"""Reads of an account's organizations, people and groups, a page at a time or one by id, for the
vendor (the admin API). Every read is scoped to the account: another account's id is NOT_FOUND, as
a missing one."""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from offline_service.accounts.models import Organization, User, UserGroup
from offline_service.accounts.scope import Scope
from offline_service.store import Store

__all__ = [
    "GroupView",
    "OrganizationView",
    "organization",
    "organization_groups",
    "organization_page",
    "user",
    "user_page",
]


class OrganizationView(NamedTuple):
    """An organization and how many users (enabled ones), groups and licenses it has."""

    organization: Organization
    users: int
    enabled_users: int
    groups: int
    licenses: int


class GroupView(NamedTuple):
    """A group with the ids of its members and of the licenses linked to it."""

    group: UserGroup
    member_ids: frozenset[str]
    license_ids: frozenset[str]


def organization_page(
    store: Store, scope: Scope, *, after: str | None = None, limit: int
) -> tuple[list[Organization], str | None]:
    """One page of the account's organizations by id, after ``after``, and the id to ask the next
    page after (None on the last page)."""
    with store.read() as tx:
        found = list(tx.organizations_page(scope.account_id, after=after, limit=limit + 1))
    more = len(found) > limit
    return found[:limit], found[limit - 1].id if more else None


def organization(store: Store, scope: Scope, organization_id: str) -> OrganizationView:
    """The organization with its counts; NOT_FOUND outside the scope."""
    with store.read() as tx:
        org = scope.organization(tx, organization_id)
        return OrganizationView(org, *tx.organization_counts(scope.account_id, org.id))


def organization_groups(store: Store, scope: Scope, organization_id: str) -> list[GroupView]:
    """The organization's groups by name, each with its members and licenses (one read, three
    statements however many groups)."""
    with store.read() as tx:
        org = scope.organization(tx, organization_id)
        groups = tx.organization_groups(scope.account_id, org.id)
        members, licenses = tx.organization_group_links(scope.account_id, org.id)
    member_ids: dict[str, set[str]] = defaultdict(set)
    license_ids: dict[str, set[str]] = defaultdict(set)
    for group_id, user_id in members:
        member_ids[group_id].add(user_id)
    for group_id, license_id in licenses:
        license_ids[group_id].add(license_id)
    return [GroupView(g, frozenset(member_ids[g.id]), frozenset(license_ids[g.id])) for g in groups]


def user_page(
    store: Store, scope: Scope, *, organization_id: str | None = None, after: str | None = None, limit: int
) -> tuple[list[User], str | None]:
    """One page of the account's users by id (of ``organization_id`` if given: NOT_FOUND outside
    the scope), and the id to ask the next page after (None on the last page)."""
    with store.read() as tx:
        if organization_id is not None:
            scope.organization(tx, organization_id)
        found = list(
            tx.users_page(scope.account_id, organization_id=organization_id, after=after, limit=limit + 1)
        )
    more = len(found) > limit
    return found[:limit], found[limit - 1].id if more else None


def user(store: Store, scope: Scope, user_id: str) -> User:
    """The user; NOT_FOUND outside the scope."""
    with store.read() as tx:
        return scope.user(tx, user_id)
