"""Which backend holds the data, chosen in one place from the settings: adapters call
``open_store`` and see only the ``Store`` interface."""

from __future__ import annotations

from offline_service.settings import Settings
from offline_service.store.base import Store
from offline_service.store.sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(settings: Settings, *, migrate: bool = True, background_checkpoints: bool = False) -> Store:
    """The store the settings name. Only the embedded SQLite backend exists so far, in
    ``settings.data_dir``; a second backend adds its setting and a branch here.

    ``background_checkpoints``: for a long-running server, maintain the database on a thread of its
    own instead of inside request handlers' commits (a hint; a backend may have nothing to do).

    ``migrate``: apply pending migrations on open; a server passes False and checks
    ``pending_migrations()`` itself (upgrading is ``offline-service db upgrade``)."""
    return SQLiteStore(settings.data_dir, background_checkpoints=background_checkpoints, migrate=migrate)
