"""The portal's login pages, in process: login and sessions, logout, expiry, redirects after login,
and the CSRF check on every form."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

from offline_service.accounts import auth
from offline_service.web.auth import CSRF_COOKIE, SESSION_COOKIE
from offline_service.web.kit import FLASH_COOKIE, mask_key, safe_next
from tests.db import table
from tests.web.portal import (
    OTHER_PASSWORD,
    PAGES,
    PASSWORD,
    Portal,
    activation,
    csrf_of,
    refused,
    shown_text,
    submit,
    upload,
)

# -- login, sessions, logout -----------------------------------------------------------------


def test_login_page_has_a_labelled_form_with_a_csrf_token_and_sets_its_cookie(portal: Portal) -> None:
    client = portal.client()
    response = client.get("/login")
    assert response.status_code == 200
    assert csrf_of(response.text) == client.cookies[CSRF_COOKIE]
    for field in ("account", "email", "password"):
        assert f'<label for="{field}">' in response.text
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie


def test_login_sets_an_http_only_session_cookie_and_goes_to_the_dashboard(portal: Portal) -> None:
    client = portal.client()
    response = submit(client, "/login", {"account": "acme", "email": "bob@example.com", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    session = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    assert "secure" not in session.lower()  # plain http in this test; https sets Secure
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "bob@example.com" in dashboard.text


def test_session_cookie_is_secure_behind_https(portal: Portal) -> None:
    client = TestClient(portal.app, base_url="https://testserver", follow_redirects=False)
    response = submit(client, "/login", {"account": "acme", "email": "bob@example.com", "password": PASSWORD})
    assert response.status_code == 303
    assert all("secure" in c.lower() for c in response.headers.get_list("set-cookie"))


@pytest.mark.parametrize(
    ("account", "email", "password"),
    [
        ("acme", "bob@example.com", "wrong password 123"),
        ("acme", "nobody@example.com", PASSWORD),
        ("nosuch", "bob@example.com", PASSWORD),
        ("acme", "bob@example.com", OTHER_PASSWORD),  # the other account's bob
    ],
)
def test_failed_login_says_invalid_credentials_and_sets_no_session(
    portal: Portal, account: str, email: str, password: str
) -> None:
    client = portal.client()
    posted = submit(client, "/login", {"account": account, "email": email, "password": password})
    page = refused(client, posted, "INVALID_CREDENTIALS")
    assert "The account, email or password is not right. Check them and try again." in page.text
    assert SESSION_COOKIE not in client.cookies
    # The form is shown again with the account and email, never the password.
    assert f'value="{account}"' in page.text and f'value="{email}"' in page.text
    assert password not in page.text and quote(password) not in posted.headers["set-cookie"]
    assert client.get("/").status_code == 303


def test_a_refused_login_is_shown_once_and_a_reload_counts_no_attempt(portal: Portal) -> None:
    client = portal.client()
    posted = submit(
        client, "/login", {"account": "acme", "email": "bob@example.com", "password": "wrong 12345"}
    )
    cookie = posted.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/login" in cookie
    assert "max-age=60" in cookie
    counted = table(portal.svc.store, "login_failures")
    assert counted  # the refused attempt was counted, once
    page = refused(client, posted, "INVALID_CREDENTIALS")
    assert FLASH_COOKIE not in client.cookies  # shown, then dropped
    reload = client.get("/login")
    assert (
        reload.status_code == 200
        and 'role="alert"' not in reload.text
        and "INVALID_CREDENTIALS" not in reload.text
    )
    assert table(portal.svc.store, "login_failures") == counted  # neither GET counted an attempt
    assert 'role="alert"' in page.text


def test_a_refused_login_keeps_where_to_go_after_it(portal: Portal) -> None:
    client = portal.client()
    form = client.get(client.get("/licenses?x=1").headers["location"])
    wrong = {
        "account": "acme",
        "email": "bob@example.com",
        "password": "wrong 12345",
        "next": "/licenses?x=1",
    }
    posted = client.post("/login", data={"csrf": csrf_of(form.text), **wrong})
    assert posted.headers["location"] == "/login?next=%2Flicenses%3Fx%3D1"
    page = refused(client, posted, "INVALID_CREDENTIALS")
    assert 'name="next" value="/licenses?x=1"' in page.text
    right = client.post("/login", data={"csrf": csrf_of(page.text), **wrong, "password": PASSWORD})
    assert right.status_code == 303 and right.headers["location"] == "/licenses?x=1"
    # A next that leaves the site is not carried round.
    assert client.post("/logout", data={"csrf": client.cookies[CSRF_COOKIE]}).status_code == 303
    form = client.get("/login")
    posted = client.post("/login", data={"csrf": csrf_of(form.text), **wrong, "next": "//evil.example/"})
    assert posted.headers["location"] == "/login"
    assert 'name="next" value="/"' in refused(client, posted, "INVALID_CREDENTIALS").text


def test_login_with_an_empty_field_is_refused_without_counting(portal: Portal) -> None:
    client = portal.client()
    posted = submit(client, "/login", {"account": "acme", "email": "bob@example.com", "password": ""})
    refused(client, posted, "INVALID_ARGUMENT")
    assert table(portal.svc.store, "login_failures") == []


def test_login_backs_off_after_five_failures_with_a_plain_wait(portal: Portal) -> None:
    client = portal.client()
    wrong = {"account": "acme", "email": "bob@example.com", "password": "wrong password 123"}
    for _ in range(auth.FREE_FAILURES + 1):
        refused(client, submit(client, "/login", wrong), "INVALID_CREDENTIALS")
    throttled = refused(client, submit(client, "/login", {**wrong, "password": PASSWORD}), "RATE_LIMITED")
    found = re.search(
        r"Too many failed attempts\. Wait (\d+) seconds, then try again\.", shown_text(throttled.text)
    )
    assert found, shown_text(throttled.text)
    wait = int(found.group(1))
    assert wait > 0
    assert SESSION_COOKIE not in client.cookies
    portal.clock.now += wait
    assert submit(client, "/login", {**wrong, "password": PASSWORD}).status_code == 303


def test_same_email_logs_into_each_account_separately(portal: Portal) -> None:
    acme = portal.login("bob@example.com", account="acme")
    other = portal.login("bob@example.com", account="other", password=OTHER_PASSWORD)
    acme_page, other_page = acme.get("/licenses").text, other.get("/licenses").text
    assert mask_key(portal.bobs.key) in acme_page and mask_key(portal.other_bobs.key) not in acme_page
    assert mask_key(portal.other_bobs.key) in other_page and mask_key(portal.bobs.key) not in other_page
    assert other.get(f"/licenses/{portal.bobs.id}").status_code == 404


def test_login_returns_to_the_page_asked_for(portal: Portal) -> None:
    client = portal.client()
    first = client.get("/licenses?x=1")
    assert first.status_code == 303
    location = first.headers["location"]
    assert urlsplit(location).path == "/login"
    target = parse_qs(urlsplit(location).query)["next"][0]
    assert target == "/licenses?x=1"
    form = client.get(location)
    assert 'name="next" value="/licenses?x=1"' in form.text
    response = client.post(
        "/login",
        data={
            "csrf": csrf_of(form.text),
            "account": "acme",
            "email": "bob@example.com",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.headers["location"] == "/licenses?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil",
        "",
        "/login",
    ],
)
def test_login_never_redirects_off_site(portal: Portal, target: str) -> None:
    assert safe_next(target) == "/"
    client = portal.client()
    form = client.get("/login", params={"next": target})
    response = client.post(
        "/login",
        data={
            "csrf": csrf_of(form.text),
            "account": "acme",
            "email": "bob@example.com",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.headers["location"] == "/"


def test_logged_in_visit_to_login_goes_to_the_dashboard(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    response = client.get("/login")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_logout_revokes_the_session(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    token = client.cookies[SESSION_COOKIE]
    response = submit(client, "/logout", {}, page="/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    replay = portal.client()
    replay.cookies.set(SESSION_COOKIE, token)
    after = replay.get("/")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")


def test_session_expires_after_its_lifetime(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    portal.clock.now += portal.svc.settings.session_lifetime - 1
    assert client.get("/").status_code == 200
    portal.clock.now += 1
    response = client.get("/licenses")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Flicenses"
    assert SESSION_COOKIE not in client.cookies  # the stale cookie is cleared


def test_a_forged_session_cookie_is_not_a_session(portal: Portal) -> None:
    client = portal.client()
    client.cookies.set(SESSION_COOKIE, "x" * 43)
    assert client.get("/").status_code == 303


@pytest.mark.parametrize("path", [*PAGES, "/licenses/lic_000000000000000000000000"])
def test_anonymous_pages_redirect_to_login_with_next(portal: Portal, path: str) -> None:
    response = portal.client().get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize("path", ["/activate", "/deactivate", "/batch"])
def test_anonymous_posts_are_not_processed(portal: Portal, path: str) -> None:
    client = portal.client()
    csrf = csrf_of(client.get("/login").text)
    before = portal.snapshot()
    response = client.post(path, data={"csrf": csrf}, files=upload(activation(portal, portal.bobs)))
    assert response.status_code == 303
    assert portal.snapshot() == before


# -- CSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "x" * 43])
@pytest.mark.parametrize("path", ["/activate", "/deactivate", "/batch", "/logout"])
def test_every_logged_in_post_needs_the_csrf_token(portal: Portal, path: str, token: str | None) -> None:
    client = portal.login("bob@example.com")
    client.get(path if path != "/logout" else "/")
    before = portal.snapshot()
    data = {} if token is None else {"csrf": token}
    files = {"archive": ("r.zip", b"PK", "application/zip")} if path == "/batch" else None
    if path in ("/activate", "/deactivate"):
        files = upload(activation(portal, portal.bobs))
    response = client.post(path, data=data, files=files)
    assert response.status_code == 403
    assert "CSRF_FAILED" in response.text
    assert portal.snapshot() == before
    assert client.get("/").status_code == 200  # still logged in (logout did nothing)


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_login_needs_the_csrf_token(portal: Portal, token: str | None) -> None:
    client = portal.client()
    client.get("/login")
    data = {"account": "acme", "email": "bob@example.com", "password": PASSWORD}
    response = client.post("/login", data=data if token is None else {**data, "csrf": token})
    assert response.status_code == 403 and "CSRF_FAILED" in response.text
    assert SESSION_COOKIE not in client.cookies


def test_a_token_without_its_cookie_is_refused(portal: Portal) -> None:
    """A cross-site form cannot read the cookie; posting some other browser's token fails."""
    victim = portal.login("bob@example.com")
    token = csrf_of(victim.get("/activate").text)
    attacker = portal.client()
    attacker.cookies.set(SESSION_COOKIE, victim.cookies[SESSION_COOKIE])
    response = attacker.post("/activate", data={"csrf": token}, files=upload(activation(portal, portal.bobs)))
    assert response.status_code == 403


def test_login_gives_a_fresh_csrf_token(portal: Portal) -> None:
    client = portal.client()
    before = csrf_of(client.get("/login").text)
    client.post(
        "/login", data={"csrf": before, "account": "acme", "email": "bob@example.com", "password": PASSWORD}
    )
    after = csrf_of(client.get("/").text)
    assert after != before and after == client.cookies[CSRF_COOKIE]
