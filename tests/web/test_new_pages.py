"""Every page the organization admin, profile and activations work added: no inline script or
style, the security headers, labelled controls, CSRF tokens on every posted form (and none in a
GET form's URL); and no set-password link or personal token secret in any log."""

from __future__ import annotations

import logging
import re

import pytest

from offline_service.accounts import membership
from offline_service.accounts.scope import Scope
from tests.db import rows
from tests.factories import NOW
from tests.web.pages import client, has_inline_script, link_in, log_in, mails, post, refused, team_a, user
from tests.web.site import Site

NEW_PASSWORD = "a brand new passphrase 7"


def test_no_link_or_token_secret_reaches_a_log(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = log_in(site, "admin_a")
    post(admin, "/organization/users", {"email": "quiet@acme.example", "role": "user"})
    [(_, mail)] = mails(site)
    link = link_in(mail)
    secret = link.split("=", 1)[1]
    newcomer = client(site)
    newcomer.get(link)
    post(newcomer, "/set-password", {"token": secret, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    made = admin.get(post(admin, "/profile/tokens", {"name": "t", "days": "7"}).headers["location"])
    pat = re.search(r'value="(ofs_pat_[^"]+)"', made.text)
    assert pat
    site.client.get("/v1/me", headers={"authorization": f"Bearer {pat.group(1)}"})
    # What the service logged; the test client's own request log (httpx) is not the service's.
    records = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "".join(f"{r.getMessage()} {r.args}" for r in records)
    assert "quiet@acme.example" in logged  # the mail's line is there...
    for value in (secret, pat.group(1), NEW_PASSWORD):
        assert value not in logged  # ...without the secret
    audit = str(rows(site.svc.store, "SELECT * FROM audit_log"))
    for value in (secret, pat.group(1), NEW_PASSWORD):
        assert value not in audit


def _every_new_page(site: Site) -> list[tuple[str, str, dict[str, str]]]:
    admin = log_in(site, "admin_a")
    group, user2 = team_a(site), user(site, "user2")
    pages = []
    for path in (
        "/activations",
        "/activations?status=live&q=x",
        "/profile",
        "/profile/security",
        "/organization/users",
        f"/organization/users/{user2.id}",
        f"/organization/users/{user(site, 'admin_a').id}",
        "/organization/groups",
        f"/organization/groups/{group.id}",
    ):
        response = admin.get(path)
        assert response.status_code == 200, path
        pages.append((path, response.text, dict(response.headers)))
    made = admin.get(post(admin, "/profile/tokens", {"name": "t", "days": "7"}).headers["location"])
    assert "ofs_pat_" in made.text
    pages.append(("new token", made.text, dict(made.headers)))
    shown = refused(
        admin, post(admin, "/organization/users", {"email": "bad", "role": "user"}), "INVALID_ARGUMENT"
    )
    pages.append(("refused", shown.text, dict(shown.headers)))
    _, token = membership.create_user(
        site.svc.store,
        Scope.of_admin(user(site, "admin_a")),
        email="h@acme.example",
        role="user",
        now=NOW,
        link_lifetime=60,
    )
    link = client(site).get(f"/set-password?token={token}")
    pages.append(("set-password", link.text, dict(link.headers)))
    forbidden = log_in(site, "user1").get("/organization/users")
    pages.append(("forbidden", forbidden.text, dict(forbidden.headers)))
    return pages


def test_new_pages_have_no_inline_script_or_style_and_carry_security_headers(site: Site) -> None:
    for name, html, headers in _every_new_page(site):
        assert not has_inline_script(html), name
        assert "<style" not in html.lower() and "style=" not in html.lower(), name
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), name
        assert "http://" not in html and "https://" not in html, name
        assert '<link rel="stylesheet" href="/static/portal.css">' in html, name
        assert "script-src 'self'" in headers["content-security-policy"], name
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store", name


def test_new_pages_are_accessible(site: Site) -> None:
    for name, html, _ in _every_new_page(site):
        assert '<html lang="en">' in html and '<main id="main"' in html and 'aria-live="polite"' in html, name
        assert len(re.findall(r"<h1[ >]", html)) == 1, name
        for control in re.finditer(r"<(input|select|textarea)\b([^>]*)>", html):
            attrs = control.group(2)
            if 'type="hidden"' in attrs:
                continue
            found = re.search(r'\bid="([^"]+)"', attrs)
            assert found and f'<label for="{found.group(1)}">' in html, (name, control.group(0))
        for form in re.finditer(r"<form\b([^>]*)>.*?</form>", html, re.DOTALL):
            if 'method="get"' in form.group(1):
                assert 'name="csrf"' not in form.group(0), name  # a token in a URL would leak
            else:
                assert 'method="post"' in form.group(1) and 'name="csrf"' in form.group(0), name
        ids = re.findall(r'\bid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), (name, sorted(i for i in ids if ids.count(i) > 1))
