"""Databases left behind by an older release: the schema of only the first migrations, as the
release that shipped them made it, so that ``db status``, ``db upgrade`` and the server's refusal
can be tested against a real old schema."""

from __future__ import annotations

from pathlib import Path

from offline_service.store import SQLiteStore
from offline_service.store.migrate import migrations, split_statements
from tests.factories import NOW

__all__ = ["LATEST", "VERSIONS", "old_sqlite_database", "versions_after"]

LATEST = max(m.version for m in migrations("sqlite"))
# Every version, oldest first. Not range(1, LATEST + 1): branches number their migrations ahead of
# one another, so the history may have a gap until they all merge (the runners apply by version).
VERSIONS = sorted(m.version for m in migrations("sqlite"))


def versions_after(version: int) -> list[int]:
    """The versions newer than ``version``, oldest first."""
    return [v for v in VERSIONS if v > version]


def old_sqlite_database(data_dir: Path, version: int) -> None:
    """A SQLite database in ``data_dir`` at schema ``version``: migrations 1..version applied, the
    later ones not."""
    store = SQLiteStore(data_dir, migrate=False)
    try:
        for migration in migrations("sqlite"):
            if migration.version > version:
                break
            for statement in split_statements(migration.sql):
                store.debug_query(statement)
            store.debug_query("INSERT INTO schema_migrations VALUES (?, ?)", migration.version, NOW)
        assert store.schema_version == version
    finally:
        store.close()
