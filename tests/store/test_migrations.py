"""Migrations as an operator's step: ``pending_migrations()`` and ``upgrade()``, and a store that
opens without migrating (what the server does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_service.settings import Settings
from offline_service.store import SQLiteStore, open_store
from tests.store.old import LATEST, VERSIONS, old_sqlite_database, versions_after

OLD = 3  # an old schema: the first three migrations only


def test_a_fresh_database_opened_without_migrating_has_every_migration_pending(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path, migrate=False)
    try:
        assert store.schema_version == 0
        assert store.pending_migrations() == versions_after(0)
        assert store.upgrade() == versions_after(0)
        assert store.schema_version == LATEST and store.pending_migrations() == []
        assert store.upgrade() == []
    finally:
        store.close()


def test_an_old_database_stays_old_until_upgraded(tmp_path: Path) -> None:
    old_sqlite_database(tmp_path, OLD)
    store = SQLiteStore(tmp_path, migrate=False)
    try:
        assert store.schema_version == OLD
        assert store.pending_migrations() == versions_after(OLD)
    finally:
        store.close()
    reopened = SQLiteStore(tmp_path, migrate=False)  # opening again changes nothing
    try:
        assert reopened.schema_version == OLD
        assert reopened.upgrade() == versions_after(OLD)
        assert reopened.pending_migrations() == [] and reopened.schema_version == LATEST
    finally:
        reopened.close()


def test_the_default_still_migrates_on_open(tmp_path: Path) -> None:
    old_sqlite_database(tmp_path, OLD)
    store = SQLiteStore(tmp_path)
    try:
        assert store.schema_version == LATEST and store.pending_migrations() == []
    finally:
        store.close()


@pytest.mark.parametrize("migrate", [True, False])
def test_open_store_passes_migrate_on(tmp_path: Path, migrate: bool) -> None:
    old_sqlite_database(tmp_path / "data", OLD)
    store = open_store(Settings(data_dir=tmp_path / "data"), migrate=migrate)
    try:
        assert store.schema_version == (LATEST if migrate else OLD)
    finally:
        store.close()


def test_two_stores_upgrading_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    old_sqlite_database(tmp_path, OLD)
    first, second = SQLiteStore(tmp_path, migrate=False), SQLiteStore(tmp_path, migrate=False)
    try:
        applied = first.upgrade() + second.upgrade()
        assert sorted(applied) == versions_after(OLD)
        assert second.debug_query("SELECT COUNT(*) FROM schema_migrations") == [(len(VERSIONS),)]
    finally:
        first.close()
        second.close()
