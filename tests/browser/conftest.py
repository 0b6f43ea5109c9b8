"""A real server and a real browser: ``offline-service serve --demo`` in a child process on a free
127.0.0.1 port, and Debian's headless Chromium driven by Playwright.

Chromium comes from Debian's package (``make chromium``, which ``make test`` runs); Playwright's
own browser download is never used. Without /usr/bin/chromium these tests fail, they never skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from offline_service.cli.demo import DEMO_PRODUCT
from offline_service.store import SQLiteStore
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, CSP_REPORTER, Console, Portal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url}/healthz within 60 s:\n{log.read_text()}")


def _credentials(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def _demo_product(data: Path, alias: str) -> tuple[str, str]:
    store = SQLiteStore(data)
    try:
        with store.read() as tx:
            account = tx.account_by_alias(alias)
            assert account is not None
            product = next(p for p in tx.products(account.id) if p.name == DEMO_PRODUCT)
            return product.id, tx.licenses(account.id, product.id)[0].key
    finally:
        store.close()


@contextlib.contextmanager
def serve(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``offline-service serve ARGS`` in a child process on a free 127.0.0.1 port; yields its URL.
    Its output goes to ``root/banner.txt`` and its log to ``root/server.log``. Stopped with Ctrl+C at
    the end, after which it must have logged no traceback and exited cleanly."""
    log, banner = root / "server.log", root / "banner.txt"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    child_env.update(env or {}, PYTHONUNBUFFERED="1")
    for _attempt in range(3):  # another process may take the free port before the server binds it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "offline_service.cli", "serve", *args, "--port", str(port)]
        with open(banner, "wb") as out, open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env)
        try:
            _wait_ready(proc, url, log)
            break
        except RuntimeError:
            proc.kill()
            proc.wait()
            if "address already in use" not in log.read_text().lower():
                raise
    else:
        raise RuntimeError("no free port for the server after 3 attempts")
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Whatever the pages showed, the server must not have failed underneath them.
    assert "Traceback" not in log.read_text(), log.read_text()
    assert proc.returncode == 0, log.read_text()


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """What ``make run`` runs, on a free port: the demo records, then the portal."""
    root = tmp_path_factory.mktemp("portal")
    data, keys = root / "data", root / "keys"
    with serve(root, "--demo", "--data", str(data), "--keys", str(keys)) as url:
        creds = _credentials(data / "demo-credentials.txt")
        product_id, license_key = _demo_product(data, creds["account"])
        yield Portal(
            url=url,
            data=data,
            keys=keys,
            log=root / "server.log",
            banner=(root / "banner.txt").read_text(encoding="utf-8"),
            account=creds["account"],
            email=creds["email"],
            password=creds["password"],
            product_id=product_id,
            license_key=license_key,
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}; the browser tests need it. Run `make chromium`"
            " (part of `make test`), or `apt-get install chromium`. Never `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser profile (no cookies) with the console, page errors and failed loads recorded."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.on("console", console.on_console)
    pg.on("pageerror", lambda exc: console.problems.append(f"page error: {exc}"))
    pg.on("response", console.on_response)
    pg.on("requestfailed", console.on_request_failed)
    try:
        yield pg
    finally:
        context.close()
