"""The Licenses list in a real browser on a 390 px phone, as the demo organization's admin: search,
sort and filter with the GET form, page through the result, and nothing scrolls sideways; the rows
are the stacked, labelled cards of the phone layout."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from itertools import pairwise

import pytest
from playwright.sync_api import Browser, Page, expect

from offline_service.licensing import services as admin
from offline_service.licensing.models import LicenseStatus
from offline_service.store import SQLiteStore
from tests.browser.harness import CSP_REPORTER, Console, Portal, log_in

pytestmark = pytest.mark.slow

ORGANIZATION = "Demo Organization"
FLEET = 27  # more than one page of 25


@pytest.fixture(scope="module")
def fleet(portal: Portal) -> str:
    """FLEET licenses of the demo organization named "Fleet <tag> NN" (NN from 01), one of them
    (05) suspended; made in the server's database as the vendor's commands would. The tag."""
    tag = secrets.token_hex(3)
    store = SQLiteStore(portal.data)
    try:
        account = admin.account(store, portal.account)
        for n in range(1, FLEET + 1):
            lic = admin.create_license(
                store,
                account,
                product_id=portal.product_id,
                allowed_activations=4,
                allowed_deactivations=2,
                now=1_800_000_000 + n,
                name=f"Fleet {tag} {n:02d} with a long name for the line that tells it apart",
                owner_organization=ORGANIZATION,
            )
            if n == 5:
                admin.set_license_status(store, account, lic.key, LicenseStatus.SUSPENDED, now=1_800_000_000)
    finally:
        store.close()
    return tag


@pytest.fixture
def phone(browser: Browser, console: Console) -> Iterator[Page]:
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


def _settled(page: Page) -> None:
    """The page and everything it loads are in, and it is no wider than the window."""
    page.wait_for_load_state("networkidle")
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll == client, f"{page.url}: {scroll} px wide in {client} px"


def _names(page: Page) -> list[str]:
    return page.locator("tbody td[data-label='Name']").all_inner_texts()


def test_the_list_is_searched_sorted_filtered_and_paged_on_a_phone(
    phone: Page, portal: Portal, fleet: str, console: Console
) -> None:
    phone.goto(f"{portal.url}/login")
    log_in(phone, portal)
    expect(phone).to_have_url(f"{portal.url}/")
    phone.wait_for_load_state("networkidle")
    phone.goto(f"{portal.url}/licenses")
    _settled(phone)

    search = phone.get_by_role("search", name="Find licenses")
    search.get_by_label("Search").fill(f"fleet {fleet}")
    search.get_by_label("Sort by").select_option(label="Name")
    search.get_by_label("Order").select_option(label="Descending")
    search.get_by_role("button", name="Show").click()
    expect(phone.get_by_role("heading", name=re.compile(rf"^{FLEET} of \d+ licenses$"))).to_be_visible()
    _settled(phone)
    assert f"q=fleet+{fleet}" in phone.url and "sort=name" in phone.url and "dir=desc" in phone.url
    names = _names(phone)
    assert (
        len(names) == 25
        and names[0].startswith(f"Fleet {fleet} 27")
        and names[-1].startswith(f"Fleet {fleet} 03")
    )
    # Stacked, labelled cards: each cell below the one before it, its label drawn before it.
    card = phone.locator("tbody tr").first
    boxes = card.locator("th, td").evaluate_all("cells => cells.map(c => c.getBoundingClientRect().toJSON())")
    assert all(b["top"] >= a["bottom"] - 0.5 for a, b in pairwise(boxes)), boxes
    label = card.locator("td[data-label='Name']").evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Name"'

    phone.get_by_role("navigation", name="Pages").get_by_role("link", name="Next").click()
    expect(phone.get_by_text("Page 2 of 2 (26 to 27 of 27)")).to_be_visible()
    _settled(phone)
    assert "page=2" in phone.url
    assert [n[: len(f"Fleet {fleet} 00")] for n in _names(phone)] == [
        f"Fleet {fleet} 02",
        f"Fleet {fleet} 01",
    ]
    # The form still says what was chosen.
    expect(search.get_by_label("Search")).to_have_value(f"fleet {fleet}")
    expect(search.get_by_label("Sort by")).to_have_value("name")
    expect(search.get_by_label("Order")).to_have_value("desc")

    search.get_by_label("Status").select_option(label="Suspended")
    search.get_by_role("button", name="Show").click()
    expect(phone.get_by_role("heading", name=re.compile(r"^1 of \d+ licenses$"))).to_be_visible()
    _settled(phone)
    assert "page=" not in phone.url  # a new search starts on its first page
    assert [n[: len(f"Fleet {fleet} 00")] for n in _names(phone)] == [f"Fleet {fleet} 05"]
    expect(phone.locator("tbody td[data-label='Status']")).to_have_text("Suspended")

    search.get_by_label("Search").fill("nothing-is-called-this")
    search.get_by_role("button", name="Show").click()
    expect(phone.get_by_text("No license matches this search and these filters.")).to_be_visible()
    _settled(phone)
    assert console.problems == [], "\n".join(console.problems)
