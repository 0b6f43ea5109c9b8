"""The embedded SQLite backend: WAL mode, writers serialised with BEGIN IMMEDIATE."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from ..errors import Code, OfflineServiceError
from ..models import Account, Activation, AuditEntry, License, LicenseStatus, Product, Trial

__all__ = ["SQLiteStore", "key_hash"]

DB_FILE = "offline-service.sqlite3"
BUSY_TIMEOUT_MS = 60_000


def key_hash(key: str) -> bytes:
    """Licenses are looked up by a hash of the key, so lookups never compare key text directly."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("offline_service").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


_LICENSE_COLS = (
    "id, account_id, product_id, key, allowed_activations, allowed_deactivations, status, created_at,"
    " expires_at, validity_days, owner, metadata, used_activations, used_deactivations"
)
_ACTIVATION_COLS = (
    "id, license_id, product_id, fingerprint, machine_key, machine_key_thumbprint, created_at,"
    " hostname, os, app_version, metadata, deactivated_at"
)
_PRODUCT_COLS = "id, account_id, name, trials_enabled, trial_days, max_response_validity, created_at"
_TRIAL_COLS = (
    "id, product_id, fingerprint, machine_key_thumbprint, created_at, ends_at, hostname, os, app_version"
)


def _license(row: tuple) -> License:  # type: ignore[type-arg]
    return License(
        id=row[0],
        account_id=row[1],
        product_id=row[2],
        key=row[3],
        allowed_activations=row[4],
        allowed_deactivations=row[5],
        status=LicenseStatus(row[6]),
        created_at=row[7],
        expires_at=row[8],
        validity_days=row[9],
        owner=row[10],
        metadata=json.loads(row[11]),
        used_activations=row[12],
        used_deactivations=row[13],
    )


def _activation(row: tuple) -> Activation:  # type: ignore[type-arg]
    return Activation(
        id=row[0],
        license_id=row[1],
        product_id=row[2],
        fingerprint=row[3],
        machine_key=row[4],
        machine_key_thumbprint=row[5],
        created_at=row[6],
        hostname=row[7],
        os=row[8],
        app_version=row[9],
        metadata=json.loads(row[10]),
        deactivated_at=row[11],
    )


def _product(row: tuple) -> Product:  # type: ignore[type-arg]
    return Product(
        id=row[0],
        account_id=row[1],
        name=row[2],
        trials_enabled=bool(row[3]),
        trial_days=row[4],
        max_response_validity=row[5],
        created_at=row[6],
    )


