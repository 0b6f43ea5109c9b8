"""The audit trail: one record per decision or change, kept by every domain.

Every domain writes its entries with ``record``, inside the write transaction that made the change,
so an entry exists exactly when its change does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

from offline_service.errors import Code

__all__ = ["NO_DETAIL", "AuditEntry", "AuditLog", "entry_json", "record"]

# The detail of an entry that has none: one shared, read-only empty mapping.
NO_DETAIL: Mapping[str, str] = MappingProxyType({})


class AuditEntry(NamedTuple):
    """One entry of the audit trail. A NamedTuple rather than a frozen dataclass: the engine writes
    one per request on the hot path, and a NamedTuple is as immutable and several times cheaper to
    make."""

    at: int
    actor: str
    action: str
    code: str  # "OK" or an error code
    account_id: str | None = None
    product_id: str | None = None
    license_id: str | None = None
    activation_id: str | None = None
    detail: Mapping[str, str] = NO_DETAIL


class AuditLog(Protocol):
    """Where entries go: a store's write transaction (``store.Transaction`` is one)."""

    def audit(self, entry: AuditEntry) -> None: ...


def entry_json(entry: AuditEntry) -> dict[str, object]:
    """An entry as the CLI's ``--json`` and the admin API show it (the account is the caller's)."""
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "code": entry.code,
        "productId": entry.product_id,
        "licenseId": entry.license_id,
        "activationId": entry.activation_id,
        "detail": dict(entry.detail),
    }


def record(
    log: AuditLog,
    *,
    account_id: str | None,
    actor: str,
    action: str,
    now: int,
    code: Code | str = "OK",
    product_id: str | None = None,
    license_id: str | None = None,
    activation_id: str | None = None,
    **detail: str,
) -> AuditEntry:
    """Write one entry into ``log`` (the caller's write transaction) and return it. ``code`` is
    "OK" or the refusal's code. TypeError when a detail value is not text: the log stores text
    only, and a number or None slipped in would be stored as something else than was meant."""
    for name, value in detail.items():
        if not isinstance(value, str):
            raise TypeError(f"audit detail {name!r} must be str, not {type(value).__name__}")
    # Positional: the engine records an entry per request, and this is its cheapest form.
    entry = AuditEntry(
        now,
        actor,
        action,
        code.value if isinstance(code, Code) else code,
        account_id,
        product_id,
        license_id,
        activation_id,
        detail or NO_DETAIL,
    )
    log.audit(entry)
    return entry
