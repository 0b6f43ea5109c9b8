"""``offline-service db status|upgrade|copy``: the schema of the database, checked and upgraded by an
operator (the server never migrates an existing database itself, see ``offline_service.health``),
and a deployment moved to another database (``store/copy.py``)."""

from __future__ import annotations

from typing import Any

from offline_service import health
from offline_service.cli.context import EXIT_ERROR, EXIT_OK, Context, emit, verb
from offline_service.store.copy import copy_url, shown_url

__all__ = ["register"]


def _status(ctx: Context) -> int:
    store = ctx.open_store(migrate=False)
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
    store = ctx.open_store(migrate=False)
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


def _copy(ctx: Context) -> int:
    a = ctx.args
    report = copy_url(a.source, a.target, ctx.keyring)
    source, target = shown_url(a.source), shown_url(a.target)
    data = {
        "from": source,
        "to": target,
        "rows": report.rows,
        "products": report.products,
        "tables": [{"table": t.table, "rows": t.rows, "digest": t.digest} for t in report.tables],
    }
    width = max(len(t.table) for t in report.tables)
    lines = [f"copied {source} -> {target}", f"{'table':<{width}}  {'rows':>9}  digest (sha256)"]
    lines += [f"{t.table:<{width}}  {t.rows:>9}  {t.digest[:16]}" for t in report.tables]
    lines.append(
        f"{len(report.tables)} tables, {report.rows} rows: counts and digests equal on both sides;"
        f" {report.products} product{'' if report.products == 1 else 's'}, each with a loadable active"
        f" signing key in {ctx.keyring.directory}"
    )
    emit(a, data, "\n".join(lines))
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``db status|upgrade|copy`` to the command's subparsers."""
    db = subparsers.add_parser("db", help="check, upgrade and copy the database").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    verb(
        db,
        "status",
        _status,
        "show the schema version, the newest this release knows and the pending migrations"
        " (exit 0 when current, 1 when migrations are pending)",
    )
    # Upgrading from nothing is creating: the one verb besides init that may make the database.
    verb(db, "upgrade", _upgrade, "apply the pending migrations and print which were applied").set_defaults(
        creates=True
    )
    p = verb(
        db,
        "copy",
        _copy,
        "copy every table of a deployment's database into an empty one (SQLite to PostgreSQL or back),"
        " in one transaction, checked (row counts, digests, signing keys) before it commits",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the database to copy: sqlite:///DIR (the folder holding the SQLite file) or postgresql://...",
    )
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="the empty database to fill (its schema is created or upgraded first)",
    )
