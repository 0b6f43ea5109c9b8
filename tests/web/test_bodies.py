"""Hostile JSON bodies: every endpoint that reads one answers 400 MALFORMED_REQUEST (413 when it is
over the body limit), never a 500, and nothing reaches the log at ERROR."""

from __future__ import annotations

import json
import logging
import re

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.web.bodies import MAX_BODY_BYTES, MAX_DEPTH, parse_json_object
from tests.licensing.test_archive import HOSTILE as HOSTILE_ZIPS
from tests.web.pages import client, log_in
from tests.web.site import EMAILS, PASSWORD, Site, SiteFactory, error

ACTIVATE = "/v1/activations/offline-activate"
DEACTIVATE = "/v1/activations/offline-deactivate"
TRIAL = "/v1/trial-activations/offline-activate"
LOGIN = "/v1/accounts/login"
TOKENS = "/v1/me/tokens"
JSON_POSTS = (LOGIN, ACTIVATE, DEACTIVATE, TRIAL, TOKENS)

# Each under the 64 KiB body limit, so it reaches the parser.
HOSTILE = {
    "60,000 [ unclosed": b"[" * 60_000,
    "30,000 nested arrays": b"[" * 30_000 + b"]" * 30_000,
    "10,000 nested objects": b'{"":' * 10_000 + b"0" + b"}" * 10_000,
    "mixed nesting in a member": b'{"accountAlias": ' + b'[{"a":' * 5_000 + b"1" + b"}]" * 5_000 + b"}",
    "truncated": b'{"accountAlias": "acme", "em',
    "empty": b"",
    "not JSON": b"{",
    "invalid UTF-8": b'{"accountAlias": "\xff\xfe"}',
    "UTF-16": '{"accountAlias": "acme"}'.encode("utf-16"),
    "duplicate member names": b'{"accountAlias": "acme", "accountAlias": "other"}',
    "NaN": b'{"responseValidity": NaN}',
    "Infinity": b'{"responseValidity": -Infinity}',
    "overflowing float": b'{"responseValidity": 1e400}',
    "lone surrogate": b'{"email": "\\ud800"}',
    "5,000-digit integer": b'{"responseValidity": ' + b"9" * 5_000 + b"}",
}


def _headers(site: Site, path: str) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if path in (ACTIVATE, DEACTIVATE, TOKENS):
        headers.update(site.auth("user1"))
    return headers


@pytest.fixture
def busy_site(make_site: SiteFactory) -> Site:
    # Room for every hostile trial call within the per-address rate.
    return make_site(trial_rate_per_minute=10_000)


