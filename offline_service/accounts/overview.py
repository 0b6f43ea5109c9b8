"""What an organization admin's pages show: the organization with its users, groups (with their
members and linked licenses) and licenses, read in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from offline_service.accounts.models import Organization, User, UserGroup
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import License
from offline_service.store import Store

__all__ = ["GroupView", "OrganizationView", "view"]


@dataclass(frozen=True, slots=True)
class GroupView:
    group: UserGroup
    member_ids: frozenset[str]
    license_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class OrganizationView:
    organization: Organization
    users: list[User]  # by email
    groups: list[GroupView]  # by name
    licenses: list[License]  # owned by the organization, oldest first
    enabled_users: int
    products: dict[str, str]  # names by id, of the account

    def user(self, user_id: str) -> User:
        for user in self.users:
            if user.id == user_id:
                return user
        raise OfflineServiceError(Code.NOT_FOUND, "no such user in this organization")

    def group(self, group_id: str) -> GroupView:
        for group in self.groups:
            if group.group.id == group_id:
                return group
        raise OfflineServiceError(Code.NOT_FOUND, "no such group in this organization")


def view(store: Store, scope: Scope) -> OrganizationView:
    """The admin's organization: its users, groups (with members and licenses) and licenses."""
    with store.read() as tx:
        scope.check(tx)
        org = scope.organization(tx)
        groups = [
            GroupView(group=g, member_ids=tx.group_member_ids(g.id), license_ids=tx.group_license_ids(g.id))
            for g in tx.organization_groups(scope.account_id, org.id)
        ]
        return OrganizationView(
            organization=org,
            users=list(tx.organization_users(scope.account_id, org.id)),
            groups=groups,
            licenses=list(tx.organization_licenses(scope.account_id, org.id)),
            enabled_users=tx.enabled_user_count(scope.account_id, org.id),
            products={p.id: p.name for p in tx.products(scope.account_id)},
        )
