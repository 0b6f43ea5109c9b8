"""How people and their tokens look in the JSON API: camelCase members, secrets never included."""

from __future__ import annotations

from typing import Any

from offline_service.accounts.models import Credential, User

__all__ = ["token_json", "user_json"]


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
