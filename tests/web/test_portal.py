"""The customer portal, in process: login and sessions, CSRF, scoping of every page to the person's
licenses, offline activation, deactivation and batches, and the page hygiene the CSP demands."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from offline_service.accounts import auth
from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import DAY
from offline_service.licensing.models import License, Product
from offline_service.licensing.pages import download_name
from offline_service.settings import Settings
from offline_service.web.app import create_app
from offline_service.web.auth import CSRF_COOKIE, SESSION_COOKIE
from offline_service.web.kit import mask_key, safe_next
from offline_service.web.services import Services
from tests import people
from tests.db import table
from tests.factories import NOW, Machine

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another staple 42"
PAGES = ("/", "/licenses", "/activate", "/deactivate", "/batch")
SAFE_FILENAME = re.compile(r'\Aattachment; filename="[A-Za-z0-9._-]+"\Z')


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Portal:
    """One app over a fresh data directory, with two accounts of people and licenses.

    Account "acme": organization Globex with alice (organization admin) and bob (user, in group
    Engineering); carol, a user of no organization. Licenses: ``org_linked`` (Globex, linked to
    Engineering), ``org_only`` (Globex), ``bobs`` (bob's own), ``carols`` (carol's own).
    Account "other": another bob@example.com, with his own license ``other_bobs``.
    """

    app: Any
    svc: Services
    clock: Clock
    acme: Account
    other: Account
    product: Product
    org_linked: License
    org_only: License
    bobs: License
    carols: License
    other_bobs: License

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def login(self, email: str, *, account: str = "acme", password: str = PASSWORD) -> TestClient:
        client = self.client()
        response = submit(client, "/login", {"account": account, "email": email, "password": password})
        assert response.status_code == 303, response.text
        return client

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the license state tables, for "changes nothing" checks."""
        return {
            t: table(self.svc.store, t)
            for t in ("licenses", "activations", "request_nonces", "trials", "credentials")
        }


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    settings = Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys", password_cost=Cost.MINIMUM)
    clock = Clock(NOW)
    app = create_app(settings, clock=clock)
    svc: Services = app.state.services
    store, cost = svc.store, Cost.MINIMUM
    acme, _ = admin.ensure_account(store, "acme", now=NOW)
    other, _ = admin.ensure_account(store, "other", now=NOW)
    product = admin.create_product(store, svc.keyring, acme, name="App", now=NOW, trial_days=14)
    other_product = admin.create_product(store, svc.keyring, other, name="Other app", now=NOW)
    people.create_organization(store, acme, name="Globex", now=NOW)
    for email, role, org in (
        ("alice@example.com", Role.ORGANIZATION_ADMIN, "Globex"),
        ("bob@example.com", Role.USER, "Globex"),
        ("carol@example.com", Role.USER, None),
    ):
        people.create_user(
            store, acme, email=email, role=role, organization=org, password=PASSWORD, now=NOW, cost=cost
        )
    people.create_user(
        store, other, email="bob@example.com", role=Role.USER, password=OTHER_PASSWORD, now=NOW, cost=cost
    )
    people.create_group(store, acme, organization="Globex", name="Engineering", now=NOW)
    people.add_user_to_group(store, acme, group="Engineering", email="bob@example.com", now=NOW)

    def license(account: Account, product_id: str, **owner: str) -> License:
        return admin.create_license(
            store,
            account,
            product_id=product_id,
            allowed_activations=3,
            allowed_deactivations=2,
            now=NOW,
            **owner,
        )

    org_linked = license(acme, product.id, owner_organization="Globex")
    org_only = license(acme, product.id, owner_organization="Globex")
    bobs = license(acme, product.id, owner_user_email="bob@example.com")
    carols = license(acme, product.id, owner_user_email="carol@example.com")
    other_bobs = license(other, other_product.id, owner_user_email="bob@example.com")
    people.link_group_license(store, acme, group="Engineering", license_key=org_linked.key, now=NOW)
    yield Portal(
        app=app,
        svc=svc,
        clock=clock,
        acme=acme,
        other=other,
        product=product,
        org_linked=org_linked,
        org_only=org_only,
        bobs=bobs,
        carols=carols,
        other_bobs=other_bobs,
    )
    svc.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def submit(
    client: TestClient,
    path: str,
    data: dict[str, str],
    *,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    page: str | None = None,
) -> Any:
    """GET the page with the form (for its CSRF token), then POST the form."""
    shown = client.get(page or path)
    assert shown.status_code == 200, shown.text
    return client.post(path, data={"csrf": csrf_of(shown.text), **data}, files=files)


