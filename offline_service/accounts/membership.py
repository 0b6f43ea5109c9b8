"""The people of an account: organizations, users (create, edit, disable and enable within the
organization's cap), set-password links, user groups, their members and the licenses linked to them.

One set of operations for the vendor (the CLI, ``Scope.vendor``) and the organization admin (the
portal, ``Scope.of_admin``): the same input gets the same validation and the same error code from
both. Every change is one write transaction, audited under the scope's actor; bad input raises
before anything is written. The rules, where the two used to differ:

- names (organizations, groups, first and last names) are trimmed, never cut: too long, or with a
  control character, is INVALID_ARGUMENT;
- a user of another organization is NOT_FOUND when added to a group, for the vendor too: the answer
  does not depend on who asks, and an admin never learns that an id exists elsewhere;
- a license of another organization is LICENSE_NOT_FOUND when linked to a group, for the vendor too.

The lookups by name (``organization_named``, ``group_named``, ``user_with_email``,
``license_with_key``) are for the CLI, which names things rather than giving their ids.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from offline_service import audit
from offline_service.accounts import password_links
from offline_service.accounts.auth import check_email
from offline_service.accounts.models import Organization, Role, User, UserGroup
from offline_service.accounts.passwords import Cost, check_strength, hash_password
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id
from offline_service.licensing.models import License
from offline_service.store import Store, Transaction

__all__ = [
    "MAX_ALLOWED_USERS",
    "MAX_GROUP_NAME",
    "MAX_NAME",
    "MAX_ORGANIZATION_NAME",
    "NewUser",
    "add_member",
    "check_group_name",
    "check_organization_name",
    "check_person_name",
    "check_user_cap",
    "create_group",
    "create_group_in",
    "create_organization",
    "create_organization_in",
    "create_user",
    "create_user_in",
    "delete_group",
    "group_named",
    "license_with_key",
    "link_license",
    "organization_named",
    "remove_member",
    "rename_group",
    "send_password_link",
    "set_disabled",
    "unlink_license",
    "update_user",
    "user_with_email",
]

MAX_NAME = 100  # first and last names
MAX_GROUP_NAME = 200
MAX_ORGANIZATION_NAME = 200
MAX_ALLOWED_USERS = 2**31 - 1  # what the column holds on every backend


def _name(value: str, what: str, *, high: int, empty: bool) -> str:
    value = value.strip()
    if len(value) > high or (not value and not empty) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        low = 0 if empty else 1
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"a {what} must be {low}-{high} characters, without control characters"
        )
    return value


def check_person_name(value: str, what: str) -> str:
    """A first or last name: trimmed, at most MAX_NAME characters (may be empty), no control characters."""
    return _name(value, what, high=MAX_NAME, empty=True)


def check_group_name(value: str) -> str:
    """A group name: trimmed, 1-MAX_GROUP_NAME characters, no control characters."""
    return _name(value, "group name", high=MAX_GROUP_NAME, empty=False)


def check_organization_name(value: str) -> str:
    """An organization name: trimmed, 1-MAX_ORGANIZATION_NAME characters, no control characters."""
    return _name(value, "organization name", high=MAX_ORGANIZATION_NAME, empty=False)


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a role is user or organization-admin") from None


def _audit(tx: Transaction, scope: Scope, action: str, now: int, **detail: str) -> None:
    audit.record(tx, account_id=scope.account_id, actor=scope.actor, action=action, now=now, **detail)


def check_user_cap(tx: Transaction, org: Organization) -> None:
    """USER_LIMIT when the organization has as many enabled users as it may. Disabled users do not
    count: disabling someone frees their place."""
    if org.allowed_users is not None and tx.enabled_user_count(org.account_id, org.id) >= org.allowed_users:
        raise OfflineServiceError(
            Code.USER_LIMIT,
            f"{org.name} has its {org.allowed_users} allowed users; disable one or ask the vendor for more",
        )


# -- organizations -------------------------------------------------------------------------------


def create_organization(
    store: Store, scope: Scope, *, name: str, now: int, allowed_users: int | None = None
) -> Organization:
    """A new organization of the account; only the vendor makes them (FORBIDDEN for an admin)."""
    with store.write() as tx:
        return create_organization_in(tx, scope, name=name, now=now, allowed_users=allowed_users)


def create_organization_in(
    tx: Transaction, scope: Scope, *, name: str, now: int, allowed_users: int | None = None
) -> Organization:
    """``create_organization`` within the caller's write transaction (the admin API's idempotent
    create keeps its answer in the same one); the name is unique within it."""
    name = check_organization_name(name)
    if allowed_users is not None and not 0 <= allowed_users <= MAX_ALLOWED_USERS:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"the allowed users must be 0 to {MAX_ALLOWED_USERS}"
        )
    if not scope.is_vendor:
        raise OfflineServiceError(Code.FORBIDDEN, "only the vendor creates organizations")
    if tx.organization_by_name(scope.account_id, name) is not None:
        raise OfflineServiceError(Code.CONFLICT, f"organization {name!r} already exists")
    org = Organization(
        id=new_id("org"),
        account_id=scope.account_id,
        name=name,
        created_at=now,
        allowed_users=allowed_users,
    )
    tx.insert_organization(org)
    _audit(tx, scope, "organization.create", now, organization=org.id)
    return org


# -- users ---------------------------------------------------------------------------------------


class NewUser(NamedTuple):
    """A created user, and the secret of their set-password link if one was asked for."""

    user: User
    link: str | None  # the secret of their set-password link (for ``password_links.link``), if one was made


class _UserFields(NamedTuple):
    email: str
    role: Role
    first_name: str
    last_name: str
    organization_id: str | None


def _user_fields(
    scope: Scope,
    *,
    email: str,
    role: Role | str,
    organization_id: str | None,
    first_name: str,
    last_name: str,
) -> _UserFields:
    """A new user's fields, checked before anything is read or written."""
    checked = check_email(email)
    kind = _role(role)
    first, last = check_person_name(first_name, "first name"), check_person_name(last_name, "last name")
    wanted = organization_id or scope.organization_id
    if kind is Role.ORGANIZATION_ADMIN and wanted is None:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "an organization admin must belong to an organization"
        )
    return _UserFields(checked, kind, first, last, wanted)


