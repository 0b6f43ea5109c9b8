"""A PostgreSQL server for the tests, and a fresh database per test directory.

Where the server comes from (:func:`server_url`): ``OFFLINE_SERVICE_TEST_DATABASE_URL`` if it is set
when the session starts (a developer's own server: the user must be allowed to create databases);
otherwise a throwaway server this session starts in a temporary folder (:class:`Throwaway`, with
Debian's ``postgresql`` package, which ``make test`` installs when missing) and removes at its end.
Either is found on first use, so that a run of tests that need no PostgreSQL starts nothing. No
server is a failure, never a skip: a suite that silently ran on SQLite only would prove nothing
about PostgreSQL.

Databases are named ``offline_test_<session token>_...`` (the token starts with the session's start
time in hex), and the session drops its own at its end (``WITH (FORCE)``: a store a failed test left
open must not keep one); leftovers of a crashed session older than a day are dropped on the next
session's first use of the same server. Another session's databases are never touched.

A test directory's database is created on first use and shared by every store a test opens on
that directory, as processes share one database: ``database_url(directory)`` is an empty database
(no schema: the migration tests build it themselves), ``database_url(directory, migrated=True)`` a
copy of a template this session migrated once (``CREATE DATABASE ... TEMPLATE``), much quicker than
migrating every test's database.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from offline_service.store.postgresql import PostgreSQLStore
from tests.servers import free_port

__all__ = [
    "ENV",
    "Throwaway",
    "begin_session",
    "database_url",
    "end_session",
    "open_postgresql",
    "pg_test_databases",
    "server_url",
]

ENV = "OFFLINE_SERVICE_TEST_DATABASE_URL"
# A session's token: its start time (8 hex digits, for dropping a crashed session's leftovers) and
# 6 random ones.
_NAME = re.compile(r"\Aoffline_test_([0-9a-f]{8})[0-9a-f]{6}_")
LEFTOVER_AGE = 86_400
# Settings of a server whose data is thrown away at the end: durability costs time and buys nothing.
THROWAWAY_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "max_wal_size": "1GB",
    "log_min_messages": "warning",
}
START_TIMEOUT = 60


def _binaries(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` (Debian's layout)."""
    found = sorted(
        root.glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError(
            f"the PostgreSQL tests need a server: {ENV} is not set and no {root}/*/bin/initdb"
            " exists to start a throwaway one. Run `make postgresql` (Debian's postgresql package) or set"
            f" {ENV} to a server where the user may create databases."
        )
    return found[-1].parent


@dataclass
class Throwaway:
    """A PostgreSQL server in a temporary folder: initdb, then ``pg_ctl`` on a free port of 127.0.0.1
    and a unix socket in the folder, trust authentication, user ``postgres``. As root it runs as the
    system user ``postgres`` (initdb refuses root), which then owns the folder."""

    folder: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> Throwaway:
        """Starts one; a failure removes what it made and says why (the server's log included)."""
        binaries = _binaries()
        folder = Path(tempfile.mkdtemp(prefix="offline-test-pg-"))
        server = cls(folder=folder, port=free_port(), bin=binaries)
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(folder, user.pw_uid, user.pw_gid)
            server._run(
                "initdb", "-D", str(server.data), "--username=postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
            )  # fmt: skip
            settings = {
                **THROWAWAY_SETTINGS,
                "port": str(server.port),
                "unix_socket_directories": f"'{folder}'",
            }
            with (server.data / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
            server._run(
                "pg_ctl",
                "-D",
                str(server.data),
                "-l",
                str(server.log),
                "-w",
                "-t",
                str(START_TIMEOUT),
                "start",
            )
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _run(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 30,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"the throwaway PostgreSQL for the tests did not start: {program} exited {done.returncode}:"
                f"\n{done.stdout}{done.stderr}{log}\nSet {ENV} to use a server of your own instead."
            )

    def stop(self) -> None:
        """Stops the server at once (its data is thrown away) and removes the folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class _Session:
    """One test session's server and databases (``begin_session`` makes it)."""

    def __init__(self, configured: str | None) -> None:
        self.configured = configured
        self.prefix = f"offline_test_{int(time.time()):08x}{secrets.token_hex(3)}_"
        self.throwaway: Throwaway | None = None
        self._url: str | None = None
        self._failure: str | None = None
        self._template: str | None = None
        self._lock = threading.RLock()  # template() asks server_url() while holding it

    def server_url(self) -> str:
        with self._lock:
            if self._failure is not None:  # once failed, every test fails at once with the same reason
                raise RuntimeError(self._failure)
            if self._url is None:
                try:
                    self._url = self._find_server()
                except RuntimeError as exc:
                    self._failure = str(exc)
                    raise
            return self._url

    def _find_server(self) -> str:
        if self.configured:
            url = self.configured
            with self._connect(url) as conn:
                _drop_leftovers(conn)
            return url
        self.throwaway = Throwaway.start()
        atexit.register(self.throwaway.stop)  # also when the session dies before its fixtures end
        return self.throwaway.url

    def _connect(self, url: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        url = url or self.server_url()
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            where = f"{ENV}={url}" if self.configured else f"the throwaway server at {url}"
            raise RuntimeError(
                f"the PostgreSQL tests need a server: none answers at {where} ({exc}). Start it, set {ENV}"
                " to a server where the user may create databases, or unset it to let the tests start"
                " their own."
            ) from None

    def url_of(self, name: str) -> str:
        return urlunsplit(urlsplit(self.server_url())._replace(path="/" + name))

    def template(self) -> str:
        """The name of this session's migrated template, made on first use."""
        with self._lock:
            if self._template is None:
                name = self.prefix + "template"
                with self._connect() as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                PostgreSQLStore(self.url_of(name)).close()
                self._template = name
            return self._template

    def database_url(self, directory: Path, *, migrated: bool) -> str:
        kind = "m" if migrated else "e"
        name = self.prefix + kind + hashlib.sha256(str(directory).encode()).hexdigest()[:16]
        source = f' TEMPLATE "{self.template()}"' if migrated else ""
        # A second store of the same test finds its database there already.
        with self._connect() as conn, contextlib.suppress(psycopg.errors.DuplicateDatabase):
            conn.execute(f'CREATE DATABASE "{name}"{source}')
        return self.url_of(name)

    def close(self) -> None:
        """Drops this session's databases, or stops the throwaway server (and its data with it)."""
        if self.throwaway is not None:
            self.throwaway.stop()
            atexit.unregister(self.throwaway.stop)
            self.throwaway = None
            return
        if self._url is None:
            return  # no server was used: no database was created either
        with contextlib.suppress(RuntimeError), self._connect() as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (self.prefix,)
                )
            ]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_leftovers(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drops the test databases of sessions that started more than a day ago (a crashed session
    never dropped its own; one that still runs after a day is long dead)."""
    oldest = int(time.time()) - LEFTOVER_AGE
    for (name,) in conn.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, 'offline_test_')"
    ):
        found = _NAME.match(str(name))
        if found and int(found.group(1), 16) < oldest:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The running session's (this is test code: no request ever reads it).
_session: _Session | None = None


def begin_session(environ: Mapping[str, str] = os.environ) -> None:
    """Starts a session: reads ``OFFLINE_SERVICE_TEST_DATABASE_URL`` now, before any test's fixture
    changes the environment (the CLI tests clear every ``OFFLINE_SERVICE_*`` variable)."""
    global _session
    _session = _Session(environ.get(ENV) or None)


def end_session() -> None:
    """Drops the session's databases, or stops its throwaway server."""
    global _session
    if _session is not None:
        _session.close()
        _session = None


def _current() -> _Session:
    if _session is None:  # used outside a pytest session (a script): the environment as it is
        begin_session()
    assert _session is not None
    return _session


def server_url() -> str:
    """The URL of the session's server (its ``postgres`` database), found or started on first use."""
    return _current().server_url()


def database_url(directory: Path, *, migrated: bool = False) -> str:
    """The URL of the test directory's database, created on first use: empty, or ``migrated`` (the
    current schema, no rows)."""
    return _current().database_url(directory, migrated=migrated)


def open_postgresql(directory: Path) -> PostgreSQLStore:
    """A store on the test directory's database (the contract's ``BACKENDS`` entry)."""
    return PostgreSQLStore(database_url(directory, migrated=True))


@pytest.fixture(scope="session", autouse=True)
def pg_test_databases() -> Iterator[None]:
    """The session's PostgreSQL: the environment read at its start, its databases dropped (or its
    throwaway server stopped and removed) at its end, whether the tests passed or not."""
    begin_session()
    try:
        yield
    finally:
        end_session()
