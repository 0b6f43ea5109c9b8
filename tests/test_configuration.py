"""One configuration: ``SETTINGS`` lists every variable ``Settings.from_env`` reads, no other module
reads the environment, and docs/CONFIGURATION.md is the list, generated from it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from offline_service import settings as settings_module
from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import SETTINGS, Settings, effective, markdown_table, shown_url
from tests.smtp_relay import Certificates

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "offline_service"
DOC = ROOT / "docs" / "CONFIGURATION.md"
NAME = re.compile(r"OFFLINE_SERVICE_[A-Z0-9_]+")
LISTED = {s.env for s in SETTINGS}
# Read by the tests and benchmarks only, never by the package.
NOT_SETTINGS = {"OFFLINE_SERVICE_TEST_DATABASE_URL", "OFFLINE_SERVICE_BENCH_DATABASE_URL"}

# A value for every setting, other than its default, that from_env accepts.
SAMPLES = {
    "OFFLINE_SERVICE_DATA": "/srv/sample/data",
    "OFFLINE_SERVICE_DATABASE_URL": "postgresql://app:hunter2@db.example:5432/licenses",
    "OFFLINE_SERVICE_DATABASE_POOL_SIZE": "7",
    "OFFLINE_SERVICE_KEYS": "/srv/sample/keys",
    "OFFLINE_SERVICE_KEY_PASSPHRASE_FILE": "PASSPHRASE_FILE",  # replaced by a real file
    "OFFLINE_SERVICE_MAX_REQUEST_AGE": "86400",
    "OFFLINE_SERVICE_MAX_FUTURE_SKEW": "60",
    "OFFLINE_SERVICE_PASSWORD_COST": "minimum",
    "OFFLINE_SERVICE_PUBLIC_URL": "https://portal.example",
    "OFFLINE_SERVICE_PASSWORD_LINK_HOURS": "5",
    "OFFLINE_SERVICE_MAIL_FROM": "Portal <portal@example.com>",
    "OFFLINE_SERVICE_SESSION_HOURS": "3",
    "OFFLINE_SERVICE_TOKEN_MINUTES": "15",
    "OFFLINE_SERVICE_RELEASES": "/srv/sample/releases",
    "OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES": "9",
    "OFFLINE_SERVICE_MAX_UPLOAD_MB": "2",
    "OFFLINE_SERVICE_RELEASE_MAX_MB": "3",
    "OFFLINE_SERVICE_TRIAL_ORIGINS": "https://www.example.com,null",
    "OFFLINE_SERVICE_TRIAL_RATE": "4",
    "OFFLINE_SERVICE_TRIAL_DAILY_CAP": "8",
    "OFFLINE_SERVICE_ADMIN_AUTH_FAILURES": "7",
    "OFFLINE_SERVICE_ADMIN_AUTH_WINDOW": "120",
    "OFFLINE_SERVICE_METRICS_TOKEN": "sample-metrics-token-0123456789",
    "OFFLINE_SERVICE_LOG_FORMAT": "json",
    "PROMETHEUS_MULTIPROC_DIR": "METRICS_DIR",  # replaced by a real directory
    "OFFLINE_SERVICE_SMTP_HOST": "smtp.example",
    "OFFLINE_SERVICE_SMTP_SECURITY": "tls",
    "OFFLINE_SERVICE_SMTP_PORT": "2465",
    "OFFLINE_SERVICE_SMTP_USERNAME": "portal",
    "OFFLINE_SERVICE_SMTP_PASSWORD": "relay-secret-42",
    "OFFLINE_SERVICE_SMTP_CA_FILE": "CA_FILE",  # replaced by a real CA certificate
    "OFFLINE_SERVICE_SMTP_CONNECT_TIMEOUT": "7",
    "OFFLINE_SERVICE_SMTP_TIMEOUT": "11",
    "OFFLINE_SERVICE_SMTP_ATTEMPTS": "2",
    "OFFLINE_SERVICE_SMTP_RETRY_SECONDS": "5",
    "OFFLINE_SERVICE_OUTBOX_SECONDS": "0",
    "OFFLINE_SERVICE_WEBHOOK_SECONDS": "30",
    "OFFLINE_SERVICE_WEBHOOK_TIMEOUT": "4",
    "OFFLINE_SERVICE_WEBHOOK_DISABLE_DAYS": "5",
    "OFFLINE_SERVICE_WEBHOOK_ALLOW_PRIVATE": "1",
    "OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK": "true",
    "OFFLINE_SERVICE_SERVER_LOOP": "asyncio",
    "OFFLINE_SERVICE_SERVER_HTTP": "h11",
}
# The relay's other settings configure nothing without a host: each is tried with this one.
SMTP_HOST = {"OFFLINE_SERVICE_SMTP_HOST": "smtp.example"}
LOGIN = {
    "OFFLINE_SERVICE_SMTP_USERNAME": "OFFLINE_SERVICE_SMTP_PASSWORD",
    "OFFLINE_SERVICE_SMTP_PASSWORD": "OFFLINE_SERVICE_SMTP_USERNAME",
}


class Recording(Mapping[str, str]):
    """An environment that notes every name asked for, found or not."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.fixture
