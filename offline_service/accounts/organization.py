"""What an organization admin does to their organization: its users (create, edit, disable and
enable, within the organization's cap of users), set-password links, user groups, their members and
the organization's licenses linked to them.

Every operation is one write transaction, scoped to one account and one organization, and audited
under the acting person. Inside that transaction it first checks again that the actor still is an
enabled admin of the organization: a session outlives a demotion by at most one request. What lies
outside the scope is NOT_FOUND (LICENSE_NOT_FOUND for a license), never FORBIDDEN, so the ids of
other organizations and accounts are never confirmed. Bad input raises before anything is written.

The vendor's CLI uses the same operations with ``Scope.vendor``: the whole account, actor ``cli``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from offline_service.accounts import password_links
from offline_service.accounts.models import Account, Organization, Role, User, UserGroup
from offline_service.accounts.people import check_email, check_user_cap
from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id
from offline_service.licensing.models import License
from offline_service.store import Store, Transaction

__all__ = [
    "MAX_NAME",
    "GroupView",
    "OrganizationView",
    "Scope",
    "add_member",
    "check_person_name",
    "create_group",
    "create_user",
    "link_license",
    "remove_member",
    "rename_group",
    "send_password_link",
    "set_disabled",
    "unlink_license",
    "update_user",
    "view",
]

MAX_NAME = 100  # first and last names
MAX_GROUP_NAME = 200


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
    def vendor(cls, account: Account) -> Scope:
        """The vendor at the command line: every organization of the account."""
        return cls(account_id=account.id, organization_id=None, actor="cli")

    def holds(self, organization_id: str | None) -> bool:
        """Whether a thing of this organization (None: of no organization) is in scope."""
        return self.organization_id is None or organization_id == self.organization_id


def _check_actor(tx: Transaction, scope: Scope) -> None:
    if scope.admin_id is None:
        return
    admin = tx.user(scope.account_id, scope.admin_id)
    if (
        admin is None
        or admin.disabled
        or admin.role is not Role.ORGANIZATION_ADMIN
        or admin.organization_id != scope.organization_id
    ):
        raise OfflineServiceError(Code.FORBIDDEN, "only an organization admin may do this")


def _organization(tx: Transaction, scope: Scope, organization_id: str | None = None) -> Organization:
    wanted = organization_id or scope.organization_id
    found = tx.organization(scope.account_id, wanted) if wanted and scope.holds(wanted) else None
    if found is None:
        raise OfflineServiceError(Code.NOT_FOUND, "no such organization")
    return found


def _user(tx: Transaction, scope: Scope, user_id: str) -> User:
    found = tx.user(scope.account_id, user_id)
    if found is None or not scope.holds(found.organization_id):
        raise OfflineServiceError(Code.NOT_FOUND, "no such user in this organization")
    return found


def _group(tx: Transaction, scope: Scope, group_id: str) -> UserGroup:
    found = tx.group(scope.account_id, group_id)
    if found is None or not scope.holds(found.organization_id):
        raise OfflineServiceError(Code.NOT_FOUND, "no such group in this organization")
    return found


def _audit(tx: Transaction, scope: Scope, action: str, now: int, **detail: str) -> None:
    tx.audit(
        AuditEntry(
            at=now, actor=scope.actor, action=action, code="OK", account_id=scope.account_id, detail=detail
        )
    )


def check_person_name(value: str, what: str) -> str:
    """A first or last name: trimmed, at most MAX_NAME characters, no control characters."""
    value = value.strip()
    if len(value) > MAX_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"a {what} must be at most {MAX_NAME} characters, without control characters",
        )
    return value


def _group_name(value: str) -> str:
    value = value.strip()
    if not 0 < len(value) <= MAX_GROUP_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"a group name must be 1-{MAX_GROUP_NAME} characters, without control characters",
        )
    return value


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a role is user or organization-admin") from None


# -- users ---------------------------------------------------------------------------------------


def create_user(
    store: Store,
    scope: Scope,
    *,
    email: str,
    role: Role | str,
    now: int,
    link_lifetime: int,
    first_name: str = "",
    last_name: str = "",
) -> tuple[User, str]:
    """A new user of the scope's organization, without a password, and the secret of their
    set-password link (for ``password_links.link``). USER_LIMIT when the organization is full."""
    email = check_email(email)
    kind = _role(role)
    first, last = check_person_name(first_name, "first name"), check_person_name(last_name, "last name")
    with store.write() as tx:
        _check_actor(tx, scope)
        org = _organization(tx, scope)
        if tx.user_by_email(scope.account_id, email_key(email)) is not None:
            raise OfflineServiceError(Code.CONFLICT, f"a user with email {email} already exists")
        check_user_cap(tx, org)
        user = User(
            id=new_id("usr"),
            account_id=scope.account_id,
            email=email,
            role=kind,
            created_at=now,
            organization_id=org.id,
            first_name=first,
            last_name=last,
        )
        tx.insert_user(user)
        token = password_links.issue(tx, user, now=now, lifetime=link_lifetime)
        _audit(tx, scope, "user.create", now, user=user.id, role=kind.value, organization=org.id)
        _audit(tx, scope, "user.password_link", now, user=user.id)
    return user, token


def update_user(
    store: Store, scope: Scope, user_id: str, *, first_name: str, last_name: str, role: Role | str, now: int
) -> User:
    """New names and role. An admin cannot take the admin role from themselves (SELF_LOCKOUT)."""
    first, last = check_person_name(first_name, "first name"), check_person_name(last_name, "last name")
    kind = _role(role)
    with store.write() as tx:
        _check_actor(tx, scope)
        user = _user(tx, scope, user_id)
        if user.id == scope.admin_id and kind is not Role.ORGANIZATION_ADMIN:
            raise OfflineServiceError(
                Code.SELF_LOCKOUT, "you cannot take the admin role from yourself; ask another admin"
            )
        updated = replace(user, first_name=first, last_name=last, role=kind)
        if updated == user:
            return user
        tx.update_user(updated)
        changed = [f for f in ("first_name", "last_name", "role") if getattr(user, f) != getattr(updated, f)]
        _audit(tx, scope, "user.update", now, user=user.id, changed=",".join(changed), role=kind.value)
    return updated


def set_disabled(store: Store, scope: Scope, user_id: str, disabled: bool, *, now: int) -> User:
    """Disable (every session and token of the person ends at once, and their set-password link)
    or enable again (within the cap). Nobody disables themselves (SELF_LOCKOUT)."""
    with store.write() as tx:
        _check_actor(tx, scope)
        user = _user(tx, scope, user_id)
        if user.id == scope.admin_id and disabled:
            raise OfflineServiceError(Code.SELF_LOCKOUT, "you cannot disable yourself; ask another admin")
        if user.disabled == disabled:
            return user
        if not disabled and user.organization_id is not None:
            check_user_cap(tx, _organization(tx, scope, user.organization_id))
        updated = replace(user, disabled=disabled)
        tx.update_user(updated)
        detail = {"user": user.id}
        if disabled:
            detail["revoked"] = str(tx.revoke_user_credentials(user.id, now))
            tx.delete_password_tokens(user.id)
        _audit(tx, scope, "user.disable" if disabled else "user.enable", now, **detail)
    return updated


def send_password_link(
    store: Store, scope: Scope, user_id: str, *, now: int, link_lifetime: int
) -> tuple[User, str]:
    """A new set-password link for a user (an invitation again, or a reset); the old one ends.
    The current password keeps working until the link is used."""
    with store.write() as tx:
        _check_actor(tx, scope)
        user = _user(tx, scope, user_id)
        if user.disabled:
            raise OfflineServiceError(Code.CONFLICT, "this user is disabled; enable them first")
        token = password_links.issue(tx, user, now=now, lifetime=link_lifetime)
        _audit(tx, scope, "user.password_link", now, user=user.id)
    return user, token


# -- groups --------------------------------------------------------------------------------------


def create_group(store: Store, scope: Scope, *, name: str, now: int) -> UserGroup:
    name = _group_name(name)
    with store.write() as tx:
        _check_actor(tx, scope)
        org = _organization(tx, scope)
        if any(g.name == name for g in tx.organization_groups(scope.account_id, org.id)):
            raise OfflineServiceError(Code.CONFLICT, f"the organization already has a group {name!r}")
        group = UserGroup(
            id=new_id("grp"), account_id=scope.account_id, organization_id=org.id, name=name, created_at=now
        )
        tx.insert_group(group)
        _audit(tx, scope, "group.create", now, group=group.id)
    return group


def rename_group(store: Store, scope: Scope, group_id: str, *, name: str, now: int) -> UserGroup:
    name = _group_name(name)
    with store.write() as tx:
        _check_actor(tx, scope)
        group = _group(tx, scope, group_id)
        if group.name == name:
            return group
        if any(g.name == name for g in tx.organization_groups(scope.account_id, group.organization_id)):
            raise OfflineServiceError(Code.CONFLICT, f"the organization already has a group {name!r}")
        tx.rename_group(group.id, name)
        _audit(tx, scope, "group.rename", now, group=group.id)
    return replace(group, name=name)


def add_member(store: Store, scope: Scope, group_id: str, user_id: str, *, now: int) -> None:
    """Members are users of the group's organization."""
    with store.write() as tx:
        _check_actor(tx, scope)
        group = _group(tx, scope, group_id)
        user = _user(tx, scope, user_id)
        if user.organization_id != group.organization_id:
            raise OfflineServiceError(Code.NOT_FOUND, "no such user in the group's organization")
        if user.id in tx.group_member_ids(group.id):
            return
        tx.add_group_member(group.id, user.id)
        _audit(tx, scope, "group.add_user", now, group=group.id, user=user.id)


