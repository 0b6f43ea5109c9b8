"""Storage behind a small interface: the engine sees ``Store`` and ``Transaction`` only."""

from offline_service.store.backends import database_location, open_store
from offline_service.store.base import Store, Transaction
from offline_service.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "Transaction", "database_location", "open_store"]
