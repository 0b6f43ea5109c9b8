"""Customization per account, in process: the portal name, accent colour and logo on every page of
the account, the login page of a custom domain or of ``?account=``, and the rule that the session
decides the account, never the Host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offline_service.branding import services as branding
from offline_service.branding.services import theme
from tests.factories import NOW
from tests.images import png
from tests.web.pages import has_inline_script, refused
from tests.web.site import EMAILS, PASSWORD, Site

DOMAIN = "portal.acme.example"
ROLES = ("user1", "user2", "admin_a", "admin_b", "other")


@pytest.fixture
def branded(site: Site, tmp_path: Path) -> Site:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(40, 20))
    branding.customize(
        site.svc.store,
        site.acme,
        data_dir=site.svc.settings.data_dir,
        now=NOW,
        portal_name="Acme <Downloads>",
        accent_color="#FFCC00",
        logo=logo,
        custom_domain=DOMAIN,
    )
    return site


def client(site: Site, host: str = "testserver") -> TestClient:
    return TestClient(site.client.app, base_url=f"http://{host}", follow_redirects=False)


def log_in(c: TestClient, role: str, *, account: str | None = None, login_path: str = "/login") -> None:
    page = c.get(login_path)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    data = {"csrf": csrf.group(1), "email": EMAILS[role], "password": PASSWORD}
    hidden = re.search(r'<input type="hidden" name="account" value="([^"]*)">', page.text)
    if account is not None:
        data["account"] = account
    elif hidden:  # what a browser posts
        data["account"] = hidden.group(1)
    response = c.post(login_path, data=data)
    assert response.status_code == 303, response.text


def acme_id(site: Site) -> str:
    return site.acme.id


def logo_file(site: Site) -> Path:
    with site.svc.store.read() as tx:
        found = tx.branding(site.acme.id)
    assert found is not None
    path = branding.logo_path(site.svc.settings.data_dir, found)
    assert path is not None
    return path


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_account_carries_its_name_colour_and_logo(branded: Site, role: str) -> None:
    c = client(branded)
    log_in(c, role, account="other" if role == "other" else "acme")
    for path in ("/", "/licenses", "/activate", "/deactivate", "/batch", "/downloads"):
        html = c.get(path).text
        if role == "other":  # another account: the default look
            assert "Acme" not in html and "/branding/" not in html, path
            assert "· License portal</title>" in html and "<span>License portal</span>" in html, path
            continue
        assert "· Acme &lt;Downloads&gt;</title>" in html, path
        assert "<span>Acme &lt;Downloads&gt;</span>" in html and "<Downloads>" not in html, path
        assert f'<link rel="stylesheet" href="/branding/{acme_id(branded)}/theme.css?v=ffcc00">' in html, path
        assert re.search(
            rf'<img class="brand-logo" src="/branding/{acme_id(branded)}/logo\?v=[0-9a-f]{{16}}" alt="">',
            html,
        )
        assert '<link rel="stylesheet" href="/static/portal.css">' in html
        assert "<style" not in html and "style=" not in html, path


def test_the_stylesheet_and_logo_are_served_with_long_cache_for_their_version(branded: Site) -> None:
    c = client(branded)
    css = c.get(f"/branding/{acme_id(branded)}/theme.css", params={"v": "ffcc00"})
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    t = theme("#ffcc00")
    assert f"--brand: {t.brand};" in css.text and f"--accent: {t.accent};" in css.text
    assert "--brand: #ffcc00;" in css.text and t.accent != "#ffcc00"  # too light for links on white
    assert "url(" not in css.text and "@import" not in css.text
    assert c.get(f"/branding/{acme_id(branded)}/theme.css").headers["cache-control"] == "no-cache"
    page = c.get("/login", params={"account": "acme"}).text
    src = re.search(r'<img class="brand-logo" src="([^"]+)"', page)
    assert src
    logo = c.get(src.group(1))
    assert logo.status_code == 200 and logo.content == png(40, 20)
    assert logo.headers["content-type"] == "image/png"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert logo.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert logo.headers["content-disposition"].startswith("inline")


@pytest.mark.parametrize(
    "path",
    [
        "/branding/{other}/theme.css",
        "/branding/{other}/logo",
        "/branding/acc_000000000000000000000000/theme.css",
        "/branding/acc_000000000000000000000000/logo",
    ],
)
def test_no_stylesheet_or_logo_for_an_account_without_them(branded: Site, path: str) -> None:
    response = client(branded).get(path.format(other=branded.other.id))
    assert response.status_code == 404 and "NOT_FOUND" in response.text


def test_removing_the_logo_and_colour_removes_them_from_pages(branded: Site) -> None:
    path = logo_file(branded)
    branding.customize(
        branded.svc.store,
        branded.acme,
        data_dir=branded.svc.settings.data_dir,
        now=NOW,
        logo=None,
        accent_color=None,
    )
    assert not path.exists()
    html = client(branded).get("/login", params={"account": "acme"}).text
    assert "/branding/" not in html and "Acme &lt;Downloads&gt;" in html
    assert client(branded).get(f"/branding/{acme_id(branded)}/logo").status_code == 404


# -- the login page --------------------------------------------------------------------------------


def test_login_on_the_custom_domain_asks_no_account_and_shows_its_look(branded: Site) -> None:
    c = client(branded, DOMAIN)
    page = c.get("/login")
    assert page.status_code == 200
    assert "<h1>Log in to Acme &lt;Downloads&gt;</h1>" in page.text
    assert '<input type="hidden" name="account" value="acme">' in page.text
    assert 'id="account"' not in page.text and 'action="/login"' in page.text
    assert "/theme.css?v=ffcc00" in page.text
    log_in(c, "user1")
    dashboard = c.get("/")
    assert dashboard.status_code == 200 and EMAILS["user1"] in dashboard.text


def test_a_custom_domain_with_a_port_or_in_capitals_is_the_same_host(branded: Site) -> None:
    for host in (f"{DOMAIN}:8443", DOMAIN.upper(), f"{DOMAIN}."):
        page = client(branded).get("/login", headers={"host": host})
        assert '<input type="hidden" name="account" value="acme">' in page.text, host


def test_login_with_account_in_the_query_shows_that_accounts_look(branded: Site) -> None:
    c = client(branded)
    page = c.get("/login", params={"account": "acme", "next": "/downloads"})
    assert '<input type="hidden" name="account" value="acme">' in page.text
    assert 'action="/login?account=acme"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    wrong = c.post(
        "/login?account=acme",
        data={"csrf": csrf.group(1), "account": "acme", "email": EMAILS["user1"], "password": "wrong one!"},
    )
    assert wrong.headers["location"] == "/login?account=acme"  # the page keeps the account's look
    assert "Log in to Acme &lt;Downloads&gt;" in refused(c, wrong, "INVALID_CREDENTIALS").text
    log_in(c, "user1", login_path="/login?account=acme")


def test_an_unknown_account_in_the_query_only_fills_in_the_field(branded: Site) -> None:
    page = client(branded).get("/login", params={"account": "nosuch"})
    assert 'id="account"' in page.text and 'value="nosuch"' in page.text
    assert "/branding/" not in page.text and "<h1>Log in</h1>" in page.text
    escaped = client(branded).get("/login", params={"account": '"><script>'})
    assert not has_inline_script(escaped.text)


def test_the_plain_host_asks_for_the_account(branded: Site) -> None:
    page = client(branded).get("/login")
    assert 'id="account"' in page.text and "/branding/" not in page.text


# -- the Host never grants anything ----------------------------------------------------------------


def test_on_a_custom_domain_the_session_decides_the_account(branded: Site) -> None:
    c = client(branded, DOMAIN)
    log_in(c, "other", account="other")  # the hidden field says acme: a posted account is still honoured
    page = c.get("/licenses")
    assert page.status_code == 200
    assert "Acme" not in page.text and "/branding/" not in page.text
    assert branded.licenses["other"].key[-5:] in page.text
    assert all(branded.licenses[n].key[-5:] not in page.text for n in ("user1", "org_a", "group", "org_b"))


def test_anonymous_on_a_custom_domain_is_still_sent_to_log_in(branded: Site) -> None:
    c = client(branded, DOMAIN)
    for path in ("/", "/licenses", "/downloads"):
        response = c.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    api = c.get("/v1/releases")
    assert api.status_code == 401


def test_branding_routes_are_the_same_for_everyone(branded: Site) -> None:
    anonymous = client(branded).get(f"/branding/{acme_id(branded)}/theme.css?v=ffcc00").content
    for role in ROLES:
        c = client(branded)
        log_in(c, role, account="other" if role == "other" else "acme")
        assert c.get(f"/branding/{acme_id(branded)}/theme.css?v=ffcc00").content == anonymous
