"""``offline-service config``, and the data folder and database resolved one way by every verb:
only ``init`` creates them, the others name the path they looked at and create nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from offline_service.cli import main
from offline_service.settings import Settings
from offline_service.store import open_store
from offline_service.store.sqlite import DB_FILE
from tests.pg import database_url


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("OFFLINE_SERVICE_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def everything_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_config_names_each_value_and_its_source_and_masks_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_KEYS", "/from/env/keys")
    monkeypatch.setenv("OFFLINE_SERVICE_DATABASE_URL", "postgresql://app:hunter2@db.example/licenses")
    monkeypatch.setenv("OFFLINE_SERVICE_TRIAL_RATE", "4")
    code, out, err = run(capsys, "config", "--data", tmp_path / "elsewhere", "--json")
    assert (code, err) == (0, "")
    assert "hunter2" not in out
    found = json.loads(out)
    rows = {r["name"]: r for r in found["settings"]}
    assert rows["OFFLINE_SERVICE_DATA"] == {
        "name": "OFFLINE_SERVICE_DATA",
        "flag": "--data",
        "value": str(tmp_path / "elsewhere"),
        "source": "flag",
        "secret": False,
    }
    assert (rows["OFFLINE_SERVICE_KEYS"]["value"], rows["OFFLINE_SERVICE_KEYS"]["source"]) == (
        "/from/env/keys",
        "environment",
    )
    assert rows["OFFLINE_SERVICE_DATABASE_URL"]["value"] == "postgresql://app:***@db.example/licenses"
    assert rows["OFFLINE_SERVICE_DATABASE_URL"]["secret"] is True
    assert (rows["OFFLINE_SERVICE_TRIAL_RATE"]["value"], rows["OFFLINE_SERVICE_TRIAL_RATE"]["source"]) == (
        "4",
        "environment",
    )
    assert (
        rows["OFFLINE_SERVICE_SESSION_HOURS"]["value"],
        rows["OFFLINE_SERVICE_SESSION_HOURS"]["source"],
    ) == (
        "12",
        "default",
    )
    assert found["database"] == {
        "backend": "postgresql",
        "location": "postgresql://app:***@db.example/licenses",
        "exists": None,
    }

    code, out, err = run(capsys, "config", "--keys", "/from/flag")
    assert (code, err) == (0, "")
    assert "hunter2" not in out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["OFFLINE_SERVICE_KEYS"].endswith("/from/flag  (flag --keys)")
    assert lines["OFFLINE_SERVICE_TRIAL_RATE"].endswith("4  (environment)")
    assert lines["OFFLINE_SERVICE_PUBLIC_URL"].endswith("(unset)  (default)")


def test_config_opens_no_database_and_creates_nothing(
    _empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "config")
    assert code == 0
    database = _empty_cwd / "data" / DB_FILE
    assert f"database: SQLite file {database} (not there yet" in out
    assert everything_under(_empty_cwd) == []


def test_config_refuses_a_setting_the_server_would_refuse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_DATABASE_POOL_SIZE", "0")
    code, out, err = run(capsys, "config")
    assert (code, out) == (1, "")
    assert err.startswith("error: INVALID_ARGUMENT: OFFLINE_SERVICE_DATABASE_POOL_SIZE ")


# Commands that must find a database, with the arguments they need (none of them exist: the
# database is missing first).
COMMANDS = [
    ["product", "list"],
    ["license", "list"],
    ["license", "show", "ABCD-EFGH"],
    ["audit"],
    ["db", "status"],
    ["account", "show"],
    ["release", "list"],
    ["keys", "jwks"],
    ["product", "create", "--name", "App"],
    ["org", "create", "--name", "Org"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_without_a_database_a_command_names_the_file_and_creates_nothing(
    command: list[str], _empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *command)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: NOT_FOUND: no database at {_empty_cwd / 'data' / DB_FILE}; "), err
    assert "--data DIR or OFFLINE_SERVICE_DATA" in err
    assert everything_under(_empty_cwd) == []


def test_the_data_directory_of_the_environment_is_the_one_named(
    tmp_path: Path, _empty_cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_DATA", str(tmp_path / "from-env"))
    code, _, err = run(capsys, "license", "list")
    assert code == 1
    assert f"no database at {tmp_path / 'from-env' / DB_FILE};" in err
    code, _, err = run(capsys, "license", "list", "--data", tmp_path / "from-flag")
    assert code == 1
    assert f"no database at {tmp_path / 'from-flag' / DB_FILE};" in err
    assert everything_under(tmp_path) == ["cwd"]


def test_an_empty_database_file_stays_empty(_empty_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (_empty_cwd / "data").mkdir()
    (_empty_cwd / "data" / DB_FILE).touch()
    code, _, err = run(capsys, "product", "list")
    assert code == 1
    assert err.startswith(f"error: NOT_FOUND: no database at {_empty_cwd / 'data' / DB_FILE} (the file holds")
    assert everything_under(_empty_cwd) == ["data", f"data/{DB_FILE}"]
    assert (_empty_cwd / "data" / DB_FILE).stat().st_size == 0


def test_init_creates_the_database_then_the_others_find_it(
    _empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init")[0] == 0
    assert (_empty_cwd / "data" / DB_FILE).is_file()
    code, out, err = run(capsys, "product", "list", "--json")
    assert (code, err, json.loads(out)) == (0, "", [])


def test_a_missing_account_names_the_database_it_looked_in(
    _empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init")[0] == 0
    code, out, err = run(capsys, "product", "list", "--account", "other")
    assert (code, out) == (1, "")
    assert err.startswith(
        f"error: NOT_FOUND: no account 'other' in the SQLite database {_empty_cwd / 'data' / DB_FILE};"
        " run `offline-service init --account other` first, or point at another data directory with --data"
    ), err


def test_an_empty_postgresql_database_is_given_no_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database_url(tmp_path)
    code, out, err = run(capsys, "license", "list", "--database-url", url)
    assert (code, out) == (1, "")
    assert "error: NOT_FOUND: the database postgresql://" in err
    assert "holds no offline-service schema; run `offline-service init`" in err
    store = open_store(Settings(database_url=url), migrate=False)
    try:
        assert store.schema_version == 0
    finally:
        store.close()
    assert run(capsys, "init", "--database-url", url)[0] == 0
    assert run(capsys, "license", "list", "--database-url", url)[0] == 0


def test_a_product_without_keys_names_the_keys_directory_looked_in(
    tmp_path: Path, _empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init")[0] == 0
    code, out, _ = run(capsys, "product", "create", "--name", "App", "--json")
    assert code == 0
    product = json.loads(out)["id"]
    code, _, err = run(capsys, "keys", "rotate", "--product", product, "--keys", tmp_path / "other-keys")
    assert code == 1
    first, then = err.splitlines()
    assert first == f"error: NOT_FOUND: product {product} has no keys in {tmp_path / 'other-keys'}"
    assert then.startswith("next: ")
    assert not (tmp_path / "other-keys").exists()
