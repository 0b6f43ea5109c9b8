"""Backups of a SQLite deployment (``offline-service backup|restore``): the database, copied with
SQLite's online backup API while the server runs and writes, the signing keys, and a manifest
(format, schema version, time, accounts, each table's rows and digest, each file's SHA-256).

A backup is written into a hidden folder next to its destination and renamed into place once its
manifest is written, so a backup killed half-way leaves no folder that looks complete. A restore
checks every file against the manifest before it writes anything, and the restored database
against the manifest's counts and digests afterwards. PostgreSQL is refused: ``pg_dump`` takes its
backups (docs/DEPLOY.md, Backups)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from offline_service._files import fsync_dir, private_dir, read_limited
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.ids import is_id
from offline_service.settings import Settings, database_scheme
from offline_service.store.copy import MIGRATIONS_TABLE, digest_rows
from offline_service.store.migrate import migrations
from offline_service.store.sqlite import DB_FILE
from offline_service.webhooks.sealing import KEY_FILE as SEALING_KEY

__all__ = ["FORMAT", "MANIFEST", "Restored", "backup", "restore", "verify_backup"]

FORMAT = 1  # the manifest's "format"; a restore refuses any other
MANIFEST = "manifest.json"
KEYS = "keys"  # the keys' folder inside a backup
_MANIFEST_LIMIT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_PG_REFUSAL = (
    "backup and restore handle SQLite only: on PostgreSQL use pg_dump and pg_restore, and copy the"
    " keys directory (docs/DEPLOY.md, Backups)"
)


@dataclass(frozen=True, slots=True)
class Restored:
    """What ``restore`` did: the manifest it restored, where, and what it set aside (``--force``)."""

    manifest: dict[str, Any]
    database: Path
    keys: Path
    set_aside: tuple[Path, ...]
    latest: int  # the newest schema version this release knows

    @property
    def pending(self) -> bool:
        """The restored schema is older than this release's: ``db upgrade`` brings it up."""
        return int(self.manifest["schemaVersion"]) < self.latest


def _sqlite_dir(settings: Settings) -> Path:
    """The folder of the SQLite file the settings name; PostgreSQL is refused."""
    url = settings.database_url
    if url is None:
        return settings.data_dir
    if database_scheme(url) == "sqlite":
        return Path(url.partition("://")[2])
    raise OfflineServiceError(Code.INVALID_ARGUMENT, _PG_REFUSAL)


def _latest() -> int:
    return max(m.version for m in migrations("sqlite"))


# -- backup ---------------------------------------------------------------------------------------


