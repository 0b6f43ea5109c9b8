"""``offline-service db status|upgrade``: the schema of the database, checked and upgraded by an
operator. The server never migrates an existing database itself (see ``offline_service.health``)."""

from __future__ import annotations

from typing import Any

from offline_service import health
from offline_service.cli.context import EXIT_ERROR, EXIT_OK, Context, emit, verb
from offline_service.store import open_store

__all__ = ["register"]


def _status(ctx: Context) -> int:
    store = open_store(ctx.settings, migrate=False)
    try:
        status = health.schema_status(store)
    finally:
        store.close()
    data = {
        "schemaVersion": status.version,
        "latest": status.latest,
        "pending": status.pending,
        "current": status.current,
    }
    if status.current:
        text = f"schema version {status.version}: current"
    else:
        listed = ", ".join(str(v) for v in status.pending)
        text = f"{status.behind_message()}\npending migrations: {listed}"
    emit(ctx.args, data, text)
    return EXIT_OK if status.current else EXIT_ERROR


def _upgrade(ctx: Context) -> int:
    store = open_store(ctx.settings, migrate=False)
    try:
        before = store.schema_version
        applied = store.upgrade()
        after = store.schema_version
    finally:
        store.close()
    data: dict[str, Any] = {"applied": applied, "from": before, "schemaVersion": after}
    if applied:
        listed = ", ".join(str(v) for v in applied)
        text = f"applied migrations {listed}: schema version {before} -> {after}"
    else:
        text = f"schema version {after}: current, nothing to apply"
    emit(ctx.args, data, text)
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``db status|upgrade`` to the command's subparsers."""
    db = subparsers.add_parser("db", help="check and upgrade the database schema").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    verb(
        db,
        "status",
        _status,
        "show the schema version, the newest this release knows and the pending migrations"
        " (exit 0 when current, 1 when migrations are pending)",
    )
    verb(db, "upgrade", _upgrade, "apply the pending migrations and print which were applied")
