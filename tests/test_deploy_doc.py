"""docs/DEPLOY.md, run as written: its nginx config in front of two real ``offline-service serve``
processes on one fresh PostgreSQL database, and its backup commands. The doc marks each block the
tests run with ``<!-- tested: NAME -->``; the only changes made to a block are the swaps listed
here (ports, paths, the upload bound), each of which must be found in it."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest

from offline_service import settings as settings_module
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import SQLiteStore, open_store
from offline_service.store.sqlite import DB_FILE
from tests import people
from tests.factories import Machine
from tests.pg import database_url
from tests.servers import free_port, serve

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "DEPLOY.md"
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery"
PRODUCT = "Deploy Test App"
CLIENT = "127.0.0.2"  # the test client's own address: not nginx's, which is 127.0.0.1
SPOOFED = "203.0.113.7"  # what the client claims to be in X-Forwarded-For
UPLOAD_MB = 1  # the services' upload bound here (the doc's default is 64)
TRIAL_RATE = 2  # trial requests a minute per address
TIMEOUT = 60.0  # seconds for any one request or wait: the tests are bounded however things behave


def doc_block(name: str) -> str:
    """The code block the doc marks ``<!-- tested: name -->``."""
    found = re.findall(rf"<!-- tested: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", DOC.read_text(), re.S)
    assert len(found) == 1, f"docs/DEPLOY.md has {len(found)} blocks marked 'tested: {name}'"
    return str(found[0])


def swapped(text: str, swaps: dict[str, str]) -> str:
    """``text`` with each key replaced by its value; every key must be there."""
    for old, new in swaps.items():
        assert old in text, f"docs/DEPLOY.md's block no longer holds {old!r}"
        text = text.replace(old, new)
    return text


def _run(command: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    """A shell command of the doc, which must succeed."""
    done = subprocess.run(
        ["sh", "-c", command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)


# -- the deployment: two instances behind nginx ---------------------------------------------------


@dataclass
class Deployment:
    https: str
    http: str
    database: str
    tls: ssl.SSLContext
    logs: list[Path]
    license_key: str
    product_id: str

    def client(self, *, spoof: bool = True) -> httpx.Client:
        """A client on the address CLIENT that claims, when ``spoof``, to be SPOOFED."""
        transport = httpx.HTTPTransport(local_address=CLIENT, verify=self.tls)
        headers = {"x-forwarded-for": SPOOFED} if spoof else {}
        return httpx.Client(base_url=self.https, transport=transport, headers=headers, timeout=TIMEOUT)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database, autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())


def _populate(settings: Settings) -> tuple[str, str]:
    """One account with a trial product, a portal user and the user's license."""
    store = open_store(settings)
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        product = admin.create_product(
            store, Keyring(settings.keys_dir), account, name=PRODUCT, now=now, trial_days=14
        )
        people.create_user(
            store, account, email=EMAIL, role=Role.USER, password=PASSWORD, cost=Cost.MINIMUM, now=now
        )
        license = admin.create_license(
            store, account, product_id=product.id, allowed_activations=5, allowed_deactivations=1,
            owner_user_email=EMAIL, now=now,
        )  # fmt: skip
        return license.key, product.id
    finally:
        store.close()


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the doc's TLS server, made real)."""
    cert, key = folder / "portal.pem", folder / "portal.key"
    _run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
        f" -subj /CN=portal.example.com -addext subjectAltName=IP:127.0.0.1 -keyout {key} -out {cert}",
        folder,
    )
    return cert, key


