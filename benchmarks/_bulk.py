"""Fresh activation requests, and SQLite databases bulk-loaded to a million licenses and activations.

The schema is the project's own: ``open_store`` runs the migrations, the service makes one account,
product, license and activation, and those rows are the templates of the bulk rows, written with
``executemany`` straight into the database file (the service's own inserts would take hours for a
million). Each bulk license holds one live activation, with the nonce and audit row an accepted
activation leaves behind. Ids are time-ordered in the past, as a database grown over a year's use
would hold them, so the benchmark's own inserts append after them as the service's do.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings

from offline_service.fileformat import jws, messages
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.ids import LICENSE_KEY_ALPHABET, new_nonce
from offline_service.licensing import services as admin
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store.backends import open_store
from offline_service.store.sql import key_hash
from offline_service.store.sqlite import DB_FILE

__all__ = ["BulkStore", "activation_requests", "build", "license_key"]

_ROWS_PER_STATEMENT = 50_000
_YEAR_MS = 365 * 24 * 3600 * 1000


def activation_requests(
    count: int, product_id: str, license_keys: str | Sequence[str], *, first: int = 0
) -> list[bytes]:
    """``count`` activation requests, each from its own machine key and fingerprint (numbered from
    ``first``: calls for one license must not overlap, or a machine would activate twice); request
    ``i`` is for ``license_keys[i % len(license_keys)]`` (or the one key given)."""
    keys = [license_keys] if isinstance(license_keys, str) else license_keys
    now = int(time.time())
    out = []
    for i in range(first, first + count):
        public, secret = nacl.bindings.crypto_sign_keypair()
        header = {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(public)}
        payload = messages.request_payload(
            kind=Kind.ACTIVATION,
            product_id=product_id,
            license_key=keys[i % len(keys)],
            fingerprint=f"{i:064x}",
            issued_at=now,
            nonce=new_nonce(),
            hostname=f"ws-{i:06d}.plant.example",
            os="Linux 6.1 x86_64",
            app_version="4.2.0",
        )
        out.append(jws.encode(header, payload, secret).encode() + b"\n")
    return out


def license_key(i: int) -> str:
    """The key of bulk license ``i``: the service's 5x5 Crockford format, derived from ``i``."""
    digest = hashlib.sha256(b"bench-license:%d" % i).digest()
    chars = "".join(LICENSE_KEY_ALPHABET[b & 31] for b in digest[:25])
    return "-".join(chars[j : j + 5] for j in range(0, 25, 5))


@dataclass(frozen=True, slots=True)
class BulkStore:
    """A bulk-loaded SQLite store: its settings, account and product, and how many bulk licenses
    (numbered 0 to ``licenses - 1``; :func:`license_key` gives their keys) it holds."""

    settings: Settings
    account_id: str
    product_id: str
    licenses: int
    seconds: float
    bytes: int


def _template(con: sqlite3.Connection, sql: str, *args: object) -> tuple[list[str], list[object]]:
    cur = con.execute(sql, args)
    row = cur.fetchone()
    if row is None:
        raise RuntimeError(f"no template row for {sql!r}")
    return [d[0] for d in cur.description], list(row)


def _rows(
    columns: list[str], template: list[object], count: int, vary: dict[str, Callable[[int], object]]
) -> Iterator[tuple[object, ...]]:
    """``count`` copies of ``template``, column ``c`` of copy ``i`` being ``vary[c](i)`` where given."""
    makers = [(columns.index(c), f) for c, f in vary.items()]
    for i in range(count):
        row = list(template)
        for j, f in makers:
            row[j] = f(i)
        yield tuple(row)


def _insert(
    con: sqlite3.Connection, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]
) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    while True:
        block = [row for _, row in zip(range(_ROWS_PER_STATEMENT), rows, strict=False)]
        if not block:
            return
        con.executemany(sql, block)


