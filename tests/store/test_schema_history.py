"""Every database gets the schema the history gave before the dialect mapping: on PostgreSQL the
catalog the old override files made (``tests/vectors/migrations/postgresql/``), on SQLite the
portable files' own ``sqlite_master``; and a database made by the old files upgrades unchanged."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import psycopg

from offline_service.store import SQLiteStore
from offline_service.store.migrate import migrations, split_statements
from offline_service.store.postgresql import PostgreSQLStore
from tests.pg import database_url
from tests.vectors import sql_files

# The versions written before the mapping: their schema is history. Later versions have no old
# spelling, their mapped SQL is their definition.
HISTORY = 6
# The table each store creates itself, outside the migrations.
SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at {})"
)

CATALOG = {
    "columns": """SELECT table_name, column_name, ordinal_position, data_type, is_nullable,
        column_default, is_identity, identity_generation, identity_start, identity_increment,
        character_maximum_length, numeric_precision
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY tablename, indexname""",
    "constraints": """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "sequences": """SELECT sequence_name, data_type, start_value, increment
        FROM information_schema.sequences WHERE sequence_schema = 'public' ORDER BY 1""",
}


def _portable() -> dict[int, str]:
    """The files of ``store/migrations/`` as written, by version."""
    root = resources.files("offline_service.store").joinpath("migrations")
    return {
        int(entry.name.split("_", 1)[0]): entry.read_text("utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".sql")
    }


def _old_postgresql_history() -> dict[int, str]:
    """What PostgreSQL databases were migrated with before the mapping: each version's override
    if it had one, else the portable file as written."""
    overrides, portable = sql_files("migrations/postgresql"), _portable()
    mapped = {m.version: m.sql for m in migrations("postgresql")}
    return {
        version: overrides.get(version, portable[version]) if version <= HISTORY else mapped[version]
        for version in sorted(portable)
    }


def _build_old_postgresql(url: str, upto: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA_MIGRATIONS.format("BIGINT"))
        for version, sql in _old_postgresql_history().items():
            if version > upto:
                break
            with conn.transaction():
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (version,))


def _catalog(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: [tuple(row) for row in conn.execute(query)] for name, query in CATALOG.items()}


def _fresh_postgresql(directory: Path) -> str:
    url = database_url(directory)
    PostgreSQLStore(url).close()
    return url


def test_the_mapping_gives_postgresql_the_schema_the_old_overrides_gave(tmp_path: Path) -> None:
    old = database_url(tmp_path / "old")
    _build_old_postgresql(old, max(_portable()))
    old_catalog, new_catalog = _catalog(old), _catalog(_fresh_postgresql(tmp_path / "new"))
    assert old_catalog["columns"] and old_catalog["constraints"] and old_catalog["indexes"]
    assert ("audit_log", "id", 1, "bigint", "NO", None, "YES", "BY DEFAULT", "1", "1", None, 64) in (
        new_catalog["columns"]
    )
    for name in CATALOG:
        assert new_catalog[name] == old_catalog[name], name


def test_a_postgresql_database_the_old_overrides_made_upgrades_to_the_same_schema(tmp_path: Path) -> None:
    old = database_url(tmp_path / "old")
    _build_old_postgresql(old, 4)
    with psycopg.connect(old, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts VALUES ('acc', 'acme', 'Acme', 0)")
        conn.execute(
            "INSERT INTO users (id, account_id, email, email_key, role, created_at)"
            " VALUES ('usr', 'acc', 'a@example.com', 'a@example.com', 'user', 0)"
        )
        conn.execute(
            "INSERT INTO credentials (token_hash, kind, user_id, account_id, created_at, expires_at)"
            " VALUES (%s, 'session', 'usr', 'acc', 0, 10)",
            (b"\x01" * 32,),
        )
    store = PostgreSQLStore(old, migrate=False)
    try:
        assert store.schema_version == 4 and store.pending_migrations() == sorted(
            v for v in _portable() if v > 4
        )
        assert store.upgrade() == sorted(v for v in _portable() if v > 4)
        # Version 5 gave the existing credential a public id of 32 hex digits, as SQLite's does.
        [(public_id,)] = store.debug_query("SELECT id FROM credentials")
        assert re.fullmatch("crd_[0-9a-f]{32}", public_id)
    finally:
        store.close()
    assert _catalog(old) == _catalog(_fresh_postgresql(tmp_path / "new"))


def _old_split(sql: str) -> list[str]:
    """How the SQLite store split its migrations before it shared ``split_statements``."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _sqlite_master(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_sqlite_gets_the_schema_of_the_portable_files_as_written(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old, isolation_level=None) as conn:
        conn.execute(SCHEMA_MIGRATIONS.format("INTEGER"))
        for _version, sql in sorted(_portable().items()):
            for statement in _old_split(sql):
                conn.execute(statement)
    conn.close()
    SQLiteStore(tmp_path / "new").close()
    old_master = _sqlite_master(old)
    assert any(sql and "WITHOUT ROWID" in sql for *_, sql in old_master)
    assert _sqlite_master(tmp_path / "new" / "offline-service.sqlite3") == old_master
