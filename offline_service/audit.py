"""The audit trail: one record per decision or change, kept by every domain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["AuditEntry"]


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
