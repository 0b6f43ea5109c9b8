"""The tests' PostgreSQL (tests/pg.py): the throwaway server starts and goes away, also when a test
fails; a configured server gets the session's databases and loses them at its end; the failures say
what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import pg

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            str(r[0]) for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }


def _databases(url: str, prefix: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
        return {str(r[0]) for r in rows}


def test_a_throwaway_server_starts_with_throwaway_settings_and_is_removed(tmp_path: Path) -> None:
    server = pg.Throwaway.start()
    try:
        assert server.folder.is_dir() and _answers(server.url)
        with psycopg.connect(server.url) as conn:
            settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN"
                                         " ('fsync', 'listen_addresses', 'port', 'unix_socket_directories')"))  # fmt: skip
        assert settings == {
            "fsync": "off",
            "listen_addresses": "127.0.0.1",
            "port": str(server.port),
            "unix_socket_directories": str(server.folder),
        }
    finally:
        server.stop()
    assert not server.folder.exists()
    assert not _answers(server.url)


def test_a_session_without_the_variable_starts_its_own_server_and_stops_it() -> None:
    session = pg._Session(None)
    try:
        url = session.server_url()
        assert session.throwaway is not None and url == session.throwaway.url
        empty = session.database_url(Path("/a"), migrated=False)
        migrated = session.database_url(Path("/a"), migrated=True)
        assert empty != migrated and session.database_url(Path("/a"), migrated=True) == migrated
        assert _tables(empty) == set()
        assert {"schema_migrations", "licenses", "activations"} <= _tables(migrated)
        with psycopg.connect(migrated) as conn:
            assert conn.execute("SELECT count(*) FROM licenses").fetchone() == (0,)
        folder = session.throwaway.folder
    finally:
        session.close()
    assert not folder.exists() and not _answers(url)


def test_a_configured_server_keeps_only_what_is_not_the_sessions() -> None:
    """On the server the variable names, the session drops its own databases at its end, and
    another session's only when that one started more than a day ago."""
    server = pg.server_url()
    session = pg._Session(server)
    long_ago = f"offline_test_{int(time.time()) - 2 * pg.LEFTOVER_AGE:08x}abcdef_left"
    running = f"offline_test_{int(time.time()) - 60:08x}abcdef_running"
    with psycopg.connect(server, autocommit=True) as conn:
        for name in (long_ago, running):
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        assert session.server_url() == server
        assert _databases(server, "offline_test_") >= {running} and long_ago not in _databases(server, "")
        session.database_url(Path("/b"), migrated=True)
        assert len(_databases(server, session.prefix)) == 2  # the template and the test's copy
        session.close()
        assert _databases(server, session.prefix) == set()
        assert running in _databases(server, "offline_test_")
    finally:
        session.close()
        with psycopg.connect(server, autocommit=True) as conn:
            for name in (long_ago, running):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_no_server_fails_saying_what_to_do(tmp_path: Path) -> None:
    silent = pg._Session("postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(RuntimeError, match=pg.ENV) as first:
        silent.server_url()
    with pytest.raises(RuntimeError) as again:  # every later test fails at once, the same way
        silent.server_url()
    assert str(again.value) == str(first.value)
    with pytest.raises(RuntimeError, match="make postgresql"):
        pg._binaries(tmp_path)


@pytest.mark.slow
def test_a_failing_session_still_removes_its_throwaway_server(tmp_path: Path) -> None:
    """A pytest run of its own, without the variable, whose test fails after starting the server:
    the server is gone afterwards."""
    seen = tmp_path / "seen"
    (tmp_path / "test_inner.py").write_text(
        "from tests import pg\n\n"
        "def test_uses_postgresql():\n"
        "    url = pg.server_url()\n"
        "    assert pg._session is not None and pg._session.throwaway is not None\n"
        f"    open({str(seen)!r}, 'w').write(url + '\\n' + str(pg._session.throwaway.folder))\n"
        "    raise AssertionError('fails on purpose')\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k != pg.ENV} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.pg", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1 and "fails on purpose" in done.stdout, done.stdout + done.stderr
    url, folder = seen.read_text().splitlines()
    assert not Path(folder).exists()
    assert not _answers(url)
