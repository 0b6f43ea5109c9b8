"""Forgot password, in process on every backend: one answer whoever the email is, a mail with a
one-time link only for an enabled person, caps in the database that stop mails but not the
answer, the CSRF check, and an audit trail without the emails of strangers or any secret."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts import password_reset
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from offline_service.web.auth import CSRF_COOKIE
from tests import people
from tests.db import table
from tests.factories import NOW, database_for
from tests.web.pages import client, csrf_of, link_in, log_in, mails, post, refused, text, user
from tests.web.site import EMAILS, PASSWORD, Site, SiteFactory

NEW_PASSWORD = "a brand new passphrase 7"
SENT = "/forgot-password?sent=1"
SENTENCE = (
    "If an account exists for that email address, we have sent it a link to set a new password,"
    " which works once and expires in 72 hours."
)


def _ask(browser: TestClient, email: str, account: str = "acme") -> Any:
    """Fill in and send the forgot-password form as a person would."""
    form = browser.get("/forgot-password")
    assert form.status_code == 200
    return browser.post(
        "/forgot-password", data={"csrf": csrf_of(form.text), "account": account, "email": email}
    )


def _mails_to(site: Site, email: str) -> list[EmailMessage]:
    return [m for _, m in mails(site) if m["To"] == email]


def _requests(site: Site) -> list[Any]:
    return [e for e in site.audit() if e.action == password_reset.ACTION]


def test_the_login_page_links_to_the_forgot_password_page_keeping_the_account(site: Site) -> None:
    plain = client(site).get("/login")
    assert 'href="/forgot-password">Forgot password?</a>' in plain.text
    named = client(site).get("/login?account=acme")
    assert 'href="/forgot-password?account=acme">Forgot password?</a>' in named.text
    page = client(site).get("/forgot-password?account=acme")
    assert page.status_code == 200
    # The account is known: a hidden field, as on the login page, and the form keeps the name.
    assert '<input type="hidden" name="account" value="acme">' in page.text
    assert 'action="/forgot-password?account=acme"' in page.text
    assert 'name="email"' in page.text and 'id="account"' not in page.text
    unnamed = client(site).get("/forgot-password")
    assert 'id="account"' in unnamed.text and 'name="email"' in unnamed.text


def test_one_answer_for_a_person_a_stranger_a_disabled_person_and_an_unknown_account(site: Site) -> None:
    admin_a = log_in(site, "admin_a")
    assert post(admin_a, f"/organization/users/{user(site, 'user2').id}/disable").status_code == 303
    answers = {}
    for name, account, email in (
        ("person", "acme", EMAILS["user1"]),
        ("stranger", "acme", "nobody@acme.example"),
        ("disabled", "acme", EMAILS["user2"]),
        ("no account", "nosuch", EMAILS["user1"]),
    ):
        response = _ask(client(site), email, account)
        answers[name] = (
            response.status_code,
            response.headers["location"],
            response.content,
            tuple(sorted(k for k in response.headers if k != "set-cookie")),
        )
    assert answers["person"][:2] == (303, SENT)
    assert len(set(answers.values())) == 1, answers
    # A mail for the enabled person only: not the stranger, the disabled person, nor the person
    # with the same email in the other account.
    [(_, mail)] = mails(site)
    assert mail["To"] == EMAILS["user1"] and "account  acme" in mail.get_content()
    assert mail["Subject"] == "Set a new password for the license portal"
    assert "someone asked for a link to set a new password" in mail.get_content()
    page = client(site).get(SENT)
    assert page.status_code == 200 and SENTENCE in text(page.text)
    assert 'name="email"' not in page.text  # the answer, not the form again


def test_the_mailed_link_sets_the_password_once_and_asking_ends_no_session(site: Site) -> None:
    session = log_in(site, "user1")
    assert _ask(client(site), EMAILS["user1"]).status_code == 303
    assert session.get("/").status_code == 200  # asking for a link logs nobody out
    [mail] = _mails_to(site, EMAILS["user1"])
    link = link_in(mail)
    token = link.split("=", 1)[1]
    browser = client(site)
    form = browser.get(link)
    assert form.status_code == 200 and EMAILS["user1"] in form.text
    data = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    posted = post(browser, "/set-password", data)
    assert posted.status_code == 303 and posted.headers["location"] == "/login?done=password-set"
    done = browser.get(posted.headers["location"])
    assert done.status_code == 200 and "Your password is set." in done.text
    assert f'value="{EMAILS["user1"]}"' in done.text  # the login form, filled in
    again = post(browser, "/set-password", {**data, "password": "yet another phrase 9", "confirm": "x"})
    gone = refused(browser, again, "INVALID_PASSWORD_LINK", status=400)
    assert 'name="password"' not in gone.text  # no form for a link that no longer works
    assert '<a href="/forgot-password">Forgot password?</a>' in gone.text  # where to get a new one
    refused(browser, post(browser, "/set-password", data), "INVALID_PASSWORD_LINK", status=400)
    log_in(site, "user1", NEW_PASSWORD)
    # The old password is gone; the same person in the other account is untouched.
    stranger = client(site)
    csrf = csrf_of(stranger.get("/login").text)
    wrong = stranger.post(
        "/login", data={"csrf": csrf, "account": "acme", "email": EMAILS["user1"], "password": PASSWORD}
    )
    refused(stranger, wrong, "INVALID_CREDENTIALS")
    log_in(site, "other")


def test_a_new_request_ends_the_earlier_link(site: Site) -> None:
    _ask(client(site), EMAILS["user1"])
    _ask(client(site), EMAILS["user1"])
    first, second = _mails_to(site, EMAILS["user1"])
    browser = client(site)
    assert browser.get(link_in(first)).status_code == 400
    assert browser.get(link_in(second)).status_code == 200


def test_three_mails_an_hour_per_email_then_the_same_answer_and_no_mail(site: Site) -> None:
    for _ in range(password_reset.PER_EMAIL):
        assert _ask(client(site), EMAILS["user1"]).headers["location"] == SENT
    assert len(_mails_to(site, EMAILS["user1"])) == 3
    limited = _ask(client(site), EMAILS["user1"])
    assert limited.status_code == 303 and limited.headers["location"] == SENT
    assert len(_mails_to(site, EMAILS["user1"])) == 3
    # The last link sent still works: a refused request issues no new one.
    assert client(site).get(link_in(_mails_to(site, EMAILS["user1"])[-1])).status_code == 200
    # Another person is not held back by this one's cap, nor is the same email of another account.
    _ask(client(site), EMAILS["admin_a"])
    _ask(client(site), EMAILS["other"], "other")
    assert len(mails(site)) == 5
    entries = _requests(site)
    assert [e.code for e in entries].count(Code.RATE_LIMITED.value) == 1
    site.clock.now += password_reset.HOUR
    _ask(client(site), EMAILS["user1"])
    assert len(mails(site)) == 6 and "account  acme" in mails(site)[-1][1].get_content()


def test_one_address_gets_ten_answers_an_hour_that_may_mail(site: Site) -> None:
    for n in range(password_reset.PER_ADDRESS):
        _ask(client(site), f"stranger{n}@acme.example")
    assert _ask(client(site), EMAILS["user1"]).headers["location"] == SENT
    assert mails(site) == []
    # Another address (an IPv6 address counts as its /64) is not held back.
    elsewhere = TestClient(site.client.app, follow_redirects=False, client=("2001:db8::1", 4000))
    assert _ask(elsewhere, EMAILS["user1"]).headers["location"] == SENT
    assert len(mails(site)) == 1
    neighbour = TestClient(site.client.app, follow_redirects=False, client=("2001:db8::2", 4000))
    for n in range(password_reset.PER_ADDRESS):
        _ask(neighbour, f"stranger{n}@acme.example")
    _ask(elsewhere, EMAILS["admin_a"])
    assert len(mails(site)) == 1


@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_the_form_needs_its_csrf_token(site: Site, token: str | None) -> None:
    browser = client(site)
    browser.get("/forgot-password")
    assert browser.cookies.get(CSRF_COOKIE)
    before = (table(site.svc.store, "trial_limits"), table(site.svc.store, "audit_log"))
    data = {"account": "acme", "email": EMAILS["user1"]}
    response = browser.post("/forgot-password", data=data if token is None else {**data, "csrf": token})
    assert response.status_code == 403 and "CSRF_FAILED" in response.text
    assert mails(site) == []
    assert (table(site.svc.store, "trial_limits"), table(site.svc.store, "audit_log")) == before


@pytest.mark.parametrize(
    ("account", "email"),
    [("", EMAILS["user1"]), ("acme", ""), ("not an alias!", EMAILS["user1"]), ("acme", "not-an-email")],
)
def test_an_incomplete_form_is_shown_again_and_counts_nothing(site: Site, account: str, email: str) -> None:
    browser = client(site)
    response = refused(browser, _ask(browser, email, account), "INVALID_ARGUMENT")
    assert 'name="email"' in response.text and f'value="{email}"' in response.text
    assert mails(site) == [] and table(site.svc.store, "trial_limits") == [] and _requests(site) == []


def test_requests_are_audited_without_a_strangers_email_or_any_secret(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _ask(client(site), EMAILS["user1"])
    _ask(client(site), "stranger@acme.example")
    _ask(client(site), "stranger@acme.example", "nosuch")
    token = link_in(_mails_to(site, EMAILS["user1"])[0]).split("=", 1)[1]
    stranger, person = _requests(site)  # newest first; nothing for an account that does not exist
    user1 = user(site, "user1")
    assert person.actor == "forgot-password" and person.code == "OK"
    assert dict(person.detail) == {"user": user1.id, "person": "enabled", "address": "testclient"}
    assert dict(stranger.detail) == {"person": "unknown", "address": "testclient"}
    everything = repr(table(site.svc.store, "audit_log")) + repr(table(site.svc.store, "trial_limits"))
    assert "stranger" not in everything and token not in everything
    assert all(token not in r.getMessage() for r in caplog.records)
    assert any("mail to user1@example.com" in r.getMessage() for r in caplog.records)


def test_without_a_public_url_every_email_gets_the_same_refusal_and_nothing_counts(
    make_site: SiteFactory,
) -> None:
    site = make_site(public_url=None)
    for email in (EMAILS["user1"], "nobody@acme.example"):
        browser = client(site)
        response = refused(browser, _ask(browser, email), "INVALID_ARGUMENT")
        assert "OFFLINE_SERVICE_PUBLIC_URL" in text(response.text)
    assert mails(site) == [] and table(site.svc.store, "trial_limits") == []


class _BrokenMailer:
    def send(self, message: EmailMessage) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "the mail directory is full")


def test_a_mail_that_cannot_be_sent_changes_not_the_answer_and_is_logged_without_the_link(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.svc.mailer = _BrokenMailer()
    caplog.set_level(logging.INFO)
    response = _ask(client(site), EMAILS["user1"])
    assert response.status_code == 303 and response.headers["location"] == SENT
    [line] = [r for r in caplog.records if "forgot password" in r.getMessage()]
    assert line.levelno == logging.ERROR and user(site, "user1").id in line.getMessage()
    assert "STORAGE_ERROR" in line.getMessage() and "token" not in line.getMessage()


# -- the caps under concurrency, on the store directly ---------------------------------------------


@pytest.fixture
def store(tmp_path: Path, backend: str) -> Iterator[Store]:
    opened = open_store(Settings(data_dir=tmp_path / "data", database_url=database_for(tmp_path, backend)))
    account, _ = admin.ensure_account(opened, "acme", now=NOW)
    people.create_user(
        opened,
        account,
        email="ann@example.com",
        role=Role.USER,
        password=PASSWORD,
        now=NOW,
        cost=Cost.MINIMUM,
    )
    yield opened
    opened.close()


def test_concurrent_requests_never_get_more_links_than_the_cap(store: Store) -> None:
    size = 12
    start = threading.Barrier(size)

    def ask(n: int) -> bool:
        start.wait(timeout=30)
        found = password_reset.request_link(
            store,
            account_alias="acme",
            email="ann@example.com",
            address=f"192.0.2.{n}",  # every request from its own address: only the email's cap holds
            now=NOW,
            lifetime=3600,
            public_url="https://portal.example",
        )
        return found is not None

    with ThreadPoolExecutor(size) as pool:
        links = sum(pool.map(ask, range(size)))
    assert links == password_reset.PER_EMAIL
    with store.read() as tx:
        account = tx.account_by_alias("acme")
        assert account is not None
        entries = [e for e in tx.audit_entries(account.id, limit=100) if e.action == password_reset.ACTION]
    assert len(entries) == size
    assert sum(e.code == Code.RATE_LIMITED.value for e in entries) == size - password_reset.PER_EMAIL
