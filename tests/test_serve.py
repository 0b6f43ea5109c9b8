"""``offline-service serve`` and the demo portal records ``make run`` makes (``serve --demo``)."""

from __future__ import annotations

import logging.config
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from offline_service.accounts.auth import authenticate
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.cli import main
from offline_service.cli.demo import DEMO_EMAIL, DEMO_ORGANIZATION, DEMO_PRODUCT, prepare_portal
from offline_service.fileformat.keyring import Keyring
from offline_service.ids import email_key
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.web import workers
from offline_service.web.logs import RedactSecrets


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys", password_cost=Cost.MINIMUM)


def test_first_run_makes_a_user_whose_password_is_stored_only_as_a_hash(tmp_path: Path) -> None:
    demo = prepare_portal(settings(tmp_path), account_alias="default")
    assert demo.password is not None and len(demo.password) >= 20
    assert demo.credentials_file == tmp_path / "data" / "demo-credentials.txt"
    assert demo.credentials_file.stat().st_mode & 0o777 == 0o600
    text = demo.credentials_file.read_text()
    assert f"password: {demo.password}\n" in text and f"email: {DEMO_EMAIL}\n" in text

    store = SQLiteStore(tmp_path / "data")
    try:
        with store.read() as tx:
            user = tx.user_by_email(demo.account.id, email_key(DEMO_EMAIL))
            assert user is not None
            org = tx.organization_by_name(demo.account.id, DEMO_ORGANIZATION)
            visible = tx.visible_license_ids(demo.account.id, user)
        assert user.role is Role.ORGANIZATION_ADMIN and org is not None and user.organization_id == org.id
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert demo.password not in user.password_hash
        # The demo license belongs to the organization, so its admin sees it in the portal.
        assert demo.license.owner_organization_id == org.id and demo.license.id in visible
        assert (tmp_path / "data" / "offline-service.sqlite3").read_bytes().find(demo.password.encode()) == -1
        logged_in = authenticate(
            store,
            account_alias="default",
            email=DEMO_EMAIL,
            password=demo.password,
            address="127.0.0.1",
            now=int(time.time()),
            cost=Cost.MINIMUM,
        )
        assert logged_in.id == user.id
    finally:
        store.close()


def test_second_run_reuses_everything_and_shows_no_password(tmp_path: Path) -> None:
    first = prepare_portal(settings(tmp_path), account_alias="default")
    saved = first.credentials_file.read_text()
    again = prepare_portal(settings(tmp_path), account_alias="default")
    assert again.password is None
    assert (again.account.id, again.product.id, again.license.id) == (
        first.account.id,
        first.product.id,
        first.license.id,
    )
    assert again.credentials_file.read_text() == saved


def test_a_data_dir_from_the_older_demo_gets_a_license_the_organization_owns(tmp_path: Path) -> None:
    s = settings(tmp_path)
    store = SQLiteStore(s.data_dir)
    try:
        account, _ = admin.ensure_account(store, "default", now=1)
        product = admin.create_product(store, Keyring(s.keys_dir), account, name=DEMO_PRODUCT, now=1)
        old = admin.create_license(
            store, account, product_id=product.id, allowed_activations=3, allowed_deactivations=-1, now=1
        )
    finally:
        store.close()
    demo = prepare_portal(s, account_alias="default")
    assert demo.product.id == product.id
    assert demo.license.id != old.id and demo.license.owner_organization_id is not None


def test_serve_runs_uvicorn_with_the_app_and_safe_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    monkeypatch.delenv("OFFLINE_SERVICE_TRIAL_ORIGINS", raising=False)
    data, keys = str(tmp_path / "d"), str(tmp_path / "k")
    assert main(["serve", "--demo", "--data", data, "--keys", keys, "--port", "8123"]) == 0
    app, kw = calls[0]
    assert app.state.services.settings.data_dir == Path(data)
    # The demo's mails link to where it listens, unless OFFLINE_SERVICE_PUBLIC_URL says otherwise.
    assert app.state.services.settings.public_url == "http://127.0.0.1:8123"
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123 and kw.get("workers", 1) == 1
    assert kw["proxy_headers"] is False and kw["log_level"] == "info"
    # The C event loop and parser, named (auto resolved: they are installed with the server extra).
    assert (kw["loop"], kw["http"]) == ("uvloop", "httptools")
    out = capsys.readouterr().out
    assert "log in at http://127.0.0.1:8123/login" in out and "password  " in out
    assert (
        "trials    14 days; trial form pages allowed from no page yet (set OFFLINE_SERVICE_TRIAL_ORIGINS)"
        in out
    )

    monkeypatch.setenv("OFFLINE_SERVICE_TRIAL_ORIGINS", "http://127.0.0.1:8001,null")
    assert main(["serve", "--demo", "--data", data, "--keys", keys, "--host", "0.0.0.0"]) == 0
    assert calls[1][1]["host"] == "0.0.0.0"
    out = capsys.readouterr().out
    # A wildcard address is not one a browser can open; the file holds the password now.
    assert "log in at http://127.0.0.1:8000/login" in out
    assert f"password  in {Path(data) / 'demo-credentials.txt'}" in out
    assert "trials    14 days; trial form pages allowed from http://127.0.0.1:8001, null" in out
    assert calls[1][0].state.services.settings.public_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("OFFLINE_SERVICE_PUBLIC_URL", "https://portal.example")
    assert main(["serve", "--demo", "--data", data, "--keys", keys]) == 0
    assert calls[2][0].state.services.settings.public_url == "https://portal.example"
    for app, _ in calls:  # its lifespan, which closes the store, never ran here
        app.state.services.close()


