"""A batch in a real browser: upload a zip of request files on /batch, land on the batch's result
page (post/redirect/get), read what became of each file, and download the zip of responses."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from offline_service.cli.demo import DEMO_ORGANIZATION
from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from tests.browser.harness import Console, Portal, log_in, vendor

pytestmark = pytest.mark.slow


def test_a_zip_uploaded_on_the_batch_page_lands_on_its_result_page_and_downloads(
    page: Page, portal: Portal, console: Console, tmp_path: Path
) -> None:
    # A license of its own, so that the demo license's seats stay as the other tests expect them.
    lic = vendor(
        portal,
        *("license", "create", "--product", portal.product_id, "--organization", DEMO_ORGANIZATION),
        *("--allowed-activations", "5", "--allowed-deactivations", "1"),
    )
    apps, upload = {}, tmp_path / "requests.zip"
    with zipfile.ZipFile(upload, "w") as z:
        for name in ("batch-pc-1", "batch-pc-2"):
            apps[name] = Client(
                tmp_path / name,
                machine_id=lambda name=name: f"batch-{name}",
                witness_dir=tmp_path / f"w-{name}",
            )
            request = apps[name].activation_request(
                product_id=portal.product_id,
                license_key=lic["key"],
                hostname=f"{name}.build-agents-of-the-lab.example.com",
            )
            z.writestr(f"{name}.req", request)
        z.writestr("notes_of_the_build_agents_of_the_lab_that_are_not_request_files.txt", "not a request")

    page.goto(f"{portal.url}/login")
    log_in(page, portal)
    page.wait_for_load_state("networkidle")  # the favicon and script: leaving earlier aborts them
    page.goto(f"{portal.url}/batch")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Zip of request files").set_input_files(upload)
    page.get_by_role("button", name="Get responses").click()

    expect(page).to_have_url(re.compile(r"/batch/result/bat_[0-9a-f]{32}$"))
    expect(page.get_by_role("heading", name="3 files processed")).to_be_visible()
    expect(page.get_by_text("2 accepted, 0 reissued, 1 refused")).to_be_visible()
    files = page.get_by_role("region", name="Files")
    for name in ("batch-pc-1", "batch-pc-2"):
        row = files.get_by_role("row").filter(has_text=f"{name}.req")
        expect(row).to_contain_text(name)
        expect(row).to_contain_text("Accepted")
        expect(row.get_by_role("link")).to_have_attribute("href", f"/licenses/{lic['id']}")
    refused = files.get_by_role("row").filter(has_text="notes_of_the_build_agents")
    expect(refused).to_contain_text("Refused")
    expect(refused).to_contain_text("MALFORMED_REQUEST")
    page.wait_for_load_state("networkidle")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download responses (zip)").click()
    download = info.value
    assert download.failure() is None
    assert re.fullmatch(r"responses-\d{8}T\d{6}Z\.zip", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as z:
        report = {r["file"]: r for r in csv.DictReader(io.StringIO(z.read("report.csv").decode()))}
        responses = {name: z.read(f"{name}.response") for name in apps}
    assert {f: r["code"] for f, r in report.items()} == {
        "batch-pc-1.req": "OK",
        "batch-pc-2.req": "OK",
        "notes_of_the_build_agents_of_the_lab_that_are_not_request_files.txt": "MALFORMED_REQUEST",
    }
    # Each machine activates with its response, verified against the product's public keys.
    jwks = Keyring(portal.keys).jwks(portal.product_id)
    for name, app in apps.items():
        assert app.activate(responses[name], jwks=jwks).used_activations >= 1
        assert app.status()["valid"] is True

    # A reload shows the same result and records nothing more.
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text("2 accepted, 0 reissued, 1 refused")).to_be_visible()
    # On a 360 px phone, the page does not scroll sideways (long hostnames and file names wrap).
    page.set_viewport_size({"width": 360, "height": 740})
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll == client, (scroll, client)
    shown = vendor(portal, "license", "show", lic["key"])
    assert shown["usedActivations"] == 2 and len(shown["activations"]) == 2, shown
    assert console.problems == [], "\n".join(console.problems)
