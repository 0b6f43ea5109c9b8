"""A throwaway PostgreSQL database for one benchmark run: ``offline_bench_<random>`` on the server
``OFFLINE_SERVICE_BENCH_DATABASE_URL`` names (default: the local server), dropped when the block
ends, also on Ctrl-C, SIGTERM or failure."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Iterator
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

import psycopg

__all__ = ["SERVER_URL", "backend_pids", "fresh_database"]

SERVER_URL = (
    os.environ.get("OFFLINE_SERVICE_BENCH_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _connect() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"the PostgreSQL benchmark needs a server: none answers at {SERVER_URL} ({exc}); start one or"
            " set OFFLINE_SERVICE_BENCH_DATABASE_URL"
        ) from None


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new empty database, dropped (WITH FORCE: servers still connected are cut off)
    when the block ends however it ends. SIGTERM becomes SystemExit meanwhile, so it drops too."""
    name = f"offline_bench_{secrets.token_hex(6)}"
    with _connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        yield urlunsplit(urlsplit(SERVER_URL)._replace(path="/" + name))
    finally:
        signal.signal(signal.SIGTERM, previous)
        with _connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pids(url: str) -> list[int]:
    """The process ids of the PostgreSQL backends connected to the database of ``url`` (the
    server runs on this machine: their CPU time is read from /proc)."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return [int(r[0]) for r in rows]