def test_serve_keeps_set_password_tokens_out_of_the_access_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw) or app.state.services.close())
    assert main(["serve", "--data", str(tmp_path / "d"), "--keys", str(tmp_path / "k")]) == 0
    config = calls[0]["log_config"]
    for handler in config["handlers"].values():
        assert handler["filters"] == ["request_id", "redact"]
    assert config["loggers"]["offline_service"] == {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    # uvicorn's own text format; its access line ends with the request's id.
    assert config["formatters"]["default"] == uvicorn.config.LOGGING_CONFIG["formatters"]["default"]
    assert config["formatters"]["access"]["fmt"].endswith("[request %(request_id)s]")
    # The filter at work, on a record shaped like uvicorn's access log line.
    logging.config.dictConfig(config)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", "/set-password?token=SECRET-1&x=1", "1.1", 200
        )
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    out = capsys.readouterr().out
    assert '"GET /set-password?token=[redacted]&x=1 HTTP/1.1" 200 OK [request -]' in out
    assert "SECRET" not in out
    # A message with the token in its text is redacted too.
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "GET /set-password?a=b&token=SECRET-2 done", None, None
    )
    assert (
        RedactSecrets().filter(record)
        and record.getMessage() == "GET /set-password?a=b&token=[redacted] done"
    )


def test_serve_with_workers_hands_uvicorn_the_factory_and_the_settings_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    supervised: list[tuple[uvicorn.Config, int]] = []
    seen_by_workers: list[Settings] = []

    class Supervisor:
        def __init__(self, config: uvicorn.Config, count: int) -> None:
            supervised.append((config, count))

        def run(self) -> int:
            seen_by_workers.append(Settings.from_env())  # what a worker reads while serve runs
            return 0

    monkeypatch.setattr(workers, "Workers", Supervisor)
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    for name in (
        "OFFLINE_SERVICE_DATA",
        "OFFLINE_SERVICE_KEYS",
        "OFFLINE_SERVICE_PUBLIC_URL",
        "OFFLINE_SERVICE_LOG_FORMAT",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        monkeypatch.setenv(name, "restored after the test")
        monkeypatch.delenv(name)
    data, keys = tmp_path / "d", tmp_path / "k"
    argv = ["serve", "--demo", "--workers", "2", "--data", str(data), "--keys", str(keys), "--port", "8124"]
    argv += ["--log-format", "json"]
    monkeypatch.setenv("OFFLINE_SERVICE_SERVER_LOOP", "asyncio")
    monkeypatch.setenv("OFFLINE_SERVICE_SERVER_HTTP", "h11")
    assert main(argv) == 0
    # On Linux, the project's supervisor: a socket per worker (tests/web/test_workers.py).
    assert workers.port_sharing() and not calls
    config, count = supervised[0]
    assert config.app == "offline_service.web.app:app_from_env" and config.factory is True and count == 2
    assert config.port == 8124 and config.proxy_headers is False and config.server_header is False
    # Every worker runs the loop and parser the settings name.
    assert (config.loop, config.http) == ("asyncio", "h11")
    assert isinstance(config.log_config, dict)
    assert config.log_config["handlers"]["access"]["filters"] == ["request_id", "redact"]
    # The demo's records were made here, once; a worker builds the same settings from its environment.
    assert "log in at http://127.0.0.1:8124/login" in capsys.readouterr().out
    [worker] = seen_by_workers
    assert worker.data_dir == data and worker.keys_dir == keys
    assert worker.public_url == "http://127.0.0.1:8124"
    # The workers log as the parent was told, and sum their metrics in a directory of this run,
    # removed when it ends.
    assert worker.log_format == "json"
    assert worker.metrics_dir is not None and worker.metrics_dir.name.startswith("offline-service-metrics-")
    assert not worker.metrics_dir.exists()
    assert config.log_config["formatters"] == {"json": {"()": "offline_service.web.logs.JsonFormatter"}}
    # Where ports cannot be shared, uvicorn's own workers, with the same settings.
    monkeypatch.setattr(workers, "port_sharing", lambda: False)
    assert main(["serve", "--workers", "2", "--data", str(data), "--keys", str(keys), "--port", "8124"]) == 0
    app, kw = calls[0]
    assert app == "offline_service.web.app:app_from_env" and kw["factory"] is True and kw["workers"] == 2
    assert (kw["loop"], kw["http"]) == ("asyncio", "h11")
    assert kw["log_config"]["handlers"]["access"]["filters"] == ["request_id", "redact"]
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--workers", "0"])
    assert exit_.value.code == 2
