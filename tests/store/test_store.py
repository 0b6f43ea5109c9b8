"""The SQLite backend's own: migrations, WAL mode, the flock, checkpoints, and the constraints the
engine relies on. What every backend must do is in ``test_contract.py``."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing import services as admin
from offline_service.licensing.models import Activation, ActivationFilter
from offline_service.settings import Settings
from offline_service.store import SQLiteStore, open_store
from offline_service.store.checkpoints import Checkpointer
from offline_service.store.sqlite import CHECKPOINT_PAGES, DB_FILE
from tests import db
from tests.factories import NOW, World

pytestmark = pytest.mark.sqlite_only("the SQLite backend's own file, WAL, flock and checkpoints")


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


# The versions the package ships, read from the migration files themselves.
SHIPPED = sorted(
    int(p.name.split("_")[0])
    for p in (Path(__file__).parents[2] / "offline_service" / "store" / "migrations").glob("*.sql")
)


def test_migrations_are_recorded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        assert SHIPPED[0] == 1 and list(range(1, len(SHIPPED) + 1)) == SHIPPED
        assert store.schema_version == SHIPPED[-1]
        rows = db.rows(store, "SELECT version, applied_at FROM schema_migrations")
        assert [r[0] for r in rows] == SHIPPED
        assert isinstance(rows[0][1], int) and rows[0][1] > 0
    finally:
        store.close()
    expected = {"accounts", "products", "licenses", "activations", "request_nonces", "trials", "audit_log"}
    assert expected | {"activations_live"} <= _tables(tmp_path / "data" / DB_FILE)


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    account, _ = admin.ensure_account(store, "default", now=NOW)
    applied = db.rows(store, "SELECT * FROM schema_migrations")
    schema = db.rows(store, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    store.close()

    for _ in range(2):
        again = SQLiteStore(tmp_path / "data")
        try:
            assert again.schema_version == SHIPPED[-1]
            assert db.rows(again, "SELECT * FROM schema_migrations") == applied
            assert db.rows(again, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
            assert admin.account(again, "default") == account
        finally:
            again.close()


def test_wal_mode_is_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        assert db.rows(store, "PRAGMA journal_mode") == [("wal",)]
        assert db.rows(store, "PRAGMA foreign_keys") == [(1,)]
    finally:
        store.close()
    # WAL is a property of the database file: a plain connection sees it too.
    with sqlite3.connect(tmp_path / "data" / DB_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_dir_is_private(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    store.close()
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0


def _second_live(world: World, license_id: str, fingerprint: str) -> Activation:
    return Activation(
        id="act_duplicate",
        license_id=license_id,
        product_id=world.product.id,
        fingerprint=fingerprint,
        machine_key=b"\x01" * 32,
        machine_key_thumbprint="t" * 43,
        created_at=NOW,
    )


def test_unique_live_activation_index_holds_in_the_database(world: World) -> None:
    lic = world.license()
    m = world.machine()
    assert world.process(m.request(Kind.ACTIVATION, world.product.id, license_key=lic.key)).ok
    with sqlite3.connect(world.store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO activations (id, license_id, product_id, fingerprint, machine_key,"
            " machine_key_thumbprint, hostname, os, app_version, created_at)"
            " VALUES ('act_raw', ?, ?, ?, x'00', 't', '', '', '', 0)",
            (lic.id, world.product.id, m.fingerprint),
        )


def test_unique_live_activation_index_holds_through_the_store(world: World) -> None:
    lic = world.license()
    m = world.machine()
    first = world.process(m.request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert first.ok
    before = world.snapshot()

    with pytest.raises(OfflineServiceError) as info, world.store.write() as tx:
        tx.insert_activation(_second_live(world, lic.id, m.fingerprint))
    assert info.value.code is Code.STORAGE_ERROR
    assert world.snapshot() == before  # rolled back

    # Once the first is deactivated, the same machine may hold a new live activation.
    assert first.activation_id is not None
    with world.store.write() as tx:
        tx.deactivate(first.activation_id, NOW + 1)
    with world.store.write() as tx:
        tx.insert_activation(_second_live(world, lic.id, m.fingerprint))
    with world.store.read() as tx:
        live = [a.id for a in tx.activations(lic.id) if a.deactivated_at is None]
    assert live == ["act_duplicate"]


def test_store_is_shared_between_connections(world: World) -> None:
    lic = world.license()
    other = SQLiteStore(world.store.data_dir)
    try:
        with other.read() as tx:
            found = tx.license_by_key(world.account.id, lic.key)
        assert found is not None and found.id == lic.id
        with other.read() as tx:
            assert tx.license_by_key("acc_other", lic.key) is None
    finally:
        other.close()


def _hold_write_lock(data_dir: str, ready: Any, release: Any) -> None:
    store = SQLiteStore(data_dir)
    with store.write():
        ready.set()
        release.wait(30)
    store.close()


def test_write_lock_if_free_never_waits_for_another_process(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        with store.write_lock_if_free() as free:
            assert free
            with store.write() as tx:  # holding the lock already: does not block
                tx.audit(AuditEntry(at=1, actor="a", action="x", code="OK", account_id="acc"))
        ctx = multiprocessing.get_context("spawn")
        ready, release = ctx.Event(), ctx.Event()
        other = ctx.Process(target=_hold_write_lock, args=(str(tmp_path / "data"), ready, release))
        other.start()
        try:
            assert ready.wait(30)
            with store.write_lock_if_free() as free:
                assert not free  # answered at once, without waiting for the other process
        finally:
            release.set()
            other.join(30)
        with store.write_lock_if_free() as free:
            assert free
    finally:
        store.close()


def _flock_taken(data: Path) -> bool:
    """Whether another holder has the writers' flock (tried on a new open file description)."""
    fd = os.open(data / "write.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_transactions_inside_write_lock_if_free_keep_the_lock_between_them(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        with store.write_lock_if_free() as free:
            assert free
            for i in range(2):
                with store.write() as tx:
                    tx.audit(AuditEntry(at=i, actor="a", action="x", code="OK", account_id="acc"))
                # Between two transactions of the block no other process can take the lock, so
                # the next write() cannot block the caller (an event loop).
                assert _flock_taken(tmp_path / "data")
        assert not _flock_taken(tmp_path / "data")
    finally:
        store.close()


def _wal_bytes(path: Path) -> int:
    """The log file's size: it grows while the log is appended to, and stays put once a checkpoint
    lets writers start again at its beginning (asking SQLite would itself checkpoint)."""
    return Path(f"{path}-wal").stat().st_size


def _fill(store: SQLiteStore, transactions: int) -> None:
    for i in range(transactions):
        with store.write() as tx:
            for j in range(20):
                tx.audit(AuditEntry(at=i, actor="a" * 200, action="x", code="OK", account_id=f"acc{i}-{j}"))


def test_background_checkpoints_copy_the_log_and_restart_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    # The thread waits an hour between passes: the test runs the passes itself.
    checkpointer = Checkpointer(store.path, writer_lock=store._writer_lock, interval=3600, reset_pages=50)
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        _fill(store, 40)
        grown = _wal_bytes(store.path)
        assert grown >= 50 * 4096  # the commits' own checkpoint (4000 pages) never ran
        _fill(store, 1)
        grown_more = _wal_bytes(store.path)
        assert grown_more > grown
        checkpointer.checkpoint(conn)
        _fill(store, 2)
        # The log was copied whole under the writers' lock, so the next transactions started it over.
        assert _wal_bytes(store.path) == grown_more
        with store.read() as tx:
            assert len(tx.audit_entries("acc39-19")) == 1
    finally:
        conn.close()
        checkpointer.close()
        store.close()
    assert not checkpointer._thread.is_alive()


def test_a_server_store_checkpoints_in_the_background_and_stops_with_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data", background_checkpoints=True)
    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    # Left to the commits, the log would be checkpointed only at four times the usual size.
    assert db.rows(store, "PRAGMA wal_autocheckpoint") == [(4 * CHECKPOINT_PAGES,)]
    store.close()
    assert not checkpointer._thread.is_alive()
    plain = SQLiteStore(tmp_path / "data")
    assert plain._checkpointer is None
    plain.close()


def test_people_admin_migration_keeps_every_credential_and_gives_each_an_id(tmp_path: Path) -> None:
    """A database of the schema before this migration, with people and sessions: migrating keeps
    them all, gives every credential a public id of its own, and lets personal access tokens in.
    The version is the file's number, whatever it is, so the test holds if the file is renumbered."""
    data = tmp_path / "data"
    data.mkdir()
    migrations = Path(__file__).parents[2] / "offline_service" / "store" / "migrations"
    mine = int(next(migrations.glob("*_people_admin.sql")).name.split("_")[0])
    with sqlite3.connect(data / DB_FILE) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)")
        for version in SHIPPED[: SHIPPED.index(mine)]:
            conn.executescript(next(migrations.glob(f"{version:04d}_*.sql")).read_text())
            conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (version,))
        conn.execute("INSERT INTO accounts VALUES ('acc_1', 'default', 'default', 0)")
        conn.execute(
            "INSERT INTO users (id, account_id, email, email_key, role, created_at)"
            " VALUES ('usr_1', 'acc_1', 'Ann@example.com', 'ann@example.com', 'user', 0)"
        )
        for i, kind in enumerate(("session", "access", "session")):
            conn.execute(
                "INSERT INTO credentials (token_hash, kind, user_id, account_id, created_at, expires_at,"
                " revoked_at, user_agent, address) VALUES (?, ?, 'usr_1', 'acc_1', ?, 100, ?, 'ua', '10.0.0.1')",
                (bytes([i]) * 32, kind, i, 5 if i == 2 else None),
            )
        with pytest.raises(sqlite3.IntegrityError):  # the schema before refuses the new kind
            conn.execute(
                "INSERT INTO credentials (token_hash, kind, user_id, account_id, created_at, expires_at)"
                " VALUES (x'ff', 'personal', 'usr_1', 'acc_1', 0, 1)"
            )
    store = SQLiteStore(data)
    try:
        assert store.schema_version == SHIPPED[-1]
        rows = db.rows(
            store,
            "SELECT token_hash, id, kind, created_at, revoked_at, user_agent, address, name, last_used_at"
            " FROM credentials ORDER BY created_at",
        )
        assert [(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows] == [
            (bytes([0]) * 32, "session", 0, None, "ua", "10.0.0.1", "", None),
            (bytes([1]) * 32, "access", 1, None, "ua", "10.0.0.1", "", None),
            (bytes([2]) * 32, "session", 2, 5, "ua", "10.0.0.1", "", None),
        ]
        ids = [r[1] for r in rows]
        assert len(set(ids)) == 3 and all(i.startswith("crd_") and len(i) == 36 for i in ids)
        with store.read() as tx:
            user = tx.user("acc_1", "usr_1")
        assert user is not None
        assert (user.time_zone, user.notify_new_activation, user.notify_license_expiry) == (
            "UTC",
            False,
            False,
        )
        assert {"credentials_user", "password_tokens", "password_tokens_user"} <= _tables(data / DB_FILE)
        db.execute(
            store,
            "INSERT INTO credentials (token_hash, id, kind, user_id, account_id, created_at, expires_at)"
            " VALUES (x'ff', 'crd_new', 'personal', 'usr_1', 'acc_1', 0, 1)",
        )
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                store,
                "INSERT INTO credentials (token_hash, id, kind, user_id, account_id, created_at, expires_at)"
                " VALUES (x'fe', 'crd_other', 'cookie', 'usr_1', 'acc_1', 0, 1)",
            )
    finally:
        store.close()