def backup(settings: Settings, dest: Path, *, now: int) -> dict[str, Any]:
    """Back the deployment of ``settings`` up into ``dest`` (a folder that must not exist, or be
    empty); returns the manifest. Consistent while other processes write: the database is copied
    in one step of SQLite's backup API, which reads one snapshot."""
    source = _sqlite_dir(settings) / DB_FILE
    if not source.is_file():
        raise OfflineServiceError(Code.NOT_FOUND, f"no database {source} to back up")
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise OfflineServiceError(
            Code.CONFLICT, f"{dest} exists and is not an empty folder: a backup goes into a new one"
        )
    private_dir(dest.parent, what="backup's parent folder")
    work = dest.parent / f".{dest.name}.partial-{secrets.token_hex(6)}"
    work.mkdir(mode=0o700)
    try:
        _copy_database(source, work / DB_FILE)
        files = {DB_FILE: _file_entry(work / DB_FILE)}
        described = _describe(work / DB_FILE)
        _copy_keys(settings.keys_dir, work / KEYS, files)
        # The products of the copied data must be signable with the copied keys.
        _check_keys(described["products"], Keyring(work / KEYS, passphrase=settings.key_passphrase))
        manifest = {
            "format": FORMAT,
            "schemaVersion": described["schemaVersion"],
            "createdAt": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accounts": described["accounts"],
            "tables": described["tables"],
            "files": dict(sorted(files.items())),
        }
        _write_new(work / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        fsync_dir(work)
        os.rename(work, dest)  # onto an empty folder too (POSIX rename replaces one)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _copy_database(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from the start
    os.close(fd)
    try:
        src = sqlite3.connect(source, timeout=60)
        try:
            dst = sqlite3.connect(target)
            try:
                # pages=-1: every page in one step, under one read snapshot. In WAL mode the
                # writers go on meanwhile; a copy made in several steps would restart on each write.
                src.backup(dst, pages=-1)
                # One self-contained file: no -wal beside it (the store turns WAL on when it opens).
                dst.execute("PRAGMA journal_mode = DELETE")
                check = dst.execute("PRAGMA integrity_check").fetchall()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot back up {source}: {exc}") from None
    if check != [("ok",)]:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"the copy of {source} fails its integrity check")
    with open(target, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that writes nothing, not even a -wal or -shm beside the file."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _describe(path: Path) -> dict[str, Any]:
    """Schema version, accounts, products, and each table's rows and digest, of a database file."""
    try:
        with _read_only(path) as conn:
            version = int(conn.execute(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}").fetchone()[0] or 0)
            tables = {}
            for (table,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                " ORDER BY name"
            ).fetchall():
                count = int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
                digest = digest_rows(conn.execute(f'SELECT * FROM "{table}"'))  # streamed
                tables[table] = {"rows": count, "digest": digest}
            accounts = [
                {"id": i, "alias": a}
                for i, a in conn.execute("SELECT id, alias FROM accounts ORDER BY alias")
            ]
            products = sorted(str(row[0]) for row in conn.execute("SELECT id FROM products"))
    except sqlite3.Error as exc:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot read {path}: {exc}") from None
    return {"schemaVersion": version, "tables": tables, "accounts": accounts, "products": products}


def _copy_keys(keys_dir: Path, target: Path, files: dict[str, dict[str, Any]]) -> None:
    """Every product's folder of the keyring (what the keyring reads: folders named as product ids,
    their plain files), and the webhook secrets' sealing key, with modes 0700 and 0600."""
    target.mkdir(mode=0o700)
    if not keys_dir.is_dir():
        return
    sealing = keys_dir / SEALING_KEY
    if sealing.is_file() and not sealing.is_symlink():
        _write_new(target / SEALING_KEY, sealing.read_bytes())
        files[f"{KEYS}/{SEALING_KEY}"] = _file_entry(target / SEALING_KEY)
    for folder in sorted(keys_dir.iterdir()):
        if not (is_id(folder.name, "product") and folder.is_dir() and not folder.is_symlink()):
            continue
        (target / folder.name).mkdir(mode=0o700)
        for item in sorted(folder.iterdir()):
            # Rotation's temporary files start with a dot; the keyring reads none of them.
            if item.name.startswith(".") or item.is_symlink() or not item.is_file():
                continue
            copy = target / folder.name / item.name
            _write_new(copy, item.read_bytes())
            files[f"{KEYS}/{folder.name}/{item.name}"] = _file_entry(copy)
        fsync_dir(target / folder.name)
    fsync_dir(target)


def _check_keys(products: list[str], keyring: Keyring) -> None:
    lacking = []
    for product in products:
        try:
            keyring.signer(product)
        except OfflineServiceError as exc:
            lacking.append(f"{product} ({exc.message})")
    if lacking:
        raise OfflineServiceError(
            Code.KEY_ERROR,
            "products without a loadable active signing key in the keys directory: "
            + "; ".join(lacking)
            + " (name the deployment's keys directory with --keys); no backup was made",
        )


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


# -- restore --------------------------------------------------------------------------------------


def _bad(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.BAD_BACKUP, message + ": nothing was restored")


def verify_backup(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src`` once every file matches it (size and SHA-256), no file
    is missing or unlisted, and the database passes its integrity check; else ``BAD_BACKUP``."""
    src = Path(src)
    if not src.is_dir():
        raise OfflineServiceError(Code.NOT_FOUND, f"no backup folder {src}")
    try:
        manifest = json.loads(read_limited(src / MANIFEST, _MANIFEST_LIMIT, what="manifest"))
    except OfflineServiceError as exc:
        raise _bad(f"{src} holds no readable {MANIFEST} ({exc.message})") from None
    except ValueError:
        raise _bad(f"{src / MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(f"{src / MANIFEST} is not a backup manifest of format {FORMAT}")
    files, tables = manifest.get("files"), manifest.get("tables")
    version = manifest.get("schemaVersion")
    if not (
        isinstance(files, dict)
        and isinstance(tables, dict)
        and type(version) is int
        and isinstance(manifest.get("createdAt"), str)
        and isinstance(manifest.get("accounts"), list)
    ):
        raise _bad(f"{src / MANIFEST} lacks its files, tables, schema version, time or accounts")
    if DB_FILE not in files:
        raise _bad(f"{src / MANIFEST} lists no database")
    present = {
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.name != MANIFEST or p.parent != src
        if not p.is_dir() or p.is_symlink()
    }
    for name in sorted(set(files) | present):
        if name not in files:
            raise _bad(f"{name!r} is in the backup but not in its manifest")
        entry = files[name]
        path = src / name
        if not _safe_name(name) or not isinstance(entry, dict):
            raise _bad(f"the manifest names {name!r}, which is no file of a backup")
        # No link anywhere on the way: a linked folder would let the manifest name any file.
        links = [src / KEYS, path.parent] if name != DB_FILE else []
        if name not in present or any(p.is_symlink() for p in (*links, path)) or not path.is_file():
            raise _bad(f"{name!r} is missing from the backup")
        if _file_entry(path) != {"size": entry.get("size"), "sha256": entry.get("sha256")}:
            raise _bad(f"{name!r} does not match its size or SHA-256 in the manifest")
    try:
        with _read_only(src / DB_FILE) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        raise _bad(f"the backup's database cannot be read ({exc})") from None
    if check != [("ok",)]:
        raise _bad("the backup's database fails its integrity check")
    try:
        described = _describe(src / DB_FILE)
    except OfflineServiceError as exc:  # a SQLite file, but not one of this service
        raise _bad(f"the backup's database is not the service's ({exc.message})") from None
    if described["tables"] != tables or described["schemaVersion"] != version:
        raise _bad(
            "the backup's database does not match the row counts, digests or schema version of its manifest"
        )
    return manifest


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    if name in (DB_FILE, f"{KEYS}/{SEALING_KEY}"):
        return True
    return (
        len(parts) == 3
        and parts[0] == KEYS
        and is_id(parts[1], "product")
        and parts[2] not in ("", ".", "..")
        and not parts[2].startswith(".")
    )


def restore(settings: Settings, src: Path, *, force: bool = False, now: int) -> Restored:
    """Restore the backup in ``src`` into the data and keys directories of ``settings``. Refused
    with nothing changed: a backup that fails ``verify_backup`` (``BAD_BACKUP``), one of a newer
    schema (``STORAGE_ERROR``), a database with rows or a keys directory with products
    (``CONFLICT``) unless ``force``, which moves them aside (into ``before-restore-TIME``) first."""
    data_dir = _sqlite_dir(settings)
    keys_dir = settings.keys_dir
    manifest = verify_backup(Path(src))
    latest = _latest()
    if manifest["schemaVersion"] > latest:
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"the backup's schema is at version {manifest['schemaVersion']}, newer than this"
            f" release's {latest}: restore it with the release that made it",
        )
    database = data_dir / DB_FILE
    occupied = [p.name for p in _key_entries(keys_dir)]
    # With --force the database is set aside whatever it holds (even one that no longer opens).
    in_use = _rows(database) if database.exists() and not force else 0
    if (in_use or occupied) and not force:
        what = []
        if in_use:
            what.append(f"the database {database} holds {in_use} rows")
        if occupied:
            products = len([name for name in occupied if name != SEALING_KEY])
            sealing = " and the webhook secrets' sealing key" if SEALING_KEY in occupied else ""
            what.append(f"the keys directory {keys_dir} holds keys of {products} products{sealing}")
        raise OfflineServiceError(
            Code.CONFLICT,
            "; ".join(what) + ": restore goes into an empty data folder (--force sets them aside"
            " first); nothing was restored",
        )
    private_dir(data_dir, what="data directory")
    private_dir(keys_dir, what="keys directory")
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    token = secrets.token_hex(4)
    # Everything is first written beside its place, then renamed into it.
    staged_db = data_dir / f".{DB_FILE}.restore-{token}"
    staged_keys = keys_dir / f".restore-{token}"
    set_aside: list[Path] = []
    try:
        _write_new(staged_db, b"")
        os.chmod(staged_db, 0o600)
        with open(Path(src) / DB_FILE, "rb") as fin, open(staged_db, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
        staged_keys.mkdir(mode=0o700)
        for name in manifest["files"]:
            if name == DB_FILE:
                continue
            # KEYS/<product>/<file> or KEYS/<sealing key> (_safe_name let nothing else through)
            dest = staged_keys / name.removeprefix(f"{KEYS}/")
            dest.parent.mkdir(mode=0o700, exist_ok=True)
            _write_new(dest, (Path(src) / name).read_bytes())
        # The point of no return: set aside what was there, then move the restored files in.
        old = [p for p in (database, *(data_dir / f"{DB_FILE}{s}" for s in ("-wal", "-shm"))) if p.exists()]
        if old:
            aside = data_dir / f"before-restore-{stamp}-{token}"
            aside.mkdir(mode=0o700)
            set_aside.append(aside)
            for path in old:
                os.rename(path, aside / path.name)
        old_keys = _key_entries(keys_dir)
        if old_keys:
            # A dot folder inside the keys directory: the keyring reads none, and it stays on the
            # same file system (the keys directory may be a mount).
            aside = keys_dir / f".before-restore-{stamp}-{token}"
            aside.mkdir(mode=0o700)
            set_aside.append(aside)
            for path in old_keys:
                os.rename(path, aside / path.name)
        os.rename(staged_db, database)
        fsync_dir(data_dir)
        for folder in sorted(staged_keys.iterdir()):
            if folder.is_dir():
                fsync_dir(folder)
            os.rename(folder, keys_dir / folder.name)
        staged_keys.rmdir()
        fsync_dir(keys_dir)
    except OSError as exc:
        if not set_aside:
            raise  # nothing was moved: the command's usual STORAGE_ERROR
        kept = ", ".join(str(p) for p in set_aside)
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"the restore failed half-way ({exc.filename or ''}: {exc.strerror or exc}); what was"
            f" there before is in {kept}: move it back, or restore again with --force",
        ) from None
    finally:
        staged_db.unlink(missing_ok=True)
        shutil.rmtree(staged_keys, ignore_errors=True)
    described = _describe(database)
    if described["tables"] != manifest["tables"]:
        differ = sorted(
            t
            for t in set(described["tables"]) | set(manifest["tables"])
            if described["tables"].get(t) != manifest["tables"].get(t)
        )
        raise OfflineServiceError(
            Code.STORAGE_ERROR, f"the restored database differs from the manifest in {', '.join(differ)}"
        )
    return Restored(manifest, database, keys_dir, tuple(set_aside), latest)


def _key_entries(keys_dir: Path) -> list[Path]:
    """The products' folders of a keys directory, and its sealing key (restored or set aside with them)."""
    if not keys_dir.is_dir():
        return []
    return sorted(
        p
        for p in keys_dir.iterdir()
        if (is_id(p.name, "product") and p.is_dir()) or (p.name == SEALING_KEY and p.is_file())
    )


def _rows(database: Path) -> int:
    """Rows in every table but the migration history (a folder that ``serve`` made holds none)."""
    try:
        conn = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ).fetchall()
            return sum(
                int(conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0])
                for (n,) in names
                if n != MIGRATIONS_TABLE
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot read {database}: {exc}") from None
