"""``offline-service backup|restore``: a backup taken while activations are being written restores to
the state of one moment (every table as its manifest says, the app serving and signing with the
restored keys); a changed, cut or incomplete backup, a full data folder and PostgreSQL are refused
with nothing changed."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.cli import main
from offline_service.fileformat import jws
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.store.backup import MANIFEST
from offline_service.store.copy import TABLES, digest_rows
from offline_service.store.sqlite import DB_FILE
from offline_service.web.app import create_app
from tests.factories import NOW, Machine, World
from tests.store.old import LATEST, old_sqlite_database

OLD = 3

pytestmark = pytest.mark.sqlite_only("backup and restore handle the SQLite file; PostgreSQL is refused")


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OFFLINE_SERVICE_"):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def where(root: Path) -> list[str | Path]:
    return ["--data", root / "data", "--keys", root / "keys"]


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a SQLite file, sorted, read without writing beside it."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# The writer of ``Load`` in a process of its own: one activation per transaction, each id printed
# once committed, until the stop file exists.
_WRITER = """
import pathlib, sys
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing.engine import Engine
from offline_service.store import SQLiteStore
from tests.factories import NOW, Machine
root, product, account, key, stop = sys.argv[1:]
store = SQLiteStore(pathlib.Path(root) / "data")
engine = Engine(store=store, keyring=Keyring(pathlib.Path(root) / "keys"))
i = 0
while not pathlib.Path(stop).exists():
    data = Machine(fingerprint=f"fp-load-{i}").request(Kind.ACTIVATION, product, license_key=key)
    outcome = engine.process(data, account_id=account, now=NOW)
    if not outcome.ok:
        sys.exit(f"refused: {outcome.code} {outcome.message}")
    print(outcome.activation_id, flush=True)
    i += 1
