"""What the browser tests share: the Chromium to drive, the running portal, the console recorder,
and logging in as a person does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, Request
from playwright.sync_api import Response as PlaywrightResponse

from offline_service.store import SQLiteStore

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "CSP_REPORTER", "Console", "Portal", "log_in"]

CHROMIUM = Path("/usr/bin/chromium")
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
