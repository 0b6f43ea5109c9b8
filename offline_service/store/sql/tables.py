"""Whole tables, for maintenance (``offline-service db copy``): list them, read and write their rows
as they are, outside the domain statements. A backend hands ``TableAccess`` a DB-API connection
inside a transaction it began (``Store.tables()``); the request path never uses it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from offline_service.store.sql._base import Connection
from offline_service.store.sql.dialect import Dialect

__all__ = ["ReadCursor", "TableAccess"]

CHUNK = 1000  # rows fetched, or inserted, per round trip
_NAME = re.compile(r"[a-z_][a-z0-9_]*")

# The tables of the current schema, in each database's catalogue (``sqlite_%``: SQLite's own).
_LIST_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    "postgresql": "SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
}


class ReadCursor(Protocol):
    """A cursor that can hand over a large result a chunk at a time."""

    def execute(self, sql: str, /) -> Any: ...
    def fetchmany(self, size: int, /) -> Sequence[Any]: ...
    def close(self) -> None: ...


class TableAccess:
    """Raw rows of whole tables within the store's transaction. Table and column names are checked
    against the shape of the schema's own names before they are put into a statement."""

    def __init__(self, conn: Connection, dialect: Dialect, *, cursor: Callable[[], ReadCursor]) -> None:
        """``cursor``: makes a cursor that streams a result (SQLite's cursors do; on PostgreSQL a
        server-side cursor), so that a table is never held in memory whole."""
        if dialect.name not in _LIST_TABLES:
            raise ValueError(f"no table catalogue known for dialect {dialect.name!r}")
        self._c = conn
        self._dialect = dialect
        self._cursor = cursor

    def names(self) -> list[str]:
        """The tables the database holds (its live schema), sorted by name."""
        return sorted(str(row[0]) for row in self._c.execute(_LIST_TABLES[self._dialect.name]).fetchall())

    def columns(self, table: str) -> list[str]:
        """The table's columns, in the order the database declares them."""
        cursor: Any = self._c.execute(f"SELECT * FROM {_name(table)} WHERE 1 = 0")
        return [str(d[0]) for d in cursor.description]

    def count(self, table: str) -> int:
        """How many rows the table holds."""
        row = self._c.execute(f"SELECT COUNT(*) FROM {_name(table)}").fetchone()
        return int(row[0])

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every row of the table, ``columns`` in that order (no order between rows)."""
        listed = ", ".join(_name(c) for c in columns)
        cursor = self._cursor()
        try:
            cursor.execute(f"SELECT {listed} FROM {_name(table)}")
            while chunk := cursor.fetchmany(CHUNK):
                for row in chunk:
                    yield tuple(row)
        finally:
            cursor.close()

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert the rows as they are; returns how many."""
        listed = ", ".join(_name(c) for c in columns)
        sql = f"INSERT INTO {_name(table)} ({listed}) VALUES {self._dialect.in_list(len(columns))}"
        done = 0
        chunk: list[Sequence[Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                self._c.executemany(sql, chunk)
                done += len(chunk)
                chunk = []
        if chunk:
            self._c.executemany(sql, chunk)
            done += len(chunk)
        return done

    def advance_identities(self, table: str) -> None:
        """Move the table's generated keys past its largest value, after rows were inserted with
        their own: PostgreSQL's identity columns and sequences do not follow inserted values
        (SQLite's INTEGER PRIMARY KEY does, by itself)."""
        if self._dialect.name != "postgresql":
            return
        identities = self._c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = %s AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%')",
            (table,),
        ).fetchall()
        for (column,) in identities:
            # setval(seq, MAX, true): the next value is MAX + 1; an empty table restarts at 1.
            self._c.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({_name(column)}), 1),"
                f" MAX({_name(column)}) IS NOT NULL) FROM {_name(table)}",
                (table, column),
            )


def _name(name: str) -> str:
    """A table or column name of the schema, refused if it could be anything else."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a table or column name: {name!r}")
    return name