def activation(portal: Portal, license: License, name: str = "m1", **extra: Any) -> bytes:
    return Machine(fingerprint=f"fp-{name}").request(
        Kind.ACTIVATION, portal.product.id, license_key=license.key, issued_at=NOW, **extra
    )


def upload(data: bytes, name: str = "machine.request") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "application/octet-stream")}


def shown_text(html: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


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
    response = submit(client, "/login", {"account": account, "email": email, "password": password})
    assert response.status_code == 401
    assert "INVALID_CREDENTIALS" in response.text
    assert 'role="alert"' in response.text
    assert SESSION_COOKIE not in client.cookies
    assert password not in response.text  # the form is re-shown without the password
    assert client.get("/").status_code == 303


def test_login_with_an_empty_field_is_refused_without_counting(portal: Portal) -> None:
    client = portal.client()
    response = submit(client, "/login", {"account": "acme", "email": "bob@example.com", "password": ""})
    assert response.status_code == 400
    assert "INVALID_ARGUMENT" in response.text


def test_login_backs_off_after_five_failures_with_a_plain_wait(portal: Portal) -> None:
    client = portal.client()
    wrong = {"account": "acme", "email": "bob@example.com", "password": "wrong password 123"}
    for _ in range(auth.FREE_FAILURES + 1):
        assert submit(client, "/login", wrong).status_code == 401
    throttled = submit(client, "/login", {**wrong, "password": PASSWORD})
    assert throttled.status_code == 429
    wait = int(throttled.headers["retry-after"])
    assert wait > 0
    assert f"Wait {wait} seconds" in throttled.text and "RATE_LIMITED" in throttled.text
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


# -- dashboard and licenses ------------------------------------------------------------------


def test_dashboard_shows_only_visible_licenses_and_their_activity(portal: Portal) -> None:
    bob, carol = portal.login("bob@example.com"), portal.login("carol@example.com")
    assert (
        submit(
            carol, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.carols, "carol-pc"))
        ).status_code
        == 200
    )
    assert (
        submit(
            bob, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.bobs, "bob-pc"))
        ).status_code
        == 200
    )
    page = bob.get("/")
    assert page.status_code == 200
    for visible in (portal.bobs, portal.org_linked):
        assert mask_key(visible.key) in page.text
    for hidden in (portal.org_only, portal.carols, portal.other_bobs):
        assert mask_key(hidden.key) not in page.text
    text = shown_text(page.text)
    assert "fp-bob-pc" in text and "fp-carol-pc" not in text
    assert "Offline activation" in text and "you" in text
    assert "1 activation used of 6 allowed" in text
    assert "carol" not in page.text.lower()


def test_dashboard_counts_licenses_by_status(portal: Portal) -> None:
    admin.set_license_status(
        portal.svc.store, portal.acme, portal.org_only.key, admin.LicenseStatus.SUSPENDED, now=NOW
    )
    page = portal.login("alice@example.com").get("/")
    text = shown_text(page.text)
    assert "2 licenses in all" in text and "1 active" in text and "1 suspended" in text
    assert "License suspended" in text  # the vendor's action shows in the activity


def test_org_admin_sees_every_license_of_the_organization(portal: Portal) -> None:
    client = portal.login("alice@example.com")
    page = client.get("/licenses").text
    assert mask_key(portal.org_linked.key) in page and mask_key(portal.org_only.key) in page
    assert mask_key(portal.bobs.key) not in page and mask_key(portal.carols.key) not in page
    assert client.get(f"/licenses/{portal.org_only.id}").status_code == 200
    assert client.get(f"/licenses/{portal.bobs.id}").status_code == 404


