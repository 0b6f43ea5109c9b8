"""Factories for the people of an account, set up by the vendor by name (as the CLI does): each
resolves the names it is given and calls the one set of operations in ``accounts.membership``."""

from __future__ import annotations

from offline_service.accounts import membership
from offline_service.accounts.models import Account, Organization, Role, User, UserGroup
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.store import Store

__all__ = ["add_user_to_group", "create_group", "create_organization", "create_user", "link_group_license"]


def create_organization(
    store: Store, account: Account, *, name: str, now: int, allowed_users: int | None = None
) -> Organization:
    return membership.create_organization(
        store, Scope.vendor(account), name=name, now=now, allowed_users=allowed_users
    )


def create_user(
    store: Store,
    account: Account,
    *,
    email: str,
    role: Role | str,
    now: int,
    organization: str | None = None,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    cost: Cost = Cost.INTERACTIVE,
) -> User:
    scope = Scope.vendor(account)
    org = membership.organization_named(store, scope, organization) if organization else None
    return membership.create_user(
        store,
        scope,
        email=email,
        role=role,
        now=now,
        organization_id=org.id if org else None,
        password=password,
        first_name=first_name,
        last_name=last_name,
        cost=cost,
    ).user


def create_group(store: Store, account: Account, *, organization: str, name: str, now: int) -> UserGroup:
    scope = Scope.vendor(account)
    org = membership.organization_named(store, scope, organization)
    return membership.create_group(store, scope, name=name, now=now, organization_id=org.id)


def add_user_to_group(store: Store, account: Account, *, group: str, email: str, now: int) -> None:
    scope = Scope.vendor(account)
    found = membership.group_named(store, scope, group)
    user = membership.user_with_email(store, scope, email)
    membership.add_member(store, scope, found.id, user.id, now=now)


def link_group_license(store: Store, account: Account, *, group: str, license_key: str, now: int) -> None:
    scope = Scope.vendor(account)
    found = membership.group_named(store, scope, group)
    license = membership.license_with_key(store, scope, license_key)
    membership.link_license(store, scope, found.id, license.id, now=now)
