"""The organization admin's pages in a real browser: the demo admin adds a user and a group, links
the demo license to the group and puts the user in it; the new user sets a password from the link
in the mail (read from <data>/mail, as the default mail sender writes it), logs in in a browser of
their own, finds the license on the licenses page, and downloads a release file of the license's
product that the vendor published meanwhile, whose SHA-256 matches."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from offline_service.web.kit import mask_key
from tests.browser.harness import CSP_REPORTER, Console, Portal, log_in, vendor

pytestmark = pytest.mark.slow

NEW_PASSWORD = "browser test passphrase 42"


def _mail_to(portal: Portal, address: str) -> EmailMessage:
    found = []
    for path in (portal.data / "mail").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            assert path.stat().st_mode & 0o777 == 0o600
            found.append(message)
    assert len(found) == 1, f"{len(found)} mails to {address}"
    return found[0]


@pytest.fixture
def second_browser(browser: Browser) -> Iterator[tuple[Page, Console]]:
    """Another person's browser: its own profile, with the console recorded like the first."""
    console = Console()
    # A phone, this time.
    context = browser.new_context(accept_downloads=True, viewport={"width": 390, "height": 844})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", lambda exc: console.problems.append(f"page error: {exc}"))
    page.on("response", console.on_response)
    page.on("requestfailed", console.on_request_failed)
    try:
        yield page, console
    finally:
        context.close()


