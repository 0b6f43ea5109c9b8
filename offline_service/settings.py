"""Configuration, read once at start-up into a typed object. Nothing else reads the environment."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from offline_service.accounts.mail import DEFAULT_PORTS, Security, SmtpConfig
from offline_service.accounts.passwords import Cost
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.decisions import Policy

__all__ = [
    "DATABASE_SCHEMES",
    "LOG_FORMATS",
    "SERVER_HTTP",
    "SERVER_LOOPS",
    "SETTINGS",
    "Effective",
    "Setting",
    "Settings",
    "Source",
    "database_scheme",
    "effective",
    "in_use",
    "markdown_table",
    "shown_url",
]


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


def _whole(env: Mapping[str, str], name: str, default: int, *, least: int | None = None) -> int:
    """The variable ``name`` as a whole number (``default`` when unset), refused by name if it is
    not one or is below ``least``."""
    text = env.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number") from None
    if least is not None and value < least:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number of at least {least}")
    return value


LOG_FORMATS = ("text", "json")


def _observability_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The metrics token, the log format and the workers' metrics directory, checked."""
    found: dict[str, Any] = {}
    token = env.get("OFFLINE_SERVICE_METRICS_TOKEN", "").strip()
    if token:
        if not (16 <= len(token) <= 200 and token.isascii() and token.isprintable() and " " not in token):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "OFFLINE_SERVICE_METRICS_TOKEN must be 16 to 200 printable ASCII characters without spaces",
            )
        found["metrics_token"] = token
    log_format = env.get("OFFLINE_SERVICE_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "OFFLINE_SERVICE_LOG_FORMAT must be text or json")
    found["log_format"] = log_format
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if metrics_dir:
        if not Path(metrics_dir).is_dir():  # prometheus-client would fail at the first metric
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "PROMETHEUS_MULTIPROC_DIR must be an existing directory"
            )
        found["metrics_dir"] = Path(metrics_dir)
    return found


# What uvicorn runs on: the event loop and the HTTP/1.1 parser. uvloop and httptools (C, in the
# `server` extra) served 1.3-1.4x the offline activations of the pure-Python asyncio loop and h11 (1.8-1.9x
# on a bare endpoint) in benchmarks/http.py on this project's 2-core machine (docs/PERFORMANCE.md);
# `auto` takes them when they are installed (uvloop has no Windows build), else the pure-Python pair.
SERVER_LOOPS = ("auto", "uvloop", "asyncio")
SERVER_HTTP = ("auto", "httptools", "h11")
_FAST = {"SERVER_LOOP": "uvloop", "SERVER_HTTP": "httptools"}
_SLOW = {"SERVER_LOOP": "asyncio", "SERVER_HTTP": "h11"}


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def in_use(choice: str, what: Literal["SERVER_LOOP", "SERVER_HTTP"]) -> str:
    """The event loop (``what="SERVER_LOOP"``) or HTTP parser (``"SERVER_HTTP"``) that ``choice``
    means: ``auto`` is the C one when it can be imported, else the pure-Python one."""
    if choice != "auto":
        return choice
    return _FAST[what] if _importable(_FAST[what]) else _SLOW[what]


