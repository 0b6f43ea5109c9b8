"""The activations page, its CSV export and GET /v1/activations, for every role: exactly the
activations of the licenses the person may see, filtered, paged, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re

import pytest

from offline_service.fileformat.messages import Kind
from offline_service.licensing.activations import CSV_COLUMNS, PAGE_SIZE, csv_cell
from offline_service.web.kit import mask_key
from tests.db import execute
from tests.factories import NOW, Machine
from tests.web.pages import PEOPLE, client, log_in, text
from tests.web.site import LICENSES, VISIBLE, Site, activation_request, error

# Who owns (and so may activate) each license in the fixture world.
OWNER = {"user1": "user1", "org_a": "admin_a", "group": "user2", "org_b": "admin_b", "other": "other"}


def _activate_everything(site: Site) -> dict[str, str]:
    """One live activation on every license someone may use, and one deactivated on ``org_a``;
    the activation id of each by license name (``org_a`` names the live one)."""
    ids = {}
    for name, role in OWNER.items():
        machine = Machine(fingerprint=f"fp-{name}")
        granted = site.activate(role, activation_request(site, role, name, machine))
        assert granted.status_code == 200, granted.text
        ids[name] = granted.json()["activationId"]
    gone = Machine(fingerprint="fp-gone")
    granted = site.activate("admin_a", activation_request(site, "admin_a", "org_a", gone))
    request = gone.request(
        Kind.DEACTIVATION, site.product.id, activation_id=granted.json()["activationId"], issued_at=NOW
    )
    assert site.deactivate("admin_a", request).status_code == 200
    ids["org_a (deactivated)"] = granted.json()["activationId"]
    return ids


def _ids_on(html: str) -> set[str]:
    return set(re.findall(r"<code[^>]*>(fp-[^<]+)</code>", html))


@pytest.mark.parametrize("role", PEOPLE)
def test_every_role_sees_exactly_the_activations_of_its_licenses(site: Site, role: str) -> None:
    _activate_everything(site)
    expected = {f"fp-{name}" for name in VISIBLE[role]}
    if "org_a" in VISIBLE[role]:
        expected.add("fp-gone")
    browser = log_in(site, role)
    page = browser.get("/activations")
    assert page.status_code == 200
    assert _ids_on(page.text) == expected
    assert f"{len(expected)} activation" in text(page.text)
    exported = browser.get("/activations.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["fingerprint"] for r in rows} == expected
    assert exported.headers["x-total-count"] == str(len(expected))
    listed = site.client.get("/v1/activations", headers=site.auth(role)).json()
    assert {a["fingerprint"] for a in listed["items"]} == expected and listed["total"] == len(expected)
    # The filter form offers only the person's licenses.
    for name in LICENSES:
        assert (f'value="{site.licenses[name].id}"' in page.text) == (name in VISIBLE[role]), name


def test_anonymous_visitors_are_sent_to_log_in(site: Site) -> None:
    browser = client(site)
    for path in ("/activations", "/activations.csv?status=live"):
        response = browser.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/login?next=%2Factivations"
        )
    assert error(site.client.get("/v1/activations")) == (401, "UNAUTHENTICATED")


def test_filters_by_product_license_status_and_text(site: Site) -> None:
    _activate_everything(site)
    browser = log_in(site, "admin_a")
    org_a, group = site.licenses["org_a"].id, site.licenses["group"].id

    def shown(query: str) -> set[str]:
        page = browser.get(f"/activations?{query}")
        assert page.status_code == 200, (query, page.text)
        return _ids_on(page.text)

    assert shown("") == {"fp-org_a", "fp-group", "fp-gone"}
    assert shown(f"license={org_a}") == {"fp-org_a", "fp-gone"}
    assert shown(f"license={group}") == {"fp-group"}
    assert shown("status=live") == {"fp-org_a", "fp-group"}
    assert shown("status=deactivated") == {"fp-gone"}
    assert shown(f"license={org_a}&status=live") == {"fp-org_a"}
    assert shown("q=GONE") == {"fp-gone"}  # fingerprint, any case
    assert shown("q=host-fp-grou") == {"fp-group"}  # hostname
    assert shown("q=%25") == set()  # a wildcard is a character here
    assert shown(f"product={site.product.id}") == {"fp-org_a", "fp-group", "fp-gone"}
    assert shown(f"product={site.no_trials.id}") == set()
    page = browser.get(f"/activations?license={org_a}&status=live&q=fp")
    assert 'option value="live" selected' in page.text and 'value="fp"' in page.text
    assert f'option value="{org_a}" selected' in page.text
    assert f'href="/activations.csv?license={org_a}&amp;status=live&amp;q=fp"' in page.text
    rows = list(
        csv.DictReader(io.StringIO(browser.get(f"/activations.csv?license={org_a}&status=live&q=fp").text))
    )
    assert [r["fingerprint"] for r in rows] == ["fp-org_a"]
    assert rows[0]["license"] == mask_key(site.licenses["org_a"].key) and site.licenses[
        "org_a"
    ].key not in str(rows)
    assert list(rows[0]) == list(CSV_COLUMNS) and rows[0]["status"] == "live" and rows[0]["product"] == "App"
    assert rows[0]["created_at"] == "2027-01-15T08:00:00Z" and rows[0]["deactivated_at"] == ""


@pytest.mark.parametrize(
    "query",
    ["status=gone", "page=0", "page=x", "q=" + "x" * 101, "product=" + "p" * 65],
)
def test_bad_filters_are_explained(site: Site, query: str) -> None:
    browser = log_in(site, "user1")
    paths = ("/activations",) if query.startswith("page=") else ("/activations", "/activations.csv")
    for path in paths:
        response = browser.get(f"{path}?{query}")
        assert response.status_code == 400 and "INVALID_ARGUMENT" in response.text, (path, query)


@pytest.mark.parametrize("name", ["org_b", "nobody", "other", "group"])
def test_a_license_the_person_cannot_see_is_not_found(site: Site, name: str) -> None:
    _activate_everything(site)
    browser = log_in(site, "user1")
    license_id = site.licenses[name].id
    for path in (f"/activations?license={license_id}", f"/activations.csv?license={license_id}"):
        response = browser.get(path)
        assert response.status_code == 404 and "LICENSE_NOT_FOUND" in response.text
        assert "fp-" not in response.text
    assert error(site.client.get(f"/v1/activations?licenseId={license_id}", headers=site.auth("user1"))) == (
        404,
        "LICENSE_NOT_FOUND",
    )


def test_pages_of_fifty_newest_first(site: Site) -> None:
    for i in range(PAGE_SIZE + 3):
        site.clock.now = NOW + i
        machine = Machine(fingerprint=f"fp-many-{i:03d}")
        data = machine.request(
            Kind.ACTIVATION, site.product.id, license_key=site.licenses["user1"].key, issued_at=NOW + i
        )
        # an unlimited license, so every one is new
        execute(
            site.svc.store,
            "UPDATE licenses SET allowed_activations = -1 WHERE id = ?",
            site.licenses["user1"].id,
        )
        assert site.activate("user1", data).status_code == 200
    browser = log_in(site, "user1")
    first = browser.get("/activations")
    fingerprints = re.findall(r"<code[^>]*>(fp-many-\d+)</code>", first.text)
    assert len(fingerprints) == PAGE_SIZE and fingerprints[0] == f"fp-many-{PAGE_SIZE + 2:03d}"
    assert "Page 1 of 2" in text(first.text) and 'href="/activations?page=2" rel="next"' in first.text
    second = browser.get("/activations?page=2")
    assert re.findall(r"<code[^>]*>(fp-many-\d+)</code>", second.text) == [
        "fp-many-002",
        "fp-many-001",
        "fp-many-000",
    ]
    assert 'href="/activations?page=1" rel="prev"' in second.text and 'rel="next"' not in second.text
    assert "No activation matches." in browser.get("/activations?page=3").text
    assert len(list(csv.DictReader(io.StringIO(browser.get("/activations.csv").text)))) == PAGE_SIZE + 3
    api = site.client.get("/v1/activations?limit=2&offset=1", headers=site.auth("user1")).json()
    assert api["total"] == PAGE_SIZE + 3
    assert [a["fingerprint"] for a in api["items"]] == [
        f"fp-many-{PAGE_SIZE + 1:03d}",
        f"fp-many-{PAGE_SIZE:03d}",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("lab-pc-7", "lab-pc-7"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_cells_cannot_become_formulas(value: str, expected: str) -> None:
    assert csv_cell(value) == expected


def test_the_csv_export_defuses_formulas_a_machine_sent(site: Site) -> None:
    """Hostnames, OS and app versions come from the request file, so from whoever made it."""
    hostile = {"hostname": "=cmd|' /C calc'!A0", "os": "+SUM(1)", "app_version": "@x"}
    machine = Machine(fingerprint="-fp-hostile")
    data = machine.request(
        Kind.ACTIVATION, site.product.id, license_key=site.licenses["user1"].key, issued_at=NOW, **hostile
    )
    assert site.activate("user1", data).status_code == 200
    exported = log_in(site, "user1").get("/activations.csv")
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="activations-\d{8}T\d{6}Z\.csv"', exported.headers["content-disposition"]
    )
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert row["hostname"] == "'=cmd|' /C calc'!A0"
    assert (row["os"], row["app_version"], row["fingerprint"]) == ("'+SUM(1)", "'@x", "'-fp-hostile")
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # On the page the same text is only text.
    page = log_in(site, "user1").get("/activations").text
    assert "=cmd|&#39; /C calc&#39;!A0" in page


def test_api_filters_and_bad_parameters(site: Site) -> None:
    _activate_everything(site)
    headers = site.auth("admin_a")

    def fingerprints(query: str) -> list[str]:
        response = site.client.get(f"/v1/activations?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(a["fingerprint"] for a in response.json()["items"])

    assert fingerprints("status=deactivated") == ["fp-gone"]
    assert fingerprints(f"licenseId={site.licenses['group'].id}") == ["fp-group"]
    assert fingerprints(f"productId={site.product.id}&q=ORG") == ["fp-org_a"]
    item = site.client.get("/v1/activations?q=gone", headers=headers).json()["items"][0]
    assert set(item) == {
        "id",
        "licenseId",
        "productId",
        "fingerprint",
        "machineKeyThumbprint",
        "hostname",
        "os",
        "appVersion",
        "createdAt",
        "deactivatedAt",
    }
    assert item["deactivatedAt"] == NOW and item["productId"] == site.product.id
    for bad in ("status=x", "limit=0", "limit=1001", "offset=-1", "license=x", "q=" + "x" * 101):
        assert error(site.client.get(f"/v1/activations?{bad}", headers=headers)) == (
            400,
            "INVALID_ARGUMENT",
        ), bad
