"""``store/copy.py``: a populated deployment copied SQLite -> PostgreSQL -> SQLite with equal
content, the table list against both live schemas, and every refusal leaving the target as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offline_service.audit import AuditEntry
from offline_service.branding import services as branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing import batch_results
from offline_service.licensing.models import BatchFile
from offline_service.releases import services as releases
from offline_service.store import SQLiteStore, Store
from offline_service.store.copy import TABLES, copy_database, copy_url, digest_rows
from offline_service.store.postgresql import PostgreSQLStore
from offline_service.store.sqlite import DB_FILE
from tests.db import execute, rows
from tests.factories import NOW, Machine
from tests.pg import database_url
from tests.store.old import old_sqlite_database
from tests.web.pages import user
from tests.web.site import Site, activation_request

# The source of the copies is the web tests' site on SQLite (its ``backend``); the targets are
# PostgreSQL databases of their own.
pytestmark = pytest.mark.sqlite_only("copies a populated SQLite deployment to PostgreSQL and back")
# Columns that hold bytes on both backends: they must come back as bytes, not text.
BYTES_COLUMNS = {
    "licenses": "key_hash",
    "activations": "machine_key",
    "credentials": "token_hash",
    "batch_results": "archive",
}


def _contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every copied table, sorted (by repr: rows mix None with values)."""
    return {t: sorted(rows(store, f"SELECT * FROM {t}"), key=repr) for t in TABLES}


def _counts(store: Store) -> dict[str, int]:
    return {t: int(rows(store, f"SELECT COUNT(*) FROM {t}")[0][0]) for t in TABLES}


def _columns(store: SQLiteStore | PostgreSQLStore) -> dict[str, list[str]]:
    """Each table's columns as ``store`` declares them."""
    with store.table_access() as tables:
        return {t: tables.columns(t) for t in TABLES}


def _tables(store: SQLiteStore | PostgreSQLStore) -> list[str]:
    with store.table_access() as tables:
        return tables.names()


def _digests(store: Store, columns: dict[str, list[str]]) -> dict[str, str]:
    """Each table's digest over ``columns`` (named, so both backends read them in one order)."""
    return {t: digest_rows(rows(store, f"SELECT {', '.join(columns[t])} FROM {t}")) for t in TABLES}


@pytest.fixture
def populated(site: Site) -> Site:
    """The web tests' site (two accounts, organizations, users, groups, licenses) with activity on
    top: activations, a deactivation, a trial and its address limit, sessions, a failed login, a
    customization, a release, a batch's kept result, and an admin token's idempotent create."""
    for role, name in (("user1", "user1"), ("admin_a", "org_a"), ("other", "other")):
        response = site.activate(role, activation_request(site, role, name))
        assert response.status_code == 200, response.text
    machine = Machine(fingerprint="fp-deactivated")
    granted = site.activate("user2", activation_request(site, "user2", "group", machine))
    assert granted.status_code == 200, granted.text
    request = machine.request(
        Kind.DEACTIVATION, site.product.id, activation_id=granted.json()["activationId"], issued_at=NOW
    )
    assert site.deactivate("user2", request).status_code == 200
    response = site.trial(Machine(fingerprint="fp-trial").request(Kind.TRIAL, site.product.id, issued_at=NOW))
    assert response.status_code == 200, response.text
    assert site.login("user2", "wrong password").status_code == 401
    branding.customize(
        site.svc.store,
        site.acme,
        data_dir=site.svc.settings.data_dir,
        now=NOW,
        portal_name="Acme portal",
        accent_color="#123456",
        custom_domain="portal.acme.example",
    )
    installer = site.svc.settings.data_dir / "app-1.2.0.tar.gz"
    installer.write_bytes(b"the release's bytes")
    releases.publish(
        site.svc.store,
        site.acme,
        root=site.svc.settings.release_root,
        product_id=site.product.id,
        version="1.2.0",
        files=[installer],
        now=NOW,
        notes="first",
    )
    batch_results.save(
        site.svc.store,
        account_id=site.acme.id,
        user_id=user(site, "user1").id,
        files=(BatchFile("a.request", "activation", "OK", False, "act_x", "lic_x", "höst", "fp-x", ""),),
        archive=b"PK\x05\x06" + b"\0" * 18,  # an empty zip: bytes, NULs included
        now=NOW,
    )
    created = site.client.post(
        "/v1/admin/licenses",
        json={"productId": site.product.id, "allowedActivations": 1, "allowedDeactivations": 0},
        headers={**site.admin_auth("licenses:write"), "idempotency-key": "order-1"},
    )
    assert created.status_code == 201, created.text
    counts = _counts(site.svc.store)
    for table in ("admin_tokens", "admin_idempotency"):
        assert counts[table] > 0, table
    for table in ("activations", "request_nonces", "trials", "audit_log", "credentials", "login_failures"):
        assert counts[table] > 0, table
    for table in ("trial_limits", "account_branding", "releases", "release_files", "batch_results"):
        assert counts[table] > 0, table
    assert rows(site.svc.store, "SELECT COUNT(*) FROM activations WHERE deactivated_at IS NOT NULL") == [(1,)]
    return site


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[PostgreSQLStore]:
    store = PostgreSQLStore(database_url(tmp_path / "pg"), migrate=False)
    yield store
    store.close()


