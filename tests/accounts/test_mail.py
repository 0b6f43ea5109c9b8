"""Outgoing mail: the default FileMailer writes RFC 5322 files only their owner can read and logs a
line without the body; the settings of mails and links are checked once at start-up."""

from __future__ import annotations

import email
import email.policy
import logging
import stat
from email.message import EmailMessage
from pathlib import Path

import pytest

from offline_service.accounts.mail import MAIL_DIR, FileMailer, Mailer
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings
from tests.factories import NOW

SECRET = "the-secret-part-of-a-link"


def _mail(to: str = "ann@example.com", subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Portal <portal@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"Your link: https://portal.example/set-password?token={SECRET}\n")
    return message


def test_file_mailer_writes_a_private_eml_per_mail_and_logs_no_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer: Mailer = FileMailer.in_data_dir(tmp_path / "data", clock=lambda: NOW)
    caplog.set_level(logging.INFO, logger="offline_service.accounts.mail")
    mailer.send(_mail())
    mailer.send(_mail(to="bob@example.com", subject="Again"))
    directory = tmp_path / "data" / MAIL_DIR
    files = sorted(directory.iterdir())
    assert len(files) == 2 and all(
        f.name.startswith("20270115T080000Z-") and f.suffix == ".eml" for f in files
    )
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    raw = files[0].read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF, as on the wire
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert sorted(str(m["To"]) for m in parsed) == ["ann@example.com", "bob@example.com"]
    assert all(SECRET in m.get_content() for m in parsed)  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if r.name == "offline_service.accounts.mail"]
    assert len(lines) == 2
    assert "ann@example.com" in lines[0] and "'Hello'" in lines[0] and str(directory) in lines[0]
    assert all(SECRET not in line for line in lines)


def test_file_mailer_tightens_an_existing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    FileMailer(directory).send(_mail())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.parametrize("header", ["To", "From", "Subject"])
def test_file_mailer_refuses_a_mail_without_its_headers(tmp_path: Path, header: str) -> None:
    message = _mail()
    del message[header]
    with pytest.raises(OfflineServiceError) as info:
        FileMailer(tmp_path / "mail").send(message)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert not (tmp_path / "mail").exists() or not any((tmp_path / "mail").iterdir())


def test_file_mailer_reports_a_directory_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OfflineServiceError) as info:
        FileMailer(blocker / "mail").send(_mail())
    assert info.value.code is Code.STORAGE_ERROR


def test_mail_settings_defaults_and_environment() -> None:
    default = Settings.from_env({})
    assert default.public_url is None
    assert default.password_link_lifetime == 72 * 3600
    assert default.mail_from == "License portal <noreply@localhost>"
    custom = Settings.from_env(
        {
            "OFFLINE_SERVICE_PUBLIC_URL": "https://portal.example/base/",
            "OFFLINE_SERVICE_PASSWORD_LINK_HOURS": "24",
            "OFFLINE_SERVICE_MAIL_FROM": "Acme licenses <licenses@acme.example>",
        }
    )
    assert custom.public_url == "https://portal.example/base"
    assert custom.password_link_lifetime == 24 * 3600
    assert custom.mail_from == "Acme licenses <licenses@acme.example>"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OFFLINE_SERVICE_PUBLIC_URL", "portal.example"),
        ("OFFLINE_SERVICE_PUBLIC_URL", "ftp://portal.example"),
        ("OFFLINE_SERVICE_PUBLIC_URL", "https://portal.example/?x=1"),
        ("OFFLINE_SERVICE_PUBLIC_URL", "https://"),
        ("OFFLINE_SERVICE_PASSWORD_LINK_HOURS", "0"),
        ("OFFLINE_SERVICE_PASSWORD_LINK_HOURS", "-1"),
        ("OFFLINE_SERVICE_PASSWORD_LINK_HOURS", "2161"),
        ("OFFLINE_SERVICE_PASSWORD_LINK_HOURS", "1.5"),
        ("OFFLINE_SERVICE_MAIL_FROM", "nobody"),
        ("OFFLINE_SERVICE_MAIL_FROM", "a@b.example\r\nBcc: x@y.example"),
    ],
)
def test_bad_mail_settings_are_refused_at_start_up(name: str, value: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({name: value})
    assert info.value.code is Code.INVALID_ARGUMENT