def samples(tmp_path: Path, certificates: Certificates) -> dict[str, str]:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    return {
        **SAMPLES,
        "OFFLINE_SERVICE_KEY_PASSPHRASE_FILE": str(passphrase),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "OFFLINE_SERVICE_SMTP_CA_FILE": str(certificates.ca_file),
    }


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == LISTED
    assert len(SETTINGS) == len(LISTED), "a variable is listed twice"


def test_from_env_reads_exactly_the_listed_variables(samples: dict[str, str]) -> None:
    for values in ({}, samples):
        env = Recording(values)
        Settings.from_env(env)
        assert env.asked == LISTED, (env.asked - LISTED, LISTED - env.asked)


def test_each_listed_variable_sets_what_config_shows(samples: dict[str, str]) -> None:
    defaults = {e.setting.env: e for e in effective(Settings.from_env({}), environ={})}
    assert all(e.source == "default" for e in defaults.values())
    for name, value in samples.items():
        relay = name.startswith("OFFLINE_SERVICE_SMTP_") and name not in SMTP_HOST
        # A relay's login is a username and a password together: each is tried with the other.
        pair = LOGIN.get(name)
        env = {**(SMTP_HOST if relay else {}), **({pair: samples[pair]} if pair else {}), name: value}
        changed = {
            e.setting.env: e
            for e in effective(Settings.from_env(env), environ=env)
            if e != defaults[e.setting.env]
        }
        # RELEASES defaults to DATA/releases: setting DATA moves it too. A relay's host shows the
        # relay's defaults (port, security, timeouts...): compared with the host alone.
        expected = {name, "OFFLINE_SERVICE_RELEASES"} if name == "OFFLINE_SERVICE_DATA" else {name}
        if name == "OFFLINE_SERVICE_SMTP_SECURITY":  # the port's default follows the security
            expected.add("OFFLINE_SERVICE_SMTP_PORT")
        if pair:
            expected.add(pair)
        if relay or name in SMTP_HOST:
            base = {e.setting.env: e for e in effective(Settings.from_env(SMTP_HOST), environ=SMTP_HOST)}
            changed = {k: e for k, e in changed.items() if k == name or e != base[k]}
        assert set(changed) == expected, name
        assert changed[name].source == "environment"


def test_a_flag_wins_over_the_environment_and_is_named_as_the_source() -> None:
    env = {"OFFLINE_SERVICE_DATA": "/from/env", "OFFLINE_SERVICE_KEYS": "/from/env/keys"}
    settings = Settings.from_env(env, data_dir="/from/flag")
    rows = {e.setting.env: e for e in effective(settings, {"--data": "/from/flag"}, env)}
    assert (rows["OFFLINE_SERVICE_DATA"].value, rows["OFFLINE_SERVICE_DATA"].source) == ("/from/flag", "flag")
    assert (rows["OFFLINE_SERVICE_KEYS"].value, rows["OFFLINE_SERVICE_KEYS"].source) == (
        "/from/env/keys",
        "environment",
    )


def test_secrets_are_masked() -> None:
    url = "postgresql://app:hunter2@db.example:5432/licenses?sslmode=require&password=hunter3"
    env = {"OFFLINE_SERVICE_DATABASE_URL": url}
    shown = [e.value for e in effective(Settings.from_env(env), environ=env)]
    assert not any("hunter" in (v or "") for v in shown)
    assert "postgresql://app:***@db.example:5432/licenses?sslmode=require&password=***" in shown
    assert [s.env for s in SETTINGS if s.secret] == [
        "OFFLINE_SERVICE_DATABASE_URL",
        "OFFLINE_SERVICE_SMTP_PASSWORD",
        "OFFLINE_SERVICE_METRICS_TOKEN",
    ]
    token = "a-metrics-token-0123456789"
    env = {"OFFLINE_SERVICE_METRICS_TOKEN": token}
    shown = [e.value for e in effective(Settings.from_env(env), environ=env)]
    assert token not in shown and "***" in shown


def test_shown_url_leaves_a_url_without_password_as_it_is() -> None:
    for url in (
        "postgresql://app@db:5432/licenses",
        "sqlite:///srv/data",
        "postgresql://db/x?sslmode=require",
    ):
        assert shown_url(url) == url


