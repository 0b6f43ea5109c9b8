"""What differs between the SQL of two databases, in one small object. The domain statements
(``store/sql/<domain>.py``) are written once against it and built once per dialect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Dialect"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """The few forms the statements need that databases spell differently (each backend module
    defines its own, e.g. ``store.sqlite.SQLITE``). Statements are written with ``?`` placeholders;
    ``sql()`` turns them into the database's own once, when they are built."""

    name: str
    placeholder: str  # "?" (qmark) or "%s" (format)
    # "Insert unless the row exists": SQLite's INSERT OR IGNORE, elsewhere ON CONFLICT DO NOTHING.
    insert_ignore_prefix: str
    insert_ignore_suffix: str
    # Null-safe "differs from": SQLite's IS NOT, standard SQL's IS DISTINCT FROM.
    is_not: str
    # Membership in a list bound as one parameter (any length, one statement), with the function
    # that turns the list into that parameter: SQLite reads a JSON array with json_each;
    # PostgreSQL would say "= ANY(?)" and bind the list itself.
    in_bound_list: str
    bound_list: Callable[[Sequence[str]], object]
    # At most this many values in one "IN (?, ?, ...)": under the database's bound on variables.
    max_list: int
    # A pattern match that ignores ASCII case: SQLite's LIKE does, PostgreSQL's ILIKE.
    like: str = "LIKE"
    # Many rows in one statement, one array per column (PostgreSQL's unnest): the driver binds and
    # the server plans and runs one statement instead of one per row. SQLite, in process, runs an
    # executemany of one prepared statement, which costs it less than building arrays would.
    array_rows: bool = False

    def sql(self, text: str) -> str:
        """A statement written with ``?`` placeholders, in this dialect's placeholder style."""
        if self.placeholder == "?":
            return text
        if "%" in self.placeholder:  # "format" style: a literal % must be doubled
            text = text.replace("%", "%%")
        return text.replace("?", self.placeholder)

    def in_list(self, count: int) -> str:
        """``(?, ?, ...)`` with ``count`` placeholders."""
        return "(" + ", ".join([self.placeholder] * count) + ")"

    def insert_rows(self, table: str, columns: Sequence[tuple[str, str]]) -> str:
        """An insert of many rows: with ``array_rows``, one statement taking one array per column
        (``columns`` pairs each name with its SQL type); otherwise one row's statement, for
        executemany (``RowsInsert`` passes the rows either way)."""
        names = ", ".join(name for name, _ in columns)
        if self.array_rows:
            arrays = ", ".join(f"{self.placeholder}::{kind}[]" for _, kind in columns)
            return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
        return f"INSERT INTO {table} ({names}) VALUES {self.in_list(len(columns))}"

    def insert_ignore(self, table: str, columns: str) -> str:
        """An insert that leaves an existing row as it is and raises nothing."""
        values = self.in_list(len(columns.split(",")))
        return f"{self.insert_ignore_prefix} {table} ({columns}) VALUES {values}{self.insert_ignore_suffix}"
