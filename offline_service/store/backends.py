"""Which backend holds the data, chosen in one place from the settings: adapters call
``open_store`` and see only the ``Store`` interface."""

from __future__ import annotations

from pathlib import Path

from offline_service.settings import Settings, database_scheme, shown_url
from offline_service.store.base import Store
from offline_service.store.sqlite import DB_FILE, SQLiteStore

__all__ = ["database_location", "open_store"]


def database_location(settings: Settings) -> tuple[str, str]:
    """The backend and where its database is, for messages: ``("sqlite", "/abs/dir/FILE")`` or
    ``("postgresql", URL)`` with any password hidden."""
    url = settings.database_url
    if url is None:
        return "sqlite", str((settings.data_dir / DB_FILE).absolute())
    if database_scheme(url) == "sqlite":
        return "sqlite", str((Path(url.partition("://")[2]) / DB_FILE).absolute())
    return "postgresql", shown_url(url)


def open_store(
    settings: Settings,
    *,
    migrate: bool = True,
    background_checkpoints: bool = False,
    create: bool = True,
) -> Store:
    """The store ``settings.database_url`` names: unset, the embedded SQLite file in
    ``settings.data_dir``; ``sqlite://DIR`` that file in DIR; ``postgresql://...`` a database
    on a server, shared by any number of instances. Other schemes: ``INVALID_ARGUMENT``.

    ``background_checkpoints``: for a long-running server, maintain the database on a thread of its
    own instead of inside request handlers' commits (a hint; a backend may have nothing to do).

    ``migrate``: apply pending migrations on open; a server passes False and checks
    ``pending_migrations()`` itself (upgrading is ``offline-service db upgrade``).

    ``create``: False, a missing or empty database is ``NOT_FOUND`` naming where it was looked
    for, and nothing (directory, file, schema) is created: every CLI command but ``init`` and
    ``db upgrade``."""
    url = settings.database_url
    if url is None:
        return SQLiteStore(
            settings.data_dir, background_checkpoints=background_checkpoints, migrate=migrate, create=create
        )
    if database_scheme(url) == "sqlite":
        directory = Path(url.partition("://")[2])
        return SQLiteStore(
            directory, background_checkpoints=background_checkpoints, migrate=migrate, create=create
        )
    # Imported here: psycopg is needed only by those who choose PostgreSQL.
    from offline_service.store.postgresql import PostgreSQLStore

    return PostgreSQLStore(url, migrate=migrate, pool_size=settings.database_pool_size, create=create)