def test_admin_adds_a_user_and_a_group_and_the_user_sets_a_password_and_downloads_a_release(
    page: Page, portal: Portal, console: Console, second_browser: tuple[Page, Console], tmp_path: Path
) -> None:
    newcomer = f"lab-{secrets.token_hex(4)}@example.com"
    group = f"Lab {secrets.token_hex(2)}"
    masked = mask_key(portal.license_key)

    # The organization admin logs in and adds a user.
    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Users of Demo Organization")).to_be_visible()
    page.get_by_label("Email").fill(newcomer)
    page.get_by_label("First name").fill("Lab")
    page.get_by_label("Last name").fill("Tech")
    page.get_by_label("Role").select_option("user")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("sent a link to set their password")
    expect(page.get_by_role("heading", name="Lab Tech")).to_be_visible()
    user_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert user_id.startswith("usr_")

    # ...then a group, with the demo license linked and the new user in it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Groups").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Group name").fill(group)
    page.get_by_role("button", name="Create group").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name=f"Group {group}")).to_be_visible()
    page.get_by_label("Link a license of the organization").select_option(label=f"{masked} (Demo App)")
    page.get_by_role("button", name="Link license").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("The license was linked")
    page.get_by_label("Add a user").select_option(user_id)
    page.get_by_role("button", name="Add to group").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("The user was added to the group")
    members = page.locator("section", has=page.get_by_role("heading", name="Members"))
    expect(members).to_contain_text(newcomer)
    expect(page.locator("section", has=page.get_by_role("heading", name="Licenses"))).to_contain_text(masked)

    # The mail the default sender wrote: the link to set a password.
    mail = _mail_to(portal, newcomer)
    found = re.search(r"(http://\S+/set-password\?token=(\S+))", mail.get_content())
    assert found, mail.get_content()
    link, token = found.group(1), found.group(2)
    assert link.startswith(f"{portal.url}/set-password?token=")

    # The new user, in a browser of their own, sets a password and logs in.
    theirs, their_console = second_browser
    theirs.goto(link)
    theirs.wait_for_load_state("networkidle")
    expect(theirs.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(theirs.get_by_text(newcomer)).to_be_visible()
    theirs.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    theirs.get_by_label("New password again").fill(NEW_PASSWORD)
    theirs.get_by_role("button", name="Set password").click()
    theirs.wait_for_load_state("networkidle")
    expect(theirs.get_by_role("status")).to_contain_text("Your password is set.")
    expect(theirs.get_by_label("Account")).to_have_value(portal.account)
    expect(theirs.get_by_label("Email")).to_have_value(newcomer)
    theirs.get_by_label("Password").fill(NEW_PASSWORD)
    theirs.get_by_role("button", name="Log in").click()
    theirs.wait_for_load_state("networkidle")
    expect(theirs).to_have_url(f"{portal.url}/")
    # On a phone the main menu is folded away behind its button.
    theirs.get_by_role("button", name="Menu").click()
    theirs.get_by_role("link", name="Licenses").click()
    theirs.wait_for_load_state("networkidle")
    expect(theirs.get_by_role("heading", name="Licenses")).to_be_visible()
    expect(theirs.get_by_role("row").filter(has_text=masked)).to_contain_text("Demo App")

    # Meanwhile the vendor publishes a release of the license's product; the new user downloads it.
    data = os.urandom(200_000)
    installer = tmp_path / f"lab-setup-{secrets.token_hex(3)}.bin"
    installer.write_bytes(data)
    version = f"5.{secrets.randbelow(10**6)}.0"
    vendor(portal, "release", "publish", "--product", portal.product_id, "--version", version, installer)
    sha256 = hashlib.sha256(data).hexdigest()
    theirs.get_by_role("button", name="Menu").click()
    theirs.get_by_role("link", name="Downloads").click()
    theirs.wait_for_load_state("networkidle")
    expect(theirs.get_by_role("heading", name=f"Version {version}")).to_be_visible()
    expect(theirs.get_by_text(sha256)).to_be_visible()
    with theirs.expect_download() as info:
        theirs.get_by_role("link", name=installer.name).click()
    download = info.value
    assert download.failure() is None and download.suggested_filename == installer.name
    saved = tmp_path / "downloaded.bin"
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha256

    assert console.problems == [], "\n".join(console.problems)
    assert their_console.problems == [], "\n".join(their_console.problems)
    # The link worked once: now it is refused (the browser reports the 400, as it should).
    theirs.goto(link)
    expect(theirs.get_by_role("alert")).to_contain_text("INVALID_PASSWORD_LINK")
    assert len(their_console.problems) == 1 and "status of 400" in their_console.problems[0]
    # The server logged the mail and the requests, never the link's secret.
    logs = portal.log.read_text() + (portal.log.parent / "banner.txt").read_text()
    assert f"mail to {newcomer}" in logs and "/set-password?token=[redacted]" in logs
    assert token not in logs


NEW_PAGES = ["/activations", "/profile", "/profile/security", "/organization/users", "/organization/groups"]


def test_the_new_pages_render_without_console_errors_or_csp_violations(
    page: Page, portal: Portal, console: Console
) -> None:
    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    expect(page).to_have_url(f"{portal.url}/")
    page.wait_for_load_state("networkidle")
    details = []
    for path in NEW_PAGES:
        response = page.goto(f"{portal.url}{path}")
        page.wait_for_load_state("networkidle")  # the favicon too: leaving earlier would abort it
        assert response is not None and response.status == 200, path
        assert response.header_value("content-security-policy"), path
        expect(page.locator("h1")).to_be_visible()
        rules = page.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
        assert rules > 10, path
        current = page.get_by_role("navigation", name="Main").locator("[aria-current=page]")
        expect(current).to_have_count(1)
        if path.startswith("/organization/"):
            details += [
                href
                for href in page.locator("main a[href^='/organization/']").evaluate_all(
                    "els => els.map(e => e.getAttribute('href'))"
                )
                if href.count("/") == 3
            ][:1]
    for path in details:
        response = page.goto(f"{portal.url}{path}")
        page.wait_for_load_state("networkidle")  # the favicon too: leaving earlier would abort it
        assert response is not None and response.status == 200, path
    # A personal access token, made and shown once, and the activations filter without JavaScript.
    page.goto(f"{portal.url}/profile/security")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Name").fill("browser check")
    page.get_by_role("button", name="Make a token").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("textbox", name="Token", exact=True)).to_have_value(re.compile(r"^ofs_pat_"))
    page.goto(f"{portal.url}/activations")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Status").select_option("deactivated")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    expect(page).to_have_url(re.compile(r"/activations\?.*status=deactivated"))
    assert console.problems == [], "\n".join(console.problems)