def _server_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The event loop and HTTP parser of ``serve``, checked: one asked for by name must be installed,
    so that a missing one stops start-up with this message rather than an ImportError in uvicorn."""
    found: dict[str, Any] = {}
    for what, choices in (("SERVER_LOOP", SERVER_LOOPS), ("SERVER_HTTP", SERVER_HTTP)):
        name = f"OFFLINE_SERVICE_{what}"
        choice = env.get(name, "auto").strip().lower() or "auto"
        if choice not in choices:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}"
            )
        if choice == _FAST[what] and not _importable(choice):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                f"{name} is {choice}, which is not installed: install offline-service[server],"
                f" or set {name} to auto or {_SLOW[what]}",
            )
        found[what.lower()] = choice
    return found


def _number(env: Mapping[str, str], name: str, default: str, low: int, high: int) -> int:
    value = env.get(name, default).strip()
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number, {low} to {high}")
    return int(value)


_SMTP_VARIABLES = (
    "OFFLINE_SERVICE_SMTP_SECURITY",
    "OFFLINE_SERVICE_SMTP_PORT",
    "OFFLINE_SERVICE_SMTP_USERNAME",
    "OFFLINE_SERVICE_SMTP_PASSWORD",
    "OFFLINE_SERVICE_SMTP_CA_FILE",
    "OFFLINE_SERVICE_SMTP_CONNECT_TIMEOUT",
    "OFFLINE_SERVICE_SMTP_TIMEOUT",
    "OFFLINE_SERVICE_SMTP_ATTEMPTS",
    "OFFLINE_SERVICE_SMTP_RETRY_SECONDS",
)


def _switch(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in ("", "0", "1", "false", "true"):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be 1 or 0 (true or false)")
    return value in ("1", "true")


def _webhook_settings(env: Mapping[str, str]) -> dict[str, Any]:
    return dict(
        webhook_seconds=_number(env, "OFFLINE_SERVICE_WEBHOOK_SECONDS", "10", 0, 86400),
        webhook_timeout=_number(env, "OFFLINE_SERVICE_WEBHOOK_TIMEOUT", "10", 1, 60),
        webhook_disable_days=_number(env, "OFFLINE_SERVICE_WEBHOOK_DISABLE_DAYS", "3", 1, 90),
        webhook_allow_private=_switch(env, "OFFLINE_SERVICE_WEBHOOK_ALLOW_PRIVATE"),
        webhook_allow_loopback=_switch(env, "OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK"),
    )


def _smtp_settings(env: Mapping[str, str]) -> SmtpConfig | None:
    """The SMTP relay, when OFFLINE_SERVICE_SMTP_HOST is set; checked (SmtpConfig refuses the rest)."""
    host = env.get("OFFLINE_SERVICE_SMTP_HOST", "").strip()
    for name in _SMTP_VARIABLES:
        # Each is read, set or not, so that what is read is exactly what SETTINGS lists
        # (tests/test_configuration.py); without a host, they have nothing to configure.
        env.get(name)
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
    """Where data and keys live, and the engine's policy. Every field is set by an environment
    variable (some also by a command-line flag); ``SETTINGS`` below lists them all with their
    defaults and help, and docs/CONFIGURATION.md is generated from it."""

    data_dir: Path = Path("data")
    database_url: str | None = None  # None: SQLite in data_dir; see database_scheme()
    database_pool_size: int = 10  # PostgreSQL only: the pool of each process
    keys_dir: Path = Path("keys")
    key_passphrase: bytes | None = field(default=None, repr=False)
    key_passphrase_file: Path | None = None  # where key_passphrase was read from
    policy: Policy = field(default_factory=Policy)
    password_cost: Cost = Cost.INTERACTIVE
    public_url: str | None = None  # no trailing slash
    password_link_lifetime: int = 72 * 3600
    mail_from: str = "License portal <noreply@localhost>"
    smtp: SmtpConfig | None = None  # None: mails are files in DATA/mail; its repr masks the password
    outbox_seconds: int = 60  # 0: the server sends no notification mails itself
    webhook_seconds: int = 10  # 0: the server sends no webhooks itself
    webhook_timeout: int = 10  # seconds per delivery attempt
    webhook_disable_days: int = 3  # an endpoint failing this long is disabled
    webhook_allow_private: bool = False  # private, loopback and link-local targets (not metadata)
    webhook_allow_loopback: bool = False  # loopback targets, over http too (development)
    session_lifetime: int = 12 * 3600
    token_lifetime: int = 3600
    releases_dir: Path | None = None  # None: DATA/releases
    download_link_lifetime: int = 3600
    max_upload_bytes: int = 64 * 1024 * 1024
    release_max_bytes: int = 1024 * 1024 * 1024  # a release upload through the admin API, whole body
    trial_origins: tuple[str, ...] = ()
    trial_rate_per_minute: int = 10
    trial_daily_cap: int = 50
    admin_auth_failures: int = 20  # failed admin token authentications per address and window
    admin_auth_window: int = 900  # seconds, from an address's first failure
    metrics_token: str | None = field(default=None, repr=False)
    log_format: str = "text"  # or "json"
    metrics_dir: Path | None = None  # prometheus-client's multiprocess mode: serve --workers N
    server_loop: str = "auto"  # SERVER_LOOPS; in_use() resolves auto
    server_http: str = "auto"  # SERVER_HTTP; in_use() resolves auto

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
        policy = Policy(
            max_request_age=_whole(env, "OFFLINE_SERVICE_MAX_REQUEST_AGE", defaults.max_request_age),
            max_future_skew=_whole(env, "OFFLINE_SERVICE_MAX_FUTURE_SKEW", defaults.max_future_skew),
        )
        try:
            cost = Cost[env.get("OFFLINE_SERVICE_PASSWORD_COST", "interactive").upper()]
        except KeyError:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "OFFLINE_SERVICE_PASSWORD_COST must be interactive, moderate or minimum",
            ) from None
        web: dict[str, Any] = dict(
            session_lifetime=_whole(env, "OFFLINE_SERVICE_SESSION_HOURS", 12, least=1) * 3600,
            token_lifetime=_whole(env, "OFFLINE_SERVICE_TOKEN_MINUTES", 60, least=1) * 60,
            download_link_lifetime=_whole(env, "OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES", 60, least=1) * 60,
            max_upload_bytes=_whole(env, "OFFLINE_SERVICE_MAX_UPLOAD_MB", 64, least=1) * 1024 * 1024,
            release_max_bytes=_whole(env, "OFFLINE_SERVICE_RELEASE_MAX_MB", 1024, least=1) * 1024 * 1024,
            trial_rate_per_minute=_whole(env, "OFFLINE_SERVICE_TRIAL_RATE", 10, least=1),
            trial_daily_cap=_whole(env, "OFFLINE_SERVICE_TRIAL_DAILY_CAP", 50, least=1),
            admin_auth_failures=_number(env, "OFFLINE_SERVICE_ADMIN_AUTH_FAILURES", "20", 1, 100_000),
            admin_auth_window=_number(env, "OFFLINE_SERVICE_ADMIN_AUTH_WINDOW", "900", 1, 86_400),
        )
        people = _people_settings(env)
        observability = _observability_settings(env)
        origins = tuple(
            o.strip() for o in env.get("OFFLINE_SERVICE_TRIAL_ORIGINS", "").split(",") if o.strip()
        )
        return cls(
            **web,
            **people,
            **observability,
            **_server_settings(env),
            smtp=_smtp_settings(env),
            **_webhook_settings(env),
            outbox_seconds=_number(env, "OFFLINE_SERVICE_OUTBOX_SECONDS", "60", 0, 86400),
            trial_origins=origins,
            password_cost=cost,
            data_dir=Path(data_dir or env.get("OFFLINE_SERVICE_DATA") or "data"),
            database_url=database_url,
            database_pool_size=int(pool_size),
            keys_dir=Path(keys_dir or env.get("OFFLINE_SERVICE_KEYS") or "keys"),
            key_passphrase=passphrase,
            key_passphrase_file=Path(passphrase_file) if passphrase_file else None,
            policy=policy,
            releases_dir=Path(env["OFFLINE_SERVICE_RELEASES"])
            if env.get("OFFLINE_SERVICE_RELEASES")
            else None,
        )

    @property
    def loop(self) -> str:
        """The event loop uvicorn runs: ``uvloop`` or ``asyncio`` (``server_loop`` with auto resolved)."""
        return in_use(self.server_loop, "SERVER_LOOP")

    @property
    def http(self) -> str:
        """The HTTP parser uvicorn runs: ``httptools`` or ``h11`` (``server_http`` with auto resolved)."""
        return in_use(self.server_http, "SERVER_HTTP")

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


# -- the list of settings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One setting as people see it: its environment variable, the command-line flag that overrides
    it (if any), its default in words, what it does, and how ``offline-service config`` shows the
    value a ``Settings`` holds (None: unset). A secret is shown masked."""

    env: str
    default: str
    help: str
    shown: Callable[[Settings], str | None]
    flag: str | None = None
    secret: bool = False


