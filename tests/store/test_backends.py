"""``open_store`` picks the backend from the settings' database URL, and refuses what it cannot use
before anything is opened."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from offline_service.cli.context import Context
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings
from offline_service.store import SQLiteStore, open_store
from offline_service.store.postgresql import POOL_SIZE, PostgreSQLStore
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
        assert store.schema_version == 0  # an empty database: no schema_migrations table yet
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


_ASKING = "test-counting-connections"


def _connections(url: str) -> int:
    """The connections open on ``url``'s database, other than those asking (this one and those of
    other threads asking at the same time)."""
    with psycopg.connect(url, autocommit=True, application_name=_ASKING) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name <> %s",
            (_ASKING,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_pool_size_setting_bounds_the_connections_of_a_process(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    settings = Settings.from_env({"OFFLINE_SERVICE_DATABASE_POOL_SIZE": "2"}, database_url=url)
    assert settings.database_pool_size == 2
    store = open_store(settings)
    seen: list[int] = []
    try:
        # Six readers at once, each holding its transaction a moment: the pool grows to its size,
        # no further, and the readers beyond it wait their turn rather than fail.
        def reader(_: int) -> None:
            with store.read():
                seen.append(_connections(url))
                time.sleep(0.2)

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(reader, range(6)))
    finally:
        store.close()
    assert len(seen) == 6
    assert max(seen) <= 2 + 1, seen  # the pool, and the store's own connection for the writers' lock
    assert max(seen) >= 2, seen  # more than one reader ran at once: the bound is the pool's


def test_postgresql_plans_each_statement_with_its_values(tmp_path: Path) -> None:
    """No server-side prepared statements: a generic plan cached while a table was small would
    stay in use as it grows (measured: a lookup from 0.05 ms to 12.7 ms at 40,000 activations)."""
    store = PostgreSQLStore(database_url(tmp_path))
    try:
        with store.read() as tx:
            for _ in range(10):  # psycopg would prepare from the 5th execution by default
                tx.license_by_key("acct_none", "NO-SUCH-KEY")
            assert store.debug_query("SELECT count(*) FROM pg_prepared_statements") == [(0,)]
    finally:
        store.close()


def test_postgresql_runs_a_read_of_one_statement_outside_a_transaction_and_refuses_a_second(
    tmp_path: Path,
) -> None:
    store = PostgreSQLStore(database_url(tmp_path))
    try:
        with store.read(one_statement=True) as tx:
            # pg_current_xact_id_if_assigned() is NULL either way; now() = statement_timestamp()
            # holds only for a statement that is its own transaction.
            assert tx.credential_holder(b"\x00" * 32) is None
        with store.read(one_statement=True):
            assert store.debug_query("SELECT now() = statement_timestamp()") == [(True,)]
        with store.read():
            store.debug_query("SELECT 1")
            assert store.debug_query("SELECT now() = statement_timestamp()") == [(False,)]
        with pytest.raises(OfflineServiceError) as info, store.read(one_statement=True) as tx:
            tx.license_by_key("acct_none", "NO-SUCH-KEY")
            tx.license_by_key("acct_none", "NO-SUCH-KEY")
        assert info.value.code is Code.STORAGE_ERROR
        with store.read() as tx:  # the connection went back to the pool clean
            assert tx.license_by_key("acct_none", "NO-SUCH-KEY") is None
    finally:
        store.close()


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", "", "1001"])
def test_a_pool_size_that_is_not_1_to_1000_is_refused(value: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({"OFFLINE_SERVICE_DATABASE_POOL_SIZE": value})
    assert info.value.code is Code.INVALID_ARGUMENT and "POOL_SIZE" in info.value.message


def test_the_pool_size_defaults_to_the_stores_own() -> None:
    assert Settings.from_env({}).database_pool_size == POOL_SIZE


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (True, TypeError), ("2", TypeError)])
def test_a_store_refuses_a_bad_pool_size_before_connecting(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        PostgreSQLStore("postgresql://postgres@127.0.0.1:1/nothing", pool_size=value)  # type: ignore[arg-type]


def test_create_false_opens_an_existing_database_and_creates_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(OfflineServiceError) as info:
        open_store(Settings.from_env({}, data_dir=str(data)), create=False)
    assert info.value.code is Code.NOT_FOUND
    assert str(data / "offline-service.sqlite3") in info.value.message
    assert not data.exists()
    open_store(Settings.from_env({}, data_dir=str(data))).close()  # created, with the schema
    store = open_store(Settings.from_env({}, data_dir=str(data)), create=False)
    try:
        assert store.pending_migrations() == []
    finally:
        store.close()


def test_create_false_gives_an_empty_postgresql_database_no_schema(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    with pytest.raises(OfflineServiceError) as info:
        open_store(Settings.from_env({}, database_url=url), create=False)
    assert info.value.code is Code.NOT_FOUND
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
    open_store(Settings.from_env({}, database_url=url)).close()
    open_store(Settings.from_env({}, database_url=url), create=False).close()
