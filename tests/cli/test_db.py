"""``offline-service db status|upgrade`` on an old database, ``serve`` refusing to start on one, and
``db copy`` moving the demo deployment to PostgreSQL and back."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.passwords import Cost
from offline_service.cli import build_parser, main
from offline_service.cli.demo import prepare_portal
from offline_service.errors import Code, OfflineServiceError
from offline_service.next_steps import next_step
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.store.copy import TABLES, shown_url
from offline_service.store.sqlite import DB_FILE
from offline_service.web.app import create_app
from tests.pg import database_url
from tests.store.old import LATEST, old_sqlite_database, versions_after

OLD = 3
PENDING = versions_after(OLD)
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


def test_status_and_upgrade_of_an_empty_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    """An empty PostgreSQL database is version 0 (PostgreSQL once failed on the missing
    ``schema_migrations`` table); a missing SQLite file is not created by ``db status`` but named.
    The upgrade applies the whole history on both."""
    where: list[str | Path] = ["--data", tmp_path / "data"]
    if backend == "postgresql":
        where += ["--database-url", database_url(tmp_path / "pg")]
    everything = versions_after(0)
    code, out, err = run(capsys, "db", "status", *where, "--json")
    assert code == 1
    if backend == "postgresql":
        assert json.loads(out) == {
            "schemaVersion": 0,
            "latest": LATEST,
            "pending": everything,
            "current": False,
        }
    else:
        assert json.loads(out)["code"] == "NOT_FOUND"
        assert f"no database at {tmp_path / 'data' / DB_FILE}" in err
        assert not (tmp_path / "data").exists()
    code, out, _ = run(capsys, "db", "upgrade", *where, "--json")
    assert code == 0
    assert json.loads(out) == {"applied": everything, "from": 0, "schemaVersion": LATEST}
    assert run(capsys, "db", "status", *where)[0] == 0


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
    assert done.stderr == f"error: STORAGE_ERROR: {BEHIND}\nnext: {next_step(Code.STORAGE_ERROR)}\n"
    assert "Uvicorn running" not in done.stdout + done.stderr


# -- db copy ---------------------------------------------------------------------------------------


def _demo_settings(root: Path) -> Settings:
    return Settings(
        data_dir=root / "data",
        keys_dir=root / "keys",
        password_cost=Cost.MINIMUM,
        public_url="http://testserver",
    )


def _licenses_seen(settings: Settings, email: str, password: str) -> list[Any]:
    """The licenses the portal's JSON API shows the user, from an app on ``settings``' database."""
    with TestClient(create_app(settings)) as client:  # its lifespan closes the app's store
        login = client.post(
            "/v1/accounts/login", json={"accountAlias": "default", "email": email, "password": password}
        )
        assert login.status_code == 200, login.text
        token = login.json()["accessToken"]
        response = client.get("/v1/licenses", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        seen: list[Any] = response.json()
        return seen


def test_copy_moves_the_demo_deployment_to_postgresql_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _demo_settings(tmp_path / "demo")
    demo = prepare_portal(settings, account_alias="default")  # what `make run` makes
    assert demo.password is not None
    before = _licenses_seen(settings, demo.email, demo.password)
    assert [x["key"] for x in before] == [demo.license.key]
    data, keys = settings.data_dir, settings.keys_dir
    pg_url = database_url(tmp_path / "pg")

    code, out, err = run(
        capsys, "db", "copy", "--from", f"sqlite://{data}", "--to", pg_url, "--keys", keys, "--json"
    )
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert list(report) == ["from", "to", "rows", "products", "tables"]  # as docs/ENGINE.md lists them
    assert all(list(t) == ["table", "rows", "digest"] for t in report["tables"])
    assert report["from"] == f"sqlite://{data}" and report["to"] == pg_url
    assert [t["table"] for t in report["tables"]] == list(TABLES)
    copied = {t["table"]: t["rows"] for t in report["tables"]}
    assert copied["licenses"] == copied["users"] == copied["products"] == 1
    assert report["rows"] == sum(copied.values()) and report["products"] == 1

    # The portal on the PostgreSQL copy shows the demo user the same licenses.
    assert _licenses_seen(replace(settings, database_url=pg_url), demo.email, demo.password) == before

    # And back to SQLite, in another folder, with the session that login made on PostgreSQL.
    back = tmp_path / "back"
    code, out, err = run(capsys, "db", "copy", "--from", pg_url, "--to", f"sqlite://{back}", "--keys", keys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"copied {pg_url} -> sqlite://{back}"
    summary = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert list(summary) == list(TABLES)
    assert int(summary["credentials"][0]) == copied["credentials"] + 1
    first = {t["table"]: [str(t["rows"]), t["digest"][:16]] for t in report["tables"]}
    for table in ("accounts", "products", "organizations", "licenses", "activations"):
        assert summary[table] == first[table], table
    total = sum(int(rows) for rows, _ in summary.values())
    assert lines[-1].startswith(f"{len(TABLES)} tables, {total} rows: counts and digests equal")


def test_copy_refusals_exit_1_with_their_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _demo_settings(tmp_path / "demo")
    prepare_portal(settings, account_alias="default")
    source, keys = f"sqlite://{settings.data_dir}", settings.keys_dir
    target = tmp_path / "target"

    # The keys directory of another deployment: the demo product has no key there.
    code, out, err = run(
        capsys, "db", "copy", "--from", source, "--to", f"sqlite://{target}", "--keys", tmp_path
    )
    assert code == 1 and err.startswith("error: KEY_ERROR: products without a loadable active signing key")
    assert not (target / DB_FILE).exists()

    code, out, _ = run(capsys, "db", "copy", "--from", source, "--to", f"sqlite://{target}", "--keys", keys)
    assert code == 0
    code, out, err = run(
        capsys, "db", "copy", "--from", source, "--to", f"sqlite://{target}", "--keys", keys, "--json"
    )
    assert code == 1 and json.loads(out)["code"] == "CONFLICT" and "not empty" in err

    old_sqlite_database(tmp_path / "old", OLD)
    code, out, err = run(
        capsys, "db", "copy", "--from", f"sqlite://{tmp_path / 'old'}", "--to", f"sqlite://{tmp_path / 'new'}"
    )
    assert code == 1 and err.startswith("error: STORAGE_ERROR: the source database schema is at version 3")
    assert "`offline-service db upgrade`" in err
    assert not (tmp_path / "new").exists()


def test_urls_are_shown_without_their_password() -> None:
    assert (
        shown_url("postgresql://app:s3cret@db.example:5432/offline")
        == "postgresql://app:***@db.example:5432/offline"
    )
    assert shown_url("postgresql://app@db.example/offline") == "postgresql://app@db.example/offline"
    assert shown_url("sqlite:///srv/data") == "sqlite:///srv/data"


def test_docs_engine_shows_db_copy_as_the_command_takes_it() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "ENGINE.md").read_text(encoding="utf-8")
    found = re.search(r"^offline-service (db copy .*)$", text, re.MULTILINE)
    assert found, "docs/ENGINE.md no longer shows a db copy command"
    args = build_parser().parse_args(shlex.split(found.group(1)))
    assert args.source == "sqlite://$PWD/data" and args.target.startswith("postgresql://")
    assert '`{"from", "to", "rows", "products", "tables": [{"table", "rows", "digest"}]}`' in " ".join(
        text.split()
    )
