"""Outgoing mail behind one small interface, so that nothing needs an SMTP server.

A ``Mailer`` sends an ``email.message.EmailMessage``. The default, ``FileMailer``, writes each mail
as an RFC 5322 ``.eml`` file (mode 0600, in a directory of mode 0700) and logs one line saying so.
``SmtpMailer`` hands it to an SMTP relay (STARTTLS, implicit TLS, or none to a loopback relay),
retrying transient failures with back-off. ``open_mailer`` picks one from the settings.

Mails can carry secrets, such as a set-password link: log lines name the recipient, the subject
and where the mail went or why it did not, never the body, and never a server's reply text.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import enum
import ipaddress
import logging
import os
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from offline_service._files import write_atomic
from offline_service.errors import Code, OfflineServiceError

__all__ = [
    "DEFAULT_PORTS",
    "MAIL_DIR",
    "FileMailer",
    "Mailer",
    "Security",
    "SmtpConfig",
    "SmtpMailer",
    "is_loopback",
    "open_mailer",
]

MAIL_DIR = "mail"  # the default FileMailer's directory, in the data directory

log = logging.getLogger("offline_service.accounts.mail")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise ``OfflineServiceError``; never log its body."""
        ...


def _check_headers(message: EmailMessage) -> None:
    for header in ("To", "From", "Subject"):
        if not message[header]:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"a mail needs a {header} header")


class FileMailer:
    """Writes every mail to ``directory`` as ``<UTC time>-<random>.eml`` with CRLF line ends, as an
    SMTP server would receive it. Open one with any mail program, or read it with ``email``."""

    def __init__(self, directory: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self._clock = clock

    @classmethod
    def in_data_dir(
        cls, data_dir: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> FileMailer:
        """The default sender: mails in ``<data_dir>/mail``."""
        return cls(Path(data_dir) / MAIL_DIR, clock=clock)

    def send(self, message: EmailMessage) -> None:
        _check_headers(message)
        stamp = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(6)}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)  # also when it existed: mails may hold secrets
        except OSError as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"cannot use the mail directory {self.directory}: {exc.strerror or exc}"
            ) from None
        write_atomic(path, message.as_bytes(policy=email.policy.SMTP), mode=0o600)
        log.info("mail to %s, subject %r, written to %s", message["To"], message["Subject"], path)


class Security(enum.StrEnum):
    """How the SMTP connection is protected."""

    STARTTLS = "starttls"  # plain connection, then STARTTLS before anything else (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # no encryption: only to a relay on this machine (a loopback address)


DEFAULT_PORTS = {Security.STARTTLS: 587, Security.TLS: 465, Security.NONE: 25}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where and how ``SmtpMailer`` delivers: checked when made, so a bad setting stops start-up."""

    host: str
    port: int
    security: Security = Security.STARTTLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never shown: masked below
    ca_file: Path | None = None  # a CA to trust besides the system's (a private relay)
    connect_timeout: float = 10.0
    timeout: float = 30.0  # each read or write once connected
    attempts: int = 4  # tries per mail, the first included
    retry_seconds: float = 30.0  # the most time spent waiting between tries, in all
    backoff: float = 1.0  # the first wait; each next one doubles

    def __post_init__(self) -> None:
        if not self.host or any(c in self.host for c in " /\r\n"):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "the SMTP host must be a host name or address")
        if not 0 < self.port < 65536:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "the SMTP port must be 1 to 65535")
        if self.security is Security.NONE and not is_loopback(self.host):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "SMTP without TLS is only allowed to a relay on this machine (localhost or a loopback"
                " address); use starttls or tls",
            )
        if (self.username is None) != (self.password is None):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "an SMTP login needs both a username and a password"
            )
        if not (0 < self.connect_timeout <= 300 and 0 < self.timeout <= 600):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "SMTP timeouts must be 1 to 300 (connect) or 600 seconds"
            )
        if not (1 <= self.attempts <= 10 and 0 <= self.retry_seconds <= 600 and self.backoff >= 0):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "SMTP retries: 1 to 10 attempts within at most 600 seconds"
            )

    def __repr__(self) -> str:
        shown = "***" if self.password is not None else None
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security.value!r},"
            f" username={self.username!r}, password={shown!r}, ca_file={self.ca_file!r})"
        )

    def tls_context(self) -> ssl.SSLContext:
        """Certificates and host names verified; the system's CAs, and ``ca_file``'s if set."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise OfflineServiceError(
                    Code.INVALID_ARGUMENT, f"cannot use the SMTP CA file {self.ca_file}: {exc}"
                ) from None
        return context


