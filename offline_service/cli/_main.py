"""Argument parsing of ``offline-service`` and its service-wide verbs (init, serve, demo). Each domain
registers its own verbs (``<domain>/cli.py``); decisions live in the engine and the domain services."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from offline_service._files import private_dir
from offline_service.accounts import cli as accounts_cli
from offline_service.admin import cli as admin_cli
from offline_service.branding import cli as branding_cli
from offline_service.cli import backup as backup_cli
from offline_service.cli import db as db_cli
from offline_service.cli.context import EXIT_OK, fail, verb

# Private names for the verbs still defined here; each domain's cli.py imports the public ones.
from offline_service.cli.context import Context as _Context
from offline_service.cli.context import emit as _emit
from offline_service.cli.context import now as _now
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import THUMBPRINT
from offline_service.ids import check_alias, check_id
from offline_service.licensing import cli as licensing_cli
from offline_service.licensing import services as licensing
from offline_service.notifications import cli as notifications_cli
from offline_service.releases import cli as releases_cli
from offline_service.settings import LOG_FORMATS, Settings, effective
from offline_service.store import database_location
from offline_service.webhooks import cli as webhooks_cli

__all__ = ["build_parser", "main", "worker_environment"]

_EPILOG = """\
exit status: 0 success; 1 error (the message names its code, a `next:` line what to do); 2 bad usage;
3 `process` or `batch` finished but rejected at least one request (see the output or report).
settings: OFFLINE_SERVICE_DATA (--data), OFFLINE_SERVICE_KEYS (--keys), OFFLINE_SERVICE_DATABASE_URL
(--database-url) and the others of docs/CONFIGURATION.md; a flag wins over the environment, which
wins over the default. `offline-service config` prints those in effect and where each came from."""

# -- verbs ---------------------------------------------------------------------------------------


def cmd_init(ctx: _Context) -> int:
    # SQLite's store makes the data directory; on PostgreSQL it is still where releases, mail and
    # logos go, and a path that cannot be one fails here, before the database is touched.
    private_dir(ctx.settings.data_dir, what="data directory")
    account, created = licensing.ensure_account(ctx.store, ctx.args.account, now=_now())
    ctx.settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "account": {"id": account.id, "alias": account.alias, "created": created},
        "data": str(ctx.settings.data_dir),
        "keys": str(ctx.settings.keys_dir),
        "schemaVersion": ctx.store.schema_version,
    }
    verb = "created" if created else "already exists:"
    _emit(ctx.args, data, f"account {verb} {account.alias} ({account.id}); data in {ctx.settings.data_dir}")
    return EXIT_OK


def cmd_serve(ctx: _Context) -> int:
    import uvicorn

    from offline_service.web import logs
    from offline_service.web.app import create_app
    from offline_service.web.workers import Workers, port_sharing

    a = ctx.args
    if a.demo:
        from offline_service.cli.demo import announce_portal, prepare_portal

        # Shown as a URL a browser can open: a wildcard bind address is not one.
        shown = "127.0.0.1" if a.host in ("0.0.0.0", "::", "") else a.host  # noqa: S104
        shown = f"[{shown}]" if ":" in shown else shown
        demo = prepare_portal(ctx.settings, account_alias=a.account)
        announce_portal(demo, f"http://{shown}:{a.port}/login", trial_origins=ctx.settings.trial_origins)
        if ctx.settings.public_url is None:  # the demo's mails link to where it listens
            ctx.settings = replace(ctx.settings, public_url=f"http://{shown}:{a.port}")
    ctx.close()
    # uvicorn's own logging, with the request id and the redaction of secrets on every line (see
    # web/logs.py); the service's loggers (offline_service.*, such as the mail sender's) go to the
    # same stream, as text or JSON.
    log_format = a.log_format or ctx.settings.log_format
    log_config = logs.log_config(a.log_level, log_format, uvicorn.config.LOGGING_CONFIG)
    options: dict[str, Any] = {
        "log_config": log_config,
        "host": a.host,
        "port": a.port,
        "log_level": a.log_level,
        # Off unless asked: otherwise any client could claim another address (and so escape the
        # per-address login back-off) or https with a forged X-Forwarded-Proto.
        "proxy_headers": a.proxy_headers,
        "forwarded_allow_ips": a.forwarded_allow_ips,
        "server_header": False,
        # Named, not uvicorn's "auto": what runs is what `offline-service config` shows (the C
        # loop and parser when installed; OFFLINE_SERVICE_SERVER_LOOP / _HTTP choose).
        "loop": ctx.settings.loop,
        "http": ctx.settings.http,
    }
    if a.workers == 1:
        uvicorn.run(create_app(ctx.settings), **options)
        return EXIT_OK
    # Each worker imports the app factory and reads the settings resolved here from the
    # environment it inherits; the demo's records above were made once, before any worker.
    # A scrape of /metrics reaches one worker: the workers keep their metrics in files of a fresh
    # directory of this run, which every worker's /metrics sums (prometheus-client's multiprocess
    # mode, chosen when it is imported: in the workers, after this environment is set).
    metrics_dir = Path(tempfile.mkdtemp(prefix="offline-service-metrics-"))
    try:
        settings = replace(ctx.settings, metrics_dir=metrics_dir, log_format=log_format)
        os.environ.update(worker_environment(settings))
        factory = "offline_service.web.app:app_from_env"
        if port_sharing():  # a listening socket per worker: see web/workers.py
            return Workers(uvicorn.Config(factory, factory=True, **options), a.workers).run()
        uvicorn.run(factory, factory=True, workers=a.workers, **options)
        return EXIT_OK
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # names the directory removed here
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment that makes ``Settings.from_env`` in a worker process give ``settings``: what
    the parent took from its command line (or the demo) rather than from its own environment, which
    the workers inherit as it is. Paths are absolute in case a worker starts elsewhere."""
    env = {
        "OFFLINE_SERVICE_DATA": str(settings.data_dir.absolute()),
        "OFFLINE_SERVICE_KEYS": str(settings.keys_dir.absolute()),
    }
    if settings.public_url is not None:
        env["OFFLINE_SERVICE_PUBLIC_URL"] = settings.public_url
    if settings.database_url is not None:
        env["OFFLINE_SERVICE_DATABASE_URL"] = settings.database_url
    if settings.metrics_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir.absolute())
    env["OFFLINE_SERVICE_LOG_FORMAT"] = settings.log_format
    return env


