"""Argument parsing and the verbs of ``offline-service``. Decisions live in the engine and admin."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from offline_service._files import read_limited
from offline_service.accounts import organization, password_links, people
from offline_service.accounts.mail import FileMailer
from offline_service.accounts.models import Account, Role, User
from offline_service.accounts.organization import Scope
from offline_service.branding import services as branding
from offline_service.branding.representations import branding_json
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.keyring import Keyring
from offline_service.ids import check_alias, check_id, email_key
from offline_service.licensing import services as admin
from offline_service.licensing.batch import check_response_names, response_name, run_batch
from offline_service.licensing.engine import Engine
from offline_service.licensing.models import LicenseStatus
from offline_service.releases import services as releases
from offline_service.releases.representations import release_json
from offline_service.settings import Settings
from offline_service.store import Store, open_store

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3

_EPILOG = """\
exit status: 0 success; 1 error (the message names its code); 2 bad usage;
3 `process` or `batch` finished but rejected at least one request (see the output or report).
environment: OFFLINE_SERVICE_DATA, OFFLINE_SERVICE_KEYS, OFFLINE_SERVICE_KEY_PASSPHRASE_FILE,
OFFLINE_SERVICE_MAX_REQUEST_AGE, OFFLINE_SERVICE_MAX_FUTURE_SKEW (see docs/),
OFFLINE_SERVICE_RELEASES (where `release publish` puts files; default DATA/releases)."""


class _Context:
    """Settings, store, keyring and account, opened on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings.from_env(data_dir=args.data, keys_dir=args.keys)
        self._store: Store | None = None
        self._keyring: Keyring | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(self.settings.keys_dir, passphrase=self.settings.key_passphrase)
        return self._keyring

    def account(self) -> Account:
        return admin.account(self.store, self.args.account)

    def engine(self) -> Engine:
        return Engine(store=self.store, keyring=self.keyring, policy=self.settings.policy)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _now() -> int:
    return int(time.time())


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _iso(ts: int | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION = re.compile(r"\A(\d+)([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    """``3600``, ``90m``, ``12h`` or ``3d`` as seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 90m, 12h or 3d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _timestamp(text: str) -> int:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < -1:
        raise argparse.ArgumentTypeError("use -1 for unlimited, or a count of 0 or more")
    return value


def _metadata(pairs: Sequence[str] | None) -> dict[str, str]:
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"metadata {pair!r} must be KEY=VALUE")
        result[key] = value
    return result


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


def cmd_product_create(ctx: _Context) -> int:
    a = ctx.args
    product = admin.create_product(
        ctx.store,
        ctx.keyring,
        ctx.account(),
        name=a.name,
        now=_now(),
        trial_days=a.trial_days,
        max_response_validity=a.max_response_validity,
    )
    kid = ctx.keyring.signer(product.id).kid
    data = {"id": product.id, "name": product.name, "trialDays": product.trial_days, "kid": kid}
    _emit(a, data, f"product {product.id} ({product.name}); trials {product.trial_days} days; key {kid}")
    return EXIT_OK


def cmd_product_list(ctx: _Context) -> int:
    with ctx.store.read() as tx:
        products = tx.products(ctx.account().id)
    data = [
        {
            "id": p.id,
            "name": p.name,
            "trialDays": p.trial_days,
            "maxResponseValidity": p.max_response_validity,
        }
        for p in products
    ]
    _emit(
        ctx.args,
        data,
        "\n".join(f"{p.id}  {p.name}  trials={p.trial_days}d" for p in products) or "no products",
    )
    return EXIT_OK


def cmd_license_create(ctx: _Context) -> int:
    a = ctx.args
    license = admin.create_license(
        ctx.store,
        ctx.account(),
        product_id=a.product,
        allowed_activations=a.allowed_activations,
        allowed_deactivations=a.allowed_deactivations,
        now=_now(),
        expires_at=a.expires_at,
        validity_days=a.validity_days,
        owner=a.owner,
        metadata=_metadata(a.metadata),
        owner_user_email=a.user,
        owner_organization=a.organization,
        max_version=a.max_version,
    )
    data = {
        "id": license.id,
        "key": license.key,
        "productId": license.product_id,
        "expiresAt": license.expires_at,
        "maxVersion": license.max_version,
    }
    _emit(a, data, f"license {license.id}\nkey {license.key}")
    return EXIT_OK


def cmd_license_status(ctx: _Context) -> int:
    status = {
        "suspend": LicenseStatus.SUSPENDED,
        "revoke": LicenseStatus.REVOKED,
        "reinstate": LicenseStatus.ACTIVE,
    }
    license = admin.set_license_status(
        ctx.store, ctx.account(), ctx.args.key, status[ctx.args.verb], now=_now()
    )
    _emit(
        ctx.args,
        {"id": license.id, "status": license.status.value},
        f"license {license.id} is {license.status}",
    )
    return EXIT_OK


def cmd_license_show(ctx: _Context) -> int:
    d = admin.license_details(ctx.store, ctx.account(), ctx.args.key)
    live = [x for x in d["activations"] if x["deactivatedAt"] is None]
    lines = [
        f"license {d['id']} ({d['status']}) for product {d['productId']}",
        f"activations {d['usedActivations']}/{_limit(d['allowedActivations'])},"
        f" deactivations {d['usedDeactivations']}/{_limit(d['allowedDeactivations'])}",
        f"expires {_iso(d['expiresAt'])}"
        + (f" (validity {d['validityDays']} days)" if d["validityDays"] else ""),
        *(f"  {x['id']}  {x['hostname']}  {x['os']}  since {_iso(x['createdAt'])}" for x in live),
    ]
    _emit(ctx.args, d, "\n".join(lines))
    return EXIT_OK


def cmd_license_list(ctx: _Context) -> int:
    with ctx.store.read() as tx:
        licenses = tx.licenses(ctx.account().id, ctx.args.product)
    data = [
        {
            "id": x.id,
            "productId": x.product_id,
            "status": x.status.value,
            "usedActivations": x.used_activations,
            "allowedActivations": x.allowed_activations,
            "expiresAt": x.expires_at,
        }
        for x in licenses
    ]
    text = "\n".join(
        f"{x.id}  {x.product_id}  {x.status}  {x.used_activations}/{_limit(x.allowed_activations)}"
        for x in licenses
    )
    _emit(ctx.args, data, text or "no licenses")
    return EXIT_OK


def _limit(n: int) -> str:
    return "unlimited" if n == -1 else str(n)


def _product_of_account(ctx: _Context, product_id: str) -> None:
    with ctx.store.read() as tx:
        if tx.product(ctx.account().id, product_id) is None:
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")


def cmd_keys_jwks(ctx: _Context) -> int:
    if ctx.args.product:
        _product_of_account(ctx, ctx.args.product)
        jwks = ctx.keyring.jwks(ctx.args.product)
    else:
        with ctx.store.read() as tx:
            ids = [p.id for p in tx.products(ctx.account().id)]
        jwks = {"keys": [k for pid in ids for k in ctx.keyring.jwks(pid)["keys"]]}
    print(json.dumps(jwks, indent=2))
    return EXIT_OK


def cmd_keys_rotate(ctx: _Context) -> int:
    _product_of_account(ctx, ctx.args.product)
    kid = ctx.keyring.rotate(ctx.args.product, now=_now())
    _emit(
        ctx.args, {"productId": ctx.args.product, "kid": kid}, f"new active key {kid}; earlier keys retired"
    )
    return EXIT_OK


def cmd_keys_remove(ctx: _Context) -> int:
    _product_of_account(ctx, ctx.args.product)
    ctx.keyring.remove(ctx.args.product, ctx.args.kid)
    _emit(ctx.args, {"removed": ctx.args.kid}, f"removed key {ctx.args.kid}")
    return EXIT_OK


def _read_request(path: Path) -> bytes:
    """At most one byte more than a request may hold, so a huge file is refused, not loaded."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None


def cmd_process(ctx: _Context) -> int:
    a = ctx.args
    out = Path(a.out)
    files = [Path(f) for f in a.files]
    # Responses are named after the file only: a/x.req and b/x.req would overwrite each other.
    check_response_names((str(path), str(out / response_name(path.name))) for path in files)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = ctx.engine().process_many(
        [_read_request(f) for f in files],
        account_id=ctx.account().id,
        now=_now(),
        response_validity=a.response_validity,
        actor="cli",
    )
    results = []
    for path, outcome in zip(files, outcomes, strict=True):
        written = None
        if outcome.response is not None:
            written = out / response_name(path.name)
            tmp = written.with_name(f".{written.name}.tmp")
            tmp.write_text(outcome.response + "\n", encoding="ascii")
            os.replace(tmp, written)
        results.append(
            {
                "file": str(path),
                "ok": outcome.ok,
                "code": outcome.code,
                "kind": outcome.kind.value if outcome.kind else None,
                "activationId": outcome.activation_id,
                "reissued": outcome.reissued,
                "response": str(written) if written else None,
                "message": outcome.message,
            }
        )
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if r["ok"]:
                again = " (reissued)" if r["reissued"] else ""
                print(f"{r['file']}: OK {r['kind']} {r['activationId']}{again} -> {r['response']}")
            else:
                print(f"{r['file']}: {r['code']}: {r['message']}")
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_REJECTED


def cmd_batch(ctx: _Context) -> int:
    a = ctx.args
    show = sys.stderr.isatty() and not a.json
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        rate = done / max(time.monotonic() - started, 1e-9)
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:,.0f}/s",
            end="",
            file=sys.stderr,
        )

    account_id = ctx.account().id
    # The workers open their own connections; an idle one here would make this process the last to
    # close the database and so pay for the final checkpoint of the whole write-ahead log.
    ctx.close()
    summary = run_batch(
        ctx.settings,
        account_id=account_id,
        input_path=Path(a.input),
        output=Path(a.out),
        report=Path(a.report),
        workers=a.workers,
        response_validity=a.response_validity,
        progress=progress if show else None,
    )
    if show:
        print(file=sys.stderr)
    data = {
        "total": summary.total,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "resumed": summary.skipped,
        "seconds": round(summary.seconds, 3),
        "report": a.report,
        "output": a.out,
    }
    _emit(
        a,
        data,
        f"{summary.total} files: {summary.accepted} accepted, {summary.rejected} rejected"
        f" ({summary.skipped} from an earlier run) in {summary.seconds:.1f}s; report {a.report}",
    )
    return EXIT_OK if summary.rejected == 0 else EXIT_REJECTED


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


def cmd_activation_release(ctx: _Context) -> int:
    admin.release_activation(ctx.store, ctx.account(), ctx.args.activation_id, now=_now())
    _emit(ctx.args, {"released": ctx.args.activation_id}, f"released activation {ctx.args.activation_id}")
    return EXIT_OK


def cmd_audit(ctx: _Context) -> int:
    with ctx.store.read() as tx:
        entries = tx.audit_entries(ctx.account().id, ctx.args.limit)
    data = [
        {
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "code": e.code,
            "productId": e.product_id,
            "licenseId": e.license_id,
            "activationId": e.activation_id,
            "detail": dict(e.detail),
        }
        for e in entries
    ]
    text = "\n".join(
        f"{_iso(e.at)}  {e.actor:8} {e.action:18} {e.code:22} {e.activation_id or ''}" for e in entries
    )
    _emit(ctx.args, data, text or "no entries")
    return EXIT_OK


# -- releases, licenses' maximum versions, and account customization -------------------------------


def _release_lines(published: releases.PublishedRelease) -> list[str]:
    r = published.release
    lines = [f"{r.id}  {r.product_id}  {r.version}  {r.channel}  published {_iso(r.published_at)}"]
    lines += [f"  {f.sha256}  {releases.size_text(f.size):>12}  {f.name}" for f in published.files]
    return lines


def cmd_release_publish(ctx: _Context) -> int:
    a = ctx.args
    notes = a.notes or ""
    if a.notes_file is not None:
        notes = read_limited(a.notes_file, 4 * releases.MAX_NOTES, what="notes file").decode(
            "utf-8", "replace"
        )
    published = releases.publish(
        ctx.store,
        ctx.account(),
        root=ctx.settings.release_root,
        product_id=a.product,
        version=a.version,
        channel=a.channel,
        notes=notes,
        files=a.files,
        now=_now(),
    )
    _emit(a, release_json(published.release, published.files), "\n".join(_release_lines(published)))
    return EXIT_OK


def cmd_release_list(ctx: _Context) -> int:
    found = releases.list_releases(ctx.store, ctx.account(), ctx.args.product)
    data = [release_json(p.release, p.files) for p in found]
    _emit(ctx.args, data, "\n".join(line for p in found for line in _release_lines(p)) or "no releases")
    return EXIT_OK


def cmd_release_remove(ctx: _Context) -> int:
    a = ctx.args
    removed = releases.remove(
        ctx.store,
        ctx.account(),
        root=ctx.settings.release_root,
        product_id=a.product,
        version=a.version,
        channel=a.channel,
        now=_now(),
    )
    _emit(a, {"removed": removed.id}, f"removed release {removed.id} ({removed.version}, {removed.channel})")
    return EXIT_OK


def cmd_license_max_version(ctx: _Context) -> int:
    value = None if ctx.args.version == "none" else ctx.args.version
    license = admin.set_license_max_version(ctx.store, ctx.account(), ctx.args.key, value, now=_now())
    shown = license.max_version or "none (every release)"
    _emit(
        ctx.args,
        {"id": license.id, "maxVersion": license.max_version},
        f"license {license.id}: max version {shown}",
    )
    return EXIT_OK


def _branding_text(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{label:14} {data[key] or '(none)'}"
        for key, label in (
            ("account", "account"),
            ("portalName", "portal name"),
            ("accentColor", "accent colour"),
            ("logo", "logo"),
            ("customDomain", "custom domain"),
        )
    )


def cmd_account_customize(ctx: _Context) -> int:
    a = ctx.args

    def change(value: Any, remove: bool) -> Any:
        return None if remove else branding.KEEP if value is None else value

    changes = {
        "portal_name": change(a.portal_name, a.no_portal_name),
        "accent_color": change(a.accent_color, a.no_accent_color),
        "logo": change(Path(a.logo) if a.logo else None, a.no_logo),
        "custom_domain": change(a.custom_domain, a.no_custom_domain),
    }
    if all(v is branding.KEEP for v in changes.values()):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "nothing to change; see --help")
    account = ctx.account()
    updated = branding.customize(ctx.store, account, data_dir=ctx.settings.data_dir, now=_now(), **changes)
    data = branding_json(account.alias, updated)
    _emit(a, data, _branding_text(data))
    return EXIT_OK


def cmd_account_show(ctx: _Context) -> int:
    account = ctx.account()
    with ctx.store.read() as tx:
        found = tx.branding(account.id)
    data = branding_json(account.alias, found)
    _emit(ctx.args, data, _branding_text(data))
    return EXIT_OK


def _releases_parser(verbs: Any, lic: Any, verb: Any) -> None:
    """The verbs of releases, licenses' maximum versions and account customization."""
    p = verb(
        lic,
        "set-max-version",
        cmd_license_max_version,
        "set the newest release version a license entitles to download ('none': every release)",
    )
    p.add_argument("key", metavar="KEY")
    p.add_argument("version", metavar="VERSION|none")

    rel = verbs.add_parser("release", help="publish releases for the portal's Downloads page").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(
        rel,
        "publish",
        cmd_release_publish,
        "copy files into the releases directory and publish them as a version of a product",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--version", required=True, metavar="V", help="e.g. 2.10.0 or 2.10.0-beta.1")
    p.add_argument(
        "--channel",
        default=releases.DEFAULT_CHANNEL,
        help="stable (default), beta, or another lower-case word",
    )
    notes = p.add_mutually_exclusive_group()
    notes.add_argument("--notes", metavar="TEXT", help="release notes (plain text)")
    notes.add_argument("--notes-file", metavar="FILE", help="release notes from a UTF-8 text file")
    p = verb(rel, "list", cmd_release_list, "list releases and their files with size and SHA-256")
    p.add_argument("--product", metavar="ID")
    p = verb(rel, "remove", cmd_release_remove, "unpublish a release and delete its files")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--version", required=True, metavar="V")
    p.add_argument("--channel", help="needed when the version is on several channels")

    acc = verbs.add_parser("account", help="customize the account's portal").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(
        acc,
        "customize",
        cmd_account_customize,
        "set the portal's name, accent colour, logo and custom domain (options not given stay as they are)",
    )
    for option, metavar, text in (
        ("portal-name", "TEXT", "the name shown on every page (default: License portal)"),
        ("accent-color", "#RRGGBB", "links, buttons and the header's bar"),
        ("logo", "FILE", "PNG, JPEG or WebP, at most 512 KiB and 2048 x 2048 pixels"),
        ("custom-domain", "HOST", "a host name CNAMEd to this service that opens this account's portal"),
    ):
        group = p.add_mutually_exclusive_group()
        group.add_argument(f"--{option}", metavar=metavar, help=text)
        group.add_argument(
            f"--no-{option}", action="store_true", help=f"remove the {option.replace('-', ' ')}"
        )
    verb(acc, "show", cmd_account_show, "show the account's portal customization")


def cmd_serve(ctx: _Context) -> int:
    import uvicorn

    from offline_service.web import create_app

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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data", metavar="DIR", help="data directory (default ./data or $OFFLINE_SERVICE_DATA)"
    )
    common.add_argument(
        "--keys", metavar="DIR", help="keyring directory (default ./keys or $OFFLINE_SERVICE_KEYS)"
    )
    common.add_argument(
        "--account", metavar="ALIAS", default=admin.DEFAULT_ACCOUNT, help="account alias (default: default)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="offline-service",
        description="Process offline activation, deactivation and trial requests; manage products, "
        "licenses and signing keys.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(parent: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        p.set_defaults(handler=handler)
        return p

    verb(verbs, "init", cmd_init, "create the data directory, database and account")

    product = verbs.add_parser("product", help="create and list products").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(product, "create", cmd_product_create, "create a product and its first signing key")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--trial-days", type=int, default=0, metavar="D", help="trial length; 0 (default) = no trials"
    )
    p.add_argument(
        "--max-response-validity",
        type=_duration,
        default=admin.DEFAULT_MAX_RESPONSE_VALIDITY,
        metavar="DURATION",
        help="cap on how long a response may be applied for (default 30d)",
    )
    verb(product, "list", cmd_product_list, "list products")

    lic = verbs.add_parser("license", help="create, show and change licenses").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(lic, "create", cmd_license_create, "create a license")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--allowed-activations", type=_count, required=True, metavar="N", help="-1 for unlimited")
    p.add_argument(
        "--allowed-deactivations", type=_count, required=True, metavar="M", help="-1 for unlimited"
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--expires-at", type=_timestamp, metavar="ISO8601", help="fixed expiry (UTC if no zone)"
    )
    when.add_argument(
        "--validity-days", type=int, metavar="D", help="expires D days after the first activation"
    )
    p.add_argument("--owner", help="a free-text note of who holds the license")
    whose = p.add_mutually_exclusive_group()
    whose.add_argument("--user", metavar="EMAIL", help="the portal user the license is assigned to")
    whose.add_argument("--organization", metavar="NAME", help="the organization that owns the license")
    p.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="repeatable; sent in every response"
    )
    p.add_argument("--max-version", metavar="V", help="the newest release version it entitles to download")
    for name, text in (("suspend", "suspend"), ("revoke", "revoke"), ("reinstate", "make active again")):
        p = verb(lic, name, cmd_license_status, f"{text} a license")
        p.add_argument("key", metavar="KEY")
        p.set_defaults(verb=name)
    p = verb(lic, "show", cmd_license_show, "show a license and its activations")
    p.add_argument("key", metavar="KEY")
    p = verb(lic, "list", cmd_license_list, "list licenses")
    p.add_argument("--product", metavar="ID")

    act = verbs.add_parser("activation", help="vendor actions on activations").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(
        act,
        "release",
        cmd_activation_release,
        "free the seat of an installation that can no longer deactivate itself (not counted as a deactivation)",
    )
    p.add_argument("activation_id", metavar="ACTIVATION_ID")

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

    keys = verbs.add_parser("keys", help="signing keys").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(keys, "jwks", cmd_keys_jwks, "print the public keys as a JWKS")
    p.add_argument("--product", metavar="ID")
    p = verb(keys, "rotate", cmd_keys_rotate, "make a new active key; earlier keys stay as retired")
    p.add_argument("--product", required=True, metavar="ID")
    p = verb(keys, "remove", cmd_keys_remove, "delete a retired key")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--kid", required=True)

    def add_validity(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--response-validity",
            type=_duration,
            metavar="DURATION",
            help="how long the response may be applied for (default 3d, capped by the product)",
        )

    p = verb(verbs, "process", cmd_process, "process request files; one response file per accepted request")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    add_validity(p)

    p = verb(verbs, "batch", cmd_batch, "process a directory or zip of request files with every core")
    p.add_argument("input", metavar="INPUT", help="directory or .zip of request files")
    p.add_argument("--out", required=True, metavar="OUTPUT", help="directory or .zip for the responses")
    p.add_argument("--report", required=True, metavar="REPORT", help=".csv or .json, one row per input file")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    add_validity(p)

    p = verb(verbs, "audit", cmd_audit, "show the newest audit log entries")
    p.add_argument("--limit", type=int, default=50)

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
    _releases_parser(verbs, lic, verb)
    return parser


def _fail(args: argparse.Namespace, exc: OfflineServiceError) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "code": exc.code.value, "message": exc.message}))
    print(f"error: {exc.code.value}: {exc.message}", file=sys.stderr)
    return EXIT_ERROR


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
        return _fail(args, exc)
    except OSError as exc:
        # A path that cannot be used (a file where a directory must go, no permission, disk full):
        # an error message like any other, not a traceback.
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(
            args, OfflineServiceError(Code.STORAGE_ERROR, f"cannot use{where}: {exc.strerror or exc}")
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if ctx is not None:
            ctx.close()
