"""``offline-service backup DEST`` and ``restore SRC``: a SQLite deployment's database and signing
keys, with a manifest that a restore checks first (``store/backup.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_service.cli.context import EXIT_OK, Context, emit, now, verb
from offline_service.store.backup import backup, restore

__all__ = ["register"]


def _backup(ctx: Context) -> int:
    dest = Path(ctx.args.dest)
    manifest = backup(ctx.settings, dest, now=now())
    rows = sum(t["rows"] for t in manifest["tables"].values())
    keys = sum(1 for name in manifest["files"] if name.endswith(".json"))
    aliases = ", ".join(a["alias"] for a in manifest["accounts"]) or "none"
    text = (
        f"backed up into {dest}: schema version {manifest['schemaVersion']}, {len(manifest['tables'])}"
        f" tables, {rows} rows, {keys} signing key files; accounts: {aliases}"
    )
    emit(ctx.args, {"backup": str(dest), **manifest}, text)
    return EXIT_OK


def _restore(ctx: Context) -> int:
    done = restore(ctx.settings, Path(ctx.args.src), force=ctx.args.force, now=now())
    manifest = done.manifest
    lines = [
        f"restored the backup of {manifest['createdAt']} into {done.database} and {done.keys}:"
        f" checksums, row counts and digests match its manifest"
    ]
    lines += [f"set aside: {p}" for p in done.set_aside]
    if done.pending:
        lines.append(
            f"the schema is at version {manifest['schemaVersion']}, this release needs {done.latest}:"
            " run `offline-service db upgrade` before `serve`"
        )
    data: dict[str, Any] = {
        "database": str(done.database),
        "keys": str(done.keys),
        "setAside": [str(p) for p in done.set_aside],
        "schemaVersion": manifest["schemaVersion"],
        "latest": done.latest,
        "createdAt": manifest["createdAt"],
        "tables": manifest["tables"],
    }
    emit(ctx.args, data, "\n".join(lines))
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``backup`` and ``restore`` to the command's subparsers."""
    p = verb(
        subparsers,
        "backup",
        _backup,
        "back up the SQLite database (online, while the server runs) and the signing keys into a new"
        " folder, with a manifest of checksums; PostgreSQL: use pg_dump (docs/OPERATIONS.md)",
    )
    p.add_argument("dest", metavar="DEST", help="the folder to create (it must not exist, or be empty)")
    p = verb(
        subparsers,
        "restore",
        _restore,
        "check a backup against its manifest, then restore its database and signing keys into the"
        " data and keys directories (refused if they hold data, unless --force)",
    )
    p.add_argument("src", metavar="SRC", help="the backup's folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="restore over a database with rows or keys of products: they are moved aside first",
    )
