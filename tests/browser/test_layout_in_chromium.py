"""The portal's layout in a real browser, on a phone and on a wide screen: no page scrolls sideways
at 360 px (as an organization admin, as a plain user and logged out), the main menu folds away on
a phone and opens from its button, tables turn into stacked rows on a phone, and activation rows
fit on one line at 1440 px. The records are made with the vendor's commands: a license of the demo
organization with machines whose hostnames and fingerprints are long, a group, and a plain user."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from tests.browser.harness import CSP_REPORTER, Console, Portal, vendor

pytestmark = pytest.mark.slow

ORGANIZATION = "Demo Organization"
USER_PASSWORD = "layout test passphrase 42"
# Long enough to overflow any column that does not wrap or shorten it.
HOSTNAMES = ["build-agent-with-a-rather-long-hostname-07.lab.example.com", "lab-pc-1", "lab-pc-2"]

# Every page of the portal a person who is logged in sees, whatever their role.
EVERYONE = [
    "/",
    "/licenses",
    "/licenses/{license_id}",
    "/activations",
    "/activate",
    "/deactivate",
    "/batch",
    "/downloads",
    "/profile",
    "/profile/security",
    "/licenses/lic_not_there",  # the error page inside the portal frame
    "/downloads/not-a-link",  # the download error page
]
ADMIN = [
    "/organization/users",
    "/organization/users/{user_id}",
    "/organization/groups",
    "/organization/groups/{group_id}",
]
LOGGED_OUT = ["/login", "/set-password", "/set-password?token=not-a-token"]


@dataclass(frozen=True)
class Records:
    license_id: str
    user_email: str
    user_id: str
    group_id: str

    def path(self, template: str) -> str:
        return template.format(license_id=self.license_id, user_id=self.user_id, group_id=self.group_id)


@pytest.fixture(scope="module")
def records(portal: Portal, tmp_path_factory: pytest.TempPathFactory) -> Records:
    """A license of the demo organization with three machines (one deactivated), a group it is
    linked to, and a plain user in that group who has a password."""
    root = tmp_path_factory.mktemp("layout")
    lic = vendor(
        portal,
        *("license", "create", "--product", portal.product_id, "--organization", ORGANIZATION),
        *("--allowed-activations", "10", "--allowed-deactivations", "5"),
    )
    jwks = Keyring(portal.keys).jwks(portal.product_id)
    apps, requests = [], []
    for i, hostname in enumerate(HOSTNAMES):
        app = Client(
            root / f"app-{i}", machine_id=lambda i=i: f"layout-machine-{i}", witness_dir=root / f"w-{i}"
        )
        request = root / f"activation-{i}.req"
        request.write_text(
            app.activation_request(
                product_id=portal.product_id,
                license_key=lic["key"],
                hostname=hostname,
                os_name="Windows 11 Pro for Workstations 23H2",
                app_version="12.4.1-beta.3",
            ),
            encoding="ascii",
        )
        apps.append(app)
        requests.append(request)
    out = root / "responses"
    results = vendor(portal, "process", *requests, "--out", out)
    assert all(r["ok"] for r in results), results
    apps[1].activate(Path(results[1]["response"]).read_bytes(), jwks=jwks)
    apps[1].deactivate(root / "deactivation.req")
    assert vendor(portal, "process", root / "deactivation.req", "--out", out)[0]["ok"]

    group = f"Layout {secrets.token_hex(2)}"
    group_id = vendor(portal, "group", "create", "--organization", ORGANIZATION, "--name", group)["id"]
    vendor(portal, "group", "link", group, lic["key"])
    email = f"layout-{secrets.token_hex(4)}@example.com"
    user = vendor(
        portal,
        *("user", "create", "--email", email, "--role", "user", "--organization", ORGANIZATION),
        *("--first-name", "Layout", "--last-name", "Tester", "--password-stdin"),
        stdin=USER_PASSWORD + "\n",
    )
    vendor(portal, "group", "add-user", group, email)
    return Records(license_id=lic["id"], user_email=email, user_id=user["id"], group_id=group_id)


@pytest.fixture
def phone(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh profile at 360 px wide, the narrowest phone the portal is made for."""
    context = browser.new_context(viewport={"width": 360, "height": 740})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", lambda exc: console.problems.append(f"page error: {exc}"))
    try:
        yield page
    finally:
        context.close()


def _log_in(page: Page, portal: Portal, email: str, password: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("Account").fill(portal.account)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{portal.url}/")


def _make_a_token(page: Page, portal: Portal) -> None:
    """A token with a long name, so the tokens table on the security page has a row."""
    page.goto(f"{portal.url}/profile/security")
    page.get_by_label("Name").fill("nightly inventory script for the build agents of the lab")
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_role("textbox", name="Token", exact=True)).to_be_visible()


def _sideways(page: Page, portal: Portal, paths: list[str]) -> list[str]:
    """The pages among ``paths`` wider than the window, each with its width and what sticks out."""
    wide = []
    for path in paths:
        page.goto(f"{portal.url}{path}")
        expect(page.locator("h1")).to_be_visible()
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if scroll != client:
            culprits = page.evaluate(
                """(width) => Array.from(document.querySelectorAll('body *'))
                    .filter((e) => e.getBoundingClientRect().right > width + 0.5)
                    .slice(-3).map((e) => e.outerHTML.slice(0, 120))""",
                client,
            )
            wide.append(f"{path}: {scroll} px wide in {client} px; {culprits}")
    return wide


def test_no_page_scrolls_sideways_at_360_px_as_an_organization_admin(
    phone: Page, portal: Portal, records: Records, console: Console
) -> None:
    _log_in(phone, portal, portal.email, portal.password)
    _make_a_token(phone, portal)
    assert _sideways(phone, portal, [records.path(p) for p in EVERYONE + ADMIN]) == []


