"""What the browser tests share: the Chromium to drive, the running portal, the trial service and
the static trial form, the console recorder, and logging in as a person does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, Request
from playwright.sync_api import Response as PlaywrightResponse

from offline_service.store import SQLiteStore

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "CSP_REPORTER",
    "TRIAL_FORM",
    "Console",
    "FormSite",
    "Portal",
    "TrialService",
    "log_in",
    "vendor",
]

CHROMIUM = Path("/usr/bin/chromium")
TRIAL_FORM = Path(__file__).resolve().parents[2] / "trial_form"
# As root in a sandbox with no network: no sandboxing of its own, no GPU, and no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

# Every CSP violation also goes to the console, where the console listener sees it whatever page
# it happened on. Init scripts run through the DevTools protocol, so the CSP does not block this.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@dataclass(frozen=True)
class Portal:
    """The running server and the demo records ``serve --demo`` made."""

    url: str
    data: Path
    keys: Path
    log: Path
    banner: str
    account: str
    email: str
    password: str
    product_id: str
    license_key: str

    def used_activations(self) -> int:
        store = SQLiteStore(self.data)
        try:
            with store.read() as tx:
                account = tx.account_by_alias(self.account)
                assert account is not None
                lic = tx.license_by_key(account.id, self.license_key)
                assert lic is not None
                return lic.used_activations
        finally:
            store.close()


@dataclass(frozen=True)
class TrialService:
    """``offline-service serve`` for the trial form: its origin is in OFFLINE_SERVICE_TRIAL_ORIGINS,
    and so is ``null`` (pages opened from disk). One product offers 14-day trials, one none."""

    url: str
    keys: Path
    product_id: str  # "Trial App", 14-day trials
    no_trials_id: str  # "No Trials"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The form's configuration for this service; ``overrides`` replace its members."""
        products = [
            {"name": "Trial App", "id": self.product_id},
            {"name": "No Trials", "id": self.no_trials_id},
        ]
        return {"apiBaseUrl": self.url, "products": products, **overrides}


@dataclass(frozen=True)
class FormSite:
    """A static web server on its own 127.0.0.1 port (another origin than the service) that
    serves copies of trial_form/, each with its own config.js."""

    root: Path
    url: str

    def publish(self, name: str, config: dict[str, Any]) -> str:
        """trial_form/ as a vendor publishes it, at ``/<name>/``, with ``config``; its page's URL."""
        copy_form(self.root / name, config)
        return f"{self.url}/{name}/index.html"


def copy_form(directory: Path, config: dict[str, Any]) -> Path:
    """A copy of trial_form/ in ``directory`` with config.js setting ``config``; its index.html."""
    shutil.copytree(TRIAL_FORM, directory)
    (directory / "config.js").write_text(
        f"window.TRIAL_FORM_CONFIG = {json.dumps(config, indent=2)};\n", encoding="utf-8"
    )
    return directory / "index.html"


@dataclass
class Console:
    """What the page said on its console, and anything that went wrong while loading it."""

    problems: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    _answered: set[Request] = field(default_factory=set)

    def on_console(self, msg: ConsoleMessage) -> None:
        where = msg.location.get("url", "")
        line = f"{msg.type}: {msg.text} ({where})"
        self.messages.append(line)
        if msg.type in ("error", "warning"):
            self.problems.append(line)

    def on_response(self, response: PlaywrightResponse) -> None:
        self._answered.add(response.request)

    def on_request_failed(self, request: Request) -> None:
        line = f"failed to load {request.url}: {request.failure}"
        if request.failure == "net::ERR_ABORTED" and request in self._answered:
            # Its answer had arrived: Chromium now and then reports the end of such a load
            # (a fetch body read as a stream, a load a navigation overtook) as aborted.
            self.messages.append(f"{line} (after its answer)")
            return
        self.problems.append(line)


def log_in(page: Page, portal: Portal, *, password: str | None = None) -> None:
    """Fill in and send the login form of the page the browser is on."""
    page.get_by_label("Account").fill(portal.account)
    page.get_by_label("Email").fill(portal.email)
    page.get_by_label("Password").fill(password if password is not None else portal.password)
    page.get_by_role("button", name="Log in").click()


def vendor(portal: Portal, *args: str | Path, stdin: str | None = None, account: str | None = None) -> Any:
    """``offline-service ARGS --json`` on the running server's data, as the vendor would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    argv = [
        *(sys.executable, "-m", "offline_service.cli", *map(str, args)),
        *("--data", str(portal.data), "--keys", str(portal.keys)),
        *("--account", account or portal.account, "--json"),
    ]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
