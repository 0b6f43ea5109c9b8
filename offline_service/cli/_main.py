"""Argument parsing and the verbs of ``offline-service``. Decisions live in the engine and admin."""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Sequence
from dataclasses import replace

from offline_service.accounts import organization, password_links, people
from offline_service.accounts.mail import FileMailer
from offline_service.accounts.models import Role, User
from offline_service.accounts.organization import Scope
from offline_service.branding import cli as branding_cli
from offline_service.cli.context import EXIT_OK, fail, verb

# Private names for the verbs still defined here; each domain's cli.py imports the public ones.
from offline_service.cli.context import Context as _Context
from offline_service.cli.context import emit as _emit
from offline_service.cli.context import iso as _iso
from offline_service.cli.context import now as _now
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_alias, check_id, email_key
from offline_service.licensing import cli as licensing_cli
from offline_service.licensing import services as admin
from offline_service.releases import cli as releases_cli

__all__ = ["build_parser", "main"]

_EPILOG = """\
exit status: 0 success; 1 error (the message names its code); 2 bad usage;
3 `process` or `batch` finished but rejected at least one request (see the output or report).
environment: OFFLINE_SERVICE_DATA, OFFLINE_SERVICE_KEYS, OFFLINE_SERVICE_KEY_PASSPHRASE_FILE,
OFFLINE_SERVICE_MAX_REQUEST_AGE, OFFLINE_SERVICE_MAX_FUTURE_SKEW (see docs/),
OFFLINE_SERVICE_RELEASES (where `release publish` puts files; default DATA/releases)."""

# -- verbs ---------------------------------------------------------------------------------------


def cmd_init(ctx: _Context) -> int:
    account, created = admin.ensure_account(ctx.store, ctx.args.account, now=_now())
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


def cmd_org_create(ctx: _Context) -> int:
    org = people.create_organization(
        ctx.store, ctx.account(), name=ctx.args.name, now=_now(), allowed_users=ctx.args.allowed_users
    )
    _emit(ctx.args, {"id": org.id, "name": org.name}, f"organization {org.id} ({org.name})")
    return EXIT_OK


def cmd_user_create(ctx: _Context) -> int:
    a = ctx.args
    password = None
    if a.password_stdin:
        # One line from standard input, so the password is never in argv or shell history.
        password = sys.stdin.readline().rstrip("\r\n")
    user = people.create_user(
        ctx.store,
        ctx.account(),
        email=a.email,
        role=Role(a.role),
        now=_now(),
        organization=a.organization,
        password=password,
        first_name=a.first_name or "",
        last_name=a.last_name or "",
        cost=ctx.settings.password_cost,
    )
    data = {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "organizationId": user.organization_id,
    }
    _emit(a, data, f"user {user.id} ({user.email}, {user.role})")
    return EXIT_OK


def cmd_group_create(ctx: _Context) -> int:
    group = people.create_group(
        ctx.store, ctx.account(), organization=ctx.args.organization, name=ctx.args.name, now=_now()
    )
    _emit(ctx.args, {"id": group.id, "name": group.name}, f"group {group.id} ({group.name})")
    return EXIT_OK


def cmd_group_add_user(ctx: _Context) -> int:
    people.add_user_to_group(ctx.store, ctx.account(), group=ctx.args.group, email=ctx.args.email, now=_now())
    _emit(
        ctx.args,
        {"group": ctx.args.group, "email": ctx.args.email},
        f"{ctx.args.email} added to {ctx.args.group}",
    )
    return EXIT_OK


def cmd_group_link(ctx: _Context) -> int:
    people.link_group_license(
        ctx.store, ctx.account(), group=ctx.args.group, license_key=ctx.args.key, now=_now()
    )
    _emit(ctx.args, {"group": ctx.args.group, "linked": True}, f"license linked to {ctx.args.group}")
    return EXIT_OK


def _user_by_email(ctx: _Context, email: str) -> User:
    with ctx.store.read() as tx:
        found = tx.user_by_email(ctx.account().id, email_key(email))
    if found is None:
        raise OfflineServiceError(Code.NOT_FOUND, f"no user {email}")
    return found


def cmd_user_disable(ctx: _Context) -> int:
    disabled = ctx.args.verb == "disable"
    user = _user_by_email(ctx, ctx.args.email)
    user = organization.set_disabled(ctx.store, Scope.vendor(ctx.account()), user.id, disabled, now=_now())
    state = "disabled (sessions and tokens ended)" if user.disabled else "enabled"
    _emit(
        ctx.args,
        {"id": user.id, "email": user.email, "disabled": user.disabled},
        f"user {user.email} {state}",
    )
    return EXIT_OK


def cmd_user_password_link(ctx: _Context) -> int:
    account = ctx.account()
    if ctx.args.base_url:
        base = ctx.args.base_url
    else:
        with ctx.store.read() as tx:
            found = tx.branding(account.id)
        domain = found.custom_domain if found else None
        if not (domain or ctx.settings.public_url):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                "give --base-url (the portal's address) or set OFFLINE_SERVICE_PUBLIC_URL",
            )
        base = password_links.base_url(public_url=ctx.settings.public_url, custom_domain=domain)
    user = _user_by_email(ctx, ctx.args.email)
    now = _now()
    lifetime = ctx.settings.password_link_lifetime
    user, token = organization.send_password_link(
        ctx.store, Scope.vendor(account), user.id, now=now, link_lifetime=lifetime
    )
    with ctx.store.read() as tx:
        org = tx.organization(account.id, user.organization_id) if user.organization_id else None
    mailer = FileMailer.in_data_dir(ctx.settings.data_dir)
    directory = mailer.directory
    mailer.send(
        password_links.message(
            sender=ctx.settings.mail_from,
            user=user,
            account=account,
            organization=org,
            url=password_links.link(base, token),
            expires_at=now + lifetime,
            now=now,
        )
    )
    # The link is a secret: it goes into the mail only, never to the terminal.
    _emit(
        ctx.args,
        {"id": user.id, "email": user.email, "mailDirectory": str(directory), "expiresAt": now + lifetime},
        f"set-password link for {user.email} mailed (written to {directory}); it works once, until {_iso(now + lifetime)}",
    )
    return EXIT_OK