def test_find_activations_filters_escapes_wildcards_and_stays_in_its_licenses(world: World) -> None:
    # 450 licenses (more than one statement may bind variables for) with one activation each,
    # and two more of their own with hostnames that hold LIKE's wildcards.
    licenses = [world.license() for _ in range(450)]
    other, _ = admin.ensure_account(world.store, "other", now=NOW)

    def activation(i: int, license_id: str, hostname: str, *, gone: bool = False) -> Activation:
        return Activation(
            id=f"act_{i:04d}",
            license_id=license_id,
            product_id=world.product.id,
            fingerprint=f"fp-{i}",
            machine_key=b"\x01" * 32,
            machine_key_thumbprint="t" * 43,
            created_at=NOW + i,
            hostname=hostname,
            deactivated_at=NOW + 10_000 if gone else None,
        )

    with world.store.write() as tx:
        for i, lic in enumerate(licenses):
            tx.insert_activation(activation(i, lic.id, f"pc-{i}", gone=i % 2 == 1))
        tx.insert_activation(activation(900, licenses[0].id, "100%_real"))
        tx.insert_activation(activation(901, licenses[0].id, "100x-fake"))
    every = frozenset(x.id for x in licenses)
    with world.store.read() as tx:
        total, page = tx.find_activations(world.account.id, every, ActivationFilter(), limit=10)
        assert total == 452 and [a.id for a in page] == [
            "act_0901",
            "act_0900",
            *(f"act_{i:04d}" for i in range(449, 441, -1)),
        ]
        total, page = tx.find_activations(world.account.id, every, ActivationFilter(), limit=10, offset=450)
        assert total == 452 and [a.id for a in page] == ["act_0001", "act_0000"]
        assert tx.find_activations(world.account.id, every, ActivationFilter(text="0%_"), limit=10)[0] == 1
        assert tx.find_activations(world.account.id, every, ActivationFilter(text="100%"), limit=10)[0] == 1
        assert (
            tx.find_activations(world.account.id, every, ActivationFilter(text="PC-44"), limit=100)[0] == 11
        )
        assert (
            tx.find_activations(world.account.id, every, ActivationFilter(text="fp-9"), limit=100)[0]
            == 1 + 10 + 2
        )
        assert (
            tx.find_activations(world.account.id, every, ActivationFilter(live=True), limit=1)[0] == 225 + 2
        )
        assert tx.find_activations(world.account.id, every, ActivationFilter(live=False), limit=1)[0] == 225
        one = ActivationFilter(license_id=licenses[0].id, live=True)
        assert [a.id for a in tx.find_activations(world.account.id, every, one, limit=10)[1]] == [
            "act_0901",
            "act_0900",
            "act_0000",
        ]
        # A license outside the given set, or the account, is never listed, whatever the filter says.
        outside = ActivationFilter(license_id=licenses[1].id)
        assert tx.find_activations(world.account.id, frozenset({licenses[0].id}), outside, limit=10) == (
            0,
            [],
        )
        assert tx.find_activations(other.id, every, ActivationFilter(), limit=10) == (0, [])
        assert tx.find_activations(world.account.id, frozenset(), ActivationFilter(), limit=10) == (0, [])
        product = ActivationFilter(product_id="prd_none")
        assert tx.find_activations(world.account.id, every, product, limit=10) == (0, [])


def test_open_store_opens_the_configured_backend_in_the_data_directory(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path / "data"), background_checkpoints=True)
    try:
        assert isinstance(store, SQLiteStore) and store.path == tmp_path / "data" / DB_FILE
        assert store._checkpointer is not None
    finally:
        store.close()