@pytest.mark.parametrize(
    "name",
    [
        "OFFLINE_SERVICE_SESSION_HOURS",
        "OFFLINE_SERVICE_TOKEN_MINUTES",
        "OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES",
        "OFFLINE_SERVICE_MAX_UPLOAD_MB",
        "OFFLINE_SERVICE_RELEASE_MAX_MB",
        "OFFLINE_SERVICE_TRIAL_RATE",
        "OFFLINE_SERVICE_MAX_REQUEST_AGE",
        "OFFLINE_SERVICE_PASSWORD_COST",
        "OFFLINE_SERVICE_SERVER_LOOP",
        "OFFLINE_SERVICE_SERVER_HTTP",
    ],
)
def test_a_refused_value_names_its_variable(name: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({name: "ten"})
    assert info.value.code is Code.INVALID_ARGUMENT
    assert name in info.value.message


def test_the_server_loop_and_parser_are_named_or_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = Settings.from_env(
        {"OFFLINE_SERVICE_SERVER_LOOP": " UVLoop ", "OFFLINE_SERVICE_SERVER_HTTP": "h11"}
    )
    assert (chosen.server_loop, chosen.loop, chosen.server_http, chosen.http) == (
        "uvloop",
        "uvloop",
        "h11",
        "h11",
    )
    # auto: the C loop and parser where they are installed (the server extra), else the pure-Python ones.
    default = Settings.from_env({})
    assert (default.server_loop, default.server_http) == ("auto", "auto")
    assert (default.loop, default.http) == ("uvloop", "httptools")
    monkeypatch.setattr(settings_module, "_importable", lambda module: False)
    assert (default.loop, default.http) == ("asyncio", "h11")
    shown = {e.setting.env: e.value for e in effective(default, environ={})}
    assert shown["OFFLINE_SERVICE_SERVER_LOOP"] == "auto (asyncio)"
    assert shown["OFFLINE_SERVICE_SERVER_HTTP"] == "auto (h11)"
    # One asked for by name but not installed stops start-up with a message, not an ImportError.
    for name, value in (
        ("OFFLINE_SERVICE_SERVER_LOOP", "uvloop"),
        ("OFFLINE_SERVICE_SERVER_HTTP", "httptools"),
    ):
        with pytest.raises(OfflineServiceError) as info:
            Settings.from_env({name: value})
        assert info.value.code is Code.INVALID_ARGUMENT
        assert f"{name} is {value}, which is not installed" in info.value.message
    # Refused with the choices spelled out.
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({"OFFLINE_SERVICE_SERVER_HTTP": "httptool"})
    assert info.value.message == "OFFLINE_SERVICE_SERVER_HTTP must be auto, httptools or h11"


def test_the_doc_holds_the_table_generated_from_settings() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- generated from offline_service/settings.py SETTINGS: do not edit by hand -->\n")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of the generated table -->")
    assert text[start:end] == markdown_table(), (
        "docs/CONFIGURATION.md is not the table of SETTINGS: regenerate it (see the file)"
    )


def test_the_docs_name_no_variable_the_code_does_not_read() -> None:
    files = [ROOT / "README.md", DOC, *(ROOT / "docs").glob("*.md"), ROOT / "trial_form" / "README.md"]
    files += [ROOT / "keys" / "README.md", ROOT / "Makefile"]
    for path in files:
        named = set(NAME.findall(path.read_text(encoding="utf-8")))
        assert named <= LISTED | NOT_SETTINGS, (path.name, named - LISTED - NOT_SETTINGS)


def test_the_package_names_only_listed_variables() -> None:
    for path in PACKAGE.rglob("*"):
        if path.suffix in {".py", ".html", ".js", ".txt"}:
            named = set(NAME.findall(path.read_text(encoding="utf-8")))
            assert named <= LISTED, (str(path.relative_to(ROOT)), named - LISTED)


# Modules that touch the environment for another reason than reading a setting: the server hands
# its settings to worker processes, the demo runs its steps as child processes, and the client (a
# program of its own) finds the user's configuration folder.
_ENVIRONMENT_USERS = {
    "offline_service/settings.py",
    "offline_service/cli/_main.py",  # os.environ.update(worker_environment(...))
    "offline_service/cli/demo.py",  # {**os.environ, ...} for its child processes
    "offline_service/client/sdk.py",  # default_witness_dir(os.environ): APPDATA, HOME, XDG_CONFIG_HOME
}


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines using ``os.environ``, ``os.getenv`` or ``environ``/``getenv`` imported from os."""
    names = {"environ", "getenv", "environb", "getenvb"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            lines.append(node.lineno)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in names for a in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_no_module_but_settings_reads_the_environment() -> None:
    users = set()
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(ROOT).as_posix()
        if _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            users.add(name)
    assert users == _ENVIRONMENT_USERS


def test_the_check_finds_a_read() -> None:
    assert _environment_reads(ast.parse("import os\nx = os.environ.get('OFFLINE_SERVICE_X')\n")) == [2]
    assert _environment_reads(ast.parse("from os import getenv\n")) == [1]
