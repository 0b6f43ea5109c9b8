"""Moving a deployment to another database (``offline-service db copy``): every table of a current
schema, copied into an empty database of either backend in one transaction, checked before it
commits (row counts, a digest of every table's values, and a signing key for every product).

The checks that refuse come before anything is written; the copy itself is all or nothing, since
the target's write transaction commits only after the checks pass (a process killed mid-copy
leaves the target as empty as it found it, its schema aside)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.settings import Settings, database_scheme, shown_url
from offline_service.store.backends import open_store
from offline_service.store.base import Store
from offline_service.store.migrate import migrations
from offline_service.store.sql.tables import TableAccess
from offline_service.store.sqlite import DB_FILE

__all__ = [
    "TABLES",
    "CopyReport",
    "TableCopy",
    "check_source",
    "copy_database",
    "copy_url",
    "digest_rows",
    "shown_url",
]

# Every table of the schema but schema_migrations (each database keeps its own history), in an
# order where each table comes after those its foreign keys reference. A migration that adds a
# table adds it here too; tests/store/test_copy.py compares this list with both live schemas.
TABLES = (
    "accounts",
    "products",
    "organizations",
    "users",
    "licenses",
    "activations",
    "request_nonces",
    "trials",
    "audit_log",
    "user_groups",
    "group_members",
    "group_licenses",
    "credentials",
    "password_tokens",
    "login_failures",
    "releases",
    "release_files",
    "account_branding",
    "trial_limits",
    "batch_results",
    "mail_outbox",
    "webhook_endpoints",
    "webhook_deliveries",
    "admin_tokens",
    "admin_idempotency",
)
MIGRATIONS_TABLE = "schema_migrations"


@runtime_checkable
class MaintainedStore(Protocol):
    """A store that offers whole tables for maintenance (both backends do)."""

    def table_access(self, *, write: bool = False) -> AbstractContextManager[TableAccess]: ...


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table copied: its rows and the digest of their values, equal on both sides."""

    table: str
    rows: int
    digest: str


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What ``copy_database`` copied, table by table in ``TABLES`` order."""

    tables: tuple[TableCopy, ...]
    products: int  # products whose active signing key was loaded

    @property
    def rows(self) -> int:
        """Rows copied, over every table."""
        return sum(t.rows for t in self.tables)


class _Digest:
    """An order-free digest of a table's rows: the sum, modulo 2**256, of each row's SHA-256 over
    a canonical encoding of its values. Databases hand rows back in no fixed order (and sort text
    by different collations), so the digest must not depend on it."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0

    def feed(self, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            self.count += 1
            self.total = (self.total + int.from_bytes(hashlib.sha256(_canonical(row)).digest())) % 2**256
            yield row

    def hexdigest(self) -> str:
        return hashlib.sha256(b"%d:" % self.count + self.total.to_bytes(32)).hexdigest()


def digest_rows(rows: Iterable[tuple[Any, ...]]) -> str:
    """The digest ``db copy`` compares for a table's rows: order-free, and it tells apart values of
    different types (bytes are not text, 1 is not 1.0 nor "1", None is not "")."""
    digest = _Digest()
    for _ in digest.feed(rows):
        pass
    return digest.hexdigest()


def _canonical(row: tuple[Any, ...]) -> bytes:
    parts = []
    for value in row:
        if value is None:
            parts.append(b"n;")
        elif isinstance(value, bool):  # a bool is an int in Python; no column holds one
            raise TypeError(f"unexpected boolean value {value!r}")
        elif isinstance(value, int):
            parts.append(b"i%d;" % value)
        elif isinstance(value, float):
            parts.append(b"f" + value.hex().encode() + b";")
        elif isinstance(value, str):
            data = value.encode("utf-8", "surrogatepass")
            parts.append(b"s%d:" % len(data) + data)
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            parts.append(b"b%d:" % len(data) + data)
        else:
            raise TypeError(f"unexpected value of type {type(value).__name__}")
    return b"".join(parts)


def copy_database(source: Store, target: Store, keyring: Keyring) -> CopyReport:
    """Copy every table of ``source`` into the empty ``target`` in one transaction of the target,
    checked before it commits. Refused, with nothing written: a source whose schema is not current
    (``STORAGE_ERROR``), a product without a loadable active key in ``keyring`` (``KEY_ERROR``), a
    target with any row (``CONFLICT``). The target's schema is brought to current first."""
    products = check_source(source, keyring)
    src_store, dst_store = _maintained(source), _maintained(target)
    with dst_store.table_access() as dst:
        _refuse_occupied(dst)  # before the upgrade below, which would change an old target's schema
    target.upgrade()
    _refuse_newer(target, "target")
    copied = []
    with src_store.table_access() as src, dst_store.table_access(write=True) as dst:
        _check_tables(dst, "target")
        _refuse_occupied(dst)  # again, now under the writers' lock: nobody else fills it meanwhile
        for table in TABLES:
            columns = src.columns(table)
            if sorted(columns) != sorted(dst.columns(table)):
                raise OfflineServiceError(
                    Code.STORAGE_ERROR, f"table {table} has different columns in the source and the target"
                )
            digest = _Digest()
            try:
                dst.insert(table, columns, digest.feed(src.rows(table, columns)))
            except TypeError as exc:  # a value of no type a column of ours holds: copy nothing
                raise OfflineServiceError(Code.STORAGE_ERROR, f"table {table}: {exc}") from None
            dst.advance_identities(table)
            copied.append((table, columns, digest))
        report = []
        for table, columns, digest in copied:
            # Read back within the transaction: what the target holds, as its driver returns it.
            check = _Digest()
            for _ in check.feed(dst.rows(table, columns)):
                pass
            if check.count != digest.count or check.hexdigest() != digest.hexdigest():
                raise OfflineServiceError(
                    Code.STORAGE_ERROR,
                    f"table {table} differs after copying ({digest.count} rows read, {check.count}"
                    " in the target): nothing was copied",
                )
            report.append(TableCopy(table=table, rows=digest.count, digest=digest.hexdigest()))
    return CopyReport(tables=tuple(report), products=products)


def check_source(source: Store, keyring: Keyring) -> int:
    """The refusals about the source, made before a target is even opened: its schema is current
    and holds the tables ``TABLES`` names, and every product has a loadable active key in
    ``keyring``. Returns how many products there are."""
    pending = source.pending_migrations()
    if pending:
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"the source database schema is at version {source.schema_version}, this release needs"
            f" {pending[-1]}: run `offline-service db upgrade` on it first",
        )
    _refuse_newer(source, "source")
    with _maintained(source).table_access() as src:
        _check_tables(src, "source")
        return _check_keys(src, keyring)