def remove_member(store: Store, scope: Scope, group_id: str, user_id: str, *, now: int) -> None:
    with store.write() as tx:
        _check_actor(tx, scope)
        group = _group(tx, scope, group_id)
        if user_id not in tx.group_member_ids(group.id):
            raise OfflineServiceError(Code.NOT_FOUND, "no such member of this group")
        tx.remove_group_member(group.id, user_id)
        _audit(tx, scope, "group.remove_user", now, group=group.id, user=user_id)


def _organization_license(tx: Transaction, scope: Scope, group: UserGroup, license_id: str) -> License:
    found = tx.license_by_id(scope.account_id, license_id)
    if found is None or found.owner_organization_id != group.organization_id:
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license of the group's organization")
    return found


def link_license(store: Store, scope: Scope, group_id: str, license_id: str, *, now: int) -> None:
    """Only the licenses the group's organization owns can be linked to the group."""
    with store.write() as tx:
        _check_actor(tx, scope)
        group = _group(tx, scope, group_id)
        found = _organization_license(tx, scope, group, license_id)
        if found.id in tx.group_license_ids(group.id):
            return
        tx.link_group_license(group.id, found.id)
        _audit(tx, scope, "group.link_license", now, group=group.id, license=found.id)


def unlink_license(store: Store, scope: Scope, group_id: str, license_id: str, *, now: int) -> None:
    with store.write() as tx:
        _check_actor(tx, scope)
        group = _group(tx, scope, group_id)
        found = _organization_license(tx, scope, group, license_id)
        if found.id not in tx.group_license_ids(group.id):
            raise OfflineServiceError(Code.NOT_FOUND, "this license is not linked to the group")
        tx.unlink_group_license(group.id, found.id)
        _audit(tx, scope, "group.unlink_license", now, group=group.id, license=found.id)


# -- what the admin's pages show -----------------------------------------------------------------


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
        _check_actor(tx, scope)
        org = _organization(tx, scope)
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
