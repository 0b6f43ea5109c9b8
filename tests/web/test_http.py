"""HTTP semantics on every route of the app: a method a route does not allow is 405 with an
``Allow`` header naming exactly the methods it does allow (RFC 9110 15.5.6), and HEAD answers
wherever GET does, with GET's status and headers and no body (RFC 9110 9.3.2)."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route
from starlette.testclient import TestClient

from offline_service.ids import new_id
from tests.web.pages import log_in, team_a, user
from tests.web.site import Site

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _routes(site: Site) -> list[Route]:
    found = [r for r in site.client.app.routes if isinstance(r, Route)]
    assert len(found) > 40  # every module's routes, not a part of them
    return found


def _path(site: Site, route: Route) -> str:
    """The route's path with real ids where the fixture has them, well-formed unknown ones elsewhere."""
    known = {
        "/v1/licenses/{id}": site.licenses["org_a"].id,
        "/licenses/{id}": site.licenses["org_a"].id,
        "/organization/users/{id}": user(site, "user1").id,
        "/organization/groups/{id}": team_a(site).id,
        "/branding/{account}": site.acme.id,
    }
    path = route.path
    for prefix, value in known.items():
        head = prefix.rsplit("/", 1)[0]
        if path.startswith(prefix):
            path = head + "/" + value + path[len(prefix) :]
    kinds = {"id": "lic", "other": "usr", "account": "acc"}
    values = {"kid": "A" * 43}  # a key id: a thumbprint's shape (the route's convertor)
    return re.sub(
        r"\{(\w+)(?::\w+)?\}",
        lambda m: values.get(m.group(1)) or new_id(kinds.get(m.group(1), "file")),
        path,
    )


def test_the_offline_routes_come_first_and_no_other_route_matches_their_paths(site: Site) -> None:
    routes = list(site.client.app.routes)
    first = [r.path for r in routes[:2] if isinstance(r, Route)]
    assert first == ["/v1/activations/offline-activate", "/v1/activations/offline-deactivate"]
    # Tried first for speed; safe because nothing after them could have answered their paths.
    for path in first:
        for method in METHODS:
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            matching = [r for r in routes if r.matches(scope)[0] is not Match.NONE]
            assert matching == [routes[first.index(path)]], (path, method)


def test_every_route_answers_a_method_it_does_not_allow_with_405_and_allow(site: Site) -> None:
    browser = TestClient(site.client.app, follow_redirects=False)
    checked = 0
    for route in _routes(site):
        assert route.methods is not None
        path = _path(site, route)
        for method in METHODS:
            if method in route.methods:
                continue
            response = browser.request(method, path)
            assert response.status_code == 405, (method, route.path, response.status_code)
            allowed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            assert allowed == route.methods, (method, route.path)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("who", ["anonymous", "admin_a", "user1"])
def test_head_answers_wherever_get_does_with_the_same_status_and_no_body(site: Site, who: str) -> None:
    browser = TestClient(site.client.app, follow_redirects=False) if who == "anonymous" else log_in(site, who)
    headers = {} if who == "anonymous" else site.auth(who)
    for route in _routes(site):
        assert route.methods is not None
        if "GET" not in route.methods:
            continue
        assert "HEAD" in route.methods, route.path
        path = _path(site, route)
        got = browser.get(path, headers=headers)
        head = browser.head(path, headers=headers)
        assert head.status_code == got.status_code, (route.path, head.status_code, got.status_code)
        assert head.content == b"", route.path
        assert head.headers.get("content-type") == got.headers.get("content-type"), route.path
        assert head.headers.get("allow") is None


def test_static_files_answer_other_methods_with_405_and_allow(site: Site) -> None:
    browser = TestClient(site.client.app, follow_redirects=False)
    for method in ("POST", "PUT", "DELETE"):
        response = browser.request(method, "/static/portal.css")
        assert response.status_code == 405
        assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}
    assert browser.head("/static/portal.css").status_code == 200


def test_head_on_the_login_page_is_the_page_not_a_login_attempt(site: Site) -> None:
    browser = TestClient(site.client.app, follow_redirects=False)
    response = browser.head("/login")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_a_portal_405_is_a_page_that_also_names_the_allowed_methods(site: Site) -> None:
    browser = TestClient(site.client.app, follow_redirects=False)
    response = browser.delete("/login")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}