def cmd_group_remove_user(ctx: _Context) -> int:
    account = ctx.account()
    group = people.find_group(ctx.store, account, ctx.args.group)
    user = _user_by_email(ctx, ctx.args.email)
    organization.remove_member(ctx.store, Scope.vendor(account), group.id, user.id, now=_now())
    _emit(
        ctx.args,
        {"group": ctx.args.group, "email": ctx.args.email},
        f"{ctx.args.email} removed from {ctx.args.group}",
    )
    return EXIT_OK


def cmd_group_unlink(ctx: _Context) -> int:
    account = ctx.account()
    group = people.find_group(ctx.store, account, ctx.args.group)
    with ctx.store.read() as tx:
        license = tx.license_by_key(account.id, ctx.args.key)
    if license is None:
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
    organization.unlink_license(ctx.store, Scope.vendor(account), group.id, license.id, now=_now())
    _emit(ctx.args, {"group": ctx.args.group, "linked": False}, f"license unlinked from {ctx.args.group}")
    return EXIT_OK


def cmd_serve(ctx: _Context) -> int:
    import uvicorn

    from offline_service.web.app import create_app

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
    # uvicorn's own logging, and a filter that keeps set-password tokens out of its access log;
    # the service's loggers (offline_service.*, such as the mail sender's) go to the same stream.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["filters"] = {"redact_tokens": {"()": "offline_service.web.security.RedactTokens"}}
    log_config["loggers"]["uvicorn.access"]["filters"] = ["redact_tokens"]
    log_config["loggers"]["offline_service"] = {
        "handlers": ["default"],
        "level": a.log_level.upper(),
        "propagate": False,
    }
    uvicorn.run(
        create_app(ctx.settings),
        log_config=log_config,
        host=a.host,
        port=a.port,
        workers=1,
        log_level=a.log_level,
        # Off unless asked: otherwise any client could claim another address (and so escape the
        # per-address login back-off) or https with a forged X-Forwarded-Proto.
        proxy_headers=a.proxy_headers,
        forwarded_allow_ips=a.forwarded_allow_ips,
        server_header=False,
    )
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

    verb(verbs, "init", cmd_init, "create the data directory, database and account")
    licensing_cli.register(verbs)

    org = verbs.add_parser("org", help="customer organizations").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(org, "create", cmd_org_create, "create an organization")
    p.add_argument("--name", required=True)
    p.add_argument("--allowed-users", type=int, metavar="N", help="cap on the organization's users")

    usr = verbs.add_parser("user", help="portal users").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(usr, "create", cmd_user_create, "create a portal user")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--organization", metavar="NAME")
    p.add_argument("--first-name")
    p.add_argument("--last-name")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of standard input"
    )
    for name, text in (
        ("disable", "disable a portal user: they cannot log in, and their sessions and tokens end"),
        ("enable", "enable a disabled portal user again (within the organization's allowed users)"),
    ):
        p = verb(usr, name, cmd_user_disable, text)
        p.add_argument("email", metavar="EMAIL")
        p.set_defaults(verb=name)
    p = verb(
        usr,
        "password-link",
        cmd_user_password_link,
        "mail a user a one-time link to set their password (written to DATA/mail/); earlier links end",
    )
    p.add_argument("email", metavar="EMAIL")
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="the portal's address for the link (default $OFFLINE_SERVICE_PUBLIC_URL)",
    )

    grp = verbs.add_parser("group", help="user groups").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(grp, "create", cmd_group_create, "create a user group in an organization")
    p.add_argument("--organization", required=True, metavar="NAME")
    p.add_argument("--name", required=True)
    p = verb(grp, "add-user", cmd_group_add_user, "add a user of the organization to a group")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("email", metavar="EMAIL")
    p = verb(grp, "link", cmd_group_link, "let a group's members use a license of their organization")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("key", metavar="LICENSE_KEY")
    p = verb(grp, "remove-user", cmd_group_remove_user, "remove a user from a group")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("email", metavar="EMAIL")
    p = verb(grp, "unlink", cmd_group_unlink, "unlink a license from a group")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("key", metavar="LICENSE_KEY")

    p = verb(verbs, "serve", cmd_serve, "serve the customer portal and the JSON API (uvicorn, one process)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
        help="uvicorn's log level; info (default) logs every request",
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
        "--demo",
        action="store_true",
        help="first create (once) the demo account, organization, product, license and portal user,"
        " and print how to log in; what `make run` runs",
    )

    verb(verbs, "demo", cmd_demo, "set up a demo product and license and walk through the offline flow")
    releases_cli.register(verbs)
    branding_cli.register(verbs)
    return parser


# Identifiers named on the command line (argument -> kind of id), checked by shape before anything
# is opened: a product id becomes a directory name in the keyring.
_ID_ARGUMENTS = {"product": ("product", "--product"), "activation_id": ("activation", "ACTIVATION_ID")}
_KID = re.compile(r"[A-Za-z0-9_-]{43}")  # an RFC 7638 thumbprint, base64url


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