def cmd_config(ctx: _Context) -> int:
    # Reads the settings only: no database is opened, nothing is created.
    a = ctx.args
    rows = effective(ctx.settings, {"--data": a.data, "--keys": a.keys, "--database-url": a.database_url})
    backend, location = database_location(ctx.settings)
    exists = Path(location).is_file() if backend == "sqlite" else None
    data = {
        "settings": [
            {
                "name": r.setting.env,
                "flag": r.setting.flag,
                "value": r.value,
                "source": r.source,
                "secret": r.setting.secret,
            }
            for r in rows
        ],
        "database": {"backend": backend, "location": location, "exists": exists},
    }
    width = max(len(r.setting.env) for r in rows)
    lines = [f"{'setting':<{width}}  value  (from)"]
    for r in rows:
        source = f"flag {r.setting.flag}" if r.source == "flag" else r.source
        lines.append(f"{r.setting.env:<{width}}  {'(unset)' if r.value is None else r.value}  ({source})")
    if backend == "sqlite":
        state = "there" if exists else "not there yet: `offline-service init` creates it"
        lines.append(f"database: SQLite file {location} ({state})")
    else:
        lines.append(f"database: PostgreSQL {location}")
    lines.append("secrets are masked; every setting: docs/CONFIGURATION.md")
    _emit(a, data, "\n".join(lines))
    return EXIT_OK


def cmd_demo(ctx: _Context) -> int:
    from offline_service.cli.demo import run_demo

    return run_demo(ctx.settings, account_alias=ctx.args.account)


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offline-service",
        description="Process offline activation, deactivation and trial requests; manage products, "
        "licenses and signing keys.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verb(verbs, "init", cmd_init, "create the data directory, database and account").set_defaults(
        creates=True
    )
    db_cli.register(verbs)
    backup_cli.register(verbs)
    licensing_cli.register(verbs)

    accounts_cli.register(verbs, verb)

    p = verb(verbs, "serve", cmd_serve, "serve the customer portal and the JSON API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
        help="uvicorn's log level; info (default) logs every request",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text, or json: one JSON object per line, each with the request's id"
        " (default: OFFLINE_SERVICE_LOG_FORMAT, else text)",
    )
    p.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from the addresses in --forwarded-allow-ips (behind a TLS proxy)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="comma-separated proxy addresses trusted with --proxy-headers (default 127.0.0.1)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes (default 1); each opens its own store and shares the keys directory",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="first create (once) the demo account, organization, product, license and portal user,"
        " and print how to log in; what `make run` runs",
    )

    verb(
        verbs,
        "config",
        cmd_config,
        "print the settings in effect and where each came from (flag, environment or default),"
        " secrets masked; opens no database",
    )
    verb(verbs, "demo", cmd_demo, "set up a demo product and license and walk through the offline flow")
    releases_cli.register(verbs)
    branding_cli.register(verbs)
    notifications_cli.register(verbs)
    webhooks_cli.register(verbs)
    admin_cli.register(verbs)
    return parser


def _workers(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 64):
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 64")
    return int(text)


# Identifiers named on the command line (argument -> kind of id), checked by shape before anything
# is opened: a product id becomes a directory name in the keyring.
_ID_ARGUMENTS = {
    "product": ("product", "--product"),
    "product_id": ("product", "PRODUCT_ID"),
    "activation_id": ("activation", "ACTIVATION_ID"),
}
_KID = re.compile(THUMBPRINT)  # a key id: an RFC 7638 thumbprint


def _check_identifiers(args: argparse.Namespace) -> None:
    if getattr(args, "account", None) is not None:
        check_alias(args.account, "--account")
    for attr, (kind, name) in _ID_ARGUMENTS.items():
        value = getattr(args, attr, None)
        if value is not None:
            check_id(value, kind, name)
    kid = getattr(args, "kid", None)
    if kid is not None and not _KID.fullmatch(kid):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "--kid must be a key id (43 base64url characters)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = None
    try:
        _check_identifiers(args)
        ctx = _Context(args)
        result: int = args.handler(ctx)
        return result
    except OfflineServiceError as exc:
        return fail(args, exc)
    except OSError as exc:
        # A path that cannot be used (a file where a directory must go, no permission, disk full):
        # an error message like any other, not a traceback.
        where = f" {exc.filename}" if exc.filename else ""
        return fail(
            args, OfflineServiceError(Code.STORAGE_ERROR, f"cannot use{where}: {exc.strerror or exc}")
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if ctx is not None:
            ctx.close()
