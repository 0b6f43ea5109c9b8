"""``offline-service db status|upgrade`` on an old database, and ``serve`` refusing to start on one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from offline_service.cli import main
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.web.app import create_app
from tests.store.old import LATEST, old_sqlite_database

OLD = 3
PENDING = list(range(OLD + 1, LATEST + 1))
BEHIND = (
    f"the database schema is at version {OLD}, this release needs {LATEST}: run `offline-service db upgrade`"
)


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


def test_status_and_upgrade_of_an_old_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    old_sqlite_database(data, OLD)

    code, out, _ = run(capsys, "db", "status", "--data", data, "--json")
    assert code == 1
    assert json.loads(out) == {"schemaVersion": OLD, "latest": LATEST, "pending": PENDING, "current": False}
    code, out, _ = run(capsys, "db", "status", "--data", data)
    assert code == 1 and BEHIND in out and ", ".join(map(str, PENDING)) in out

    # status only looks: the database is still old
    store = SQLiteStore(data, migrate=False)
    assert store.schema_version == OLD
    store.close()

    code, out, _ = run(capsys, "db", "upgrade", "--data", data, "--json")
    assert code == 0
    assert json.loads(out) == {"applied": PENDING, "from": OLD, "schemaVersion": LATEST}

    code, out, _ = run(capsys, "db", "status", "--data", data, "--json")
    assert code == 0
    assert json.loads(out) == {"schemaVersion": LATEST, "latest": LATEST, "pending": [], "current": True}
    code, out, _ = run(capsys, "db", "upgrade", "--data", data)
    assert code == 0 and "nothing to apply" in out
    code, out, _ = run(capsys, "db", "status", "--data", data)
    assert code == 0 and out == f"schema version {LATEST}: current\n"


def test_upgrade_prints_what_it_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_sqlite_database(tmp_path / "data", OLD)
    code, out, _ = run(capsys, "db", "upgrade", "--data", tmp_path / "data")
    assert code == 0
    assert out == f"applied migrations {', '.join(map(str, PENDING))}: schema version {OLD} -> {LATEST}\n"


def test_create_app_refuses_an_old_schema_and_creates_an_empty_one(tmp_path: Path) -> None:
    old_sqlite_database(tmp_path / "old", OLD)
    with pytest.raises(OfflineServiceError) as refused:
        create_app(Settings(data_dir=tmp_path / "old", keys_dir=tmp_path / "keys"))
    assert refused.value.code is Code.STORAGE_ERROR and refused.value.message == BEHIND
    store = SQLiteStore(tmp_path / "old", migrate=False)
    assert store.schema_version == OLD  # refusing changed nothing
    store.close()

    # A fresh data directory: creating the schema is no upgrade, the server does it.
    app = create_app(Settings(data_dir=tmp_path / "fresh", keys_dir=tmp_path / "keys"))
    assert app.state.services.store.schema_version == LATEST
    app.state.services.close()


def test_serve_exits_before_binding_on_an_old_schema(tmp_path: Path) -> None:
    old_sqlite_database(tmp_path / "data", OLD)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    argv = ["serve", "--data", str(tmp_path / "data"), "--keys", str(tmp_path / "keys"), "--port", str(port)]
    done = subprocess.run(
        [sys.executable, "-m", "offline_service.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stderr == f"error: STORAGE_ERROR: {BEHIND}\n"
    assert "Uvicorn running" not in done.stdout + done.stderr
