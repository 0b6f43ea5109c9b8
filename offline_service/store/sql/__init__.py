"""The SQL of every domain, written once for every backend against a small ``Dialect``: one module
per domain (statements and row mappers), composed into ``SQLTransaction``. A backend adds its
connection set-up, locking, migrations and dialect, not a copy of the queries."""

from offline_service.store.sql.dialect import Dialect
from offline_service.store.sql.licensing import key_hash
from offline_service.store.sql.transaction import SQLTransaction, Statements

__all__ = ["Dialect", "SQLTransaction", "Statements", "key_hash"]