def build(root: Path, *, licenses: int) -> BulkStore:
    """A new SQLite store under ``root`` holding ``licenses`` bulk licenses of one product, each
    unlimited and with one live activation (its nonce and audit row too), besides the templates."""
    started = time.perf_counter()
    settings = Settings(data_dir=root / "data", keys_dir=root / "keys")
    store = open_store(settings)
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        keyring = Keyring(settings.keys_dir)
        product = admin.create_product(store, keyring, account, name="Bench", now=now)
        lic = admin.create_license(
            store, account, product_id=product.id, allowed_activations=-1, allowed_deactivations=-1, now=now
        )
        engine = Engine(store=store, keyring=keyring, policy=settings.policy)
        (done,) = engine.process_many(
            activation_requests(1, product.id, lic.key, first=10**12), account_id=account.id, now=now
        )
        if not done.ok or done.activation_id is None:
            raise RuntimeError(f"the template activation was refused: {done.code} {done.message}")
    finally:
        store.close()

    path = settings.data_dir / DB_FILE
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous = OFF")  # a throwaway database: a crash loses only the benchmark
        con.execute("PRAGMA cache_size = -1000000")  # 1 GB: the key_hash index is filled at random
        lic_cols, lic_row = _template(con, "SELECT * FROM licenses WHERE id = ?", lic.id)
        act_cols, act_row = _template(con, "SELECT * FROM activations WHERE id = ?", done.activation_id)
        nonce_cols, nonce_row = _template(
            con, "SELECT * FROM request_nonces WHERE activation_id = ?", done.activation_id
        )
        audit_cols, audit_row = _template(
            con, "SELECT * FROM audit_log WHERE activation_id = ? ORDER BY rowid LIMIT 1", done.activation_id
        )
        kept = [j for j, c in enumerate(audit_cols) if c != "id"]  # the rowid: SQLite numbers new rows
        audit_cols, audit_row = [audit_cols[j] for j in kept], [audit_row[j] for j in kept]
        # A year ago, one license and its activation per 30 ms: ids sort before any the run makes.
        start_ms = now * 1000 - _YEAR_MS
        step = max(1, _YEAR_MS // 2 // max(licenses, 1))

        def lic_id(i: int) -> str:
            return f"lic_{start_ms + i * step:012x}{i:020x}"

        def act_id(i: int) -> str:
            return f"act_{start_ms + i * step:012x}{i:020x}"

        con.execute("BEGIN")
        _insert(
            con,
            "licenses",
            lic_cols,
            _rows(
                lic_cols,
                lic_row,
                licenses,
                {
                    "id": lic_id,
                    "key": license_key,
                    "key_hash": lambda i: key_hash(license_key(i)),
                    "used_activations": lambda i: 1,
                    "created_at": lambda i: (start_ms + i * step) // 1000,
                },
            ),
        )
        _insert(
            con,
            "activations",
            act_cols,
            _rows(
                act_cols,
                act_row,
                licenses,
                {
                    "id": act_id,
                    "license_id": lic_id,
                    "fingerprint": lambda i: f"{i:064x}",
                    "machine_key": lambda i: os.urandom(32),
                    "machine_key_thumbprint": lambda i: hashlib.sha256(b"%d" % i).hexdigest()[:43],
                    "hostname": lambda i: f"bulk-{i:07d}.plant.example",
                    "created_at": lambda i: (start_ms + i * step) // 1000,
                },
            ),
        )
        _insert(
            con,
            "request_nonces",
            nonce_cols,
            _rows(
                nonce_cols,
                nonce_row,
                licenses,
                {
                    "nonce": lambda i: f"bulk{i:020d}",
                    "activation_id": act_id,
                    "processed_at": lambda i: (start_ms + i * step) // 1000,
                },
            ),
        )
        _insert(
            con,
            "audit_log",
            audit_cols,
            _rows(
                audit_cols,
                audit_row,
                licenses,
                {
                    "license_id": lic_id,
                    "activation_id": act_id,
                    "at": lambda i: (start_ms + i * step) // 1000,
                },
            ),
        )
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return BulkStore(
        settings=settings,
        account_id=account.id,
        product_id=product.id,
        licenses=licenses,
        seconds=time.perf_counter() - started,
        bytes=path.stat().st_size,
    )