def create_user(
    store: Store,
    scope: Scope,
    *,
    email: str,
    role: Role | str,
    now: int,
    organization_id: str | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    link_lifetime: int | None = None,
    cost: Cost = Cost.INTERACTIVE,
) -> NewUser:
    """A new user of ``organization_id`` (an admin: their own organization; the vendor: any, or none
    for a user), with ``password`` or none, and a set-password link when ``link_lifetime`` is
    given. An organization admin must belong to an organization. USER_LIMIT when it is full."""
    fields = _user_fields(
        scope,
        email=email,
        role=role,
        organization_id=organization_id,
        first_name=first_name,
        last_name=last_name,
    )
    if password is not None:
        check_strength(password, email=fields.email)
    hashed = hash_password(password, cost) if password is not None else None  # slow: outside the lock
    with store.write() as tx:
        return _insert_user(tx, scope, fields, now=now, password_hash=hashed, link_lifetime=link_lifetime)


def create_user_in(
    tx: Transaction,
    scope: Scope,
    *,
    email: str,
    role: Role | str,
    now: int,
    organization_id: str | None = None,
    first_name: str = "",
    last_name: str = "",
    link_lifetime: int | None = None,
) -> NewUser:
    """``create_user`` without a password, within the caller's write transaction (the admin API's
    idempotent create): the email's uniqueness and the organization's cap are checked in it."""
    fields = _user_fields(
        scope,
        email=email,
        role=role,
        organization_id=organization_id,
        first_name=first_name,
        last_name=last_name,
    )
    return _insert_user(tx, scope, fields, now=now, password_hash=None, link_lifetime=link_lifetime)


