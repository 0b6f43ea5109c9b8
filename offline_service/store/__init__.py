"""Storage behind a small interface: the engine sees ``Store`` and ``Transaction`` only."""

from .base import Store, Transaction
from .sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "Transaction"]
