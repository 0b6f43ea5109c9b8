"""What branding needs from a transaction: each account's customization, found by account or by
custom domain. One of the domain parts ``store.Transaction`` is composed of."""

from __future__ import annotations

from typing import Protocol

from offline_service.branding.models import Branding

__all__ = ["BrandingTransaction"]


class BrandingTransaction(Protocol):
    """Branding's reads and writes."""

    def branding(self, account_id: str) -> Branding | None: ...
    def branding_by_domain(self, domain: str) -> Branding | None: ...
    def save_branding(self, branding: Branding) -> None: ...