def _insert_user(
    tx: Transaction,
    scope: Scope,
    fields: _UserFields,
    *,
    now: int,
    password_hash: str | None,
    link_lifetime: int | None,
) -> NewUser:
    scope.check(tx)
    wanted = fields.organization_id
    org = scope.organization(tx, wanted) if wanted is not None else None
    if tx.user_by_email(scope.account_id, email_key(fields.email)) is not None:
        raise OfflineServiceError(Code.CONFLICT, f"a user with email {fields.email} already exists")
    if org is not None:
        check_user_cap(tx, org)
    user = User(
        id=new_id("usr"),
        account_id=scope.account_id,
        email=fields.email,
        role=fields.role,
        created_at=now,
        organization_id=org.id if org else None,
        password_hash=password_hash,
        first_name=fields.first_name,
        last_name=fields.last_name,
    )
    tx.insert_user(user)
    where = {"organization": org.id} if org else {}
    _audit(tx, scope, "user.create", now, user=user.id, role=fields.role.value, **where)
    token = None
    if link_lifetime is not None:
        token = password_links.issue(tx, user, now=now, lifetime=link_lifetime)
        _audit(tx, scope, "user.password_link", now, user=user.id)
    return NewUser(user=user, link=token)


def update_user(
    store: Store, scope: Scope, user_id: str, *, first_name: str, last_name: str, role: Role | str, now: int
) -> User:
    """New names and role. An admin cannot take the admin role from themselves (SELF_LOCKOUT)."""
    first, last = check_person_name(first_name, "first name"), check_person_name(last_name, "last name")
    kind = _role(role)
    with store.write() as tx:
        scope.check(tx)
        user = scope.user(tx, user_id)
        if user.id == scope.admin_id and kind is not Role.ORGANIZATION_ADMIN:
            raise OfflineServiceError(
                Code.SELF_LOCKOUT, "you cannot take the admin role from yourself; ask another admin"
            )
        if kind is Role.ORGANIZATION_ADMIN and user.organization_id is None:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "an organization admin must belong to an organization"
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
        scope.check(tx)
        user = scope.user(tx, user_id)
        if user.id == scope.admin_id and disabled:
            raise OfflineServiceError(Code.SELF_LOCKOUT, "you cannot disable yourself; ask another admin")
        if user.disabled == disabled:
            return user
        if not disabled and user.organization_id is not None:
            check_user_cap(tx, scope.organization(tx, user.organization_id))
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
        scope.check(tx)
        user = scope.user(tx, user_id)
        if user.disabled:
            raise OfflineServiceError(Code.CONFLICT, "this user is disabled; enable them first")
        token = password_links.issue(tx, user, now=now, lifetime=link_lifetime)
        _audit(tx, scope, "user.password_link", now, user=user.id)
    return user, token


# -- groups --------------------------------------------------------------------------------------


def create_group(
    store: Store, scope: Scope, *, name: str, now: int, organization_id: str | None = None
) -> UserGroup:
    """A new group of ``organization_id`` (an admin: their own organization)."""
    name = check_group_name(name)
    with store.write() as tx:
        return create_group_in(tx, scope, name=name, now=now, organization_id=organization_id)


def create_group_in(
    tx: Transaction, scope: Scope, *, name: str, now: int, organization_id: str | None = None
) -> UserGroup:
    """``create_group`` within the caller's write transaction (the admin API's idempotent create);
    the name is unique in the organization within it."""
    name = check_group_name(name)
    scope.check(tx)
    org = scope.organization(tx, organization_id)
    if any(g.name == name for g in tx.organization_groups(scope.account_id, org.id)):
        raise OfflineServiceError(Code.CONFLICT, f"the organization already has a group {name!r}")
    group = UserGroup(
        id=new_id("grp"), account_id=scope.account_id, organization_id=org.id, name=name, created_at=now
    )
    tx.insert_group(group)
    _audit(tx, scope, "group.create", now, group=group.id)
    return group


def rename_group(store: Store, scope: Scope, group_id: str, *, name: str, now: int) -> UserGroup:
    """Rename a group; the new name is checked as a create's, and unique in the organization within
    the transaction that renames (CONFLICT otherwise). The same name again changes nothing."""
    name = check_group_name(name)
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        if group.name == name:
            return group
        if any(g.name == name for g in tx.organization_groups(scope.account_id, group.organization_id)):
            raise OfflineServiceError(Code.CONFLICT, f"the organization already has a group {name!r}")
        tx.rename_group(group.id, name)
        _audit(tx, scope, "group.rename", now, group=group.id)
    return replace(group, name=name)


