"""The SQLite store: migrations, WAL mode, and the constraints the engine relies on."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from offline_service import admin
from offline_service.errors import Code, OfflineServiceError
from offline_service.messages import Kind
from offline_service.models import Account, Activation, AuditEntry
from offline_service.store import SQLiteStore
from offline_service.store.checkpoints import Checkpointer
from offline_service.store.sqlite import CHECKPOINT_PAGES, DB_FILE
from tests.factories import NOW, World


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


# The versions the package ships, read from the migration files themselves.
SHIPPED = sorted(
    int(p.name.split("_")[0])
    for p in (Path(__file__).parent.parent / "offline_service" / "migrations").glob("*.sql")
)


def test_migrations_are_recorded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        assert SHIPPED[0] == 1 and list(range(1, len(SHIPPED) + 1)) == SHIPPED
        assert store.schema_version == SHIPPED[-1]
        rows = store._conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        assert [r[0] for r in rows] == SHIPPED
        assert isinstance(rows[0][1], int) and rows[0][1] > 0
    finally:
        store.close()
    expected = {"accounts", "products", "licenses", "activations", "request_nonces", "trials", "audit_log"}
    assert expected | {"activations_live"} <= _tables(tmp_path / "data" / DB_FILE)


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    account, _ = admin.ensure_account(store, "default", now=NOW)
    applied = store._conn.execute("SELECT * FROM schema_migrations").fetchall()
    schema = store._conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    store.close()

    for _ in range(2):
        again = SQLiteStore(tmp_path / "data")
        try:
            assert again.schema_version == SHIPPED[-1]
            assert again._conn.execute("SELECT * FROM schema_migrations").fetchall() == applied
            assert (
                again._conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
                == schema
            )
            assert admin.account(again, "default") == account
        finally:
            again.close()


def test_wal_mode_is_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    try:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
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


def test_a_failed_write_leaves_nothing_behind(world: World) -> None:
    before = world.snapshot()
    with pytest.raises(RuntimeError), world.store.write() as tx:
        tx.insert_account(Account(id="acc_doomed", alias="doomed", name="Doomed", created_at=NOW))
        assert tx.account_by_alias("doomed") is not None
        raise RuntimeError("boom")
    assert world.snapshot() == before
    with world.store.read() as tx:
        assert tx.account_by_alias("doomed") is None


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


def test_audit_entries_for_licenses_finds_a_quiet_persons_entries_on_a_busy_account(tmp_path: Path) -> None:

    store = SQLiteStore(tmp_path / "data")
    try:
        with store.write() as tx:
            tx.audit(
                AuditEntry(
                    at=1, actor="a", action="activation", code="OK", account_id="acc", license_id="mine"
                )
            )
            for i in range(3000):  # somebody else's busy license, newer than the quiet person's entry
                tx.audit(
                    AuditEntry(
                        at=2 + i,
                        actor="b",
                        action="activation",
                        code="OK",
                        account_id="acc",
                        license_id="theirs",
                    )
                )
            tx.audit(
                AuditEntry(
                    at=9999, actor="a", action="activation", code="OK", account_id="other", license_id="mine"
                )
            )
        with store.read() as tx:
            found = tx.audit_entries_for_licenses("acc", frozenset({"mine"}), limit=10)
            assert [(e.at, e.license_id, e.account_id) for e in found] == [(1, "mine", "acc")]
            assert tx.audit_entries_for_licenses("acc", frozenset(), limit=10) == []
    finally:
        store.close()


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
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4 * CHECKPOINT_PAGES
    store.close()
    assert not checkpointer._thread.is_alive()
    plain = SQLiteStore(tmp_path / "data")
    assert plain._checkpointer is None
    plain.close()
