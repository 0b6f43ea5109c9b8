"""Portal helpers over the ``Site`` of conftest.py: a browser-like client per person, forms with
their CSRF token, the records behind the fixture's names, and the mails the portal wrote."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from offline_service.accounts.mail import MAIL_DIR
from offline_service.accounts.models import User, UserGroup
from offline_service.web.auth import CSRF_COOKIE
from offline_service.web.kit import FLASH_COOKIE
from tests.db import table
from tests.web.site import EMAILS, PASSWORD, Site

# The one script a page may load: the portal's own, from its static files, with nothing inline.
STATIC_SCRIPT = '<script src="/static/portal.js" defer></script>'


def has_inline_script(html: str) -> bool:
    """Whether ``html`` has a script other than the portal's static one (the CSP allows no other)."""
    return "<script" in html.replace(STATIC_SCRIPT, "", 1).lower()


# Everyone the fixture world has, and the anonymous visitor.
PEOPLE = ("user1", "user2", "admin_a", "admin_b", "other")
ADMINS = ("admin_a", "admin_b")
PEOPLE_TABLES = (
    "users",
    "user_groups",
    "group_members",
    "group_licenses",
    "credentials",
    "password_tokens",
    "audit_log",
)


def client(site: Site) -> TestClient:
    """A fresh browser: its own cookies, redirects not followed."""
    return TestClient(site.client.app, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(site: Site, role: str, password: str = PASSWORD, email: str | None = None) -> TestClient:
    browser = client(site)
    form = browser.get("/login")
    response = browser.post(
        "/login",
        data={
            "csrf": csrf_of(form.text),
            "account": "other" if role == "other" else "acme",
            "email": email or EMAILS[role],
            "password": password,
        },
    )
    assert response.status_code == 303, response.text
    return browser


def post(browser: TestClient, path: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
    """POST a form as the page would, with the browser's CSRF token."""
    token = browser.cookies.get(CSRF_COOKIE) or csrf_of(browser.get("/login").text)
    return browser.post(path, data={"csrf": token, **(data or {})}, **kw)


def refused(browser: TestClient, posted: Any, code: str | None = None, *, status: int = 200) -> Any:
    """A refused form's answer, followed as a browser would: a 303 back to the page of the form
    (never a page of its own, which a reload would post again) with the problem in a flash cookie;
    then that page, with ``status``, showing the problem's ``code``. Returns the page."""
    assert posted.status_code == 303, (posted.status_code, text(posted.text)[:1000])
    assert f"{FLASH_COOKIE}=" in posted.headers.get("set-cookie", ""), posted.headers
    page = browser.get(posted.headers["location"])
    assert page.status_code == status, (page.status_code, text(page.text)[:1000])
    if code is not None:
        assert 'role="alert"' in page.text and f"Code: {code}" in page.text, text(page.text)[:2000]
    return page


def user(site: Site, role: str) -> User:
    account = site.other if role == "other" else site.acme
    with site.svc.store.read() as tx:
        found = tx.user_by_email(account.id, EMAILS[role])
    assert found is not None
    return found


def user_by_email(site: Site, email: str) -> User:
    with site.svc.store.read() as tx:
        found = tx.user_by_email(site.acme.id, email)
    assert found is not None
    return found


def team_a(site: Site) -> UserGroup:
    with site.svc.store.read() as tx:
        found = tx.groups_by_name(site.acme.id, "Team A")
    assert len(found) == 1
    return found[0]


def people_state(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the people tables and the audit log, for "changes nothing" checks."""
    return {t: table(site.svc.store, t) for t in PEOPLE_TABLES}


def mails(site: Site) -> list[tuple[Path, EmailMessage]]:
    """The mails the portal wrote, oldest first."""
    directory = site.svc.settings.data_dir / MAIL_DIR
    if not directory.exists():
        return []
    found = []
    for path in sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        found.append((path, parsed))
    return found


def link_in(mail: EmailMessage) -> str:
    """The set-password link of a mail, as a path and query of this site."""
    found = re.search(r"(https?://\S+/set-password\?token=\S+)", mail.get_content())
    assert found, mail.get_content()
    parts = urlsplit(found.group(1))
    assert parse_qs(parts.query)["token"]
    return f"{parts.path}?{parts.query}"


def text(html: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
