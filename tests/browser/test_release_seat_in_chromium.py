"""An organization admin releases a lost machine's seat in a real browser: the vendor allows it for
the product, the license's page offers "Release seat", the confirmation page says what happens, and
the post leads back to the license's page, which says it is done. The machine, meanwhile, keeps its
activation offline, as the confirmation page says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from offline_service.web.kit import mask_key
from tests.browser.harness import Console, Portal, log_in, vendor

pytestmark = pytest.mark.slow

HOSTNAME = "lost-laptop-9"


@pytest.fixture
def releasable(portal: Portal) -> Iterator[None]:
    """The demo product with customer releases on, for this test only (the portal is shared)."""
    vendor(portal, "product", "update", portal.product_id, "--customer-release", "on")
    try:
        yield
    finally:
        vendor(portal, "product", "update", portal.product_id, "--customer-release", "off")


def test_an_admin_releases_a_lost_machine_through_the_confirmation_page(
    page: Page, portal: Portal, console: Console, tmp_path: Path, releasable: None
) -> None:
    # A license of the demo organization (its own, so that other tests' seats do not matter).
    lic = vendor(
        portal,
        *("license", "create", "--product", portal.product_id, "--organization", "Demo Organization"),
        *("--allowed-activations", "2", "--allowed-deactivations", "3"),
    )
    # A machine is activated with it, and applies its response offline.
    app = Client(tmp_path / "app-state", machine_id=lambda: "release-test-machine")
    request_file = tmp_path / "lost.req"
    request_file.write_text(
        app.activation_request(product_id=portal.product_id, license_key=lic["key"], hostname=HOSTNAME),
        encoding="ascii",
    )
    [processed] = vendor(portal, "process", request_file, "--out", tmp_path / "out")
    assert processed["ok"], processed
    app.activate(Path(processed["response"]).read_bytes(), jwks=Keyring(portal.keys).jwks(portal.product_id))
    assert app.status()["valid"] is True

    # The organization admin opens the license's page and chooses "Release seat" on that machine.
    page.goto(f"{portal.url}/licenses/{lic['id']}")
    log_in(page, portal)
    expect(page).to_have_url(f"{portal.url}/licenses/{lic['id']}")
    page.wait_for_load_state("networkidle")
    row = page.get_by_role("row").filter(has_text=HOSTNAME)
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name=f"Release seat of {HOSTNAME}").click()
    page.wait_for_load_state("networkidle")

    # The confirmation page: the machine, the license, and what the release does.
    expect(page.get_by_role("heading", name="Release the seat of this machine?")).to_be_visible()
    main = page.get_by_role("main")
    expect(main).to_contain_text(HOSTNAME)
    expect(main).to_contain_text(mask_key(lic["key"]))
    expect(main).to_contain_text("The seat becomes free")
    expect(main).to_contain_text("counts as one of the license's deactivations: 3 left, 2 after this one")
    expect(main).to_contain_text("keeps working offline")
    page.get_by_role("button", name="Release this seat").click()

    # Post/redirect/get: back on the license's page, which says it is done.
    expect(page).to_have_url(f"{portal.url}/licenses/{lic['id']}?done=released")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("The seat is free again")
    row = page.get_by_role("row").filter(has_text=HOSTNAME)
    expect(row).to_contain_text("Deactivated")
    expect(row.get_by_role("link", name=f"Release seat of {HOSTNAME}")).to_have_count(0)
    shown = vendor(portal, "license", "show", lic["key"])
    assert (shown["usedActivations"], shown["usedDeactivations"]) == (0, 1)

    # The dashboard's activity says it in words.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.wait_for_load_state("networkidle")
    activity = page.get_by_role("region", name="Recent activity")
    expect(
        activity.get_by_role("row").filter(
            has_text="Seat of a lost machine released by an organization admin"
        )
    ).to_contain_text("you")

    # As the page said: the machine was not told, and its stored activation still holds offline.
    assert app.status()["valid"] is True
    assert console.problems == []
