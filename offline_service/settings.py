"""Configuration, read once at start-up into a typed object. Nothing else reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from offline_service.accounts.mail import DEFAULT_PORTS, Security, SmtpConfig
from offline_service.accounts.passwords import Cost
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.decisions import Policy

__all__ = ["DATABASE_SCHEMES", "Settings", "database_scheme"]


def _people_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of mails and set-password links, checked."""
    found: dict[str, Any] = {}
    public_url = env.get("OFFLINE_SERVICE_PUBLIC_URL", "").strip()
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "OFFLINE_SERVICE_PUBLIC_URL must be an http(s) address without a query, like https://portal.example",
            )
        found["public_url"] = public_url.rstrip("/")
    hours = env.get("OFFLINE_SERVICE_PASSWORD_LINK_HOURS", "72").strip()
    if not (hours.isascii() and hours.isdigit() and 0 < int(hours) <= 24 * 90):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "OFFLINE_SERVICE_PASSWORD_LINK_HOURS must be whole hours, 1 to 2160"
        )
    found["password_link_lifetime"] = int(hours) * 3600
    mail_from = env.get("OFFLINE_SERVICE_MAIL_FROM", "").strip()
    if mail_from:
        if "@" not in parseaddr(mail_from)[1] or any(c in mail_from for c in "\r\n"):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "OFFLINE_SERVICE_MAIL_FROM must be an address like Portal <portal@example.com>",
            )
        found["mail_from"] = mail_from
    return found


def _number(env: Mapping[str, str], name: str, default: str, low: int, high: int) -> int:
    value = env.get(name, default).strip()
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number, {low} to {high}")
    return int(value)


def _smtp_settings(env: Mapping[str, str]) -> SmtpConfig | None:
    """The SMTP relay, when OFFLINE_SERVICE_SMTP_HOST is set; checked (SmtpConfig refuses the rest)."""
    host = env.get("OFFLINE_SERVICE_SMTP_HOST", "").strip()
    if not host:
        return None
    try:
        security = Security(env.get("OFFLINE_SERVICE_SMTP_SECURITY", "starttls").strip().lower())
    except ValueError:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "OFFLINE_SERVICE_SMTP_SECURITY must be starttls, tls or none"
        ) from None
    username = env.get("OFFLINE_SERVICE_SMTP_USERNAME", "").strip() or None
    password = env.get("OFFLINE_SERVICE_SMTP_PASSWORD") or None
    ca_file = env.get("OFFLINE_SERVICE_SMTP_CA_FILE", "").strip()
    if ca_file and not Path(ca_file).is_file():
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "OFFLINE_SERVICE_SMTP_CA_FILE is not a readable file"
        )
    config = SmtpConfig(
        host=host,
        port=_number(env, "OFFLINE_SERVICE_SMTP_PORT", str(DEFAULT_PORTS[security]), 1, 65535),
        security=security,
        username=username,
        password=password,
        ca_file=Path(ca_file) if ca_file else None,
        connect_timeout=_number(env, "OFFLINE_SERVICE_SMTP_CONNECT_TIMEOUT", "10", 1, 300),
        timeout=_number(env, "OFFLINE_SERVICE_SMTP_TIMEOUT", "30", 1, 600),
        attempts=_number(env, "OFFLINE_SERVICE_SMTP_ATTEMPTS", "4", 1, 10),
        retry_seconds=_number(env, "OFFLINE_SERVICE_SMTP_RETRY_SECONDS", "30", 0, 600),
    )
    config.tls_context()  # an unusable CA file stops start-up, not the first mail
    return config