def test_no_page_scrolls_sideways_at_360_px_as_a_plain_user(
    phone: Page, portal: Portal, records: Records
) -> None:
    _log_in(phone, portal, records.user_email, USER_PASSWORD)
    _make_a_token(phone, portal)
    # A plain user asking for an organization page gets the error page, in the portal's frame.
    assert _sideways(phone, portal, [records.path(p) for p in EVERYONE + ADMIN[:1]]) == []


def test_no_page_scrolls_sideways_at_360_px_logged_out(phone: Page, portal: Portal) -> None:
    assert _sideways(phone, portal, LOGGED_OUT) == []


@pytest.fixture
def sized(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh profile whose window the test sizes itself."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", lambda exc: console.problems.append(f"page error: {exc}"))
    try:
        yield page
    finally:
        context.close()


def test_the_main_menu_folds_away_on_a_phone_and_opens_from_its_button_by_keyboard(
    sized: Page, portal: Portal, console: Console
) -> None:
    _log_in(sized, portal, portal.email, portal.password)
    menu = sized.get_by_role("navigation", name="Main")
    button = sized.get_by_role("button", name="Menu")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_attribute("aria-controls", "main-menu")
    expect(menu).to_be_hidden()

    button.focus()
    sized.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_role("link", name="Licenses")).to_be_visible()
    sized.keyboard.press("Tab")
    expect(menu.get_by_role("link", name="Dashboard")).to_be_focused()
    sized.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    expect(menu).to_be_hidden()
    sized.keyboard.press("Space")
    expect(menu).to_be_visible()
    sized.keyboard.press("Space")
    expect(menu).to_be_hidden()

    # On a wide screen the menu is always open and the button is not there.
    sized.set_viewport_size({"width": 1440, "height": 900})
    expect(button).to_be_hidden()
    expect(menu.get_by_role("link", name="Licenses")).to_be_visible()
    assert console.problems == [], "\n".join(console.problems)


def test_without_javascript_the_menu_is_open_on_a_phone(
    browser: Browser, portal: Portal, records: Records
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False)
    try:
        page = context.new_page()
        _log_in(page, portal, records.user_email, USER_PASSWORD)
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Activations").click()
        expect(page.get_by_role("heading", name="Activations", exact=True)).to_be_visible()
    finally:
        context.close()


def _cell_boxes(page: Page) -> list[list[dict[str, float]]]:
    """The boxes of the cells of each body row of the activations table."""
    table = page.locator(".table-scroll").get_by_role("table")
    return table.locator("tbody tr").evaluate_all(
        """rows => rows.map(r => Array.from(r.children).map(c => {
            const b = c.getBoundingClientRect();
            return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height};
        }))"""
    )


def test_activations_are_stacked_rows_on_a_phone_and_one_line_rows_on_a_wide_screen(
    sized: Page, portal: Portal, records: Records
) -> None:
    _log_in(sized, portal, portal.email, portal.password)
    sized.goto(f"{portal.url}/activations?license={records.license_id}")
    region = sized.locator(".table-scroll[role=region]")
    table = region.get_by_role("table")
    # Still a table for assistive technology, its header row hidden from sight only.
    expect(table.get_by_role("columnheader", name="Machine")).to_have_count(1)
    expect(table.locator("thead")).not_to_be_in_viewport()
    rows = _cell_boxes(sized)
    assert len(rows) == len(HOSTNAMES)
    for cells in rows:
        # Each cell below the one before it, as wide as the card.
        assert all(b["top"] >= a["bottom"] - 0.5 for a, b in pairwise(cells)), cells
        assert len({round(c["left"]) for c in cells}) == 1, cells
    card = table.locator("tbody tr").first
    expect(card.locator("td[data-label='Product']")).to_contain_text("Demo App")
    label = card.locator("td[data-label='Product']").evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Product"'

    sized.set_viewport_size({"width": 1440, "height": 900})
    expect(table.locator("thead")).to_be_in_viewport()
    rows = _cell_boxes(sized)
    line = sized.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)")
    # The table fits its box (nothing to scroll), and every cell of a row is one line high.
    assert region.evaluate("r => r.scrollWidth <= r.clientWidth")
    for cells in rows:
        assert len({round(c["top"]) for c in cells}) == 1, cells
        assert max(c["height"] for c in cells) < 2 * line + 1, (cells, line)


def test_a_machine_shows_its_hostname_then_its_fingerprint_shortened_and_whole_when_copied(
    sized: Page, portal: Portal, records: Records
) -> None:
    _log_in(sized, portal, portal.email, portal.password)
    sized.set_viewport_size({"width": 1440, "height": 900})
    sized.goto(f"{portal.url}/licenses/{records.license_id}")
    row = sized.get_by_role("row").filter(has_text="lab-pc-1")
    machine = row.get_by_role("rowheader")
    code = machine.locator("code.fingerprint")
    whole = code.get_attribute("title")
    assert whole and len(whole) > 16
    assert code.text_content() == whole  # all of it in the text, for copying and finding
    expect(machine.locator(".clip")).to_have_text("lab-pc-1")  # the hostname first
    middle = code.locator(".fingerprint-middle")
    expect(middle).to_have_text(whole[8:-4])
    assert middle.evaluate("m => getComputedStyle(m, '::before').content") == '"…"'
    # Narrow on screen: about as wide as its 13 characters, not the whole value.
    width, em = code.evaluate(
        "c => [c.getBoundingClientRect().width, parseFloat(getComputedStyle(c).fontSize)]"
    )
    assert width < 9 * em, width
    # One click selects the whole value, ready to copy.
    code.click()
    assert sized.evaluate("String(getSelection())") == whole
