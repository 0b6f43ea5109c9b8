"""The profile page's time zone in a real browser: a text field tied to a list of suggestions
(canonical zones with their offset), which takes a picked label and refuses a legacy name."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from offline_service.accounts import time_zones
from tests.browser.harness import Console, Portal, log_in

pytestmark = pytest.mark.slow


def test_a_zone_is_picked_from_the_suggestions_and_a_legacy_name_is_refused(
    page: Page, portal: Portal, console: Console
) -> None:
    page.goto(f"{portal.url}/profile")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")
    field = page.get_by_label("Time zone")
    expect(field).to_have_attribute("list", "time-zones")
    # The browser ties the field to the list: these are the suggestions typing filters.
    suggestions: list[str] = field.evaluate("input => Array.from(input.list.options, o => o.value)")
    assert len(suggestions) > 300
    paris = time_zones.label("Europe/Paris", int(time.time()))  # the server's clock is the real one
    assert paris in suggestions
    assert not [s for s in suggestions if s.startswith(("Factory", "Etc/", "US/", "GMT"))]

    try:
        field.fill(paris)
        page.get_by_role("button", name="Save preferences").click()
        page.wait_for_load_state("networkidle")
        expect(page.get_by_role("status")).to_contain_text("Your preferences are saved.")
        expect(page.get_by_label("Time zone")).to_have_value(paris)

        page.get_by_label("Time zone").fill("Factory")
        page.get_by_role("button", name="Save preferences").click()
        page.wait_for_load_state("networkidle")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("choose a time zone from the list")
        expect(alert).to_contain_text("INVALID_ARGUMENT")
        expect(page.get_by_label("Time zone")).to_have_value("Factory")
    finally:  # the demo person is shared with the other browser tests: back to UTC
        page.get_by_label("Time zone").fill("UTC")
        page.get_by_role("button", name="Save preferences").click()
        page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Time zone")).to_have_value("UTC (UTC+00:00)")
    # The refused form answers with a redirect like an accepted one: the console reports nothing.
    assert console.problems == [], console.problems