def test_sqlite_to_postgresql_and_back_keeps_every_value(
    populated: Site, pg: PostgreSQLStore, tmp_path: Path
) -> None:
    source = populated.svc.store
    report = copy_database(source, pg, populated.svc.keyring)
    assert [t.table for t in report.tables] == list(TABLES)
    assert {t.table: t.rows for t in report.tables} == _counts(source) == _counts(pg)
    assert report.products == 3
    columns = _columns(source)
    assert {t.table: t.digest for t in report.tables} == _digests(source, columns) == _digests(pg, columns)
    for table, column in BYTES_COLUMNS.items():
        values = [row[0] for row in rows(pg, f"SELECT {column} FROM {table}")]
        assert values and all(isinstance(v, bytes) for v in values), table

    back = SQLiteStore(tmp_path / "back", migrate=False)
    try:
        second = copy_database(pg, back, populated.svc.keyring)
        assert second.tables == report.tables
        # SQLite to SQLite through PostgreSQL: the very same rows, types included.
        assert _contents(back) == _contents(source)
    finally:
        back.close()


def test_a_new_audit_row_after_the_copy_gets_a_fresh_id(populated: Site, pg: PostgreSQLStore) -> None:
    copy_database(populated.svc.store, pg, populated.svc.keyring)
    (largest,) = rows(pg, "SELECT MAX(id) FROM audit_log")[0]
    assert largest > 1
    with pg.write() as tx:
        tx.audit(
            AuditEntry(at=NOW, actor="test", action="after-copy", code="OK", account_id=populated.acme.id)
        )
    assert rows(pg, "SELECT id FROM audit_log WHERE action = 'after-copy'") == [(largest + 1,)]


def test_the_table_list_is_the_live_schema_of_both_backends(tmp_path: Path) -> None:
    stores: list[SQLiteStore | PostgreSQLStore] = [
        SQLiteStore(tmp_path / "sqlite"),
        PostgreSQLStore(database_url(tmp_path / "pg")),
    ]
    try:
        for store in stores:
            with store.table_access() as tables:
                assert sorted(set(tables.names()) - {"schema_migrations"}) == sorted(TABLES), type(store)
                assert len(set(TABLES)) == len(TABLES)
    finally:
        for store in stores:
            store.close()


def test_each_table_comes_after_the_tables_it_references(tmp_path: Path) -> None:
    sqlite = SQLiteStore(tmp_path / "sqlite")
    pg = PostgreSQLStore(database_url(tmp_path / "pg"))
    try:
        for table in TABLES:
            referenced = {row[2] for row in rows(sqlite, f"PRAGMA foreign_key_list({table})")}
            referenced |= {
                row[0]
                for row in rows(
                    pg,
                    "SELECT confrelid::regclass::text FROM pg_constraint"
                    " WHERE contype = 'f' AND conrelid = ?::regclass",
                    table,
                )
            }
            earlier = set(TABLES[: TABLES.index(table)])
            assert referenced <= earlier | {table}, (table, referenced - earlier)
    finally:
        sqlite.close()
        pg.close()


