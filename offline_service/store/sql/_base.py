"""What every domain's SQL part shares: the DB-API connection it is given, one-row reads, and
statements whose ``IN (?, ...)`` list grows with its arguments, built once per length."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from offline_service.store.sql.dialect import Dialect

__all__ = [
    "Connection",
    "Cursor",
    "Lookup",
    "RowsInsert",
    "SQLPart",
    "SizedStatement",
    "groups",
    "text_map_json",
    "together",
]

_quote = json.encoder.encode_basestring_ascii  # a JSON string literal, as json.dumps writes it; in C


def text_map_json(items: Mapping[str, str]) -> str:
    """``json.dumps(dict(items))`` of a text-to-text mapping (a request's metadata, an audit
    entry's detail), the same text, written directly: two per request on the hot path, and
    json.dumps builds an encoder on every call."""
    if not items:
        return "{}"
    return "{" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in items.items()) + "}"


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
    """A statement with one ``IN`` list of any length: ``{in}`` in the template is replaced by
    ``(?, ?, ...)``, once per length, so a call never formats SQL (and the driver's statement
    cache sees the same text each time)."""

    __slots__ = ("_built", "_dialect", "_template")

    def __init__(self, dialect: Dialect, template: str) -> None:
        self._dialect = dialect
        self._template = dialect.sql(template)
        self._built: dict[int, str] = {}

    def __call__(self, count: int) -> str:
        found = self._built.get(count)
        if found is None:
            found = self._built[count] = self._template.replace("{in}", self._dialect.in_list(count))
        return found


class Lookup:
    """The rows of many keys at once, each key an equality on a whole index, so that each is an
    index lookup whatever the planner's statistics say. (An ``IN`` list on an index's second
    column may be run as a filter over every row matching the first: PostgreSQL does so for a
    table grown since its last ANALYZE; measured, 2 ms instead of 0.03-0.07 ms for 8 fingerprints
    of a license with 6,000 activations.)

    ``template`` is the SELECT of one key, whose parts are ``{k0}``, ``{k1}``...; ``types`` their
    SQL types. With ``array_rows`` (PostgreSQL): one statement for any number of keys, one array
    per part, ``unnest`` joined LATERAL to the template (one plan, a loop of lookups; ``OFFSET 0``
    keeps the planner from merging the template into the join, where it turned the fingerprint
    into a join filter over all of a license's activations: 18 ms for 8 keys at 9,000). Otherwise
    (SQLite): the template once per key joined by ``UNION ALL``, at most ``UNION_MAX`` per
    statement (SQLite's default bound on a compound SELECT is 500), built once per length."""

    UNION_MAX = 200

    __slots__ = ("_arrays", "_built", "_one")

    def __init__(self, dialect: Dialect, template: str, types: Sequence[str]) -> None:
        parts = [f"k{i}" for i in range(len(types))]
        self._arrays: str | None = None
        self._one = ""
        if dialect.array_rows:
            arrays = ", ".join(f"?::{kind}[]" for kind in types)
            one = template.format(**{p: f"f.{p}" for p in parts})
            self._arrays = dialect.sql(
                f"SELECT x.* FROM unnest({arrays}) AS f({', '.join(parts)}) CROSS JOIN LATERAL ({one} OFFSET 0) AS x"
            )
        else:
            self._one = dialect.sql(template.format(**{p: "?" for p in parts}))
        self._built: dict[int, str] = {}

    @property
    def sql(self) -> str:
        """The statement (of one key, without ``array_rows``)."""
        return self._arrays or self._one

    def statements(self, keys: Sequence[Sequence[Any]]) -> list[tuple[str, list[Any]]]:
        """The statements and their parameters that find the rows of ``keys``."""
        if not keys:
            return []
        if self._arrays is not None:
            return [(self._arrays, _arrays(keys))]
        out = []
        for group in groups(keys, self.UNION_MAX):
            sql = self._built.get(len(group))
            if sql is None:
                sql = self._built[len(group)] = " UNION ALL ".join([self._one] * len(group))
            out.append((sql, [v for key in group for v in key]))
        return out


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
            conn.execute(self._sql, _arrays(rows))
        else:
            conn.executemany(self._sql, rows)


def _arrays(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one array per column, the parameters of a statement that unnests them."""
    return [list(column) for column in zip(*rows, strict=True)]


def groups(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Slices of at most ``size``: keeps each statement under the database's bound on variables."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
