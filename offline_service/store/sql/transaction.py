"""A backend's transaction, composed of the per-domain SQL parts: a backend hands it a DB-API
connection inside a transaction it began, and the statements of its dialect."""

from __future__ import annotations

import functools

from offline_service.store.sql._base import Connection
from offline_service.store.sql.accounts import AccountsSQL, AccountsStatements
from offline_service.store.sql.admin import AdminSQL, AdminStatements
from offline_service.store.sql.audit import AuditSQL, AuditStatements
from offline_service.store.sql.batch_results import BatchResultsSQL, BatchResultsStatements
from offline_service.store.sql.branding import BrandingSQL, BrandingStatements
from offline_service.store.sql.dialect import Dialect
from offline_service.store.sql.licensing import LicensingSQL, LicensingStatements
from offline_service.store.sql.limits import LimitsSQL, LimitsStatements
from offline_service.store.sql.notifications import NotificationsSQL, NotificationsStatements
from offline_service.store.sql.releases import ReleasesSQL, ReleasesStatements
from offline_service.store.sql.webhooks import WebhooksSQL, WebhooksStatements

__all__ = ["SQLTransaction", "Statements"]


class Statements:
    """Every domain's statements in one dialect, built once per dialect (``for_dialect``)."""

    __slots__ = (
        "accounts",
        "admin",
        "audit",
        "batch_results",
        "branding",
        "licensing",
        "limits",
        "notifications",
        "releases",
        "webhooks",
    )

    def __init__(self, dialect: Dialect) -> None:
        self.licensing = LicensingStatements(dialect)
        self.accounts = AccountsStatements(dialect)
        self.releases = ReleasesStatements(dialect)
        self.branding = BrandingStatements(dialect)
        self.audit = AuditStatements(dialect)
        self.limits = LimitsStatements(dialect)
        self.batch_results = BatchResultsStatements(dialect)
        self.notifications = NotificationsStatements(dialect)
        self.webhooks = WebhooksStatements(dialect)
        self.admin = AdminStatements(dialect)

    @staticmethod
    @functools.cache
    def for_dialect(dialect: Dialect) -> Statements:
        """The statements of ``dialect``, built on first use and shared by every transaction."""
        return Statements(dialect)


class SQLTransaction(
    LicensingSQL,
    AccountsSQL,
    ReleasesSQL,
    BrandingSQL,
    AuditSQL,
    LimitsSQL,
    BatchResultsSQL,
    NotificationsSQL,
    WebhooksSQL,
    AdminSQL,
):
    """A ``store.Transaction`` over one DB-API connection. The licensing part and the audit trail
    buffer their writes; ``flush()`` writes them, and the store calls it before commit."""

    __slots__ = (
        "_activations",
        "_aq",
        "_audits",
        "_bq",
        "_c",
        "_dirty",
        "_dq",
        "_known_live",
        "_known_nonces",
        "_known_pairs",
        "_licenses",
        "_live",
        "_lq",
        "_mq",
        "_nonces",
        "_nq",
        "_products",
        "_rq",
        "_tq",
        "_uq",
        "_wq",
    )

    def __init__(self, conn: Connection, statements: Statements) -> None:
        self._c = conn
        self._lq = statements.licensing
        self._products = {}
        self._licenses = {}
        self._dirty = set()
        self._activations = {}
        self._live = {}
        self._nonces = {}
        self._known_nonces = {}
        self._known_pairs = set()
        self._known_live = {}
        self._uq = statements.accounts
        self._rq = statements.releases
        self._bq = statements.branding
        self._aq = statements.audit
        self._mq = statements.limits
        self._tq = statements.batch_results
        self._nq = statements.notifications
        self._wq = statements.webhooks
        self._dq = statements.admin
        self._audits = []

    def flush(self) -> None:
        """Write every buffered change (the transaction stays open), in the order of their keys:
        activations, nonces, license updates, then the audit entries about them."""
        self._flush_licensing()
        self._flush_audit()