def delete_group(store: Store, scope: Scope, group_id: str, *, now: int) -> UserGroup:
    """Delete a group with its memberships and license links, in one transaction: its members
    lose the licenses they saw only through it. The licenses and the people stay."""
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        members, licenses = tx.delete_group(scope.account_id, group.id)
        _audit(
            tx,
            scope,
            "group.delete",
            now,
            group=group.id,
            name=group.name,
            members=str(members),
            licenses=str(licenses),
        )
    return group


def add_member(store: Store, scope: Scope, group_id: str, user_id: str, *, now: int) -> None:
    """Members are users of the group's organization: anyone else is NOT_FOUND."""
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        user = scope.user(tx, user_id)
        if user.organization_id != group.organization_id:
            raise OfflineServiceError(Code.NOT_FOUND, "no such user in the group's organization")
        if user.id in tx.group_member_ids(group.id):
            return
        tx.add_group_member(group.id, user.id)
        _audit(tx, scope, "group.add_user", now, group=group.id, user=user.id)


def remove_member(store: Store, scope: Scope, group_id: str, user_id: str, *, now: int) -> None:
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        if user_id not in tx.group_member_ids(group.id):
            raise OfflineServiceError(Code.NOT_FOUND, "no such member of this group")
        tx.remove_group_member(group.id, user_id)
        _audit(tx, scope, "group.remove_user", now, group=group.id, user=user_id)


def link_license(store: Store, scope: Scope, group_id: str, license_id: str, *, now: int) -> None:
    """Only the licenses the group's organization owns can be linked to the group."""
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        found = scope.license_of(tx, group, license_id)
        if found.id in tx.group_license_ids(group.id):
            return
        tx.link_group_license(group.id, found.id)
        _audit(tx, scope, "group.link_license", now, group=group.id, license=found.id)


def unlink_license(store: Store, scope: Scope, group_id: str, license_id: str, *, now: int) -> None:
    with store.write() as tx:
        scope.check(tx)
        group = scope.group(tx, group_id)
        found = scope.license_of(tx, group, license_id)
        if found.id not in tx.group_license_ids(group.id):
            raise OfflineServiceError(Code.NOT_FOUND, "this license is not linked to the group")
        tx.unlink_group_license(group.id, found.id)
        _audit(tx, scope, "group.unlink_license", now, group=group.id, license=found.id)


# -- lookups by name, for the CLI ------------------------------------------------------------------


def organization_named(store: Store, scope: Scope, name: str) -> Organization:
    """The organization of this name in the scope; NOT_FOUND otherwise."""
    with store.read() as tx:
        found = tx.organization_by_name(scope.account_id, name.strip())
    if found is None or not scope.holds(found.id):
        raise OfflineServiceError(Code.NOT_FOUND, f"no organization {name!r}")
    return found


def group_named(store: Store, scope: Scope, name: str, *, organization_id: str | None = None) -> UserGroup:
    """The group of this name in the scope (in ``organization_id`` when given); NOT_FOUND, or CONFLICT
    when several organizations have one."""
    with store.read() as tx:
        groups = [
            g
            for g in tx.groups_by_name(scope.account_id, name.strip())
            if scope.holds(g.organization_id) and organization_id in (None, g.organization_id)
        ]
    if not groups:
        raise OfflineServiceError(Code.NOT_FOUND, f"no group {name!r}")
    if len(groups) > 1:
        raise OfflineServiceError(
            Code.CONFLICT, f"several organizations have a group {name!r}; name the organization"
        )
    return groups[0]


def user_with_email(store: Store, scope: Scope, email: str) -> User:
    """The user with this email in the scope; NOT_FOUND otherwise."""
    with store.read() as tx:
        found = tx.user_by_email(scope.account_id, email_key(email))
    if found is None or not scope.holds(found.organization_id):
        raise OfflineServiceError(Code.NOT_FOUND, f"no user {email}")
    return found


def license_with_key(store: Store, scope: Scope, key: str) -> License:
    """The license with this key in the scope (an admin: owned by their organization); LICENSE_NOT_FOUND otherwise."""
    with store.read() as tx:
        found = tx.license_by_key(scope.account_id, key)
    if found is None or not scope.holds(found.owner_organization_id):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
    return found