def _nginx_conf(prefix: Path, site: str) -> Path:
    """The doc's site inside a minimal nginx.conf whose every path is under ``prefix``, so that
    nginx runs without touching /etc, /var/log or /var/lib."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / name).mkdir(parents=True, exist_ok=True)
    # As root, nginx's workers would run as "nobody", who cannot enter the test's folders.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\nerror_log {prefix}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log {prefix}/access.log;\n"
        + "".join(f"  {n}_temp_path {prefix}/tmp/{n.split('_')[0]};\n" for n in ("client_body", "proxy"))
        + "".join(f"  {n}_temp_path {prefix}/tmp/{n};\n" for n in ("fastcgi", "uwsgi", "scgi"))
        + site
        + "\n}\n"
    )
    return conf


def _wait(url: str, tls: ssl.SSLContext, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", verify=tls, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"nginx did not answer {url}/healthz:\n{log.read_text()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None or shutil.which("openssl") is None:
        pytest.fail("these tests need nginx and openssl: `make nginx` installs Debian's")
    root = tmp_path_factory.mktemp("deploy")
    data, keys = root / "data", root / "keys"
    url = database_url(root / "database")
    settings = Settings(data_dir=data, keys_dir=keys, database_url=url)
    license_key, product_id = _populate(settings)
    env = {
        "OFFLINE_SERVICE_DATABASE_URL": url,
        "OFFLINE_SERVICE_MAX_UPLOAD_MB": str(UPLOAD_MB),
        "OFFLINE_SERVICE_TRIAL_RATE": str(TRIAL_RATE),
    }
    prefix = root / "nginx"
    prefix.mkdir()
    cert, key = _certificate(prefix)
    tls = ssl.create_default_context(cafile=str(cert))
    with ExitStack() as stack:
        ports, logs = [], []
        for name in ("one", "two"):
            (root / name).mkdir()
            # As the doc starts them (the port is the helper's own free one).
            args = ("--data", str(data), "--keys", str(keys), "--proxy-headers")
            instance = stack.enter_context(
                serve(root / name, *args, "--forwarded-allow-ips", "127.0.0.1", env=env)
            )
            ports.append(int(instance.rsplit(":", 1)[1]))
            logs.append(root / name / "banner.txt")  # uvicorn's access log goes to stdout
        http_port, https_port = free_port(), free_port()
        site = swapped(
            doc_block("nginx"),
            {
                "server 127.0.0.1:8001 ": f"server 127.0.0.1:{ports[0]} ",
                "server 127.0.0.1:8002 ": f"server 127.0.0.1:{ports[1]} ",
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                "/etc/ssl/certs/portal.example.com.pem": str(cert),
                "/etc/ssl/private/portal.example.com.key": str(key),
                "client_max_body_size 65m;": f"client_max_body_size {UPLOAD_MB + 1}m;",
            },
        )
        conf = _nginx_conf(prefix, site)
        argv = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
        _run(" ".join([*argv, "-t"]), prefix)
        out = prefix / "nginx.out"
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                [*argv, "-g", f"daemon off; pid {prefix}/nginx.pid;"], stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            https = f"https://127.0.0.1:{https_port}"
            _wait(https, tls, proc, prefix / "error.log")
            yield Deployment(
                https=https,
                http=f"http://127.0.0.1:{http_port}",
                database=url,
                tls=tls,
                logs=logs,
                license_key=license_key,
                product_id=product_id,
            )
        finally:
            proc.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_http_is_sent_to_https(deployment: Deployment) -> None:
    answer = httpx.get(f"{deployment.http}/login", timeout=TIMEOUT)
    assert answer.status_code == 301
    assert answer.headers["location"].startswith("https://")


def test_ready_through_nginx_and_both_instances_serve(deployment: Deployment) -> None:
    with deployment.client() as client:
        for _ in range(4):
            answer = client.get("/readyz")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "ready"
    for log in deployment.logs:
        assert "/readyz" in log.read_text(), "nginx sent every request to one instance"


def test_portal_login_and_a_page_seen_from_the_real_client_address(deployment: Deployment) -> None:
    with deployment.client() as client:
        form = client.get("/login")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        answer = client.post(
            "/login",
            data={"csrf": csrf.group(1), "account": "default", "email": EMAIL, "password": PASSWORD},
        )
        assert answer.status_code == 303, answer.text
        # Over https (X-Forwarded-Proto), the session cookie is marked Secure.
        assert "secure" in answer.headers["set-cookie"].lower()
        page = client.get("/licenses")
        assert page.status_code == 200
        assert re.search(f"<td[^>]*>{PRODUCT}</td>", page.text)  # the user's license, in the list
    addresses = {row[0] for row in deployment.rows("SELECT address FROM credentials")}
    assert CLIENT in addresses
    assert SPOOFED not in addresses


def test_spoofed_forwarded_for_does_not_escape_the_trial_rate(deployment: Deployment) -> None:
    now = int(time.time())
    codes = []
    with deployment.client(spoof=False) as client:
        for n in range(TRIAL_RATE + 1):
            # Each request claims another address: were any believed, none would be limited.
            request = Machine(fingerprint=f"fp-spoof-{n}").request(
                Kind.TRIAL, deployment.product_id, issued_at=now
            )
            answer = client.post(
                "/v1/trial-activations/offline-activate",
                json={"productId": deployment.product_id, "offlineRequest": request.decode()},
                headers={"x-forwarded-for": f"203.0.113.{n + 1}"},
            )
            codes.append((answer.status_code, answer.json().get("code")))
    assert codes[:TRIAL_RATE] == [(200, None)] * TRIAL_RATE, codes
    assert codes[TRIAL_RATE] == (429, "RATE_LIMITED"), codes
    keys = {row[0] for row in deployment.rows("SELECT address_key FROM trial_limits")}
    assert CLIENT in keys
    assert not any(str(key).startswith("203.0.113.") for key in keys), keys


def _batch(deployment: Deployment, size: int) -> bytes:
    """A stored zip of ``size`` bytes: one activation request for the user's license, and files
    of random bytes (rejected one by one, not as a whole) to make up the size."""
    now = int(time.time())
    request = Machine(fingerprint=f"fp-batch-{secrets.token_hex(4)}").request(
        Kind.ACTIVATION, deployment.product_id, license_key=deployment.license_key, issued_at=now
    )

    def build(pad: int) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("machine.request", request)
            rest = pad
            for n in range(pad // 16_000 + 1):
                zf.writestr(f"padding-{n}.request", secrets.token_bytes(min(rest, 16_000)))
                rest -= 16_000
        return buffer.getvalue()

    body = build(size)
    body = build(size - (len(body) - size))
    assert abs(len(body) - size) < 200, len(body)
    return body


def test_uploads_near_the_bound_pass_and_over_it_the_service_refuses(deployment: Deployment) -> None:
    bound = UPLOAD_MB * 1024 * 1024
    with deployment.client() as client:
        login = client.post(
            "/v1/accounts/login", json={"accountAlias": "default", "email": EMAIL, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        auth = {"authorization": f"Bearer {login.json()['accessToken']}", "content-type": "application/zip"}
        near = client.post("/v1/batches", content=_batch(deployment, bound - 2048), headers=auth)
        assert near.status_code == 200, near.text
        assert near.headers["x-accepted"] == "1"
        over = client.post("/v1/batches", content=_batch(deployment, bound + 2048), headers=auth)
        assert over.status_code == 413
        assert over.json()["code"] == "REQUEST_TOO_LARGE"
        # Everything else: the service's own 64 KiB bound answers, under nginx's 128k.
        big = client.post("/v1/activations/offline-activate", content=b"x" * 100_000, headers=auth)
        assert big.status_code == 413
        assert big.json()["code"] == "REQUEST_TOO_LARGE"


# -- backups --------------------------------------------------------------------------------------


def test_sqlite_online_backups_restore_to_an_identical_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SQLiteStore(data)
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        admin.ensure_account(store, "second", now=now)
        for name in ("sqlite-backup", "sqlite-backup-python"):
            # The store is open and its last writes are in the WAL: an online backup.
            _run(doc_block(name), tmp_path)
            backup = tmp_path / "offline-service-backup.sqlite3"
            live, copy = sqlite3.connect(data / DB_FILE), sqlite3.connect(backup)
            try:
                assert list(copy.iterdump()) == list(live.iterdump())
            finally:
                live.close()
                copy.close()
            restored = tmp_path / f"restored-{name}"
            restored.mkdir()
            shutil.copyfile(backup, restored / DB_FILE)
            backup.unlink()
            again = SQLiteStore(restored)
            try:
                with again.read() as tx:
                    assert tx.account_by_alias("default") == account
            finally:
                again.close()
    finally:
        store.close()


def _contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            )
        ]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def test_pg_dump_restores_to_the_same_rows(tmp_path: Path) -> None:
    source, target = database_url(tmp_path / "source"), database_url(tmp_path / "target")
    settings = Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys", database_url=source)
    _populate(settings)
    _run(doc_block("pg-backup"), tmp_path, {"OFFLINE_SERVICE_DATABASE_URL": source})
    assert (tmp_path / "offline-service.dump").stat().st_size > 0
    _run(doc_block("pg-restore"), tmp_path, {"OFFLINE_SERVICE_DATABASE_URL": target})
    before, after = _contents(source), _contents(target)
    assert before["licenses"] and before["users"]
    assert after == before
    # The restored database serves: its schema is current for this release.
    store = open_store(Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys", database_url=target))
    try:
        assert store.pending_migrations() == []
    finally:
        store.close()


def test_db_copy_moves_a_sqlite_deployment_to_postgresql(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    sqlite = Settings(data_dir=srv / "data", keys_dir=srv / "keys")
    _populate(sqlite)
    target = database_url(tmp_path / "target")
    command = swapped(doc_block("db-copy"), {"/srv/offline-service": str(srv)})
    # The installed command, as an operator's shell finds it (the test runs in the project's venv).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    _run(command, tmp_path, {"OFFLINE_SERVICE_DATABASE_URL": target, "PATH": path})
    copied = _contents(target)
    assert copied["licenses"] and copied["users"] and copied["products"]
    source = sqlite3.connect(srv / "data" / DB_FILE)
    try:
        for table, rows in copied.items():
            if table != "schema_migrations":
                (count,) = source.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
                assert len(rows) == count, table
    finally:
        source.close()
    store = open_store(Settings(data_dir=srv / "data", keys_dir=srv / "keys", database_url=target))
    try:
        assert store.pending_migrations() == []
        with store.read() as tx:
            account = tx.account_by_alias("default")
            assert account is not None
    finally:
        store.close()


# -- settings -------------------------------------------------------------------------------------


def test_the_settings_file_reads_in_a_shell_and_every_name_is_a_setting(tmp_path: Path) -> None:
    passphrase = tmp_path / "key-passphrase"
    passphrase.write_text("a passphrase\n")
    block = swapped(doc_block("env"), {"/etc/offline-service/key-passphrase": str(passphrase)})
    (tmp_path / "env").write_text(block + "\n")
    shown = subprocess.run(
        ["sh", "-c", "set -a; . ./env; set +a; env"],
        cwd=tmp_path,
        env={},
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert shown.returncode == 0, shown.stderr
    env = dict(line.split("=", 1) for line in shown.stdout.decode().splitlines() if "=" in line)
    names = {line.split("=", 1)[0] for line in block.splitlines()}
    known = Path(settings_module.__file__).read_text()
    assert all(name in known for name in names - {"PGPASSFILE"}), names
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://offline_service@db.internal:5432/offline_service"
    assert settings.database_pool_size == 10
    assert settings.mail_from == "License portal <noreply@portal.example.com>"
    assert settings.public_url == "https://portal.example.com"
    assert settings.trial_origins == ("https://www.example.com",)
    assert settings.max_upload_bytes == 64 * 1024 * 1024
    assert settings.key_passphrase == b"a passphrase"
    assert (settings.data_dir, settings.keys_dir) == (
        Path("/srv/offline-service/data"),
        Path("/srv/offline-service/keys"),
    )
