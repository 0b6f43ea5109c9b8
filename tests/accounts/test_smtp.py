"""SMTP delivery against a real SMTP server (aiosmtpd) started by the tests on a loopback address:
plain, STARTTLS and implicit TLS with a certificate the test makes (trusted only through the CA
file setting), a login, transient failures retried with back-off, and a relay that always fails
logged without the body or the link it carries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest

from offline_service.accounts.mail import FileMailer, Security, SmtpMailer, open_mailer
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings
from tests.smtp_relay import LOGIN, PASSWORD, Certificates, Relay, Server, free_port, relay_config
from tests.web.pages import log_in, mails, post, text, user_by_email
from tests.web.site import SiteFactory

SECRET = "the-secret-part-of-a-link"


def _mail(to: str = "ann@example.com", subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Portal <portal@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"Your link: https://portal.example/set-password?token={SECRET}\n")
    return message


def _no_sleep(waits: list[float]) -> Callable[[float], None]:
    return waits.append


def test_plain_smtp_to_a_loopback_relay_delivers_the_mail(smtp_server: Server) -> None:
    relay, port = smtp_server()
    SmtpMailer(relay_config(port)).send(_mail())
    [got] = relay.received
    assert got["To"] == "ann@example.com" and got["Subject"] == "Hello"
    assert SECRET in got.get_content()


def test_starttls_is_verified_against_the_ca_file_and_carries_a_login(
    smtp_server: Server, certificates: Certificates
) -> None:
    relay, port = smtp_server(tls="starttls", certs=certificates, auth=True)
    config = relay_config(
        port,
        security=Security.STARTTLS,
        username=LOGIN,
        password=PASSWORD,
        ca_file=certificates.ca_file,
    )
    SmtpMailer(config).send(_mail())
    assert [m["To"] for m in relay.received] == ["ann@example.com"]
    # Without the CA file the test CA is not trusted: nothing is sent, and it is not retried.
    waits: list[float] = []
    untrusted = SmtpMailer(replace(config, ca_file=None), sleep=_no_sleep(waits))
    with pytest.raises(OfflineServiceError) as caught:
        untrusted.send(_mail())
    assert caught.value.code is Code.STORAGE_ERROR and "certificate" in caught.value.message
    assert waits == [] and len(relay.received) == 1


def test_a_wrong_relay_password_is_refused_and_not_retried(
    smtp_server: Server, certificates: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    relay, port = smtp_server(tls="starttls", certs=certificates, auth=True)
    waits: list[float] = []
    config = relay_config(
        port, security=Security.STARTTLS, username=LOGIN, password="not it", ca_file=certificates.ca_file
    )
    with pytest.raises(OfflineServiceError) as caught:
        SmtpMailer(config, sleep=_no_sleep(waits)).send(_mail())
    assert "login" in caught.value.message and waits == [] and relay.received == []
    assert "not it" not in caplog.text and "not it" not in repr(config)


def test_implicit_tls_delivers_with_the_ca_file(smtp_server: Server, certificates: Certificates) -> None:
    relay, port = smtp_server(tls="tls", certs=certificates)
    SmtpMailer(relay_config(port, security=Security.TLS, ca_file=certificates.ca_file)).send(_mail())
    assert [m["Subject"] for m in relay.received] == ["Hello"]


def test_starttls_is_never_skipped_when_the_relay_does_not_offer_it(smtp_server: Server) -> None:
    relay, port = smtp_server()  # no TLS at all
    with pytest.raises(OfflineServiceError) as caught:
        SmtpMailer(relay_config(port, security=Security.STARTTLS)).send(_mail())
    assert "STARTTLS" in caught.value.message and relay.received == [] and relay.tried == 0


def test_transient_failures_are_retried_with_back_off_then_sent(
    smtp_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    relay, port = smtp_server(Relay(refuse=2))
    waits: list[float] = []
    caplog.set_level(logging.INFO, logger="offline_service.accounts.mail")
    SmtpMailer(relay_config(port, attempts=4, backoff=1.0), sleep=_no_sleep(waits)).send(_mail())
    assert relay.tried == 3 and len(relay.received) == 1
    assert waits == [1.0, 2.0]  # doubling
    failed = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING, logging.WARNING]
    assert "SMTPDataError 451" in failed[0].getMessage() and SECRET not in caplog.text


def test_a_relay_that_always_fails_gives_up_within_bounds_and_logs_no_body(
    smtp_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    relay, port = smtp_server(Relay(always=f"452 4.3.1 no room for {SECRET}"))
    waits: list[float] = []
    caplog.set_level(logging.INFO, logger="offline_service.accounts.mail")
    mailer = SmtpMailer(relay_config(port, attempts=5, backoff=1.0, retry_seconds=3), sleep=_no_sleep(waits))
    with pytest.raises(OfflineServiceError) as caught:
        mailer.send(_mail())
    # 1 + 2 seconds fit in 3; the next wait (4) would not, so the third attempt is the last.
    assert relay.tried == 3 and waits == [1.0, 2.0] and relay.received == []
    assert caught.value.code is Code.STORAGE_ERROR and SECRET not in caught.value.message
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert SECRET not in caplog.text and "set-password" not in caplog.text


def test_a_permanent_refusal_is_not_retried(smtp_server: Server) -> None:
    relay, port = smtp_server(Relay(always="554 5.7.1 rejected"))
    waits: list[float] = []
    with pytest.raises(OfflineServiceError):
        SmtpMailer(relay_config(port), sleep=_no_sleep(waits)).send(_mail())
    assert relay.tried == 1 and waits == []


def test_nothing_listening_is_a_transient_failure(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    with pytest.raises(OfflineServiceError):
        SmtpMailer(relay_config(free_port(), attempts=2), sleep=_no_sleep(waits)).send(_mail())
    assert waits == [1.0]


# -- configuration ----------------------------------------------------------------------------------


def test_the_settings_choose_smtp_and_mask_the_password(tmp_path: Path, certificates: Certificates) -> None:
    env = {
        "OFFLINE_SERVICE_SMTP_HOST": "mail.example.com",
        "OFFLINE_SERVICE_SMTP_USERNAME": LOGIN,
        "OFFLINE_SERVICE_SMTP_PASSWORD": PASSWORD,
        "OFFLINE_SERVICE_SMTP_CA_FILE": str(certificates.ca_file),
        "OFFLINE_SERVICE_SMTP_ATTEMPTS": "3",
    }
    settings = Settings.from_env(env)
    smtp = settings.smtp
    assert smtp is not None and smtp.port == 587 and smtp.security is Security.STARTTLS
    assert smtp.password == PASSWORD and smtp.attempts == 3
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(smtp)
    mailer = open_mailer(smtp=smtp, data_dir=tmp_path)
    assert isinstance(mailer, SmtpMailer) and PASSWORD not in repr(mailer)
    assert isinstance(open_mailer(smtp=None, data_dir=tmp_path), FileMailer)
    assert Settings.from_env({}).smtp is None
    tls = Settings.from_env(
        {"OFFLINE_SERVICE_SMTP_HOST": "mail.example.com", "OFFLINE_SERVICE_SMTP_SECURITY": "TLS"}
    )
    assert tls.smtp is not None and tls.smtp.port == 465


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"OFFLINE_SERVICE_SMTP_SECURITY": "none"}, "loopback"),
        ({"OFFLINE_SERVICE_SMTP_SECURITY": "ssl"}, "starttls, tls or none"),
        ({"OFFLINE_SERVICE_SMTP_PORT": "70000"}, "OFFLINE_SERVICE_SMTP_PORT"),
        ({"OFFLINE_SERVICE_SMTP_USERNAME": "portal"}, "both"),
        ({"OFFLINE_SERVICE_SMTP_ATTEMPTS": "0"}, "OFFLINE_SERVICE_SMTP_ATTEMPTS"),
        ({"OFFLINE_SERVICE_SMTP_TIMEOUT": "x"}, "OFFLINE_SERVICE_SMTP_TIMEOUT"),
        ({"OFFLINE_SERVICE_SMTP_CA_FILE": "/nonexistent/ca.pem"}, "CA_FILE"),
    ],
)
def test_bad_smtp_settings_stop_start_up(env: dict[str, str], words: str) -> None:
    with pytest.raises(OfflineServiceError) as caught:
        Settings.from_env({"OFFLINE_SERVICE_SMTP_HOST": "mail.example.com", **env})
    assert caught.value.code is Code.INVALID_ARGUMENT and words in caught.value.message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "[::1]", "127.8.9.10"])
def test_no_tls_is_allowed_to_loopback_relays(host: str) -> None:
    settings = Settings.from_env({"OFFLINE_SERVICE_SMTP_HOST": host, "OFFLINE_SERVICE_SMTP_SECURITY": "none"})
    assert settings.smtp is not None and settings.smtp.port == 25


# -- the portal with an SMTP relay ------------------------------------------------------------------


def test_adding_a_user_through_smtp_mails_the_link(make_site: SiteFactory, smtp_server: Server) -> None:
    relay, port = smtp_server()
    site = make_site(smtp=relay_config(port))
    admin = log_in(site, "admin_a")
    response = post(admin, "/organization/users", {"email": "carl@acme.example", "role": "user"})
    assert response.headers["location"].endswith("?done=created")
    [got] = relay.received
    assert got["To"] == "carl@acme.example" and "/set-password?token=" in got.get_content()
    assert mails(site) == []  # no file: the relay had it


def test_when_the_relay_always_fails_the_user_is_added_and_the_page_says_no_mail_went(
    make_site: SiteFactory, smtp_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    relay, port = smtp_server(Relay(always="451 4.3.0 down for maintenance"))
    site = make_site(smtp=relay_config(port, attempts=2, backoff=0))
    caplog.set_level(logging.INFO)
    admin = log_in(site, "admin_a")
    response = post(admin, "/organization/users", {"email": "carl@acme.example", "role": "user"})
    assert response.status_code == 303
    carl = user_by_email(site, "carl@acme.example")
    assert response.headers["location"] == f"/organization/users/{carl.id}?done=created-unmailed"
    page = admin.get(response.headers["location"])
    assert page.status_code == 200 and "could not be sent" in text(page.text)
    assert relay.tried == 2 and relay.received == []
    assert "token=" not in caplog.text and "set-password?" not in caplog.text
    assert any(r.levelno == logging.ERROR and carl.id in r.getMessage() for r in caplog.records)
    # Sending a new link later says the same when the relay is still down.
    again = post(admin, f"/organization/users/{carl.id}/password-link", {})
    assert again.headers["location"] == f"/organization/users/{carl.id}?done=link-unmailed"