def test_a_target_with_rows_is_refused_and_untouched(
    populated: Site, pg: PostgreSQLStore, tmp_path: Path
) -> None:
    copy_database(populated.svc.store, pg, populated.svc.keyring)
    before = _contents(pg)
    execute(populated.svc.store, "DELETE FROM login_failures")  # the source differs: a retry would show
    with pytest.raises(OfflineServiceError) as refused:
        copy_database(populated.svc.store, pg, populated.svc.keyring)
    assert refused.value.code is Code.CONFLICT and "not empty" in refused.value.message
    assert _contents(pg) == before

    # One row anywhere is enough, on SQLite too, in a table the copy would fill last.
    other = SQLiteStore(tmp_path / "other")
    try:
        execute(other, "INSERT INTO trial_limits VALUES ('x', 1.0, 2.0, 3.0, 4)")
        with pytest.raises(OfflineServiceError) as refused:
            copy_database(populated.svc.store, other, populated.svc.keyring)
        assert refused.value.code is Code.CONFLICT and "trial_limits (1)" in refused.value.message
        assert _counts(other) == {t: int(t == "trial_limits") for t in TABLES}
    finally:
        other.close()


def test_a_source_behind_the_schema_is_refused(tmp_path: Path, pg: PostgreSQLStore) -> None:
    old_sqlite_database(tmp_path / "old", 3)
    source = SQLiteStore(tmp_path / "old", migrate=False)
    try:
        with pytest.raises(OfflineServiceError) as refused:
            copy_database(source, pg, Keyring(tmp_path / "keys"))
        assert refused.value.code is Code.STORAGE_ERROR
        assert "at version 3" in refused.value.message
        assert "`offline-service db upgrade`" in refused.value.message
        assert source.schema_version == 3
    finally:
        source.close()
    assert _tables(pg) == []  # not even the target's schema was made


def test_a_source_a_later_release_made_is_refused(populated: Site, pg: PostgreSQLStore) -> None:
    latest = populated.svc.store.schema_version
    execute(populated.svc.store, "INSERT INTO schema_migrations VALUES (?, ?)", latest + 1, NOW)
    with pytest.raises(OfflineServiceError) as refused:
        copy_database(populated.svc.store, pg, populated.svc.keyring)
    assert refused.value.code is Code.STORAGE_ERROR
    assert f"at version {latest + 1}, newer than this release's {latest}" in refused.value.message
    assert _tables(pg) == []


def test_a_product_without_its_key_is_refused(populated: Site, pg: PostgreSQLStore, tmp_path: Path) -> None:
    # Another keys directory holding only the keys of account "other"'s product.
    keys = tmp_path / "partial-keys"
    keys.mkdir()
    source_keys = populated.svc.keyring.directory
    product = populated.other_product.id
    (keys / product).mkdir()
    for entry in (source_keys / product).iterdir():
        (keys / product / entry.name).write_bytes(entry.read_bytes())
        (keys / product / entry.name).chmod(entry.stat().st_mode)
    with pytest.raises(OfflineServiceError) as refused:
        copy_database(populated.svc.store, pg, Keyring(keys))
    assert refused.value.code is Code.KEY_ERROR
    message = refused.value.message
    assert populated.product.id in message and populated.no_trials.id in message
    assert product not in message and "--keys" in message
    assert _tables(pg) == []


def test_an_error_mid_copy_leaves_the_target_empty(populated: Site, pg: PostgreSQLStore) -> None:
    # SQLite keeps text in a REAL column; PostgreSQL refuses it, at the last table of the copy.
    execute(populated.svc.store, "INSERT INTO trial_limits VALUES ('addr', 'lots', 0, 0, 0)")
    with pytest.raises(OfflineServiceError) as failed:
        copy_database(populated.svc.store, pg, populated.svc.keyring)
    assert failed.value.code is Code.STORAGE_ERROR
    assert _counts(pg) == dict.fromkeys(TABLES, 0)
    assert pg.pending_migrations() == []  # the schema stays: an empty, current database