class _Tx:
    """A Transaction over one sqlite3 connection."""

    __slots__ = ("_c",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _one(self, sql: str, args: tuple) -> tuple | None:  # type: ignore[type-arg]
        row: tuple | None = self._c.execute(sql, args).fetchone()  # type: ignore[type-arg]
        return row

    def account_by_alias(self, alias: str) -> Account | None:
        row = self._one("SELECT id, alias, name, created_at FROM accounts WHERE alias = ?", (alias,))
        return Account(*row) if row else None

    def insert_account(self, account: Account) -> None:
        self._c.execute(
            "INSERT INTO accounts (id, alias, name, created_at) VALUES (?, ?, ?, ?)",
            (account.id, account.alias, account.name, account.created_at),
        )

    def product(self, account_id: str, product_id: str) -> Product | None:
        row = self._one(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ? AND account_id = ?",
            (product_id, account_id),
        )
        return _product(row) if row else None

    def products(self, account_id: str) -> Sequence[Product]:
        rows = self._c.execute(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE account_id = ? ORDER BY created_at, id",
            (account_id,),
        )
        return [_product(r) for r in rows]

    def insert_product(self, product: Product) -> None:
        self._c.execute(
            f"INSERT INTO products ({_PRODUCT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                product.id,
                product.account_id,
                product.name,
                int(product.trials_enabled),
                product.trial_days,
                product.max_response_validity,
                product.created_at,
            ),
        )

    def license_by_key(self, account_id: str, key: str) -> License | None:
        row = self._one(
            f"SELECT {_LICENSE_COLS} FROM licenses WHERE key_hash = ? AND account_id = ?",
            (key_hash(key), account_id),
        )
        return _license(row) if row else None

    def license_by_id(self, account_id: str, license_id: str) -> License | None:
        row = self._one(
            f"SELECT {_LICENSE_COLS} FROM licenses WHERE id = ? AND account_id = ?",
            (license_id, account_id),
        )
        return _license(row) if row else None

    def licenses(self, account_id: str, product_id: str | None = None) -> Sequence[License]:
        sql = f"SELECT {_LICENSE_COLS} FROM licenses WHERE account_id = ?"
        args: tuple[str, ...] = (account_id,)
        if product_id is not None:
            sql += " AND product_id = ?"
            args += (product_id,)
        return [_license(r) for r in self._c.execute(sql + " ORDER BY created_at, id", args)]

    def insert_license(self, license: License) -> None:
        self._c.execute(
            f"INSERT INTO licenses ({_LICENSE_COLS}, key_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                license.id,
                license.account_id,
                license.product_id,
                license.key,
                license.allowed_activations,
                license.allowed_deactivations,
                license.status.value,
                license.created_at,
                license.expires_at,
                license.validity_days,
                license.owner,
                json.dumps(dict(license.metadata)),
                license.used_activations,
                license.used_deactivations,
                key_hash(license.key),
            ),
        )

    def set_license_status(self, license_id: str, status: LicenseStatus) -> None:
        self._c.execute("UPDATE licenses SET status = ? WHERE id = ?", (status.value, license_id))

    def update_license_usage(
        self,
        license_id: str,
        *,
        used_activations: int,
        used_deactivations: int,
        expires_at: int | None,
    ) -> None:
        self._c.execute(
            "UPDATE licenses SET used_activations = ?, used_deactivations = ?, expires_at = ? WHERE id = ?",
            (used_activations, used_deactivations, expires_at, license_id),
        )

    def live_activation(self, license_id: str, fingerprint: str) -> Activation | None:
        row = self._one(
            f"SELECT {_ACTIVATION_COLS} FROM activations"
            " WHERE license_id = ? AND fingerprint = ? AND deactivated_at IS NULL",
            (license_id, fingerprint),
        )
        return _activation(row) if row else None

    def activation(self, product_id: str, activation_id: str) -> Activation | None:
        row = self._one(
            f"SELECT {_ACTIVATION_COLS} FROM activations WHERE id = ? AND product_id = ?",
            (activation_id, product_id),
        )
        return _activation(row) if row else None

    def activations(self, license_id: str) -> Sequence[Activation]:
        rows = self._c.execute(
            f"SELECT {_ACTIVATION_COLS} FROM activations WHERE license_id = ? ORDER BY created_at, id",
            (license_id,),
        )
        return [_activation(r) for r in rows]

    def insert_activation(self, a: Activation) -> None:
        self._c.execute(
            f"INSERT INTO activations ({_ACTIVATION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.id,
                a.license_id,
                a.product_id,
                a.fingerprint,
                a.machine_key,
                a.machine_key_thumbprint,
                a.created_at,
                a.hostname,
                a.os,
                a.app_version,
                json.dumps(dict(a.metadata)),
                a.deactivated_at,
            ),
        )

    def rebind_activation(self, activation_id: str, machine_key: bytes, thumbprint: str) -> None:
        self._c.execute(
            "UPDATE activations SET machine_key = ?, machine_key_thumbprint = ? WHERE id = ?",
            (machine_key, thumbprint, activation_id),
        )

    def deactivate(self, activation_id: str, at: int) -> None:
        self._c.execute("UPDATE activations SET deactivated_at = ? WHERE id = ?", (at, activation_id))

    def nonce_activation(self, product_id: str, nonce: str) -> str | None:
        row = self._one(
            "SELECT activation_id FROM request_nonces WHERE product_id = ? AND nonce = ?",
            (product_id, nonce),
        )
        return row[0] if row else None

    def record_nonce(self, product_id: str, nonce: str, kind: str, activation_id: str, at: int) -> None:
        self._c.execute(
            "INSERT INTO request_nonces (product_id, nonce, kind, activation_id, processed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (product_id, nonce, kind, activation_id, at),
        )

    def trial(self, product_id: str, fingerprint: str) -> Trial | None:
        row = self._one(
            f"SELECT {_TRIAL_COLS} FROM trials WHERE product_id = ? AND fingerprint = ?",
            (product_id, fingerprint),
        )
        return Trial(*row) if row else None

    def insert_trial(self, t: Trial) -> None:
        self._c.execute(
            f"INSERT INTO trials ({_TRIAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.id,
                t.product_id,
                t.fingerprint,
                t.machine_key_thumbprint,
                t.created_at,
                t.ends_at,
                t.hostname,
                t.os,
                t.app_version,
            ),
        )

    def audit(self, e: AuditEntry) -> None:
        self._c.execute(
            "INSERT INTO audit_log (at, account_id, actor, action, code, product_id, license_id,"
            " activation_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                e.at,
                e.account_id,
                e.actor,
                e.action,
                e.code,
                e.product_id,
                e.license_id,
                e.activation_id,
                json.dumps(dict(e.detail)) if e.detail else "{}",
            ),
        )

    def audit_entries(self, account_id: str, limit: int = 100) -> Sequence[AuditEntry]:
        rows = self._c.execute(
            "SELECT at, actor, action, code, account_id, product_id, license_id, activation_id, detail"
            " FROM audit_log WHERE account_id = ? ORDER BY id DESC LIMIT ?",
            (account_id, limit),
        )
        return [
            AuditEntry(
                at=r[0],
                actor=r[1],
                action=r[2],
                code=r[3],
                account_id=r[4],
                product_id=r[5],
                license_id=r[6],
                activation_id=r[7],
                detail=json.loads(r[8]),
            )
            for r in rows
        ]


class SQLiteStore:
    """Store backed by one SQLite file in ``data_dir``; safe to share between processes."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.data_dir / DB_FILE
        try:
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the
            # last commits, which batch re-runs recover idempotently.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot open database: {exc}") from None

    def _migrate(self) -> None:
        c = self._conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)"
        )
        for version, sql in _migrations():
            c.execute("BEGIN IMMEDIATE")
            try:
                if c.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    c.execute("COMMIT")
                    continue
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s', 'now'))", (version,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def write(self) -> Iterator[_Tx]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so the reads that
        decide a limit and the writes that consume it can never interleave with another writer."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database busy: {exc}") from None
        try:
            yield _Tx(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise OfflineServiceError(Code.STORAGE_ERROR, f"commit failed: {exc}") from None

    @contextmanager
    def read(self) -> Iterator[_Tx]:
        """A read-only snapshot. Inside another transaction it simply reads within that one."""
        if self._conn.in_transaction:
            yield _Tx(self._conn)
            return
        self._conn.execute("BEGIN")
        try:
            yield _Tx(self._conn)
        finally:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