def test_user_sees_own_and_group_licenses_only(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    page = client.get("/licenses").text
    assert mask_key(portal.bobs.key) in page and mask_key(portal.org_linked.key) in page
    assert mask_key(portal.org_only.key) not in page and mask_key(portal.carols.key) not in page
    assert client.get(f"/licenses/{portal.org_linked.id}").status_code == 200


@pytest.mark.parametrize("guess", ["carols", "org_only", "other_bobs"])
def test_guessing_another_license_id_is_not_found(portal: Portal, guess: str) -> None:
    client = portal.login("bob@example.com")
    license: License = getattr(portal, guess)
    for path in (f"/licenses/{license.id}", f"/licenses/{license.id}?reveal=1"):
        response = client.get(path)
        assert response.status_code == 404
        assert "LICENSE_NOT_FOUND" in response.text and "Not found" in response.text
        assert license.key not in response.text and mask_key(license.key) not in response.text
    assert client.get("/licenses/lic_000000000000000000000000").status_code == 404


def test_license_key_is_masked_unless_revealed(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    for path in ("/", "/licenses", f"/licenses/{portal.bobs.id}"):
        assert portal.bobs.key not in client.get(path).text
    detail = client.get(f"/licenses/{portal.bobs.id}").text
    assert mask_key(portal.bobs.key) in detail and f'href="/licenses/{portal.bobs.id}?reveal=1"' in detail
    revealed = client.get(f"/licenses/{portal.bobs.id}?reveal=1")
    assert portal.bobs.key in revealed.text and "Hide key" in revealed.text


def test_mask_key_keeps_only_the_last_group() -> None:
    assert mask_key("ABCDE-FGHJK-MNPQR-STVWX-YZ012") == "•••••-•••••-•••••-•••••-YZ012"
    assert mask_key("abc") == "•••"


def test_license_detail_shows_usage_and_activations(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    data = activation(
        portal, portal.bobs, "laptop", hostname="laptop-7", os="Windows 11", app_version="2.4.1"
    )
    assert submit(client, "/activate", {"validity": "7"}, files=upload(data)).status_code == 200
    text = shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    for expected in (
        "laptop-7",
        "fp-laptop",
        "Windows 11",
        "2.4.1",
        "1 of 3 used",
        "0 of 2 used",
        "App",
        "active",
    ):
        assert expected in text, expected


# -- offline activation ----------------------------------------------------------------------


def test_activation_by_upload_downloads_a_verifiable_response(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    response = submit(client, "/activate", {"validity": "1"}, files=upload(activation(portal, portal.bobs)))
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert SAFE_FILENAME.match(disposition), disposition
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.kind is Kind.ACTIVATION and parsed.license_id == portal.bobs.id
    assert parsed.apply_before - parsed.issued_at == DAY
    assert disposition == f'attachment; filename="host-fp-m1-{parsed.activation_id}.response"'
    assert response.headers["cache-control"] == "no-store"


def test_activation_by_pasted_text(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    text = activation(portal, portal.org_linked).decode("ascii")
    response = submit(client, "/activate", {"validity": "30", "text": f"\n  {text}\n"})
    assert response.status_code == 200
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.license_id == portal.org_linked.id
    assert parsed.apply_before - parsed.issued_at == 30 * DAY


def test_response_validity_is_capped_by_the_product(portal: Portal) -> None:
    store = portal.svc.store
    short = admin.create_product(
        store, portal.svc.keyring, portal.acme, name="Short", now=NOW, max_response_validity=2 * DAY
    )
    lic = admin.create_license(
        store,
        portal.acme,
        product_id=short.id,
        allowed_activations=1,
        allowed_deactivations=0,
        now=NOW,
        owner_user_email="carol@example.com",
    )
    data = Machine(fingerprint="fp-short").request(
        Kind.ACTIVATION, short.id, license_key=lic.key, issued_at=NOW
    )
    response = submit(portal.login("carol@example.com"), "/activate", {"validity": "30"}, files=upload(data))
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.apply_before - parsed.issued_at == 2 * DAY


def test_activation_for_a_license_the_user_cannot_see_records_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    response = submit(client, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.carols)))
    assert response.status_code == 404
    assert "LICENSE_NOT_FOUND" in response.text
    assert "you may not use" in response.text
    assert "content-disposition" not in response.headers
    assert portal.snapshot() == before


def test_trial_request_on_the_activation_page_is_refused_and_records_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    trial = Machine(fingerprint="fp-trial").request(Kind.TRIAL, portal.product.id, issued_at=NOW)
    response = submit(client, "/activate", {"validity": "7"}, files=upload(trial))
    assert response.status_code == 400
    assert "MALFORMED_REQUEST" in response.text and "trial" in response.text
    assert portal.snapshot() == before


@pytest.mark.parametrize(
    ("form", "files", "status", "code"),
    [
        ({}, None, 400, "INVALID_ARGUMENT"),
        ({"text": "   "}, None, 400, "INVALID_ARGUMENT"),
        ({"text": "not a request"}, None, 400, "MALFORMED_REQUEST"),
        ({"text": "x" * (MAX_FILE_BYTES + 1)}, None, 413, "REQUEST_TOO_LARGE"),
        ({}, upload(b"x" * (MAX_FILE_BYTES + 1)), 413, "REQUEST_TOO_LARGE"),
        ({"validity": "9999"}, "valid", 400, "INVALID_ARGUMENT"),
        ({"validity": "-1"}, "valid", 400, "INVALID_ARGUMENT"),
    ],
)
def test_bad_activation_forms_are_explained(
    portal: Portal, form: dict[str, str], files: Any, status: int, code: str
) -> None:
    client = portal.login("bob@example.com")
    if files == "valid":
        files = upload(activation(portal, portal.bobs))
    before = portal.snapshot()
    response = submit(client, "/activate", form, files=files)
    assert response.status_code == status
    assert code in response.text and 'role="alert"' in response.text
    assert "<form" in response.text  # the form is shown again
    assert portal.snapshot() == before


def test_activation_limit_is_explained_in_plain_words(portal: Portal) -> None:
    client = portal.login("carol@example.com")
    for n in range(3):
        assert (
            submit(
                client, "/activate", {}, files=upload(activation(portal, portal.carols, f"c{n}"))
            ).status_code
            == 200
        )
    response = submit(client, "/activate", {}, files=upload(activation(portal, portal.carols, "c4")))
    assert response.status_code == 409
    assert "ACTIVATION_LIMIT" in response.text and "no activations left" in response.text


def test_the_same_request_twice_reissues_without_counting_twice(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    data = activation(portal, portal.bobs)
    first = submit(client, "/activate", {}, files=upload(data))
    second = submit(client, "/activate", {}, files=upload(data))
    assert first.headers["content-disposition"] == second.headers["content-disposition"]
    assert "1 of 3 used" in shown_text(client.get(f"/licenses/{portal.bobs.id}").text)


# -- offline deactivation --------------------------------------------------------------------


def test_deactivation_downloads_a_signed_receipt(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-old-pc")
    data = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=NOW)
    activated = parse_response(
        submit(client, "/activate", {}, files=upload(data)).content, portal.svc.keyring.public_keys()
    )
    request = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    response = submit(client, "/deactivate", {}, files=upload(request))
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert SAFE_FILENAME.match(disposition)
    assert disposition.endswith(f'-{activated.activation_id}-deactivation-receipt.response"')
    receipt = parse_response(response.content, portal.svc.keyring.public_keys())
    assert receipt.kind is Kind.DEACTIVATION and receipt.deactivated_at == NOW
    text = shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    assert "0 of 3 used" in text and "1 of 2 used" in text and "deactivated" in text


def test_deactivation_of_another_persons_activation_is_refused(portal: Portal) -> None:
    carol, bob = portal.login("carol@example.com"), portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-carol")
    data = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.carols.key, issued_at=NOW)
    activated = parse_response(
        submit(carol, "/activate", {}, files=upload(data)).content, portal.svc.keyring.public_keys()
    )
    request = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    before = portal.snapshot()
    response = submit(bob, "/deactivate", {"text": request.decode()})
    assert response.status_code == 404 and "ACTIVATION_NOT_FOUND" in response.text
    assert portal.snapshot() == before


def test_an_activation_request_on_the_deactivation_page_is_refused(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    response = submit(client, "/deactivate", {}, files=upload(activation(portal, portal.bobs)))
    assert response.status_code == 400 and "MALFORMED_REQUEST" in response.text
    assert portal.snapshot() == before


# -- batch -----------------------------------------------------------------------------------


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_batch_zip_returns_responses_and_a_report(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    now = NOW  # the portal's batches run at the app's clock
    mine = Machine(fingerprint="fp-batch-1").request(
        Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=now
    )
    theirs = Machine(fingerprint="fp-batch-2").request(
        Kind.ACTIVATION, portal.product.id, license_key=portal.carols.key, issued_at=now
    )
    archive = zipped({"a.request": mine, "b.request": theirs})
    response = submit(
        client, "/batch", {"validity": "3"}, files={"archive": ("reqs.zip", archive, "application/zip")}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert SAFE_FILENAME.match(response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        assert sorted(z.namelist()) == ["a.response", "report.csv"]
        rows = {r["file"]: r for r in csv.DictReader(io.StringIO(z.read("report.csv").decode()))}
        parsed = parse_response(z.read("a.response"), portal.svc.keyring.public_keys())
    assert rows["a.request"]["code"] == "OK" and rows["b.request"]["code"] == "LICENSE_NOT_FOUND"
    assert parsed.license_id == portal.bobs.id and parsed.apply_before - parsed.issued_at == 3 * DAY
    with portal.svc.store.read() as tx:
        assert tx.activations(portal.carols.id) == []


def test_batch_refuses_trial_requests(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    trial = Machine(fingerprint="fp-trial").request(Kind.TRIAL, portal.product.id, issued_at=NOW)
    archive = zipped({"t.request": trial})
    response = submit(client, "/batch", {}, files={"archive": ("x.zip", archive, "application/zip")})
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("report.csv").decode())))
    assert rows[0]["code"] != "OK"
    assert portal.snapshot()["trials"] == []


@pytest.mark.parametrize(
    "archive",
    [
        b"this is not a zip",
        b"",
        zipped({"../escape.request": b"x"}),
        zipped({"big.request": b"\0" * (2 * 1024 * 1024)}),  # compressed far more than 100:1
    ],
)
def test_hostile_zip_is_refused_with_bad_archive(portal: Portal, archive: bytes) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    response = submit(client, "/batch", {}, files={"archive": ("x.zip", archive, "application/zip")})
    assert response.status_code == 400
    assert "BAD_ARCHIVE" in response.text and "cannot be processed" in response.text
    assert portal.snapshot() == before


def test_batch_whose_responses_clash_is_refused_before_any_seat_is_used(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    archive = zipped(
        {
            "a.request": activation(portal, portal.bobs, "a"),
            "a.response/b.request": activation(portal, portal.bobs, "b"),
        }
    )
    before = portal.snapshot()
    response = submit(client, "/batch", {}, files={"archive": ("x.zip", archive, "application/zip")})
    assert response.status_code == 400
    assert "BAD_ARCHIVE" in response.text and "a.response/b.request" in response.text
    assert portal.snapshot() == before


# -- page hygiene ----------------------------------------------------------------------------


def every_page(portal: Portal) -> Iterator[tuple[str, Any]]:
    anonymous = portal.client()
    yield "/login", anonymous.get("/login")
    bob = portal.login("bob@example.com")
    for path in (*PAGES, f"/licenses/{portal.bobs.id}", f"/licenses/{portal.bobs.id}?reveal=1"):
        yield path, bob.get(path)
    yield "404", bob.get(f"/licenses/{portal.carols.id}")
    yield "error", submit(bob, "/activate", {"text": "nonsense"})
    alice = portal.login("alice@example.com")
    for path in (*PAGES, f"/licenses/{portal.org_only.id}"):
        yield f"admin {path}", alice.get(path)


def test_pages_have_no_inline_script_or_style_and_carry_security_headers(portal: Portal) -> None:
    for name, response in every_page(portal):
        html = response.text
        assert "<script" not in html.lower(), name
        assert "<style" not in html.lower() and "style=" not in html.lower(), name
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), name
        assert "http://" not in html and "https://" not in html, name  # no third-party assets
        assert '<link rel="stylesheet" href="/static/portal.css">' in html, name
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"], name
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", name
        assert headers["cache-control"] == "no-store", name


def test_pages_are_accessible(portal: Portal) -> None:
    for name, response in every_page(portal):
        html = response.text
        assert '<html lang="en">' in html and 'name="viewport"' in html, name
        assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html, name
        assert 'aria-live="polite"' in html, name
        assert re.search(r"<h1[ >]", html), name
        for control in re.finditer(r"<(input|select|textarea)\b([^>]*)>", html):
            attrs = control.group(2)
            if 'type="hidden"' in attrs:
                continue
            found = re.search(r'\bid="([^"]+)"', attrs)
            assert found and f'<label for="{found.group(1)}">' in html, (name, control.group(0))
        for form in re.finditer(r"<form\b.*?</form>", html, re.DOTALL):
            assert 'name="csrf"' in form.group(0), name


def test_every_form_page_sets_the_csrf_cookie(portal: Portal) -> None:
    bob = portal.login("bob@example.com")
    for path in PAGES:
        fresh = portal.client()
        fresh.cookies.set(SESSION_COOKIE, bob.cookies[SESSION_COOKIE])
        response = fresh.get(path)
        assert any(c.startswith(f"{CSRF_COOKIE}=") for c in response.headers.get_list("set-cookie")), path
        assert csrf_of(response.text) == fresh.cookies[CSRF_COOKIE]


def test_stylesheet_is_served_locally_and_is_responsive(portal: Portal) -> None:
    response = portal.client().get("/static/portal.css")
    assert response.status_code == 200 and "text/css" in response.headers["content-type"]
    assert "@media (max-width" in response.text and ":focus-visible" in response.text
    assert "@import" not in response.text and "url(" not in response.text


def test_user_controlled_text_is_escaped(portal: Portal) -> None:
    people.create_user(
        portal.svc.store,
        portal.acme,
        email="mallory@example.com",
        role=Role.USER,
        password=PASSWORD,
        first_name="<script>x</script>",
        now=NOW,
        cost=Cost.MINIMUM,
    )
    lic = admin.create_license(
        portal.svc.store,
        portal.acme,
        product_id=portal.product.id,
        allowed_activations=2,
        allowed_deactivations=0,
        now=NOW,
        owner_user_email="mallory@example.com",
    )
    client = portal.login("mallory@example.com")
    page = client.get("/")
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script" not in page.text
    data = activation(portal, lic, "mal", hostname="<b>evil</b>", os='"><img src=x>')
    response = submit(client, "/activate", {}, files=upload(data))
    assert SAFE_FILENAME.match(response.headers["content-disposition"])
    assert 'filename="b_evil_b-' in response.headers["content-disposition"]
    detail = client.get(f"/licenses/{lic.id}").text
    assert "&lt;b&gt;evil&lt;/b&gt;" in detail and "<b>evil" not in detail and "<img" not in detail
    failed = submit(client, "/activate", {"text": "<i>pasted</i>"})
    assert "&lt;i&gt;pasted&lt;/i&gt;" in failed.text and "<i>pasted" not in failed.text
    login = portal.client().get("/login", params={"next": '/"><script>'})
    assert "<script" not in login.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("laptop-7", "laptop-7"),
        ("<b>", "b"),
        ("../../etc/passwd", "etc_passwd"),
        ("", "machine"),
        ("é 中", "machine"),
    ],
)
def test_download_names_are_sanitized(text: str, expected: str) -> None:
    assert download_name(text) == expected
