"""How people and their tokens look in the JSON API: camelCase members, secrets never included."""

from __future__ import annotations

from typing import Any

from offline_service.accounts.models import Credential, Organization, User, UserGroup

__all__ = ["group_json", "organization_json", "person_json", "token_json", "user_json"]


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "organizationId": user.organization_id,
        "firstName": user.first_name,
        "lastName": user.last_name,
    }


def token_json(c: Credential) -> dict[str, Any]:
    """A personal access token's record; the secret is shown once, by the call that makes it."""
    return {
        "id": c.id,
        "name": c.name,
        "createdAt": c.created_at,
        "expiresAt": c.expires_at,
        "lastUsedAt": c.last_used_at,
    }


def person_json(user: User) -> dict[str, Any]:
    """A user as the vendor sees them (the admin API): ``user_json``, whether disabled, when made.
    Never a password hash, nor whether there is one."""
    return {**user_json(user), "disabled": user.disabled, "createdAt": user.created_at}


def organization_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "allowedUsers": org.allowed_users,
        "createdAt": org.created_at,
    }


def group_json(group: UserGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "organizationId": group.organization_id,
        "name": group.name,
        "createdAt": group.created_at,
    }