@dataclass(frozen=True, slots=True)
class Settings:
    """Where data and keys live, and the engine's policy.

    Environment variables (all optional):
      OFFLINE_SERVICE_DATA           data directory (default ./data)
      OFFLINE_SERVICE_DATABASE_URL   where the data is kept: sqlite://DIR (an SQLite file in DIR, e.g.
                                     sqlite:///srv/data) or postgresql://user@host:port/dbname
                                     (default: SQLite in the data directory)
      OFFLINE_SERVICE_DATABASE_POOL_SIZE   PostgreSQL connections each process may hold (default 10,
                                           1 to 1000); the server's max_connections must exceed
                                           instances x workers x (this + 1)
      OFFLINE_SERVICE_KEYS           keyring directory (default ./keys)
      OFFLINE_SERVICE_KEY_PASSPHRASE_FILE  file holding the passphrase that encrypts private keys
      OFFLINE_SERVICE_MAX_REQUEST_AGE      seconds (default 30 days)
      OFFLINE_SERVICE_MAX_FUTURE_SKEW      seconds (default 300)
      OFFLINE_SERVICE_PASSWORD_COST        interactive (default), moderate, or minimum (tests only)
      OFFLINE_SERVICE_PUBLIC_URL           the portal's address as people reach it (https://portal.example),
                                           where links in mails start (an account with a custom domain:
                                           https://<domain>); never taken from a request's Host header.
                                           Unset, the server warns at start-up and refuses to mail links
      OFFLINE_SERVICE_PASSWORD_LINK_HOURS  how long a set-password link works (default 72)
      OFFLINE_SERVICE_MAIL_FROM            the From of the portal's mails
                                           (default "License portal <noreply@localhost>")
      OFFLINE_SERVICE_SMTP_HOST            the SMTP relay mails go through; unset, every mail is
                                           written as a file into DATA/mail instead (docs/MAIL.md)
      OFFLINE_SERVICE_SMTP_SECURITY        starttls (default), tls (implicit, port 465) or none (only
                                           for a relay on a loopback address)
      OFFLINE_SERVICE_SMTP_PORT            default 587 (starttls), 465 (tls) or 25 (none)
      OFFLINE_SERVICE_SMTP_USERNAME        the relay's login, with OFFLINE_SERVICE_SMTP_PASSWORD
      OFFLINE_SERVICE_SMTP_PASSWORD        (never logged nor shown in a repr)
      OFFLINE_SERVICE_SMTP_CA_FILE         a PEM CA to trust besides the system's (a private relay);
                                           certificates and host names are always verified
      OFFLINE_SERVICE_SMTP_CONNECT_TIMEOUT seconds to connect (default 10)
      OFFLINE_SERVICE_SMTP_TIMEOUT         seconds each read or write may take once connected (default 30)
      OFFLINE_SERVICE_SMTP_ATTEMPTS        tries per mail, the first included (default 4, 1 to 10)
      OFFLINE_SERVICE_SMTP_RETRY_SECONDS   the most time spent waiting between tries (default 30);
                                           the waits double from 1 second
      OFFLINE_SERVICE_OUTBOX_SECONDS       how often the server sends queued notification mails
                                           (default 60; 0: never, leave it to `offline-service notify`)
      OFFLINE_SERVICE_SESSION_HOURS        browser session lifetime (default 12)
      OFFLINE_SERVICE_TOKEN_MINUTES        API access token lifetime (default 60)
      OFFLINE_SERVICE_RELEASES             directory of published release files (default DATA/releases)
      OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES  how long a signed download link works (default 60)
      OFFLINE_SERVICE_MAX_UPLOAD_MB        largest zip a batch upload may be (default 64)
      OFFLINE_SERVICE_TRIAL_ORIGINS        comma-separated origins allowed to call the trial endpoint
                                           from a browser ("null" for pages opened from disk)
      OFFLINE_SERVICE_TRIAL_RATE           trial requests per minute per client address (default 10)
      OFFLINE_SERVICE_TRIAL_DAILY_CAP      new trials a day per client address (default 50); kept in
                                           the database, shared by every process and instance
    """

    data_dir: Path = Path("data")
    database_url: str | None = None  # None: SQLite in data_dir; see database_scheme()
    database_pool_size: int = 10  # PostgreSQL only: the pool of each process
    keys_dir: Path = Path("keys")
    key_passphrase: bytes | None = field(default=None, repr=False)
    policy: Policy = field(default_factory=Policy)
    password_cost: Cost = Cost.INTERACTIVE
    public_url: str | None = None  # no trailing slash
    password_link_lifetime: int = 72 * 3600
    mail_from: str = "License portal <noreply@localhost>"
    smtp: SmtpConfig | None = None  # None: mails are files in DATA/mail; its repr masks the password
    outbox_seconds: int = 60  # 0: the server sends no notification mails itself
    session_lifetime: int = 12 * 3600
    token_lifetime: int = 3600
    releases_dir: Path | None = None  # None: DATA/releases
    download_link_lifetime: int = 3600
    max_upload_bytes: int = 64 * 1024 * 1024
    trial_origins: tuple[str, ...] = ()
    trial_rate_per_minute: int = 10
    trial_daily_cap: int = 50

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        data_dir: str | None = None,
        keys_dir: str | None = None,
        database_url: str | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        database_url = database_url or env.get("OFFLINE_SERVICE_DATABASE_URL") or None
        if database_url is not None:
            database_scheme(database_url)  # refused at start-up, not at the first request
        pool_size = env.get("OFFLINE_SERVICE_DATABASE_POOL_SIZE", "10").strip()
        if not (pool_size.isascii() and pool_size.isdigit() and 0 < int(pool_size) <= 1000):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "OFFLINE_SERVICE_DATABASE_POOL_SIZE must be a whole number, 1 to 1000"
            )
        passphrase = None
        passphrase_file = env.get("OFFLINE_SERVICE_KEY_PASSPHRASE_FILE")
        if passphrase_file:
            try:
                passphrase = Path(passphrase_file).read_bytes().rstrip(b"\r\n") or None
            except OSError as exc:
                raise OfflineServiceError(
                    Code.KEY_ERROR, f"cannot read the key passphrase file: {exc.strerror}"
                ) from None
        defaults = Policy()
        try:
            policy = Policy(
                max_request_age=int(env.get("OFFLINE_SERVICE_MAX_REQUEST_AGE", defaults.max_request_age)),
                max_future_skew=int(env.get("OFFLINE_SERVICE_MAX_FUTURE_SKEW", defaults.max_future_skew)),
            )
        except ValueError:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "request age and skew must be whole seconds"
            ) from None
        try:
            cost = Cost[env.get("OFFLINE_SERVICE_PASSWORD_COST", "interactive").upper()]
        except KeyError:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "password cost must be interactive, moderate or minimum"
            ) from None
        try:
            web: dict[str, Any] = dict(
                session_lifetime=int(env.get("OFFLINE_SERVICE_SESSION_HOURS", "12")) * 3600,
                token_lifetime=int(env.get("OFFLINE_SERVICE_TOKEN_MINUTES", "60")) * 60,
                download_link_lifetime=int(env.get("OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES", "60")) * 60,
                max_upload_bytes=int(env.get("OFFLINE_SERVICE_MAX_UPLOAD_MB", "64")) * 1024 * 1024,
                trial_rate_per_minute=int(env.get("OFFLINE_SERVICE_TRIAL_RATE", "10")),
                trial_daily_cap=int(env.get("OFFLINE_SERVICE_TRIAL_DAILY_CAP", "50")),
            )
        except ValueError:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "web settings must be whole numbers") from None
        if min(web.values()) <= 0:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "web settings must be positive")
        people = _people_settings(env)
        origins = tuple(
            o.strip() for o in env.get("OFFLINE_SERVICE_TRIAL_ORIGINS", "").split(",") if o.strip()
        )
        return cls(
            **web,
            **people,
            smtp=_smtp_settings(env),
            outbox_seconds=_number(env, "OFFLINE_SERVICE_OUTBOX_SECONDS", "60", 0, 86400),
            trial_origins=origins,
            password_cost=cost,
            data_dir=Path(data_dir or env.get("OFFLINE_SERVICE_DATA") or "data"),
            database_url=database_url,
            database_pool_size=int(pool_size),
            keys_dir=Path(keys_dir or env.get("OFFLINE_SERVICE_KEYS") or "keys"),
            key_passphrase=passphrase,
            policy=policy,
            releases_dir=Path(env["OFFLINE_SERVICE_RELEASES"])
            if env.get("OFFLINE_SERVICE_RELEASES")
            else None,
        )

    @property
    def release_root(self) -> Path:
        """Where published release files are kept."""
        return self.releases_dir if self.releases_dir is not None else self.data_dir / "releases"


DATABASE_SCHEMES = ("sqlite", "postgresql")


def database_scheme(url: str) -> str:
    """The backend a database URL names ("sqlite" or "postgresql"; "postgres" is PostgreSQL's
    other spelling). Anything else is refused by name, so that a typo never falls back to SQLite."""
    scheme, sep, rest = url.partition("://")
    scheme = "postgresql" if scheme == "postgres" else scheme
    if not sep or scheme not in DATABASE_SCHEMES or not rest.strip("/"):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            "the database URL must be sqlite://DIR or postgresql://user@host:port/dbname",
        )
    return scheme