def _refuse_newer(store: Store, side: str) -> None:
    """A schema a later release made: its tables may hold what this release would not copy."""
    latest = max(m.version for m in migrations("sqlite"))
    if store.schema_version > latest:
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"the {side} database schema is at version {store.schema_version}, newer than this"
            f" release's {latest}: copy with the release that made it",
        )


def _maintained(store: Store) -> MaintainedStore:
    if not isinstance(store, MaintainedStore):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{type(store).__name__} offers no table access")
    return store


def _check_tables(tables: TableAccess, side: str) -> None:
    """The live schema holds exactly the tables this release copies (a table ``TABLES`` lacked
    would be left behind without a word)."""
    live = set(tables.names()) - {MIGRATIONS_TABLE}
    if live != set(TABLES):
        unknown = ", ".join(sorted(live - set(TABLES))) or "none"
        missing = ", ".join(sorted(set(TABLES) - live)) or "none"
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"the {side} database's tables are not this release's (unknown: {unknown}; missing: {missing})",
        )


def _refuse_occupied(tables: TableAccess) -> None:
    """``CONFLICT`` if any table the database has, but its migration history, holds a row."""
    occupied = [
        f"{table} ({count})"
        for table in tables.names()
        if table != MIGRATIONS_TABLE and (count := tables.count(table))
    ]
    if occupied:
        raise OfflineServiceError(
            Code.CONFLICT,
            "the target database is not empty (rows in " + ", ".join(occupied) + "): db copy fills"
            " only an empty database; nothing was written",
        )


def _check_keys(tables: TableAccess, keyring: Keyring) -> int:
    """Every product of the data has an active signing key the keyring can load; returns how many
    products there are. The keys are not in the database: a copy without them could sign nothing."""
    lacking = []
    products = sorted(str(row[0]) for row in tables.rows("products", ["id"]))
    for product in products:
        try:
            keyring.signer(product)
        except OfflineServiceError as exc:
            lacking.append(f"{product} ({exc.message})")
        except OSError as exc:
            lacking.append(f"{product} (cannot read {exc.filename or keyring.directory}: {exc.strerror})")
    if lacking:
        raise OfflineServiceError(
            Code.KEY_ERROR,
            f"products without a loadable active signing key in {keyring.directory}: "
            + "; ".join(lacking)
            + " (name the deployment's keys directory with --keys); nothing was copied",
        )
    return len(products)


def copy_url(source_url: str, target_url: str, keyring: Keyring) -> CopyReport:
    """``copy_database`` between two database URLs as ``OFFLINE_SERVICE_DATABASE_URL`` takes them.
    A SQLite source must exist (nothing is created in its place); source and target must differ."""
    source_key, target_key = _identity(source_url), _identity(target_url)
    if source_key == target_key:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the source and the target are the same database")
    if source_key[0] == "sqlite" and not (Path(source_key[1]) / DB_FILE).is_file():
        folder = Path(source_key[1])
        if folder.is_file():  # the usual spelling elsewhere names the file itself
            raise OfflineServiceError(
                Code.NOT_FOUND,
                f"{folder} is a file: sqlite://DIR names the folder that holds {DB_FILE}"
                f" (sqlite://{folder.parent}) (the source)",
            )
        raise OfflineServiceError(Code.NOT_FOUND, f"no {DB_FILE} in {folder} (the source)")
    source = open_store(Settings(database_url=source_url), migrate=False)
    try:
        check_source(source, keyring)  # before the target is opened: opening SQLite makes its file
        target = open_store(Settings(database_url=target_url), migrate=False)
        try:
            return copy_database(source, target, keyring)
        finally:
            target.close()
    finally:
        source.close()


def _identity(url: str) -> tuple[str, str]:
    """Which database a URL names, so that two spellings of one are recognised."""
    scheme = database_scheme(url)
    rest = url.partition("://")[2]
    if scheme == "sqlite":
        return scheme, str(Path(rest).resolve())
    return scheme, rest
