"""Downloads and customization in a real browser: the vendor publishes a release and customizes an
account with the CLI while the demo server runs; a person downloads the release file from the
Downloads page and gets the published bytes; a customized account's pages show its name, logo and
accent colour, with no console error or CSP violation."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import Console, Portal, log_in, vendor
from tests.images import png

pytestmark = pytest.mark.slow


def test_a_license_holder_downloads_a_published_release_file(
    page: Page, portal: Portal, console: Console, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    published_file = tmp_path / "demo-app-setup.bin"
    published_file.write_bytes(data)
    published = vendor(
        portal, "release", "publish", "--product", portal.product_id, "--version", "1.4.0",
        "--notes", "Faster start-up.", published_file,
    )  # fmt: skip
    sha256 = hashlib.sha256(data).hexdigest()
    assert published["files"][0]["sha256"] == sha256

    page.goto(f"{portal.url}/downloads")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdownloads$"))
    log_in(page, portal)
    expect(page).to_have_url(f"{portal.url}/downloads")
    expect(page.get_by_role("heading", name="Downloads", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Version 1.4.0")).to_be_visible()
    expect(page.get_by_text("Faster start-up.")).to_be_visible()
    expect(page.get_by_text(sha256)).to_be_visible()

    with page.expect_download() as info:
        page.get_by_role("link", name="demo-app-setup.bin").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "demo-app-setup.bin"
    saved = tmp_path / "downloaded.bin"
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha256

    # The link is the person's own: without the session it leads to the login page, not the file.
    href = page.get_by_role("link", name="demo-app-setup.bin").get_attribute("href")
    assert href is not None
    fresh = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        other = fresh.new_page()
        other.goto(f"{portal.url}{href}")
        expect(other.get_by_role("heading", name="Log in")).to_be_visible()
    finally:
        fresh.close()
    assert console.problems == [], "\n".join(console.problems)


def test_a_customized_account_shows_its_name_logo_and_accent_colour(
    page: Page, portal: Portal, console: Console, tmp_path: Path
) -> None:
    alias, email, password = "brandco", "buyer@brandco.example", secrets.token_urlsafe(18)
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(64, 32, (122, 31, 162)))
    vendor(portal, "init", account=alias)
    vendor(
        portal,
        "user",
        "create",
        "--email",
        email,
        "--role",
        "user",
        "--password-stdin",
        stdin=password + "\n",
        account=alias,
    )
    shown = vendor(
        portal, "account", "customize", "--portal-name", "Brandco Downloads", "--accent-color", "#7A1FA2",
        "--logo", logo, account=alias,
    )  # fmt: skip
    assert shown["accentColor"] == "#7a1fa2"

    response = page.goto(f"{portal.url}/login?account={alias}")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Log in to Brandco Downloads")).to_be_visible()
    expect(page.get_by_label("Account")).to_have_count(0)  # the account is known: not asked
    check_branding(page)

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{portal.url}/")
    expect(page).to_have_title("Dashboard · Brandco Downloads")
    check_branding(page)
    page.get_by_role("link", name="Downloads", exact=True).click()
    expect(page.get_by_role("heading", name="Downloads", level=1)).to_be_visible()
    check_branding(page)
    # The demo account next door keeps the default look.
    demo = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        plain = demo.new_page()
        plain.goto(f"{portal.url}/login")
        expect(plain.locator(".brand")).to_have_text("License portal")
        assert plain.locator("img.brand-logo").count() == 0
    finally:
        demo.close()
    assert console.problems == [], "\n".join(console.problems)


def check_branding(page: Page) -> None:
    expect(page.locator(".brand")).to_have_text("Brandco Downloads")
    logo = page.locator("img.brand-logo")
    expect(logo).to_be_visible()
    size = logo.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, 64, 32]  # the logo loaded
    bar = page.locator(".site-header").evaluate("el => getComputedStyle(el).borderTopColor")
    assert bar == "rgb(122, 31, 162)"
    # The accent is dark enough for white text and links on white: used as it is.
    if page.get_by_role("button", name="Log in").count():
        button = page.get_by_role("button", name="Log in").evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert button == "rgb(122, 31, 162)"
    else:
        link = page.locator("nav a:not([aria-current])").first.evaluate("el => getComputedStyle(el).color")
        assert link == "rgb(122, 31, 162)"
