"""The PostgreSQL backend, for several service instances on one database (psycopg 3 and its pool).

Only what is PostgreSQL's own lives here: the pool, the writers' lock (an advisory lock, see
docs/ENGINE.md "Concurrency on PostgreSQL"), the migrations runner and the PostgreSQL ``Dialect``.
The queries are the shared ones of ``store/sql/``."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import shown_url
from offline_service.store.migrate import migrations, split_statements
from offline_service.store.sql import Dialect, SQLTransaction, Statements
from offline_service.store.sql.tables import TableAccess

__all__ = ["POSTGRESQL", "PostgreSQLStore"]

# The advisory lock every writer takes, the same on every instance: the single writer SQLite has.
WRITERS_LOCK = 0x0FF11E5E
# The advisory lock migrations take, so that instances starting together apply each version once.
MIGRATIONS_LOCK = 0x0FF11E5F
# The default pool of one process: the web layer's worker threads share these connections. Each
# store also holds one connection of its own for the writers' lock (see ``write_lock_if_free``).
POOL_SIZE = 10


def _listed(items: Sequence[str]) -> str:
    """The items as one text[] literal, cast by the statement (``= ANY(?::text[])``). A Python list
    would be adapted element by element: for a person's 5,000 license ids, 20-30 ms a statement
    on the client, where building the literal takes well under one (measured)."""
    quoted = ('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items)
    return "{" + ",".join(quoted) + "}"


POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    insert_ignore_prefix="INSERT INTO",
    insert_ignore_suffix=" ON CONFLICT DO NOTHING",
    is_not="IS DISTINCT FROM",
    in_bound_list="= ANY(?::text[])",
    bound_list=_listed,
    max_list=1000,
    like="ILIKE",
    array_rows=True,
)


class _Connection:
    """The DB-API surface ``SQLTransaction`` uses (``execute`` and ``executemany`` answering a
    cursor), over a psycopg connection, whose ``executemany`` lives on its cursors only.

    It also saves round trips (see docs/PERFORMANCE.md, "PostgreSQL"): the statements that open
    the transaction (a read's ``BEGIN``) wait in ``pending`` and go out in one pipeline with the
    transaction's first statement, which the server runs after them, in order. A read that runs
    no statement sends none. (A write sends its ``BEGIN`` and lock at once, together: the
    store's contract is that the lock is held when its block starts.)"""

    __slots__ = ("_left", "_pending", "raw")

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        pending: Sequence[tuple[str, Sequence[Any]]],
        *,
        most: int | None = None,
    ) -> None:
        """``most``: how many statements the block may run (None: any number); one more is a
        STORAGE_ERROR (``read(one_statement=True)`` runs its statement outside a transaction)."""
        self.raw = conn
        self._pending = list(pending)
        self._left = most

    @property
    def begun(self) -> bool:
        """Whether the opening statements have been sent (there is a transaction to end)."""
        return not self._pending

    def begin(self) -> None:
        """Send the opening statements now, if they are still waiting (one round trip)."""
        if self._pending:
            with self.pipeline():
                pass

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """The block's statements go out together (after the opening ones, if still waiting);
        their cursors hold every result when it ends: one round trip."""
        with self.raw.pipeline():
            self._send_pending()
            yield

    def _send_pending(self) -> None:
        """Queue the opening statements, if still waiting, in the pipeline the caller opened."""
        pending, self._pending = self._pending, []
        for sql, parameters in pending:
            self.raw.execute(sql, parameters)

    def _count(self) -> None:
        if self._left is not None:
            if self._left <= 0:
                raise OfflineServiceError(
                    Code.STORAGE_ERROR, "a second statement in a read of one statement (a bug)"
                )
            self._left -= 1

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        self._count()
        if not self._pending:
            return self.raw.execute(sql, parameters)
        # The pipeline's end waits for every result: the cursor is complete when it returns.
        with self.pipeline():
            return self.raw.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        self._count()
        cursor = self.raw.cursor()
        with self.pipeline() if self._pending else nullcontext():
            cursor.executemany(sql, parameters)
        return cursor


class PostgreSQLStore:
    """Store in one PostgreSQL database, shared by any number of processes and machines."""

    def __init__(
        self, url: str, *, migrate: bool = True, pool_size: int = POOL_SIZE, create: bool = True
    ) -> None:
        """``migrate``: apply pending migrations on open (``False``: leave that to ``upgrade()``).
        ``create``: False, a database without the schema is ``NOT_FOUND`` rather than given one
        by ``migrate`` (the CLI's commands other than ``init``; ``db upgrade`` does not migrate on open).
        ``pool_size``: the most connections transactions hold at once (one more is the lock's)."""
        if isinstance(pool_size, bool) or not isinstance(pool_size, int):
            raise TypeError("pool_size must be an int")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._statements = Statements.for_dialect(POSTGRESQL)
        # The transaction the calling thread is in, if any (``read()`` and ``debug_query`` join it),
        # and whether it holds the writers' lock through ``write_lock_if_free()``.
        self._local = threading.local()
        # ``write_lock_if_free()`` holds a session-level advisory lock on a connection of its own;
        # the threads of this process take turns on it.
        self._lock_holder = threading.Lock()
        self._url = url
        try:
            # First the store's own connection: a server that does not answer fails here at once,
            # where the pool would retry until its timeout.
            self._lock_conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot open database: {exc}") from None
        # No server-side prepared statements (prepare_threshold None): PostgreSQL would cache a
        # generic plan made while a table was small (a new deployment) and keep it as the table
        # grows. Measured: the live-activation lookup of a license went from 0.05 ms to 12.7 ms
        # over 40,000 activations, and the API's throughput fell by half within a minute. Each
        # statement is planned with its own values instead, tens of microseconds. (It also suits
        # a connection pooler in transaction mode.)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=30)
            if migrate and not create and self.schema_version == 0:
                raise OfflineServiceError(
                    Code.NOT_FOUND, f"the database {shown_url(url)} holds no offline-service schema"
                )
            if migrate:
                self.upgrade()
        except BaseException as exc:
            self.close()
            if isinstance(exc, psycopg.Error | PoolTimeout):
                raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot open database: {exc}") from None
            raise

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool for one transaction; a server that cannot be reached is a
        ``STORAGE_ERROR`` like any other database failure. The pool rolls back whatever a
        connection returned with and replaces a broken one."""
        try:
            conn = self._pool.getconn()
        except (psycopg.Error, PoolTimeout) as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database unavailable: {exc}") from None
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    # -- migrations ----------------------------------------------------------------------------

    def _applied(self, conn: psycopg.Connection[Any]) -> set[int]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT)"
        )
        return {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}

    def pending_migrations(self) -> list[int]:
        """The versions of the code's history the database has not applied yet, oldest first."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK,))
            applied = self._applied(conn)
        return [m.version for m in migrations(POSTGRESQL.name) if m.version not in applied]

    def upgrade(self) -> list[int]:
        """Apply every pending migration, each in a transaction of its own (PostgreSQL's DDL is
        transactional: a failing version leaves no half); returns the versions applied. Instances
        upgrading at once queue on an advisory lock, so each version is applied once."""
        done: list[int] = []
        with self._connection() as conn:
            for migration in migrations(POSTGRESQL.name):
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK,))
                    if migration.version in self._applied(conn):
                        continue
                    for statement in split_statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, EXTRACT(EPOCH FROM now())::BIGINT)",
                        (migration.version,),
                    )
                done.append(migration.version)
        return done

    @property
    def schema_version(self) -> int:
        """The newest migration applied; 0 for an empty database (``migrate=False`` creates no
        table, so ``db status`` and ``db upgrade`` can look at a database nothing was applied to)."""
        with self._connection() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return 0
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[SQLTransaction]:
        """A write transaction. Its first statement takes the writers' advisory lock (released at
        commit or rollback), so the reads that decide a limit and the writes that consume it can
        never interleave with another writer of any instance: SQLite's BEGIN IMMEDIATE, across
        machines. Inside ``write_lock_if_free()`` the lock is held already.

        Round trips: ``BEGIN`` and the lock go out together (inside ``write_lock_if_free()``,
        ``BEGIN`` goes with the first statement), and the buffered writes go out with ``COMMIT``,
        each group in one pipeline (one wait each). The commit is synchronous (``synchronous_commit`` stays on): when this returns, the server has
        the transaction on disk, so a granted seat survives a crash."""
        if getattr(self._local, "conn", None) is not None:
            raise OfflineServiceError(Code.STORAGE_ERROR, "a write transaction is already open")
        opening: list[tuple[str, Sequence[Any]]] = [("BEGIN", ())]
        if not getattr(self._local, "holding", False):
            opening.append(("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,)))
        with self._connection() as conn:
            wrapped = _Connection(conn, opening)
            try:
                # The lock now, not with the first statement: it is held when the block starts
                # (``write_lock_if_free()`` elsewhere answers False from here on). Holding it
                # already, ``BEGIN`` alone waits for the first statement.
                if len(opening) > 1:
                    wrapped.begin()
            except psycopg.Error as exc:
                _rollback(conn)
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database busy: {exc}") from None
            tx = SQLTransaction(wrapped, self._statements)
            self._local.conn = wrapped
            try:
                try:
                    yield tx
                finally:
                    self._local.conn = None
                # One wait for all of it: an error in any statement skips the rest, COMMIT
                # included, and is raised when the pipeline ends.
                with wrapped.pipeline():
                    tx.flush()
                    conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def write_lock_if_free(self) -> Iterator[bool]:
        """Hold the writers' lock for a block if it can be had without waiting; yields whether it
        was. A session-level advisory lock on a connection of the store's own: ``write()`` inside
        the block skips taking it, and no other writer of any instance slips in between two
        transactions of the block."""
        if not self._lock_holder.acquire(blocking=False):
            yield False
            return
        try:
            try:
                if self._lock_conn.broken or self._lock_conn.closed:  # the server restarted
                    self._lock_conn = psycopg.connect(self._url, autocommit=True)
                row = self._lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITERS_LOCK,)).fetchone()
            except psycopg.Error as exc:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database unavailable: {exc}") from None
            if not (row and row[0]):
                yield False
                return
            self._local.holding = True
            try:
                yield True
            finally:
                self._local.holding = False
                self._lock_conn.execute("SELECT pg_advisory_unlock(%s)", (WRITERS_LOCK,))
        finally:
            self._lock_holder.release()

    @contextmanager
    def read(self, *, one_statement: bool = False) -> Iterator[SQLTransaction]:
        """A read-only snapshot (REPEATABLE READ). Inside another transaction it reads within that one.
        Its ``BEGIN`` goes out with its first statement (one round trip for both), and its
        ``ROLLBACK`` is a second. With ``one_statement`` there is neither: the statement runs on
        its own (autocommit), which is a snapshot of its own; a second one raises."""
        wrapped = getattr(self._local, "conn", None)
        if wrapped is not None:
            yield SQLTransaction(wrapped, self._statements)
            return
        with self._connection() as conn:
            if one_statement:
                wrapped = _Connection(conn, [], most=1)
            else:
                wrapped = _Connection(conn, [("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", ())])
            self._local.conn = wrapped
            try:
                yield SQLTransaction(wrapped, self._statements)
            finally:
                self._local.conn = None
                if wrapped.begun and not one_statement:
                    _rollback(conn)

    def debug_query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """For tests and maintenance only: one statement of PostgreSQL's SQL, written with ``?``
        placeholders as the shared statements are, within the calling thread's open transaction if
        there is one (a write outside commits at once). Errors are psycopg's own, so that a test
        can check which constraint refused a row."""
        statement = POSTGRESQL.sql(sql)
        wrapped: _Connection | None = getattr(self._local, "conn", None)
        if wrapped is not None:
            return self._rows(wrapped.execute(statement, params))
        with self._connection() as own:
            return self._rows(own.execute(statement, params))

    @staticmethod
    def _rows(cursor: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    @contextmanager
    def table_access(self, *, write: bool = False) -> Iterator[TableAccess]:
        """Whole tables, for maintenance only (``store/copy.py``): a read snapshot, or with ``write``
        one write transaction under the writers' lock, committed when the block ends (rolled back
        if it raises). Database errors become ``STORAGE_ERROR``."""
        with self.write() if write else self.read():
            wrapped: _Connection = self._local.conn
            conn = wrapped.raw
            try:
                # The server-side cursor below is not sent through ``wrapped``: begin first.
                wrapped.begin()
                # A server-side cursor streams a table's rows instead of fetching them all at once.
                yield TableAccess(wrapped, POSTGRESQL, cursor=lambda: conn.cursor(name="table_rows"))
            except psycopg.Error as exc:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None

    def close(self) -> None:
        self._lock_conn.close()
        self._pool.close()


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a transaction that failed or only read, if one is open (a failed pipeline may have
    ended it already, or never begun it)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
