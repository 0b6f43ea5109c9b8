"""Plain records shared by the engine, the stores and the adapters. No behaviour, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "UNLIMITED",
    "Account",
    "Activation",
    "ActivationFilter",
    "AuditEntry",
    "Branding",
    "Credential",
    "License",
    "LicenseStatus",
    "Organization",
    "PasswordToken",
    "Product",
    "Release",
    "ReleaseFile",
    "Role",
    "Trial",
    "User",
    "UserGroup",
]

UNLIMITED = -1


class LicenseStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    alias: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    account_id: str
    name: str
    trials_enabled: bool
    trial_days: int
    max_response_validity: int  # seconds
    created_at: int


@dataclass(frozen=True, slots=True)
class License:
    id: str
    account_id: str
    product_id: str
    key: str
    allowed_activations: int  # UNLIMITED (-1) for no limit
    allowed_deactivations: int  # UNLIMITED (-1) for no limit
    status: LicenseStatus
    created_at: int
    expires_at: int | None = None  # fixed expiry, or set at first activation from validity_days
    validity_days: int | None = None
    owner: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    used_activations: int = 0
    used_deactivations: int = 0
    owner_user_id: str | None = None
    owner_organization_id: str | None = None
    max_version: str | None = None  # the newest release version it entitles to; None: every one

    def with_usage(
        self, *, used_activations: int, used_deactivations: int, expires_at: int | None
    ) -> License:
        """This license with new counts and expiry. Spelled out rather than ``dataclasses.replace``,
        which inspects the fields on every call: this runs once per activation on the hot path."""
        return License(
            self.id,
            self.account_id,
            self.product_id,
            self.key,
            self.allowed_activations,
            self.allowed_deactivations,
            self.status,
            self.created_at,
            expires_at,
            self.validity_days,
            self.owner,
            self.metadata,
            used_activations,
            used_deactivations,
            self.owner_user_id,
            self.owner_organization_id,
            self.max_version,
        )


@dataclass(frozen=True, slots=True)
class Activation:
    id: str
    license_id: str
    product_id: str
    fingerprint: str
    machine_key: bytes
    machine_key_thumbprint: str
    created_at: int
    hostname: str = ""
    os: str = ""
    app_version: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    deactivated_at: int | None = None


@dataclass(frozen=True, slots=True)
class ActivationFilter:
    """Which activations a list shows, within the licenses the person may see."""

    product_id: str | None = None
    license_id: str | None = None
    live: bool | None = None  # True: live only; False: deactivated only; None: both
    text: str = ""  # part of the hostname or the fingerprint, case-insensitive


@dataclass(frozen=True, slots=True)
class Trial:
    id: str
    product_id: str
    fingerprint: str
    machine_key_thumbprint: str
    created_at: int
    ends_at: int
    hostname: str = ""
    os: str = ""
    app_version: str = ""


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


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int
    actor: str
    action: str
    code: str  # "OK" or an error code
    account_id: str | None = None
    product_id: str | None = None
    license_id: str | None = None
    activation_id: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)


# -- releases and account customization ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Release:
    """A version of a product, published by the vendor for download in the portal."""

    id: str
    account_id: str
    product_id: str
    version: str
    channel: str
    notes: str
    published_at: int


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    id: str
    release_id: str
    name: str  # the published file's name, as offered for download
    size: int
    sha256: str  # hex
    path: str  # relative to the releases directory


@dataclass(frozen=True, slots=True)
class Branding:
    """How an account's portal looks: name, accent colour (#rrggbb), logo, and custom domain."""

    account_id: str
    updated_at: int
    portal_name: str | None = None
    accent_color: str | None = None
    logo_file: str | None = None  # file name under the branding directory
    logo_type: str | None = None  # image/png, image/jpeg or image/webp
    custom_domain: str | None = None
