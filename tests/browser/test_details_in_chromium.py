"""The portal's details in a real browser: the organization admin deletes a group and disables a
user, each after a confirmation page (and can back out of it); the sessions page names Chromium as
"Chrome on Linux"; no console errors and no CSP violations on the way."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from offline_service.web.kit import mask_key
from tests.browser.harness import Console, Portal, log_in

pytestmark = pytest.mark.slow


def test_admin_deletes_a_group_after_confirming_and_can_back_out(
    page: Page, portal: Portal, console: Console
) -> None:
    group = f"Doomed {secrets.token_hex(2)}"
    masked = mask_key(portal.license_key)
    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")

    # A group with the demo license linked.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Groups").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Group name").fill(group)
    page.get_by_role("button", name="Create group").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name=f"Group {group}")).to_be_visible()
    group_url = page.url.split("?")[0]
    page.get_by_label("Link a license of the organization").select_option(label=f"{masked} (Demo App)")
    page.get_by_role("button", name="Link license").click()
    page.wait_for_load_state("networkidle")

    # Asked first; keeping the group changes nothing.
    page.get_by_role("link", name="Delete this group").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name=f"Delete the group {group}?")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("1 linked license")
    page.get_by_role("link", name="Keep the group").click()
    page.wait_for_load_state("networkidle")
    assert page.url == group_url
    expect(page.get_by_role("heading", name=f"Group {group}")).to_be_visible()

    # Asked again, and confirmed: back on the list, which says so and no longer has the group.
    page.get_by_role("link", name="Delete this group").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Delete the group").click()
    page.wait_for_load_state("networkidle")
    assert urlsplit(page.url).path == "/organization/groups"
    expect(page.get_by_role("status")).to_contain_text("The group was deleted.")
    expect(page.get_by_role("main")).not_to_contain_text(group)
    # A reload of the list repeats nothing (post/redirect/get), and the group's page is gone.
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("main")).not_to_contain_text(group)
    assert console.problems == [], "\n".join(console.problems)
    response = page.goto(group_url)
    assert response is not None and response.status == 404


def test_admin_disables_a_user_after_confirming(page: Page, portal: Portal, console: Console) -> None:
    newcomer = f"temp-{secrets.token_hex(4)}@example.com"
    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Email").fill(newcomer)
    page.get_by_label("Role").select_option(label="User")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_load_state("networkidle")
    facts = page.locator("dl.facts")
    expect(facts.locator("div", has_text="Role")).to_contain_text("User")
    expect(facts.locator(".state")).to_have_text("Enabled")

    page.get_by_role("link", name="Disable this user").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name=f"Disable {newcomer}?")).to_be_visible()
    page.get_by_role("button", name="Disable this user").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status")).to_contain_text("The user is disabled")
    expect(page.locator("dl.facts .state")).to_have_text("Disabled")
    expect(page.get_by_role("button", name="Enable this user")).to_be_visible()

    # The sessions page names this browser in words; the raw string is in the title.
    page.goto(f"{portal.url}/profile/security")
    page.wait_for_load_state("networkidle")
    mine = page.get_by_role("row").filter(has_text="(this session)")
    expect(mine).to_contain_text("Chrome on Linux")
    agent = page.evaluate("navigator.userAgent")
    expect(mine.locator(f"span[title='{agent}']")).to_have_count(1)
    assert console.problems == [], "\n".join(console.problems)
