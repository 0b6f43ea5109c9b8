"""Every identifier is checked by shape where it comes in: path and query parameters, form fields
and JSON members. A hostile value is answered 400 INVALID_ARGUMENT (or 404 when the router finds
no route for it), never a 500, never a probe of the filesystem, never the server's paths."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from offline_service.ids import ID_PREFIXES, id_pattern, is_id, new_id
from tests.web.pages import log_in, post, refused, team_a
from tests.web.site import Site

HOSTILE = {
    "dotdot": "../",
    "dotdot-etc": "../../etc",
    "root": "/etc",
    "encoded": "..%2F..%2Fetc",
    "nul": "lic_\x00",
    "long": "x" * 10_240,
    "unicode": "lïc_ünïcødé",
    "newline": f"{new_id('lic')}\n",
    "empty": "",
    "upper": new_id("lic").upper(),
}


def _refused(site: Site, response: httpx.Response, statuses: tuple[int, ...] = (400, 404)) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.text
    for leak in (str(site.svc.settings.keys_dir), str(site.svc.settings.data_dir), "INSECURE_KEY_FILE"):
        assert leak not in body
    assert "Traceback" not in body


def _answer(site: Site, browser: TestClient, method: str, url: str, **kw: Any) -> httpx.Response:
    """The answer to ``url``; a value ending in "/" makes the router redirect to the path without
    it (no handler runs), and that path's answer is the one that counts."""
    response = browser.request(method, url, **kw)
    again = _slash_redirect(url, response)
    return response if again is None else browser.request(method, again, **kw)


def _slash_redirect(url: str, response: httpx.Response) -> str | None:
    """Where the router's trailing-slash redirect goes, as a client would send it (".." kept as a
    segment, not resolved by the client); None for any other answer."""
    path = url.partition("?")[0]
    if response.status_code != 307 or not path.endswith("%2F"):
        return None
    location = urlsplit(response.headers["location"])
    assert location.path == unquote(path)[:-1]
    return path[:-3].replace(".", "%2E") + (f"?{location.query}" if location.query else "")


# (method, path template, query/json) for the API: "{v}" is where the hostile value goes.
API: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/licenses/{v}", {}),
    ("GET", "/v1/licenses/{v}/activations", {}),
    ("DELETE", "/v1/me/tokens/{v}", {}),
    ("GET", "/v1/releases/files/{v}", {"params": {"exp": "1", "sig": "x"}}),
    ("GET", "/v1/activations", {"params": {"licenseId": "{v}"}}),
    ("GET", "/v1/activations", {"params": {"productId": "{v}"}}),
    ("GET", "/.well-known/jwks.json", {"params": {"product": "{v}"}}),
]


def _fill(value: Any, hostile: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, hostile) for k, v in value.items()}
    return hostile if value == "{v}" else value


def _applies(template: str, hostile: str) -> bool:
    # An empty path segment is another route (the list), and an empty filter is no filter.
    return hostile != "" or "{v}" not in template


API_CASES = [
    pytest.param(method, path, extra, hostile, id=f"{method} {path} {extra} {name}")
    for method, path, extra in API
    for name, hostile in HOSTILE.items()
    if _applies(path + str(extra), hostile)
]
# The account alias is not an id: an upper-case "id" is a well-formed alias.
HOSTILE_ALIASES = {k: v for k, v in HOSTILE.items() if k != "upper"}
# The portal trims what a person typed around the alias.
TYPED_ALIASES = {k: v for k, v in HOSTILE_ALIASES.items() if k != "newline"}


@pytest.mark.parametrize(("method", "path", "extra", "hostile"), API_CASES)
def test_api_routes_refuse_hostile_ids(
    site: Site, method: str, path: str, extra: dict[str, Any], hostile: str
) -> None:
    url = path.replace("{v}", quote(hostile, safe=""))
    browser = TestClient(site.client.app, follow_redirects=False)
    response = _answer(site, browser, method, url, headers=site.auth("admin_a"), **_fill(extra, hostile))
    _refused(site, response)


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_json_members_that_name_records_refuse_hostile_values(site: Site, hostile: str) -> None:
    trial = site.client.post(
        "/v1/trial-activations/offline-activate", json={"productId": hostile, "offlineRequest": "x.y.z"}
    )
    assert trial.status_code == 400 and trial.json()["code"] == "INVALID_ARGUMENT"
    if hostile in HOSTILE_ALIASES.values():
        login = site.client.post(
            "/v1/accounts/login", json={"accountAlias": hostile, "email": "a@b.example", "password": "x"}
        )
        assert login.status_code == 400 and login.json()["code"] == "INVALID_ARGUMENT"


