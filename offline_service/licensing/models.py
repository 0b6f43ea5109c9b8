"""Licensing records: products, licenses, activations, trials and the kept results of portal
batches. No behaviour, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ACTIVATION_ORDERS",
    "ATTENTION",
    "LICENSE_SORTS",
    "LICENSE_STATES",
    "NEAR_EXPIRY_SECONDS",
    "NEAR_LIMIT_PERCENT",
    "UNLIMITED",
    "Activation",
    "ActivationFilter",
    "BatchFile",
    "BatchResult",
    "License",
    "LicenseFilter",
    "LicenseStatus",
    "LicenseSummary",
    "ListedLicense",
    "Product",
    "Trial",
]


UNLIMITED = -1
# What a person sees of a license: its status, or "expired" for an active one past its expiry.
LICENSE_STATES = ("active", "expired", "suspended", "revoked")
# A license "near its limit" has used at least this share of its allowed activations (not unlimited).
NEAR_LIMIT_PERCENT = 80
# A license "near its expiry" expires within this many seconds (and has not yet expired).
NEAR_EXPIRY_SECONDS = 30 * 86400
# near-limit, near-expiry, or any: suspended, or usable (active, not expired) and near either.
ATTENTION = ("near-limit", "near-expiry", "any")
LICENSE_SORTS = ("created", "product", "name", "expiry", "seats")
ACTIVATION_ORDERS = ("newest", "hostname")


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
    name: str | None = None  # the vendor's name for it, to tell licenses apart; None: none

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
            self.name,
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
    order: str = "newest"  # ACTIVATION_ORDERS: newest first, or by hostname (none last)


@dataclass(frozen=True, slots=True)
class LicenseFilter:
    """Which licenses a list shows, within the licenses the person may see, and in which order."""

    text: str = ""  # the end of the key, or part of the product's name, the license's name or owner
    state: str | None = None  # one of LICENSE_STATES; None: every one
    product_id: str | None = None
    attention: str | None = None  # one of ATTENTION; None: every license
    sort: str = "created"  # one of LICENSE_SORTS; ties go by creation, then id
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ListedLicense:
    """A license as a list shows it: with its product's name and who holds it."""

    license: License
    product: str  # the product's name
    holder: str  # the owning organization's name, or the owning user's name or email; "" if none


@dataclass(frozen=True, slots=True)
class LicenseSummary:
    """What a person's licenses add up to."""

    total: int  # licenses
    states: Mapping[str, int]  # how many in each of LICENSE_STATES
    used: int  # activations used, over every license
    allowed: int  # activations allowed, over every license; UNLIMITED if any is unlimited


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