class _Permanent(Exception):
    """A refusal that another try would meet again (a 5xx answer, a failed login, a bad certificate)."""


def _what(exc: BaseException) -> str:
    """A failure in a few words for the log: its kind and SMTP code, never the server's text (it may
    quote the mail) nor anything of the body."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _ in exc.recipients.values()})
        return f"recipients refused ({', '.join(map(str, codes))})"
    return f"{type(exc).__name__}" + (f" {code}" if code else "")


class SmtpMailer:
    """Sends each mail through an SMTP relay with the standard library's ``smtplib``: a new
    connection per mail, TLS verified, retried with exponential back-off on transient failures
    (network errors, 4xx answers) within ``attempts`` and ``retry_seconds``. Blocking: call it in a
    thread, never on the event loop and never inside a database transaction."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._context = config.tls_context() if config.security is not Security.NONE else None
        self._sleep = sleep
        self._monotonic = monotonic

    def __repr__(self) -> str:
        return f"SmtpMailer({self.config!r})"

    def send(self, message: EmailMessage) -> None:
        _check_headers(message)
        cfg = self.config
        waited, wait = 0.0, cfg.backoff
        for attempt in range(1, cfg.attempts + 1):
            try:
                self._deliver(message)
            except _Permanent as exc:
                log.error(
                    "mail to %s, subject %r, not sent: %s (not retried)",
                    message["To"],
                    message["Subject"],
                    exc,
                )
                raise OfflineServiceError(
                    Code.STORAGE_ERROR, f"the mail to {message['To']} was refused: {exc}"
                ) from None
            except (OSError, smtplib.SMTPException) as exc:
                what = _what(exc)
                last = attempt == cfg.attempts or waited + wait > cfg.retry_seconds
                log.warning(
                    "mail to %s, subject %r: attempt %d of %d failed: %s%s",
                    message["To"],
                    message["Subject"],
                    attempt,
                    cfg.attempts,
                    what,
                    "" if last else f"; again in {wait:g}s",
                )
                if last:
                    log.error(
                        "mail to %s, subject %r, not sent after %d attempts",
                        message["To"],
                        message["Subject"],
                        attempt,
                    )
                    raise OfflineServiceError(
                        Code.STORAGE_ERROR, f"the mail to {message['To']} could not be sent: {what}"
                    ) from None
                self._sleep(wait)
                waited += wait
                wait *= 2
            else:
                log.info(
                    "mail to %s, subject %r, sent through %s:%d",
                    message["To"],
                    message["Subject"],
                    cfg.host,
                    cfg.port,
                )
                return

    def _deliver(self, message: EmailMessage) -> None:
        cfg = self.config
        smtp: smtplib.SMTP
        try:
            if cfg.security is Security.TLS:
                smtp = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.connect_timeout, context=self._context
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.connect_timeout)
        except ssl.SSLCertVerificationError as exc:
            raise _Permanent(f"the relay's certificate is not trusted ({exc.verify_message})") from None
        with smtp:
            if smtp.sock is not None:
                smtp.sock.settimeout(cfg.timeout)
            try:
                if cfg.security is Security.STARTTLS:
                    smtp.ehlo()
                    # Raises SMTPNotSupportedError when the relay offers no STARTTLS: never sent in clear.
                    smtp.starttls(context=self._context)
                    smtp.ehlo()
                if cfg.username is not None and cfg.password is not None:
                    smtp.login(cfg.username, cfg.password)
                smtp.send_message(message)
            except ssl.SSLCertVerificationError as exc:
                raise _Permanent(f"the relay's certificate is not trusted ({exc.verify_message})") from None
            except smtplib.SMTPNotSupportedError:
                raise _Permanent("the relay does not offer STARTTLS or the login asked for") from None
            except smtplib.SMTPAuthenticationError as exc:
                raise _Permanent(f"the relay refused the login ({exc.smtp_code})") from None
            except smtplib.SMTPRecipientsRefused as exc:
                if all(code >= 500 for code, _ in exc.recipients.values()):
                    raise _Permanent(_what(exc)) from None
                raise
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    raise _Permanent(_what(exc)) from None
                raise


def open_mailer(
    *, smtp: SmtpConfig | None, data_dir: str | os.PathLike[str], clock: Callable[[], float] = time.time
) -> Mailer:
    """The sender the settings choose: SMTP when a relay is configured, else files in <data>/mail."""
    if smtp is not None:
        return SmtpMailer(smtp)
    return FileMailer.in_data_dir(data_dir, clock=clock)
