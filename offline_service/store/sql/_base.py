"""What every domain's SQL part shares: the DB-API connection it is given, one-row reads, and
statements whose ``IN (?, ...)`` list grows with its arguments, built once per length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from offline_service.store.sql.dialect import Dialect

__all__ = ["Connection", "Cursor", "RowsInsert", "SQLPart", "SizedStatement", "groups", "together"]


class Cursor(Protocol):
    """The part of a DB-API cursor the statements use."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the statements use (sqlite3's; another driver's through a
    thin wrapper). Transactions are begun and ended by the store, never here."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def together(conn: Connection) -> AbstractContextManager[Any]:
    """A block whose statements are independent of each other's results, which may go to the
    database in one round trip: the connection's ``pipeline()`` if it has one (PostgreSQL's);
    otherwise (SQLite, in process) a block like any other. Read the cursors after the block."""
    pipeline = getattr(conn, "pipeline", None)
    return pipeline() if pipeline is not None else nullcontext()


class SQLPart:
    """Base of the per-domain mixins a backend's transaction class is composed of."""

    __slots__ = ()
    _c: Connection

    def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._c.execute(sql, args).fetchone()
        return row


class SizedStatement:
    """A statement with one list of any length: ``{in}`` in the template is replaced by
    ``(?, ?, ...)``, once per length, so a call never formats SQL (and the driver's statement
    cache sees the same text each time). With ``union``, the template is one item's SELECT
    instead, and the statement is ``count`` of them joined by ``UNION ALL`` (at most
    ``UNION_MAX``: SQLite's default bound on a compound SELECT is 500).

    ``union`` is for lookups on an index's second column: each branch is an equality on the whole
    index, an index lookup whatever the planner's statistics say. An ``IN`` list there may be run
    as a filter over every row matching the first column: PostgreSQL does so for a table grown
    since its last ANALYZE (measured: 2 ms instead of 0.03 ms for 8 fingerprints of a license
    with 6,000 activations; a join with a VALUES list fared no better)."""

    UNION_MAX = 200

    __slots__ = ("_built", "_dialect", "_template", "_union")

    def __init__(self, dialect: Dialect, template: str, *, union: bool = False) -> None:
        self._dialect = dialect
        self._template = dialect.sql(template)
        self._union = union
        self._built: dict[int, str] = {}

    def __call__(self, count: int) -> str:
        found = self._built.get(count)
        if found is None:
            if self._union:
                if count > self.UNION_MAX:
                    raise ValueError(f"at most {self.UNION_MAX} branches, not {count}")
                found = " UNION ALL ".join([self._template] * count)
            else:
                found = self._template.replace("{in}", self._dialect.in_list(count))
            self._built[count] = found
        return found


class RowsInsert:
    """An insert of many rows into one table, built once per dialect (``Dialect.insert_rows``):
    one statement with one array per column where the dialect has ``array_rows`` (PostgreSQL),
    otherwise an executemany of one row's statement."""

    __slots__ = ("_arrays", "_sql")

    def __init__(self, dialect: Dialect, table: str, columns: Sequence[tuple[str, str]]) -> None:
        self._arrays = dialect.array_rows
        self._sql = dialect.insert_rows(table, columns)

    @property
    def sql(self) -> str:
        return self._sql

    def run(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._arrays:
            conn.execute(self._sql, [list(column) for column in zip(*rows, strict=True)])
        else:
            conn.executemany(self._sql, rows)


def groups(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Slices of at most ``size``: keeps each statement under the database's bound on variables."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
