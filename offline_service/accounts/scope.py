"""Who acts on the people of an account, and what they may reach: the ``Scope`` every membership
operation takes.

The vendor (at the command line) acts on every organization of the account; an organization admin
(in the portal) on their own organization only. What lies outside a scope is NOT_FOUND
(LICENSE_NOT_FOUND for a license), never FORBIDDEN, so the ids of other organizations and accounts
are never confirmed. An admin is checked again in every transaction: a session outlives a demotion
by at most one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from offline_service.accounts.models import Account, Organization, Role, User, UserGroup
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import License
from offline_service.store import Transaction

__all__ = ["Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Who acts, on which organization of which account."""

    account_id: str
    organization_id: str | None  # None: the vendor, every organization of the account
    actor: str  # in the audit log: "user:<id>" or "cli"
    admin_id: str | None = None  # the acting admin, checked again in every transaction

    @classmethod
    def of_admin(cls, user: User) -> Scope:
        """The scope of an organization admin; FORBIDDEN for anyone else."""
        if user.role is not Role.ORGANIZATION_ADMIN or user.organization_id is None or user.disabled:
            raise OfflineServiceError(Code.FORBIDDEN, "only an organization admin may do this")
        return cls(
            account_id=user.account_id,
            organization_id=user.organization_id,
            actor=f"user:{user.id}",
            admin_id=user.id,
        )

    @classmethod
    def vendor(cls, account: Account, *, actor: str = "cli") -> Scope:
        """The vendor: every organization of the account; ``actor`` ``cli`` at the command line, or
        the admin API token that acts."""
        return cls(account_id=account.id, organization_id=None, actor=actor)

    @property
    def is_vendor(self) -> bool:
        return self.organization_id is None

    def holds(self, organization_id: str | None) -> bool:
        """Whether a thing of this organization (None: of no organization) is in scope."""
        return self.organization_id is None or organization_id == self.organization_id

    # -- inside a transaction ------------------------------------------------------------------

    def check(self, tx: Transaction) -> None:
        """FORBIDDEN unless the acting admin still is an enabled admin of the organization."""
        if self.admin_id is None:
            return
        admin = tx.user(self.account_id, self.admin_id)
        if (
            admin is None
            or admin.disabled
            or admin.role is not Role.ORGANIZATION_ADMIN
            or admin.organization_id != self.organization_id
        ):
            raise OfflineServiceError(Code.FORBIDDEN, "only an organization admin may do this")

    def organization(self, tx: Transaction, organization_id: str | None = None) -> Organization:
        """The organization ``organization_id`` (default: the admin's own); NOT_FOUND outside the scope."""
        wanted = organization_id or self.organization_id
        found = tx.organization(self.account_id, wanted) if wanted and self.holds(wanted) else None
        if found is None:
            raise OfflineServiceError(Code.NOT_FOUND, "no such organization")
        return found

    def user(self, tx: Transaction, user_id: str) -> User:
        found = tx.user(self.account_id, user_id)
        if found is None or not self.holds(found.organization_id):
            raise OfflineServiceError(Code.NOT_FOUND, "no such user in this organization")
        return found

    def group(self, tx: Transaction, group_id: str) -> UserGroup:
        found = tx.group(self.account_id, group_id)
        if found is None or not self.holds(found.organization_id):
            raise OfflineServiceError(Code.NOT_FOUND, "no such group in this organization")
        return found

    def license_of(self, tx: Transaction, group: UserGroup, license_id: str) -> License:
        """A license the group's organization owns; LICENSE_NOT_FOUND for any other."""
        found = tx.license_by_id(self.account_id, license_id)
        if found is None or found.owner_organization_id != group.organization_id:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license of the group's organization")
        return found