@pytest.mark.parametrize("path", JSON_POSTS)
def test_hostile_json_bodies_are_malformed_request_and_never_logged_as_errors(
    busy_site: Site, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    site = busy_site
    headers = _headers(site, path)
    caplog.set_level(logging.INFO)
    for name, body in HOSTILE.items():
        response = site.client.post(path, content=body, headers=headers)
        assert error(response) == (400, "MALFORMED_REQUEST"), name
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert site.client.get("/healthz").status_code == 200
    assert site.login("user1").status_code == 200


@pytest.mark.parametrize("path", JSON_POSTS)
def test_a_10_mb_json_body_is_too_large(busy_site: Site, path: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = b'{"offlineRequest": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = busy_site.client.post(path, content=body, headers=_headers(busy_site, path))
    assert error(response) == (413, "REQUEST_TOO_LARGE")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert busy_site.client.get("/healthz").status_code == 200


@pytest.mark.parametrize("body", [b"[]", b"null", b'"x"', b"5", b"[" * MAX_DEPTH + b"]" * MAX_DEPTH])
def test_valid_json_that_is_not_an_object_is_invalid_argument(site: Site, body: bytes) -> None:
    response = site.client.post(LOGIN, content=body, headers={"content-type": "application/json"})
    assert error(response) == (400, "INVALID_ARGUMENT")


def test_a_body_nested_to_the_limit_is_parsed() -> None:
    inner: object = "acme"
    for _ in range(MAX_DEPTH - 1):
        inner = [inner]
    body = json.dumps({"x": inner}).encode()
    assert parse_json_object(body) == {"x": inner}
    with pytest.raises(OfflineServiceError) as caught:
        parse_json_object(json.dumps({"x": [inner]}).encode())
    assert caught.value.code is Code.MALFORMED_REQUEST


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"a": "' + "[{" * 10_000 + '\\"[", "b": ["]]]{{{"]}'
    assert parse_json_object(text.encode()) == json.loads(text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_parse_json_object_raises_only_malformed_request(name: str) -> None:
    with pytest.raises(OfflineServiceError) as caught:
        parse_json_object(HOSTILE[name])
    assert caught.value.code is Code.MALFORMED_REQUEST


def test_parse_json_object_bounds_the_size_and_the_depth() -> None:
    with pytest.raises(OfflineServiceError) as caught:
        parse_json_object(b" " * (MAX_BODY_BYTES + 1) + b"{}")
    assert caught.value.code is Code.REQUEST_TOO_LARGE
    with pytest.raises(OfflineServiceError) as caught:
        parse_json_object(b'{"a": [[[1]]]}', max_depth=3)
    assert caught.value.code is Code.MALFORMED_REQUEST
    assert parse_json_object(b'{"a": [[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(OfflineServiceError) as caught:
        parse_json_object(b'{"a": 1}', max_bytes=4)
    assert caught.value.code is Code.REQUEST_TOO_LARGE


def test_parse_json_object_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        parse_json_object('{"a": 1}')  # type: ignore[arg-type]


def test_a_well_formed_login_still_works(site: Site) -> None:
    body = json.dumps({"accountAlias": "acme", "email": EMAILS["user1"], "password": PASSWORD})
    response = site.client.post(LOGIN, content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200


# -- every other way in: forms, multipart, query strings, cookies ---------------------------------

FORM = "application/x-www-form-urlencoded"
HOSTILE_FORMS = [
    (FORM, b"a=%ff%fe&b=" + b"x" * 60_000),
    (FORM, b"&" * 60_000),
    (FORM, b"\xff\xfe=\xff&csrf=%00"),
    (FORM + "; charset=bogus", b"a=b"),
    ("multipart/form-data", b"--x\r\n"),
    ("multipart/form-data; boundary=", b"--\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\nnonsense"),
    (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="\xff"\r\n\r\nv\r\n--x--\r\n',
    ),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n"),
    (
        "multipart/form-data; boundary=x; charset=bogus",
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="\xff"\r\n\r\n\xff\r\n--x--\r\n',
    ),
    ("text/plain", b"\x00" * 100),
    ("", b""),
]
HOSTILE_QUERIES = [
    "?" + "a" * 30_000,
    "?responseValidity=" + "9" * 30_000,
    "?next=%00%ff&account=%ff%00&done=" + "%ff" * 1000,
    "?reveal=1&v=" + "%ff" * 1000 + "&token=" + "%00" * 1000 + "&exp=-1e999&sig=%ff",
    "?offset=99999999999999999999&limit=-1&sort=%ff&status=%00&license=" + "x" * 1000,
    "?" + "&".join(f"k{i}=v" for i in range(3_000)),
]

HOSTILE_COOKIES = [
    b"ofs_session=" + b"\xff" * 64 + b"; ofs_csrf=" + b"a" * 5_000,
    b"ofs_session=" + b"x" * 4_000 + b'; ="; ;;==; ofs_csrf',
    b"ofs_session=%00%ff; ofs_session=a",
]


def _paths(site: Site) -> list[tuple[str, str]]:
    """Every route of the app as (method, a path that reaches it)."""
    found = []
    for route in site.client.app.routes:  # type: ignore[attr-defined]
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None)
        if not methods:
            continue
        concrete = re.sub(r"\{[^}]*\}", "x", path)
        found += [(m, concrete) for m in sorted(methods) if m != "HEAD"]
    return sorted(found, key=lambda route: "logout" in route[1])  # stay logged in until the end


def test_no_form_query_string_or_cookie_makes_a_server_error(
    busy_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site = busy_site
    caplog.set_level(logging.INFO)
    browser = log_in(site, "admin_a")
    browser.headers.update(site.auth("admin_a"))
    stranger = client(site)
    routes = _paths(site)
    assert len(routes) > 30
    for method, path in routes:
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            for kind, body in HOSTILE_FORMS:
                answer = browser.request(method, path, content=body, headers={"content-type": kind})
                assert answer.status_code < 500, (method, path, kind, body[:40])
        if method == "GET":
            for query in HOSTILE_QUERIES:
                answer = browser.get(path + query)
                assert answer.status_code < 500, (path, query[:40])
            for cookie in HOSTILE_COOKIES:
                answer = stranger.get(path, headers={"cookie": cookie})
                assert answer.status_code < 500, (path, cookie[:40])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert site.client.get("/healthz").status_code == 200


@pytest.mark.parametrize("kind", ["name not UTF-8", "empty name", "name after a NUL"])
def test_zips_the_fuzzer_found_are_bad_archive_on_the_api(
    site: Site, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    upload = HOSTILE_ZIPS[kind]([b"x"])
    before = site.state()
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(response) == (400, "BAD_ARCHIVE")
    assert site.state() == before
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
