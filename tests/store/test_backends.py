"""``open_store`` picks the backend from the settings' database URL, and refuses what it cannot use
before anything is opened."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from offline_service.cli.context import Context
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings
from offline_service.store import SQLiteStore, open_store
from offline_service.store.postgresql import PostgreSQLStore
from tests.pg import database_url


def test_without_a_url_the_store_is_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    store = open_store(Settings.from_env({}, data_dir=str(tmp_path / "data")))
    try:
        assert isinstance(store, SQLiteStore) and store.data_dir == tmp_path / "data"
    finally:
        store.close()


def test_a_sqlite_url_names_the_directory_of_the_file(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'elsewhere'}"
    store = open_store(Settings.from_env({"OFFLINE_SERVICE_DATABASE_URL": url}, data_dir=str(tmp_path)))
    try:
        assert isinstance(store, SQLiteStore) and store.data_dir == tmp_path / "elsewhere"
    finally:
        store.close()


def test_a_postgresql_url_opens_the_postgresql_backend(tmp_path: Path) -> None:
    store = open_store(Settings.from_env({}, database_url=database_url(tmp_path)))
    try:
        assert isinstance(store, PostgreSQLStore) and store.schema_version > 0
        assert store.pending_migrations() == [] and store.upgrade() == []
    finally:
        store.close()


def test_migrate_false_leaves_the_migrations_to_upgrade(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    store = PostgreSQLStore(url, migrate=False)
    try:
        pending = store.pending_migrations()
        assert pending and pending == sorted(pending)
        assert store.upgrade() == pending and store.pending_migrations() == []
        assert store.schema_version == pending[-1]
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite:", "data", "postgresql://", "file:///tmp/x"])
def test_other_urls_are_refused_at_start_up(url: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({"OFFLINE_SERVICE_DATABASE_URL": url})
    assert info.value.code is Code.INVALID_ARGUMENT and "database URL" in info.value.message


def test_the_cli_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_DATABASE_URL", "postgresql://nowhere/db")
    args = argparse.Namespace(data=None, keys=None, database_url=f"sqlite://{tmp_path}")
    assert Context(args).settings.database_url == f"sqlite://{tmp_path}"


def test_a_server_that_does_not_answer_is_a_storage_error_at_once() -> None:
    with pytest.raises(OfflineServiceError) as info:
        PostgreSQLStore("postgresql://postgres@127.0.0.1:1/nothing")
    assert info.value.code is Code.STORAGE_ERROR
