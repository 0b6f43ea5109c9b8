"""A PostgreSQL server for the tests that need one: ``OFFLINE_SERVICE_TEST_DATABASE_URL`` if set,
else the local server (postgresql://postgres@127.0.0.1:5432/postgres). Each test directory gets a
fresh database ``offline_test_<session>_<hash>``, created on first use (every store a test opens
on the same directory shares it, as processes share one database), and the session drops them all
at its end. No server answering is a failure, never a skip: a suite that silently ran on SQLite
only would prove nothing about PostgreSQL. (Starting a throwaway server when none answers is left
for later.)"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from offline_service.store.postgresql import PostgreSQLStore

__all__ = ["SERVER_URL", "database_url", "open_postgresql", "pg_test_databases"]

SERVER_URL = (
    os.environ.get("OFFLINE_SERVICE_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Names this session's databases, so that the session drops its own and no other run's.
PREFIX = f"offline_test_{secrets.token_hex(4)}_"


def _connect() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"the PostgreSQL tests need a server: none answers at {SERVER_URL} ({exc}). Start one or set "
            "OFFLINE_SERVICE_TEST_DATABASE_URL to a server where the user may create databases."
        ) from None


def database_url(directory: Path) -> str:
    """The URL of the test directory's database, created empty on first use."""
    name = PREFIX + hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    # A second store of the same test finds its database there already.
    with _connect() as conn, contextlib.suppress(psycopg.errors.DuplicateDatabase):
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(SERVER_URL)
    return urlunsplit(parts._replace(path="/" + name))


def open_postgresql(directory: Path) -> PostgreSQLStore:
    """A store on the test directory's database (the contract's ``BACKENDS`` entry)."""
    return PostgreSQLStore(database_url(directory))


@pytest.fixture(scope="session", autouse=True)
def pg_test_databases() -> Iterator[None]:
    """Drops every database this session created, at its end (FORCE: a store a failed test left
    open must not keep its database)."""
    yield
    try:
        conn = psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        return  # no server: no database was created either
    with conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (PREFIX,)
            )
        ]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
