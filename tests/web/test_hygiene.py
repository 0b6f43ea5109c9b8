"""Page hygiene on every portal page: no inline script or style (the CSP), security headers,
accessible forms, the CSRF cookie, escaping, local stylesheets and safe download names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.licensing import services as admin
from offline_service.licensing.pages import download_name
from offline_service.web.auth import CSRF_COOKIE, SESSION_COOKIE
from tests import people
from tests.factories import NOW
from tests.web.pages import has_inline_script
from tests.web.portal import (
    PAGES,
    PASSWORD,
    SAFE_FILENAME,
    Portal,
    activation,
    csrf_of,
    refused,
    result_file,
    submit,
    upload,
)

# -- page hygiene ----------------------------------------------------------------------------


def every_page(portal: Portal) -> Iterator[tuple[str, Any]]:
    anonymous = portal.client()
    yield "/login", anonymous.get("/login")
    bob = portal.login("bob@example.com")
    for path in (*PAGES, f"/licenses/{portal.bobs.id}", f"/licenses/{portal.bobs.id}?reveal=1"):
        yield path, bob.get(path)
    yield "404", bob.get(f"/licenses/{portal.carols.id}")
    yield "unknown path", bob.get("/no/such/page")
    yield "unknown path, anonymous", anonymous.get("/no/such/page")
    yield "405", bob.get("/logout")
    yield "error", refused(bob, submit(bob, "/activate", {"text": "nonsense"}), "MALFORMED_REQUEST")
    yield (
        "refused login",
        refused(anonymous, submit(anonymous, "/login", {"account": "acme"}), "INVALID_ARGUMENT"),
    )
    alice = portal.login("alice@example.com")
    for path in (*PAGES, f"/licenses/{portal.org_only.id}"):
        yield f"admin {path}", alice.get(path)


def test_pages_have_no_inline_script_or_style_and_carry_security_headers(portal: Portal) -> None:
    for name, response in every_page(portal):
        html = response.text
        assert not has_inline_script(html), name
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
        for form in re.finditer(r"<form\b([^>]*)>.*?</form>", html, re.DOTALL):
            if 'method="get"' in form.group(1):
                # A search form changes nothing, and a token in its URL would travel in shared links.
                assert 'name="csrf"' not in form.group(0), name
            else:
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


def test_script_is_served_locally_and_only_folds_the_menu(portal: Portal) -> None:
    response = portal.client().get("/static/portal.js")
    assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert "aria-expanded" in response.text and "fetch(" not in response.text and "http" not in response.text


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
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and not has_inline_script(page.text)
    data = activation(portal, lic, "mal", hostname="<b>evil</b>", os='"><img src=x>')
    posted = submit(client, "/activate", {}, files=upload(data))
    result = client.get(posted.headers["location"]).text
    assert "&lt;b&gt;evil&lt;/b&gt;" in result and "<b>evil" not in result and "<img" not in result
    response = result_file(client, posted)
    assert SAFE_FILENAME.match(response.headers["content-disposition"])
    assert 'filename="b_evil_b-' in response.headers["content-disposition"]
    detail = client.get(f"/licenses/{lic.id}").text
    assert "&lt;b&gt;evil&lt;/b&gt;" in detail and "<b>evil" not in detail and "<img" not in detail
    failed = refused(client, submit(client, "/activate", {"text": "<i>pasted</i>"}), "MALFORMED_REQUEST")
    assert "&lt;i&gt;pasted&lt;/i&gt;" in failed.text and "<i>pasted" not in failed.text
    login = portal.client().get("/login", params={"next": '/"><script>'})
    assert not has_inline_script(login.text)


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
