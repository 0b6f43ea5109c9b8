"""Admin API records: a token's scopes, the token as stored, and a kept idempotent answer. No
behaviour, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AdminToken", "IdempotentResult", "Scope"]


class Scope(enum.StrEnum):
    """What an admin token may do. A write scope does not include the read scope of its kind: a
    script is given exactly what it needs. The whole set is defined now so that tokens made today
    keep their meaning as routes are added."""

    PRODUCTS_READ = "products:read"
    PRODUCTS_WRITE = "products:write"
    LICENSES_READ = "licenses:read"
    LICENSES_WRITE = "licenses:write"
    ACTIVATIONS_READ = "activations:read"
    ACTIVATIONS_WRITE = "activations:write"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    RELEASES_READ = "releases:read"
    RELEASES_WRITE = "releases:write"
    KEYS_READ = "keys:read"
    KEYS_WRITE = "keys:write"
    AUDIT_READ = "audit:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"


@dataclass(frozen=True, slots=True)
class AdminToken:
    """An account's admin API token, known by its id; the secret itself is never stored."""

    id: str
    account_id: str
    token_hash: bytes  # SHA-256 of the secret
    name: str
    scopes: frozenset[Scope]
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    last_used_at: int | None = None

    @property
    def actor(self) -> str:
        """Who the audit trail says acted."""
        return f"admin_token:{self.id}"

    def live(self, now: int) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class IdempotentResult:
    """The first answer to a create sent with an Idempotency-Key, kept for its retries."""

    account_id: str
    token_id: str
    key: str
    request_hash: bytes  # SHA-256 of what was asked (method, path, body)
    status: int
    body: str  # the JSON answer as sent
    created_at: int
    expires_at: int
