"""Branding's SQL, written once for every backend: each account's customization."""

from __future__ import annotations

from offline_service.branding.models import Branding
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect

__all__ = ["BrandingSQL", "BrandingStatements"]

_BRANDING_COLS = "account_id, updated_at, portal_name, accent_color, logo_file, logo_type, custom_domain"


class BrandingStatements:
    """Branding's statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.branding = q(f"SELECT {_BRANDING_COLS} FROM account_branding WHERE account_id = ?")
        self.branding_by_domain = q(f"SELECT {_BRANDING_COLS} FROM account_branding WHERE custom_domain = ?")
        self.save_branding = q(
            f"INSERT INTO account_branding ({_BRANDING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id) DO UPDATE SET updated_at = excluded.updated_at,"
            " portal_name = excluded.portal_name, accent_color = excluded.accent_color,"
            " logo_file = excluded.logo_file, logo_type = excluded.logo_type,"
            " custom_domain = excluded.custom_domain"
        )


class BrandingSQL(SQLPart):
    """Branding's part of a transaction."""

    __slots__ = ()
    _bq: BrandingStatements

    def branding(self, account_id: str) -> Branding | None:
        row = self._one(self._bq.branding, (account_id,))
        return Branding(*row) if row else None

    def branding_by_domain(self, domain: str) -> Branding | None:
        row = self._one(self._bq.branding_by_domain, (domain,))
        return Branding(*row) if row else None

    def save_branding(self, b: Branding) -> None:
        self._c.execute(
            self._bq.save_branding,
            (
                b.account_id,
                b.updated_at,
                b.portal_name,
                b.accent_color,
                b.logo_file,
                b.logo_type,
                b.custom_domain,
            ),
        )
