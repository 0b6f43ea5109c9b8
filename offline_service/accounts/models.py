"""Account records: the vendor's account, organizations, people, groups, credentials. No behaviour, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Account", "Credential", "Organization", "PasswordToken", "Role", "User", "UserGroup"]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    alias: str
    name: str
    created_at: int


class Role(enum.StrEnum):
    ORGANIZATION_ADMIN = "organization-admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    account_id: str
    name: str
    created_at: int
    allowed_users: int | None = None  # None: no cap


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in to the portal or the API of one account."""

    id: str
    account_id: str
    email: str
    role: Role
    created_at: int
    organization_id: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    first_name: str = ""
    last_name: str = ""
    disabled: bool = False
    time_zone: str = "UTC"  # an IANA zone name; the portal shows times in it
    notify_new_activation: bool = False
    notify_license_expiry: bool = False
    notify_new_release: bool = False


@dataclass(frozen=True, slots=True)
class UserGroup:
    id: str
    account_id: str
    organization_id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Credential:
    """A browser session or an API access token; the secret itself is never stored."""

    token_hash: bytes = field(repr=False)
    kind: str  # "session", "access" (from an API login) or "personal" (a personal access token)
    user_id: str
    account_id: str
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    user_agent: str = ""
    address: str = ""
    id: str = ""  # public: names the credential in lists and revoke buttons; not a secret
    name: str = ""  # a personal access token's name
    last_used_at: int | None = None  # personal access tokens, to the nearest few minutes


@dataclass(frozen=True, slots=True)
class PasswordToken:
    """A one-time link to set a password; only the SHA-256 of its secret is stored."""

    token_hash: bytes = field(repr=False)
    user_id: str
    account_id: str
    created_at: int
    expires_at: int
