"""A real server and a real browser: ``offline-service serve --demo`` in a child process on a free
127.0.0.1 port, and Debian's headless Chromium driven by Playwright. For the trial form, a second
server with trials open to the form's origin, and the form itself served from a third port.

Chromium comes from Debian's package (``make chromium``, which ``make test`` runs); Playwright's
own browser download is never used. Without /usr/bin/chromium these tests fail, they never skip.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from offline_service.cli.demo import DEMO_PRODUCT
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as admin
from offline_service.store import SQLiteStore
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CSP_REPORTER,
    Console,
    FormSite,
    Portal,
    TrialService,
)
from tests.servers import serve


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


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def form_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FormSite]:
    """A static file server for the trial form (what ``python3 -m http.server`` does), in a thread."""
    root = tmp_path_factory.mktemp("form-site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FormSite(root=root, url=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def trial_service(tmp_path_factory: pytest.TempPathFactory, form_site: FormSite) -> Iterator[TrialService]:
    """``offline-service serve`` with trials open to the form's origin and to ``null``."""
    root = tmp_path_factory.mktemp("trial-service")
    data, keys = root / "data", root / "keys"
    store, keyring, now = SQLiteStore(data), Keyring(keys), int(time.time())
    try:
        account, _ = admin.ensure_account(store, "default", now=now)
        product = admin.create_product(store, keyring, account, name="Trial App", now=now, trial_days=14)
        no_trials = admin.create_product(store, keyring, account, name="No Trials", now=now)
    finally:
        store.close()
    env = {
        "OFFLINE_SERVICE_TRIAL_ORIGINS": f"{form_site.url},null",
        # Every test's trials come from 127.0.0.1: the limits are the in-process tests' business.
        "OFFLINE_SERVICE_TRIAL_RATE": "1000",
        "OFFLINE_SERVICE_TRIAL_DAILY_CAP": "1000",
    }
    with serve(root, "--data", str(data), "--keys", str(keys), env=env) as url:
        yield TrialService(url=url, keys=keys, product_id=product.id, no_trials_id=no_trials.id)


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