def test_the_same_database_and_a_missing_source_are_refused(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    data = tmp_path / "data"
    SQLiteStore(data).close()
    with pytest.raises(OfflineServiceError) as same:
        copy_url(f"sqlite://{data}", f"sqlite://{tmp_path}/./data", keyring)
    assert same.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(OfflineServiceError) as missing:
        copy_url(f"sqlite://{tmp_path / 'nowhere'}", f"sqlite://{tmp_path / 'target'}", keyring)
    assert missing.value.code is Code.NOT_FOUND
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "target").exists()
    # The SQLite file itself, as other tools spell a SQLite URL: the error names the folder to give.
    with pytest.raises(OfflineServiceError) as a_file:
        copy_url(f"sqlite://{data / DB_FILE}", f"sqlite://{tmp_path / 'target'}", keyring)
    assert a_file.value.code is Code.NOT_FOUND
    assert f"(sqlite://{data})" in a_file.value.message
    assert not (tmp_path / "target").exists()


def test_the_digest_ignores_order_and_tells_types_apart() -> None:
    a = [(1, "x", b"\x00", None, 1.5), (2, "y", b"", "", 0.0)]
    assert digest_rows(a) == digest_rows(reversed(a))
    variants = [
        [(1, "x", "\x00", None, 1.5), (2, "y", b"", "", 0.0)],  # text where bytes were
        [(1, "x", b"\x00", "", 1.5), (2, "y", b"", "", 0.0)],  # "" where None was
        [(1.0, "x", b"\x00", None, 1.5), (2, "y", b"", "", 0.0)],  # 1.0 where 1 was
        [("1", "x", b"\x00", None, 1.5), (2, "y", b"", "", 0.0)],  # "1" where 1 was
        [(1, "x", b"\x00", None, 1.5)],  # a row fewer
        [(1, "x", b"\x00", None, 1.5), (2, "y", b"", "", 0.0), (2, "y", b"", "", 0.0)],  # one more
        [(1, "x", b"\x00", None, 1.5), (2, "y", b"", "", None)],
        [(1, "xy", b"\x00", None, 1.5), (2, "", b"", "", 0.0)],  # the same characters, split elsewhere
    ]
    digests = {digest_rows(v) for v in variants}
    assert len(digests) == len(variants) and digest_rows(a) not in digests
    with pytest.raises(TypeError):
        digest_rows([(object(),)])


def _audit_rows(path: Path, count: int) -> None:
    """``count`` audit rows straight into the SQLite file: enough for the copy to take a while."""
    conn = sqlite3.connect(path / DB_FILE)
    with conn:
        conn.executemany(
            "INSERT INTO audit_log (at, actor, action, code, detail) VALUES (?, 'test', 'filler', 'OK', '{}')",
            ((NOW + i,) for i in range(count)),
        )
    conn.close()


def test_a_copy_killed_mid_way_leaves_the_target_empty(populated: Site, tmp_path: Path) -> None:
    data = populated.svc.settings.data_dir
    _audit_rows(data, 200_000)
    url = database_url(tmp_path / "killed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    argv = [sys.executable, "-m", "offline_service.cli", "db", "copy", "--from", f"sqlite://{data}"]
    argv += ["--to", url, "--keys", str(populated.svc.keyring.directory)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = False
        with psycopg.connect(url, autocommit=True) as watcher:
            for _ in range(3000):  # bounded: at most a minute
                found = watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND query LIKE 'INSERT INTO audit_log%'"
                ).fetchone()
                if found or process.poll() is not None:
                    seen = found is not None
                    break
                time.sleep(0.02)
        assert seen, "the copy never reached the audit log (or ended first)"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    target = PostgreSQLStore(url, migrate=False)
    try:
        assert target.pending_migrations() == []
        # Whether or not the server has yet noticed the dead client: nothing was committed.
        assert _counts(target) == dict.fromkeys(TABLES, 0)
    finally:
        target.close()