def _hours(seconds: int) -> str:
    return str(seconds // 3600)


def _minutes(seconds: int) -> str:
    return str(seconds // 60)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        env="OFFLINE_SERVICE_DATA",
        flag="--data",
        default="`./data`",
        help="the data directory: the SQLite database (unless `OFFLINE_SERVICE_DATABASE_URL` names another),"
        " the secret of download links, published releases, logos and mail files",
        shown=lambda s: str(s.data_dir.absolute()),
    ),
    Setting(
        env="OFFLINE_SERVICE_DATABASE_URL",
        flag="--database-url",
        default="SQLite in the data directory",
        help="where the data is kept: `sqlite://DIR` (the SQLite file in DIR, e.g. `sqlite:///srv/data`) or"
        " `postgresql://user@host:port/dbname`, shared by several instances",
        shown=lambda s: s.database_url,
        secret=True,
    ),
    Setting(
        env="OFFLINE_SERVICE_DATABASE_POOL_SIZE",
        default="`10`",
        help="PostgreSQL connections each process may hold (1 to 1000); the server's `max_connections`"
        " must exceed instances x workers x (this + 1)",
        shown=lambda s: str(s.database_pool_size),
    ),
    Setting(
        env="OFFLINE_SERVICE_KEYS",
        flag="--keys",
        default="`./keys`",
        help="the keyring directory: each product's signing keys",
        shown=lambda s: str(s.keys_dir.absolute()),
    ),
    Setting(
        env="OFFLINE_SERVICE_KEY_PASSPHRASE_FILE",
        default="unset (private keys unencrypted)",
        help="a file holding the passphrase that encrypts the private keys on disk (the passphrase"
        " itself is never shown)",
        shown=lambda s: None if s.key_passphrase_file is None else str(s.key_passphrase_file.absolute()),
    ),
    Setting(
        env="OFFLINE_SERVICE_MAX_REQUEST_AGE",
        default="`2592000` (30 days)",
        help="seconds: how old a request file may be when it is processed",
        shown=lambda s: str(s.policy.max_request_age),
    ),
    Setting(
        env="OFFLINE_SERVICE_MAX_FUTURE_SKEW",
        default="`300`",
        help="seconds: how far ahead of the service's clock a request's time may be",
        shown=lambda s: str(s.policy.max_future_skew),
    ),
    Setting(
        env="OFFLINE_SERVICE_PASSWORD_COST",
        default="`interactive`",
        help="the Argon2id cost of portal passwords: `interactive`, `moderate`, or `minimum` (tests only)",
        shown=lambda s: s.password_cost.name.lower(),
    ),
    Setting(
        env="OFFLINE_SERVICE_PUBLIC_URL",
        default="unset (`serve --demo`: `http://HOST:PORT`)",
        help="the portal's address as people reach it (`https://portal.example`), where links in mails"
        " start (an account with a custom domain: `https://<domain>`); never taken from a request's Host"
        " header. Unset, the server warns at start-up and refuses to mail links"
        " (`user password-link --base-url` overrides it for one link)",
        shown=lambda s: s.public_url,
    ),
    Setting(
        env="OFFLINE_SERVICE_PASSWORD_LINK_HOURS",
        default="`72`",
        help="how long a set-password link works, in hours (1 to 2160)",
        shown=lambda s: _hours(s.password_link_lifetime),
    ),
    Setting(
        env="OFFLINE_SERVICE_MAIL_FROM",
        default="`License portal <noreply@localhost>`",
        help="the From of the portal's mails",
        shown=lambda s: s.mail_from,
    ),
    Setting(
        env="OFFLINE_SERVICE_SESSION_HOURS",
        default="`12`",
        help="how long a browser session lasts, in hours",
        shown=lambda s: _hours(s.session_lifetime),
    ),
    Setting(
        env="OFFLINE_SERVICE_TOKEN_MINUTES",
        default="`60`",
        help="how long an API access token lasts, in minutes",
        shown=lambda s: _minutes(s.token_lifetime),
    ),
    Setting(
        env="OFFLINE_SERVICE_RELEASES",
        default="`DATA/releases`",
        help="the directory of published release files",
        shown=lambda s: str(s.release_root.absolute()),
    ),
    Setting(
        env="OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES",
        default="`60`",
        help="how long a signed download link works, in minutes",
        shown=lambda s: _minutes(s.download_link_lifetime),
    ),
    Setting(
        env="OFFLINE_SERVICE_MAX_UPLOAD_MB",
        default="`64`",
        help="the largest zip a batch upload may be, in MiB",
        shown=lambda s: str(s.max_upload_bytes // (1024 * 1024)),
    ),
    Setting(
        env="OFFLINE_SERVICE_RELEASE_MAX_MB",
        default="`1024`",
        help="the largest release upload through the admin API (all its files and fields), in MiB",
        shown=lambda s: str(s.release_max_bytes // (1024 * 1024)),
    ),
    Setting(
        env="OFFLINE_SERVICE_TRIAL_ORIGINS",
        default="none",
        help="comma-separated origins whose pages may call the trial endpoint from a browser"
        " (`null` for pages opened from disk)",
        shown=lambda s: ",".join(s.trial_origins) or None,
    ),
    Setting(
        env="OFFLINE_SERVICE_TRIAL_RATE",
        default="`10`",
        help="trial requests a minute per client address",
        shown=lambda s: str(s.trial_rate_per_minute),
    ),
    Setting(
        env="OFFLINE_SERVICE_TRIAL_DAILY_CAP",
        default="`50`",
        help="new trials a day per client address; kept in the database, shared by every process and instance",
        shown=lambda s: str(s.trial_daily_cap),
    ),
    Setting(
        env="OFFLINE_SERVICE_ADMIN_AUTH_FAILURES",
        default="`20`",
        help="failed admin token authentications a client address may make in a window (1 to 100000);"
        " then every admin API call from it answers `RATE_LIMITED` until the window ends, a valid token's"
        " too. Kept in the database, shared by every process and instance",
        shown=lambda s: str(s.admin_auth_failures),
    ),
    Setting(
        env="OFFLINE_SERVICE_ADMIN_AUTH_WINDOW",
        default="`900`",
        help="seconds (1 to 86400) that window lasts, from the address's first failure in it",
        shown=lambda s: str(s.admin_auth_window),
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_HOST",
        default="none: mails are files in DATA/mail",
        help="the SMTP relay mails go through; unset, every mail is written as a file into DATA/mail instead (docs/MAIL.md)",
        shown=lambda s: s.smtp.host if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_SECURITY",
        default="`starttls`",
        help="`starttls`, `tls` (implicit, port 465) or `none` (only for a relay on a loopback address)",
        shown=lambda s: s.smtp.security.value if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_PORT",
        default="587, 465 or 25 by security",
        help="the relay's port",
        shown=lambda s: str(s.smtp.port) if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_USERNAME",
        default="none",
        help="the relay's login, with OFFLINE_SERVICE_SMTP_PASSWORD",
        shown=lambda s: s.smtp.username if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_PASSWORD",
        default="none",
        help="the relay's password (never logged nor shown in a repr)",
        shown=lambda s: s.smtp.password if s.smtp else None,
        secret=True,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_CA_FILE",
        default="none",
        help="a PEM CA to trust besides the system's (a private relay); certificates and host names are always verified",
        shown=lambda s: str(s.smtp.ca_file) if s.smtp and s.smtp.ca_file else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_CONNECT_TIMEOUT",
        default="`10`",
        help="seconds to connect to the relay",
        shown=lambda s: f"{s.smtp.connect_timeout:g}" if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_TIMEOUT",
        default="`30`",
        help="seconds each read or write may take once connected",
        shown=lambda s: f"{s.smtp.timeout:g}" if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_ATTEMPTS",
        default="`4`",
        help="tries per mail, the first included (1 to 10)",
        shown=lambda s: str(s.smtp.attempts) if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SMTP_RETRY_SECONDS",
        default="`30`",
        help="the most time spent waiting between tries; the waits double from 1 second",
        shown=lambda s: f"{s.smtp.retry_seconds:g}" if s.smtp else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_OUTBOX_SECONDS",
        default="`60`",
        help="how often the server sends queued notification mails (0: never, leave it to `offline-service notify`)",
        shown=lambda s: str(s.outbox_seconds),
    ),
    Setting(
        env="OFFLINE_SERVICE_WEBHOOK_SECONDS",
        default="`10`",
        help="how often the server sends due webhook deliveries, in seconds (0: never, leave it to"
        " `offline-service webhook send`; docs/WEBHOOKS.md)",
        shown=lambda s: str(s.webhook_seconds),
    ),
    Setting(
        env="OFFLINE_SERVICE_WEBHOOK_TIMEOUT",
        default="`10`",
        help="how long one webhook delivery attempt may take, in seconds (1 to 60); longer is a failure",
        shown=lambda s: str(s.webhook_timeout),
    ),
    Setting(
        env="OFFLINE_SERVICE_WEBHOOK_DISABLE_DAYS",
        default="`3`",
        help="a webhook endpoint whose deliveries have all failed for this many days is disabled (1 to 90)",
        shown=lambda s: str(s.webhook_disable_days),
    ),
    Setting(
        env="OFFLINE_SERVICE_WEBHOOK_ALLOW_PRIVATE",
        default="`0`",
        help="`1`: webhook URLs may resolve to private, loopback and link-local addresses (a vendor"
        " whose receivers are on its own network); cloud metadata, unspecified, multicast and"
        " reserved addresses stay refused",
        shown=lambda s: "1" if s.webhook_allow_private else "0",
    ),
    Setting(
        env="OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK",
        default="`0`",
        help="`1`: webhook URLs may resolve to loopback addresses, and use plain `http://` there"
        " (development and tests; every other address needs `https://`)",
        shown=lambda s: "1" if s.webhook_allow_loopback else "0",
    ),
    Setting(
        env="OFFLINE_SERVICE_METRICS_TOKEN",
        default="none: loopback clients only",
        help="the bearer token that `GET /metrics` requires (16 to 200 printable ASCII characters, no"
        " spaces); unset, /metrics answers loopback clients only (docs/OBSERVABILITY.md)",
        shown=lambda s: s.metrics_token,
        secret=True,
    ),
    Setting(
        env="OFFLINE_SERVICE_LOG_FORMAT",
        flag="--log-format",
        default="`text`",
        help="`text` or `json` (one JSON object per line, with the request id); `serve --log-format` wins",
        shown=lambda s: s.log_format,
    ),
    Setting(
        env="PROMETHEUS_MULTIPROC_DIR",
        default="none",
        help="set by `serve --workers N` for its workers, never by hand: an existing directory where"
        " each worker keeps its metrics for /metrics to sum",
        shown=lambda s: str(s.metrics_dir) if s.metrics_dir else None,
    ),
    Setting(
        env="OFFLINE_SERVICE_SERVER_LOOP",
        default="`auto`",
        help="the event loop `serve` and its workers run: `uvloop` (C, in the `server` extra; with"
        " httptools, 1.3-1.4x the offline activations a second), `asyncio` (pure Python), or `auto`: uvloop"
        " when it is installed",
        shown=lambda s: f"auto ({s.loop})" if s.server_loop == "auto" else s.server_loop,
    ),
    Setting(
        env="OFFLINE_SERVICE_SERVER_HTTP",
        default="`auto`",
        help="the HTTP/1.1 parser `serve` and its workers run: `httptools` (C, in the `server` extra),"
        " `h11` (pure Python), or `auto`: httptools when it is installed",
        shown=lambda s: f"auto ({s.http})" if s.server_http == "auto" else s.server_http,
    ),
)

Source = Literal["flag", "environment", "default"]


@dataclass(frozen=True, slots=True)
class Effective:
    """A setting's value in effect (masked if secret; None: unset) and where it came from."""

    setting: Setting
    value: str | None
    source: Source


def effective(
    settings: Settings,
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Effective]:
    """Every setting's value in ``settings`` and its source: a flag given (``flags``: flag ->
    value, None when not given), else the environment, else the default, as ``from_env`` decides.
    ``settings`` should be what ``from_env`` made of the same flags and environment."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    found = []
    for setting in SETTINGS:
        if setting.flag is not None and flags.get(setting.flag):
            source: Source = "flag"
        elif environ.get(setting.env):  # set and not empty, as from_env reads it
            source = "environment"
        else:
            source = "default"
        value = setting.shown(settings)
        if setting.secret and value is not None:
            value = shown_url(value) if "://" in value else "***"
        found.append(Effective(setting, value, source))
    return found


def markdown_table() -> str:
    """The settings as the Markdown table of docs/CONFIGURATION.md."""
    rows = ["| variable | flag | default | what it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        flag = f"`{s.flag}`" if s.flag else ""
        secret = " (a secret: `offline-service config` masks it)" if s.secret else ""
        text = s.help.replace("|", "\\|")
        rows.append(f"| `{s.env}` | {flag} | {s.default} | {text}{secret} |")
    return "\n".join(rows) + "\n"


_SECRET_PARAMETERS = {"password", "sslpassword"}


def shown_url(url: str) -> str:
    """The URL with its password, if any, hidden (in the user part or the query): for messages,
    summaries and ``offline-service config``."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(k in _SECRET_PARAMETERS for k, _ in pairs):
        return url  # as it was written (urlunsplit would turn sqlite:///DIR into sqlite:/DIR)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if any(k in _SECRET_PARAMETERS for k, _ in pairs):
        masked = [(k, "***" if k in _SECRET_PARAMETERS else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)
