"""The embedded SQLite backend: WAL mode, writers serialised with BEGIN IMMEDIATE.

Only what is SQLite's own lives here: the connection and its pragmas, the writers' lock, the
migrations runner (the history is ``store/migrate.py``'s), checkpoints and the SQLite ``Dialect``.
The queries are the shared ones of ``store/sql/``."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from offline_service.errors import Code, OfflineServiceError
from offline_service.store.checkpoints import Checkpointer
from offline_service.store.migrate import migrations, split_statements
from offline_service.store.sql import Dialect, SQLTransaction, Statements
from offline_service.store.sql.tables import TableAccess

__all__ = ["SQLITE", "SQLiteStore"]

DB_FILE = "offline-service.sqlite3"
BUSY_TIMEOUT_MS = 60_000
CHECKPOINT_PAGES = 4000  # WAL pages (4 KiB each) between checkpoints


def _json_array(items: Sequence[str]) -> str:
    return json.dumps(list(items))


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    insert_ignore_prefix="INSERT OR IGNORE INTO",
    insert_ignore_suffix="",
    is_not="IS NOT",
    in_bound_list="IN (SELECT value FROM json_each(?))",
    bound_list=_json_array,
    max_list=400,  # under SQLite's bound on variables in one statement (999 before 3.32)
)


def _existing(path: Path) -> str:
    """The URI that opens the database file ``path`` only if it exists."""
    return f"{path.absolute().as_uri()}?mode=rw"


def _check_exists(path: Path) -> None:
    """``NOT_FOUND`` naming ``path`` unless it is a database with the schema (even an old one);
    creates nothing, not even the writers' lock file."""
    if not path.is_file():
        raise OfflineServiceError(Code.NOT_FOUND, f"no database at {path.absolute()}")
    try:
        conn = sqlite3.connect(_existing(path), uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OfflineServiceError(
            Code.STORAGE_ERROR, f"cannot open database {path.absolute()}: {exc}"
        ) from None
    if not found:
        raise OfflineServiceError(
            Code.NOT_FOUND, f"no database at {path.absolute()} (the file holds no offline-service schema)"
        )


class SQLiteStore:
    """Store backed by one SQLite file in ``data_dir``; safe to share between processes."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        background_checkpoints: bool = False,
        migrate: bool = True,
        create: bool = True,
    ) -> None:
        """``background_checkpoints``: for a long-running server, checkpoint the WAL on a thread
        of its own (``Checkpointer``) instead of inside the commits of request handlers.

        ``migrate``: apply pending migrations on open (the CLI's vendor commands, tests). A server
        opens with False and refuses an old schema, so that upgrading stays an operator's step
        (``offline-service db upgrade``) and N instances never race to migrate.

        ``create``: make the directory and the database file if they are missing. False (the CLI's
        commands but ``init`` and ``db upgrade``): a missing or empty database is ``NOT_FOUND``, naming the file,
        and nothing is created."""
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_FILE
        if create:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        else:
            _check_exists(self.path)
        self._lock_fd = os.open(self.data_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # One connection per store: threads of one process take turns (the web layer's workers).
        self._thread_lock = threading.RLock()
        self._flock_depth = 0  # nested holds of the writers' lock by this process (under _thread_lock)
        self._checkpointer: Checkpointer | None = None
        self._statements = Statements.for_dialect(SQLITE)
        try:
            self._conn = sqlite3.connect(
                # mode=rw: opening never creates the file (another process may have removed it).
                self.path if create else _existing(self.path),
                uri=not create,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the
            # last commits, which batch re-runs recover idempotently.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # Batches write thousands of rows a second: a larger page cache and fewer, larger
            # checkpoints cut the write amplification of the WAL.
            self._conn.execute("PRAGMA cache_size = -8192")
            # With background checkpoints the commits' own is only the safety net, should the
            # checkpointer fall behind.
            autocheckpoint = 4 * CHECKPOINT_PAGES if background_checkpoints else CHECKPOINT_PAGES
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
            self._conn.execute("PRAGMA journal_size_limit = 67108864")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at INTEGER)"
            )
            if migrate:
                self._upgrade()
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot open database: {exc}") from None
        if background_checkpoints:
            self._checkpointer = Checkpointer(
                self.path, writer_lock=self._writer_lock, reset_pages=CHECKPOINT_PAGES
            )

    def pending_migrations(self) -> list[int]:
        """The versions of the code's history the database has not applied yet, oldest first."""
        with self._thread_lock:
            try:
                applied = {row[0] for row in self._conn.execute("SELECT version FROM schema_migrations")}
            except sqlite3.Error as exc:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None
        return [m.version for m in migrations(SQLITE.name) if m.version not in applied]

    def upgrade(self) -> list[int]:
        """Apply the pending migrations, each in its own transaction under the writers' lock;
        returns the versions this call applied (another process may have applied the others)."""
        with self._writer_lock():
            try:
                return self._upgrade()
            except sqlite3.Error as exc:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"migration failed: {exc}") from None

    def _upgrade(self) -> list[int]:
        c = self._conn
        applied = []
        for migration in migrations(SQLITE.name):
            version = migration.version
            c.execute("BEGIN IMMEDIATE")
            try:
                if c.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    c.execute("COMMIT")
                    continue
                for statement in split_statements(migration.sql):
                    c.execute(statement)
                c.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s', 'now'))", (version,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied

    @property
    def schema_version(self) -> int:
        with self._thread_lock:  # the one connection is shared by threads
            row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def write(self) -> Iterator[SQLTransaction]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so the reads that
        decide a limit and the writes that consume it can never interleave with another writer.

        Writers first queue on an flock of ``write.lock`` in the data directory: a blocked process
        is woken the moment the lock is free, where SQLite's busy handler would sleep 1-100 ms
        between retries and leave a core idle. SQLite's own locking stays the safety net."""
        with self._writer_lock():
            yield from self._write_transaction()

    @contextmanager
    def write_lock_if_free(self) -> Iterator[bool]:
        """Hold the write lock for a block if it can be had without waiting; yields whether it was.
        For callers that must not wait (an event loop): ``write()`` inside the block does not block,
        however many transactions the block runs."""
        with self._writer_lock(blocking=False) as held:
            yield held

    @contextmanager
    def _writer_lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """The writers' lock: this process's thread lock, then the flock other processes queue on.
        Reentrant: an inner hold (``write()`` inside ``write_lock_if_free()``) does not release the
        flock when it ends, so no other process can slip in between two transactions of a block."""
        if not self._thread_lock.acquire(blocking=blocking):
            yield False
            return
        try:
            if self._flock_depth == 0:
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
            self._flock_depth += 1
            try:
                yield True
            finally:
                self._flock_depth -= 1
                if self._flock_depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _write_transaction(self) -> Iterator[SQLTransaction]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database busy: {exc}") from None
        tx = SQLTransaction(self._conn, self._statements)
        try:
            yield tx
            tx.flush()
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise OfflineServiceError(Code.STORAGE_ERROR, f"commit failed: {exc}") from None

    @contextmanager
    def read(self, *, one_statement: bool = False) -> Iterator[SQLTransaction]:
        """A read-only snapshot. Inside another transaction it simply reads within that one.
        (``one_statement`` changes nothing here: BEGIN and ROLLBACK cost no round trip in process.)"""
        with self._thread_lock:
            if self._conn.in_transaction:
                yield SQLTransaction(self._conn, self._statements)
                return
            self._conn.execute("BEGIN")
            try:
                yield SQLTransaction(self._conn, self._statements)
            finally:
                self._conn.execute("ROLLBACK")

    def debug_query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """For tests and maintenance only: one statement of SQLite's SQL on the store's connection,
        within the open transaction if this thread is in one (a write outside commits at once).
        Errors are sqlite3's own, so that a test can check which constraint refused a row."""
        with self._thread_lock:
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
            return rows

    @contextmanager
    def table_access(self, *, write: bool = False) -> Iterator[TableAccess]:
        """Whole tables, for maintenance only (``store/copy.py``): a read snapshot, or with ``write``
        one write transaction under the writers' lock, committed when the block ends (rolled back
        if it raises). Database errors become ``STORAGE_ERROR``."""
        with self.write() if write else self.read():
            try:
                yield TableAccess(self._conn, SQLITE, cursor=self._conn.cursor)
            except sqlite3.Error as exc:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conn.close()
        os.close(self._lock_fd)
