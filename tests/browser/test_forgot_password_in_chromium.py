"""Forgot password in a real browser: from the login page of a vendor's link (``?account=``) to the
forgot-password form, the one answer, the mailed link (read from <data>/mail), a new password and a
login with it; the server logs the mail, never the link's secret."""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import Console, Portal, vendor

pytestmark = pytest.mark.slow

NEW_PASSWORD = "forgotten then found 42"


def _mails_to(portal: Portal, address: str) -> list[EmailMessage]:
    found = []
    for path in (portal.data / "mail").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def test_a_person_asks_for_a_link_on_the_login_page_and_sets_a_new_password(
    page: Page, portal: Portal, console: Console
) -> None:
    person = f"forgetful-{secrets.token_hex(4)}@example.com"
    vendor(portal, "user", "create", "--email", person, "--role", "user", "--password-stdin",
           stdin=secrets.token_urlsafe(18) + "\n")  # fmt: skip

    page.goto(f"{portal.url}/login?account={portal.account}")
    page.get_by_role("link", name="Forgot password?").click()
    page.wait_for_load_state("networkidle")
    expect(page).to_have_url(f"{portal.url}/forgot-password?account={portal.account}")
    expect(page.get_by_role("heading", name="Forgot password")).to_be_visible()
    expect(page.get_by_label("Account")).to_have_count(0)  # named by the link: not asked again
    page.get_by_label("Email").fill(person)
    page.get_by_role("button", name="Send me a link").click()
    page.wait_for_load_state("networkidle")
    expect(page).to_have_url(f"{portal.url}/forgot-password?sent=1&account={portal.account}")
    expect(page.get_by_role("status")).to_have_text(
        re.compile(
            r"If an account exists for that email address, we have sent it a link .* expires in \d+ hours?\."
        )
    )
    expect(page.get_by_label("Email")).to_have_count(0)

    [mail] = _mails_to(portal, person)
    found = re.search(r"(http://\S+/set-password\?token=(\S+))", mail.get_content())
    assert found, mail.get_content()
    link, token = found.group(1), found.group(2)
    assert link.startswith(f"{portal.url}/set-password?token=")
    page.goto(link)
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text(person)).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("Your password is set.")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
    expect(page).to_have_url(f"{portal.url}/")

    assert console.problems == [], "\n".join(console.problems)
    logs = portal.log.read_text() + (portal.log.parent / "banner.txt").read_text()
    assert f"mail to {person}" in logs and token not in logs