store.close()
"""
REPOSITORY = Path(__file__).resolve().parents[2]


class Load:
    """Activations written one transaction at a time, on a store of their own, while the test backs
    up: on a thread of this process, or in another process; ``committed`` lists the activation
    ids in the order they were committed."""

    def __init__(self, world: World, where: str) -> None:
        self.world = world
        self.license = world.license(activations=-1, deactivations=-1)
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.count = threading.Condition()
        self.thread = threading.Thread(target=self._run if where == "thread" else self._child)

    def _record(self, activation_id: str) -> None:
        with self.count:
            self.committed.append(activation_id)
            self.count.notify_all()

    def _run(self) -> None:
        store = SQLiteStore(self.world.root / "data")
        engine = Engine(store=store, keyring=Keyring(self.world.root / "keys"))
        try:
            i = 0
            while not self.stop.is_set():
                machine = Machine(fingerprint=f"fp-load-{i}")
                data = machine.request(Kind.ACTIVATION, self.world.product.id, license_key=self.license.key)
                outcome = engine.process(data, account_id=self.world.account.id, now=NOW)
                assert outcome.ok and outcome.activation_id, outcome
                self._record(outcome.activation_id)
                i += 1
        except BaseException as exc:  # reported by the test, which joins the thread
            self.error = exc
        finally:
            store.close()

    def _child(self) -> None:
        stop = self.world.root / "stop-writing"
        w = self.world
        argv = [
            sys.executable,
            "-c",
            _WRITER,
            str(w.root),
            w.product.id,
            w.account.id,
            self.license.key,
            str(stop),
        ]
        try:
            with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY) as proc:
                assert proc.stdout is not None
                waiter = threading.Thread(target=lambda: (self.stop.wait(), stop.touch()))
                waiter.start()
                for line in proc.stdout:  # every id the child committed, to its end
                    self._record(line.strip())
                waiter.join()
            assert proc.returncode == 0, f"the writer exited with {proc.returncode}"
        except BaseException as exc:  # reported by the test, which joins the thread
            self.error = exc
            self.stop.set()
            with self.count:
                self.count.notify_all()

    def wait_for(self, n: int) -> None:
        with self.count:
            assert self.count.wait_for(
                lambda: len(self.committed) >= n or self.error is not None, timeout=120
            )
        assert self.error is None, self.error

    def __len__(self) -> int:
        with self.count:
            return len(self.committed)


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_backup_under_load_restores_to_one_moment(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], writer: str
) -> None:
    load = Load(world, writer)
    load.thread.start()
    try:
        load.wait_for(20)
        before_backup = len(load)
        code, out, err = run(capsys, "backup", tmp_path / "backup", *where(world.root), "--json")
        assert code == 0, err
        after_backup = len(load)
        load.wait_for(after_backup + 20)  # writes went on after it too
    finally:
        load.stop.set()
        load.thread.join()
    assert load.error is None, load.error
    manifest = json.loads(out)
    assert manifest == {
        "backup": str(tmp_path / "backup"),
        **json.loads((tmp_path / "backup" / MANIFEST).read_text()),
    }
    assert manifest["accounts"] == [{"id": world.account.id, "alias": "default"}]
    taken = manifest["tables"]["activations"]["rows"]
    # Every activation committed before the backup began is in it (even those still in the WAL).
    assert 20 <= before_backup <= taken <= after_backup < len(load.committed)

    target = tmp_path / "restored"
    code, out, err = run(capsys, "restore", tmp_path / "backup", *where(target))
    assert code == 0, err
    assert "match its manifest" in out and "db upgrade" not in out  # the backup's schema is current
    restored_db = target / "data" / DB_FILE

    # One moment: the first `taken` activations committed, not one more, not one fewer, and the
    # license's count of used seats agrees with them (no torn transaction).
    restored = contents(restored_db)
    source = contents(world.root / "data" / DB_FILE)
    assert {row[0] for row in restored["activations"]} == set(load.committed[:taken])
    assert set(restored["activations"]) <= set(source["activations"])
    conn = sqlite3.connect(restored_db)
    try:
        used = conn.execute(
            "SELECT used_activations FROM licenses WHERE id = ?", (load.license.id,)
        ).fetchone()[0]
        assert used == taken
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # The manifest's counts and digests are the restored database's.
        for table, entry in manifest["tables"].items():
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert entry == {"rows": len(rows), "digest": digest_rows(rows)}, table
    finally:
        conn.close()
    # Tables the load did not write are the source's, row for row.
    for table in set(TABLES) - {"activations", "licenses", "request_nonces", "audit_log"}:
        assert restored[table] == source[table], table
    assert set(restored["audit_log"]) <= set(source["audit_log"])
    assert len(restored["request_nonces"]) == taken

    # The keys came back private.
    keys = target / "keys"
    product_dir = keys / world.product.id
    assert mode(keys) == 0o700 and mode(product_dir) == 0o700
    assert [mode(p) for p in product_dir.iterdir()] == [0o600] * len(list(product_dir.iterdir()))
    assert mode(restored_db) == 0o600

    # The app serves from it, and signs with the restored keys what the source's keys verify.
    with TestClient(create_app(Settings(data_dir=target / "data", keys_dir=keys))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        jwks = client.get(f"/.well-known/jwks.json?product={world.product.id}").json()
    assert jwks == world.keyring.jwks(world.product.id)
    store = SQLiteStore(target / "data", migrate=False)
    try:
        engine = Engine(store=store, keyring=Keyring(keys))
        machine = Machine(fingerprint="fp-after-restore")
        request = machine.request(Kind.ACTIVATION, world.product.id, license_key=load.license.key)
        outcome = engine.process(request, account_id=world.account.id, now=NOW)
        assert outcome.ok and outcome.response
        token = jws.decode(
            outcome.response.encode(), typ=jws.RESPONSE_TYP, keys=world.keyring.public_keys(world.product.id)
        )
        assert token.payload["activationId"] == outcome.activation_id
        # A machine activated after the backup's moment is not in it.
        assert load.committed[taken] not in {
            row[0] for row in store.debug_query("SELECT id FROM activations")
        }
    finally:
        store.close()


def _backup(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    world.license()
    code, _, err = run(capsys, "backup", tmp_path / "backup", *where(world.root))
    assert code == 0, err
    return tmp_path / "backup"


def _key_file(backup: Path) -> Path:
    return next(p for p in (backup / "keys").rglob("*.json"))


def _flip_byte_in_database(backup: Path) -> None:
    path = backup / DB_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate_key(backup: Path) -> None:
    path = _key_file(backup)
    path.write_bytes(path.read_bytes()[:-10])


def _remove_key(backup: Path) -> None:
    _key_file(backup).unlink()


def _add_file(backup: Path) -> None:
    (backup / "keys" / "extra.json").write_text("{}")


def _change_a_count(backup: Path) -> None:
    manifest = json.loads((backup / MANIFEST).read_text())
    manifest["tables"]["licenses"]["rows"] += 1
    (backup / MANIFEST).write_text(json.dumps(manifest))


def _change_a_digest_with_its_file(backup: Path) -> None:
    """The database changed, and the manifest's checksum of it changed to suit: the row digests
    still tell."""
    conn = sqlite3.connect(backup / DB_FILE)
    conn.execute("UPDATE licenses SET allowed_activations = 999")
    conn.commit()
    conn.close()
    manifest = json.loads((backup / MANIFEST).read_text())
    data = (backup / DB_FILE).read_bytes()
    manifest["files"][DB_FILE] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (backup / MANIFEST).write_text(json.dumps(manifest))


def _no_manifest(backup: Path) -> None:
    (backup / MANIFEST).unlink()


def _manifest_names_a_path_outside(backup: Path) -> None:
    manifest = json.loads((backup / MANIFEST).read_text())
    manifest["files"]["../outside"] = {"size": 0, "sha256": ""}
    (backup / MANIFEST).write_text(json.dumps(manifest))


def _no_time(backup: Path) -> None:
    manifest = json.loads((backup / MANIFEST).read_text())
    del manifest["createdAt"]
    (backup / MANIFEST).write_text(json.dumps(manifest))


def _key_folder_is_a_link(backup: Path) -> None:
    folder = _key_file(backup).parent
    elsewhere = backup.parent / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)


@pytest.mark.parametrize(
    "tamper",
    [
        _flip_byte_in_database,
        _truncate_key,
        _remove_key,
        _add_file,
        _change_a_count,
        _change_a_digest_with_its_file,
        _no_manifest,
        _manifest_names_a_path_outside,
        _no_time,
        _key_folder_is_a_link,
    ],
)
def test_a_changed_backup_is_refused_and_nothing_is_restored(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: Any
) -> None:
    backup = _backup(world, tmp_path, capsys)
    tamper(backup)
    code, out, err = run(capsys, "restore", backup, *where(tmp_path / "target"), "--json")
    assert code == 1
    assert json.loads(out)["code"] == "BAD_BACKUP"
    assert "nothing was restored" in err
    assert not (tmp_path / "target").exists()


def test_restore_refuses_a_data_folder_in_use_and_force_sets_it_aside(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = _backup(world, tmp_path, capsys)
    world.license(name="after the backup")
    before = contents(world.root / "data" / DB_FILE)
    keys_before = sorted(p.relative_to(world.root).as_posix() for p in (world.root / "keys").rglob("*"))

    code, out, err = run(capsys, "restore", backup, *where(world.root), "--json")
    assert code == 1 and json.loads(out)["code"] == "CONFLICT", err
    assert contents(world.root / "data" / DB_FILE) == before
    assert (
        sorted(p.relative_to(world.root).as_posix() for p in (world.root / "keys").rglob("*")) == keys_before
    )

    world.store.close()  # the server is stopped before a restore
    code, out, err = run(capsys, "restore", backup, *where(world.root), "--force", "--json")
    assert code == 0, err
    done = json.loads(out)
    data_aside, keys_aside = (Path(p) for p in done["setAside"])
    # The old database, with the license made after the backup, is kept whole beside the restored one.
    assert contents(data_aside / DB_FILE) == before
    assert len(contents(world.root / "data" / DB_FILE)["licenses"]) == len(before["licenses"]) - 1
    assert (keys_aside / world.product.id).is_dir() and keys_aside.name.startswith(".")
    world.store = SQLiteStore(world.root / "data")  # for the fixture to close


def test_backup_refuses_a_destination_with_files_and_takes_an_empty_one(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("kept")
    code, out, _ = run(capsys, "backup", tmp_path / "full", *where(world.root), "--json")
    assert code == 1 and json.loads(out)["code"] == "CONFLICT"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["something"]

    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "backup", tmp_path / "empty", *where(world.root))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["keys", MANIFEST, DB_FILE]
    assert mode(tmp_path / "empty") == 0o700
    # Nothing but the backup is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_postgresql_is_refused_with_where_to_look(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    for argv in (["backup", tmp_path / "b"], ["restore", tmp_path]):
        code, out, err = run(capsys, *argv, "--database-url", url, "--json")
        assert code == 1 and json.loads(out)["code"] == "INVALID_ARGUMENT"
        assert "pg_dump" in err
    assert not (tmp_path / "b").exists()


def test_a_backup_killed_midway_leaves_no_backup(world: World, tmp_path: Path) -> None:
    """SIGKILL once the database is copied and before the manifest: the destination does not
    exist, and the hidden folder left beside it is refused by restore."""
    world.license()
    script = (
        "import os, signal, sys\n"
        "from offline_service.store import backup\n"
        "def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)\n"
        "backup._check_keys = die\n"
        "from offline_service.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    dest = tmp_path / "backup"
    argv = [sys.executable, "-c", script, "backup", str(dest), *map(str, where(world.root))]
    proc = subprocess.run(argv, capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr
    assert not dest.exists()
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".backup.partial-")]
    assert (left / DB_FILE).is_file() and not (left / MANIFEST).exists()
    done = subprocess.run(
        [sys.executable, "-m", "offline_service.cli", "restore", str(left), *map(str, where(tmp_path / "t"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "BAD_BACKUP" in done.stderr


def test_an_older_backup_is_restored_and_db_upgrade_brings_it_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_sqlite_database(tmp_path / "old" / "data", OLD)
    code, _, err = run(capsys, "backup", tmp_path / "backup", *where(tmp_path / "old"))
    assert code == 0, err
    code, out, err = run(capsys, "restore", tmp_path / "backup", *where(tmp_path / "new"))
    assert code == 0, err
    assert (
        f"the schema is at version {OLD}, this release needs {LATEST}: run `offline-service db upgrade`"
        in out
    )
    code, out, _ = run(capsys, "db", "upgrade", *where(tmp_path / "new"), "--json")
    assert code == 0 and json.loads(out)["schemaVersion"] == LATEST


def test_a_restore_failing_half_way_names_where_the_old_database_is(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = _backup(world, tmp_path, capsys)
    world.store.close()
    before = contents(world.root / "data" / DB_FILE)
    rename = os.rename

    def failing(src: Any, dst: Any) -> None:
        if Path(src).name.startswith(f".{DB_FILE}.restore-"):
            raise OSError(28, "No space left on device", str(dst))
        rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    code, out, err = run(capsys, "restore", backup, *where(world.root), "--force", "--json")
    monkeypatch.undo()
    world.store = SQLiteStore(world.root / "data")  # for the fixture to close
    assert code == 1 and json.loads(out)["code"] == "STORAGE_ERROR"
    (aside,) = [p for p in (world.root / "data").iterdir() if p.name.startswith("before-restore-")]
    assert str(aside) in err and "move it back" in err
    assert contents(aside / DB_FILE) == before
    # Nothing half-written is left beside the database.
    assert not [p for p in (world.root / "data").iterdir() if ".restore-" in p.name]


def test_a_backup_of_another_database_is_refused(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = _backup(world, tmp_path, capsys)
    (backup / DB_FILE).unlink()
    conn = sqlite3.connect(backup / DB_FILE)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    manifest = json.loads((backup / MANIFEST).read_text())
    data = (backup / DB_FILE).read_bytes()
    manifest["files"][DB_FILE] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (backup / MANIFEST).write_text(json.dumps(manifest))
    code, out, err = run(capsys, "restore", backup, *where(tmp_path / "target"), "--json")
    assert code == 1 and json.loads(out)["code"] == "BAD_BACKUP", err
    assert not (tmp_path / "target").exists()
