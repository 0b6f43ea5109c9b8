"""Looking into the database from tests, through the store's public ``debug_query`` (never its
connection), so that the same tests can run against every backend."""

from __future__ import annotations

from typing import Any

from offline_service.store import Store

__all__ = ["execute", "rows", "table"]


def rows(store: Store, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one query."""
    return store.debug_query(sql, *params)


def execute(store: Store, sql: str, *params: object) -> None:
    """One statement for its effect (a test setting up a state no service offers); commits unless
    the thread is inside a transaction."""
    store.debug_query(sql, *params)


def table(store: Store, name: str) -> list[tuple[Any, ...]]:
    """Every row of a table, sorted, for "changes nothing" checks."""
    return sorted(store.debug_query(f"SELECT * FROM {name}"))