def test_well_formed_unknown_ids_are_not_found(site: Site) -> None:
    auth = site.auth("admin_a")
    for url in (f"/v1/licenses/{new_id('lic')}", f"/v1/licenses/{new_id('lic')}/activations"):
        response = site.client.get(url, headers=auth)
        assert (response.status_code, response.json()["code"]) == (404, "LICENSE_NOT_FOUND")
    response = site.client.delete(f"/v1/me/tokens/{new_id('crd')}", headers=auth)
    assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")
    response = site.client.get("/.well-known/jwks.json", params={"product": new_id("prod")})
    assert (response.status_code, response.json()["code"]) == (404, "PRODUCT_NOT_FOUND")
    response = site.client.post(
        "/v1/trial-activations/offline-activate",
        json={"productId": new_id("prod"), "offlineRequest": "x.y.z"},
    )
    assert response.status_code in (400, 404)  # the file is checked first or the product: never 500


def test_jwks_of_a_path_is_refused_without_touching_the_disk_or_logging_an_error(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # A readable directory with a group-readable file: what the old code reported as INSECURE_KEY_FILE.
    probe = site.svc.settings.keys_dir.parent / "probe"
    probe.mkdir()
    (probe / "x.json").write_text("{}")
    (probe / "x.json").chmod(0o644)
    with caplog.at_level(logging.INFO):
        for value in ("../../etc", "../probe", str(probe), "..", "."):
            response = site.client.get("/.well-known/jwks.json", params={"product": value})
            assert (response.status_code, response.json()["code"]) == (400, "INVALID_ARGUMENT"), value
            assert str(probe) not in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the portal ----------------------------------------------------------------------------------


def _portal_routes(site: Site) -> list[tuple[str, str, dict[str, str]]]:
    group = team_a(site).id
    lic = site.licenses["org_a"].id
    return [
        ("GET", "/licenses/{v}", {}),
        ("GET", "/organization/users/{v}", {}),
        ("POST", "/organization/users/{v}", {"first_name": "A", "last_name": "B", "role": "user"}),
        ("POST", "/organization/users/{v}/disable", {}),
        ("POST", "/organization/users/{v}/enable", {}),
        ("POST", "/organization/users/{v}/password-link", {}),
        ("GET", "/organization/groups/{v}", {}),
        ("POST", "/organization/groups/{v}", {"name": "New name"}),
        ("POST", f"/organization/groups/{group}/members", {"user": "{v}"}),
        ("POST", f"/organization/groups/{group}/licenses", {"license": "{v}"}),
        ("POST", "/organization/groups/{v}/members", {"user": "{v}"}),
        ("POST", f"/organization/groups/{group}/members/{{v}}/remove", {}),
        ("POST", f"/organization/groups/{group}/licenses/{{v}}/unlink", {}),
        ("POST", f"/organization/groups/{{v}}/licenses/{lic}/unlink", {}),
        ("POST", "/profile/sessions/{v}/revoke", {}),
        ("POST", "/profile/tokens/{v}/revoke", {}),
        ("GET", "/downloads/f/{v}?exp=1&sig=x", {}),
        ("GET", "/branding/{v}/theme.css", {}),
        ("GET", "/branding/{v}/logo", {}),
        ("GET", "/activations?license={v}", {}),
        ("GET", "/activations?product={v}", {}),
        ("GET", "/activations.csv?license={v}", {}),
        ("GET", "/activations.csv?product={v}", {}),
        ("GET", "/batch/result/{v}", {}),
        ("GET", "/batch/result/{v}/download", {}),
    ]


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_portal_routes_refuse_hostile_ids(site: Site, hostile: str) -> None:
    browser = log_in(site, "admin_a")
    for method, template, form in _portal_routes(site):
        if not _applies(template, hostile):
            continue
        url = template.replace("{v}", quote(hostile, safe=""))
        data = {k: hostile if v == "{v}" else v for k, v in form.items()}
        response = post(browser, url, data) if method == "POST" else browser.get(url)
        again = _slash_redirect(url, response)
        if again is not None:
            response = post(browser, again, data) if method == "POST" else browser.get(again)
        if method == "POST" and response.status_code == 303:
            # A form refused for an id it holds (not its path's): back to its page, saying why.
            page = refused(browser, response, "INVALID_ARGUMENT")
            _refused(site, page, (200,))
            continue
        assert response.status_code in (400, 404), (method, template, response.status_code)
        _refused(site, response)


@pytest.mark.parametrize("hostile", TYPED_ALIASES.values(), ids=TYPED_ALIASES.keys())
def test_portal_login_refuses_a_hostile_account_alias(site: Site, hostile: str) -> None:
    browser = TestClient(site.client.app, follow_redirects=False)
    response = post(browser, "/login", {"account": hostile, "email": "a@b.example", "password": "x"})
    refused(browser, response, "INVALID_ARGUMENT")
    # The login page's ?account= only fills the form in: a hostile one is ignored, not an error.
    page = browser.get("/login", params={"account": hostile})
    assert page.status_code == 200


def test_every_id_kind_has_a_shape_that_its_ids_have() -> None:
    import re

    for kind in ID_PREFIXES:
        pattern = re.compile(id_pattern(kind))
        assert pattern.fullmatch(new_id(ID_PREFIXES[kind]))
        assert is_id(new_id(ID_PREFIXES[kind]), kind)
        for value in HOSTILE.values():
            assert not pattern.fullmatch(value) and not is_id(value, kind)
