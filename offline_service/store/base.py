"""The storage interface the engine and adapters depend on. Backends implement it; nothing above
this line knows which database is underneath.

``Transaction`` is composed of one Protocol per domain, each kept in its domain package
(``licensing/store.py``, ``accounts/store.py``, ...), and the audit trail's, kept here because every
domain writes to it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from offline_service.accounts.store import AccountsTransaction
from offline_service.admin.store import AdminTransaction
from offline_service.audit import AuditEntry
from offline_service.branding.store import BrandingTransaction
from offline_service.licensing.store import LicensingTransaction
from offline_service.notifications.store import NotificationsTransaction
from offline_service.releases.store import ReleasesTransaction
from offline_service.webhooks.store import WebhooksTransaction

__all__ = ["AuditTransaction", "Store", "Transaction"]


class AuditTransaction(Protocol):
    """The audit trail, shared by every domain: append, and read newest first."""

    def audit(self, entry: AuditEntry) -> None: ...
    def audit_entries(self, account_id: str, limit: int = 100) -> Sequence[AuditEntry]: ...
    def audit_page(
        self,
        account_id: str,
        *,
        limit: int,
        before: int | None = None,
        since: int | None = None,
        until: int | None = None,
        actor: str | None = None,
        license_id: str | None = None,
        code: str | None = None,
    ) -> Sequence[tuple[int, AuditEntry]]:
        """Up to ``limit`` of the account's entries, newest first, each with its id: those with an
        id below ``before``, at or after ``since``, before ``until``, and of the actor, license and
        code given (None: any)."""
        ...

    def audit_entries_for_licenses(
        self, account_id: str, license_ids: frozenset[str], limit: int = 100
    ) -> Sequence[AuditEntry]:
        """The newest entries about these licenses (the portal shows a person only their own)."""
        ...


class Transaction(
    LicensingTransaction,
    AccountsTransaction,
    ReleasesTransaction,
    BrandingTransaction,
    NotificationsTransaction,
    WebhooksTransaction,
    AdminTransaction,
    AuditTransaction,
    Protocol,
):
    """One atomic unit of work. Reads see the transaction's own writes."""


class Store(Protocol):
    """A database holding every account. ``write()`` serialises writers; limits rely on it."""

    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction, taken after the writers' lock: commits at the end of the block,
        rolls back if the block raises (database errors become ``STORAGE_ERROR``)."""
        ...

    def read(self, *, one_statement: bool = False) -> AbstractContextManager[Transaction]:
        """A read-only snapshot (inside another transaction: reads within that one).

        ``one_statement``: the block runs one statement at most, which is its own snapshot, so a
        backend may run it without a transaction around it (PostgreSQL: one round trip instead of
        two). A second statement raises ``STORAGE_ERROR``."""
        ...

    def write_lock_if_free(self) -> AbstractContextManager[bool]:
        """Hold the writers' lock if it is free, without waiting; yields whether it was. For callers
        that must not wait (an event loop): ``write()`` inside the block does not block, however
        many transactions the block runs."""
        ...

    @property
    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        ...

    def pending_migrations(self) -> list[int]:
        """The schema versions this release knows that the database has not applied, oldest
        first; empty when the schema is current."""
        ...

    def upgrade(self) -> list[int]:
        """Apply the pending migrations (safe to run from several processes at once); returns the
        versions this call applied."""
        ...

    def debug_query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """For tests and maintenance only: run one statement in the backend's own SQL and
        placeholder style, outside the domain methods, and return its rows. Within the calling
        thread's open transaction if there is one; otherwise on its own (a write commits)."""
        ...

    def close(self) -> None: ...
