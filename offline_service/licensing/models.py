"""Licensing records: products, licenses, activations, trials and the kept results of portal
batches. No behaviour, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "UNLIMITED",
    "Activation",
    "ActivationFilter",
    "BatchFile",
    "BatchResult",
    "License",
    "LicenseStatus",
    "Product",
    "Trial",
]


UNLIMITED = -1


class LicenseStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    account_id: str
    name: str
    trials_enabled: bool
    trial_days: int
    max_response_validity: int  # seconds
    created_at: int
    # Whether an organization admin may release, in the portal, the seat of a lost machine of one of
    # the organization's licenses (counted as a deactivation). The vendor's choice; off by default.
    customer_release: bool = False


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


@dataclass(frozen=True, slots=True)
class BatchFile:
    """What became of one file of a portal batch: its report row, and what the engine knew of it
    besides (whether it was the same request again, its license, its machine)."""

    file: str
    kind: str  # "activation", "deactivation", or "" when the file could not be read
    code: str  # "OK" or the code it was refused with
    reissued: bool = False  # granted before: the same response again, nothing counted
    activation_id: str = ""
    license_id: str = ""
    hostname: str = ""
    fingerprint: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A portal batch's outcome, kept for the person who uploaded it until ``expires_at``; the
    zip of responses is stored beside it and read on its own (it may be large)."""

    id: str
    account_id: str
    user_id: str
    created_at: int
    expires_at: int
    files: tuple[BatchFile, ...]
