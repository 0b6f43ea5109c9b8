"""The customer portal in a real browser, as a person uses it: log in, upload an activation request
made by the client SDK, download the response, and activate the installation with it offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from tests.browser.harness import Console, Portal, log_in

pytestmark = pytest.mark.slow

PAGES = ["/", "/licenses", "/activate", "/deactivate", "/batch"]


def test_make_run_banner_says_where_to_log_in(portal: Portal) -> None:
    assert f"log in at {portal.url}/login" in portal.banner
    assert "account   default" in portal.banner
    assert f"email     {portal.email}" in portal.banner
    # Shown once, on the first run, and saved where only its owner can read it.
    assert f"password  {portal.password}" in portal.banner
    assert (portal.data / "demo-credentials.txt").stat().st_mode & 0o777 == 0o600


def test_log_in_upload_request_download_response_and_activate(
    page: Page, portal: Portal, console: Console, tmp_path: Path
) -> None:
    used_before = portal.used_activations()
    # The app on the offline machine writes a request file.
    app = Client(tmp_path / "app-state", machine_id=lambda: "browser-test-machine")
    request_file = tmp_path / "activation.req"
    request_file.write_text(
        app.activation_request(
            product_id=portal.product_id, license_key=portal.license_key, hostname="lab-pc-7"
        ),
        encoding="ascii",
    )

    # A person goes to the activation page, is sent to log in first, and comes back to it.
    page.goto(f"{portal.url}/activate")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Factivate$"))
    log_in(page, portal)
    expect(page).to_have_url(f"{portal.url}/activate")
    page.wait_for_load_state("networkidle")  # the favicon too: leaving earlier would abort it
    expect(page.get_by_role("heading", name="Activate a machine offline")).to_be_visible()

    page.get_by_label("Request file").set_input_files(request_file)
    page.get_by_label("Response valid for").select_option("3")
    page.get_by_role("button", name="Get response file").click()
    # The form leads to a result page (post/redirect/get), which offers the file.
    expect(page).to_have_url(f"{portal.url}/activate/result")
    expect(page.get_by_role("heading", name="lab-pc-7 is activated")).to_be_visible()
    expect(page.get_by_text(f"{used_before + 1} of 3 used")).to_be_visible()
    page.wait_for_load_state("networkidle")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the response file").click()
    download = info.value
    assert download.failure() is None
    assert re.fullmatch(r"lab-pc-7-[A-Za-z0-9_]+\.response", download.suggested_filename)
    response_file = tmp_path / download.suggested_filename
    download.save_as(response_file)

    # Back on the offline machine: the app verifies the response with the product's public keys.
    jwks = Keyring(portal.keys).jwks(portal.product_id)
    verified = app.activate(response_file.read_bytes(), jwks=jwks)
    assert verified.kind is Kind.ACTIVATION
    assert verified.product_id == portal.product_id
    assert verified.used_activations == used_before + 1
    assert app.status()["valid"] is True
    assert portal.used_activations() == used_before + 1

    # The dashboard shows it, as it would to the person; a screenshot is kept for a human to see.
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    activity = page.get_by_role("region", name="Recent activity")
    expect(activity.get_by_role("row").filter(has_text="Offline activation").first).to_contain_text("you")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000
    print(f"dashboard screenshot: {shot}")
    # The dashboard lists only the licenses that need attention; the Licenses list finds this one
    # by the end of its key, with the seat it took.
    page.goto(f"{portal.url}/licenses?q={portal.license_key[-5:]}")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("cell", name=f"{used_before + 1} of 3")).to_be_visible()
    assert console.problems == []


def test_every_page_renders_without_console_errors_or_csp_violations(
    page: Page, portal: Portal, console: Console
) -> None:
    response = page.goto(f"{portal.url}/login")
    assert response is not None and response.status == 200
    assert "default-src 'none'" in (response.header_value("content-security-policy") or "")
    log_in(page, portal)
    expect(page).to_have_url(f"{portal.url}/")
    page.wait_for_load_state("networkidle")
    links = page.locator("a[href^='/licenses/']")
    expect(links.first).to_be_visible()
    detail = links.first.get_attribute("href")
    for path in [*PAGES, detail]:
        response = page.goto(f"{portal.url}{path}")
        # The favicon loads after the page; going on before it arrives would abort it, and the
        # console check below would report that (seen on a busy machine).
        page.wait_for_load_state("networkidle")
        assert response is not None and response.status == 200, path
        assert response.header_value("content-security-policy"), path
        expect(page.locator("h1")).to_be_visible()
        # The stylesheet loaded and applied (a blocked or missing one would leave no rules).
        rules = page.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
        assert rules > 10, path
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{portal.url}/login")
    assert console.problems == [], "\n".join(console.problems)


def test_the_csp_check_sees_a_violation(page: Page, portal: Portal, console: Console) -> None:
    """The check above is only worth something if it notices a violation: inline style is refused."""
    page.goto(f"{portal.url}/login")
    page.evaluate("document.head.insertAdjacentHTML('beforeend', '<style>body { color: red }</style>')")
    for _ in range(20):  # the report arrives asynchronously
        if any("style-src" in p for p in console.problems):
            break
        page.wait_for_timeout(100)
    assert any("style-src" in p for p in console.problems), console.messages


def test_wrong_password_stays_on_the_login_page_without_a_session(page: Page, portal: Portal) -> None:
    page.goto(f"{portal.url}/login")
    log_in(page, portal, password="not the password at all")
    expect(page.get_by_role("alert")).to_contain_text("The account, email or password is not right.")
    expect(page).to_have_url(f"{portal.url}/login")
    expect(page.get_by_label("Password")).to_have_value("")  # never carried back
    assert "ofs_session" not in {c["name"] for c in page.context.cookies()}


def test_a_refused_form_puts_the_focus_on_its_message(page: Page, portal: Portal, console: Console) -> None:
    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")  # each page's favicon and script: leaving earlier aborts them
    page.goto(f"{portal.url}/activate")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Or paste the request text").fill("not a request file")
    page.get_by_role("button", name="Get response file").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_be_focused()
    expect(alert).to_contain_text("Code: MALFORMED_REQUEST")
    # Post/redirect/get: the refused form answered with a redirect to its page, which kept the text.
    expect(page).to_have_url(f"{portal.url}/activate")
    expect(page.get_by_label("Or paste the request text")).to_have_value("not a request file")
    page.wait_for_load_state("networkidle")  # the page's own script too: leaving earlier aborts it
    # A reload asks for the page again, not to send the form again: the message was shown once.
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_label("Or paste the request text")).to_have_value("")
    assert console.problems == [], "\n".join(console.problems)
