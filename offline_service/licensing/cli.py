"""The licensing verbs of ``offline-service``: products, licenses, signing keys, processing request
files (one by one or as a batch), releasing an activation's seat, and the audit log.

Thin: each verb parses, calls licensing.services or licensing.queries (scoped to ``--account``),
and prints with cli.context.emit. The signing-key verbs are here, not with the file format: a key
belongs to a product, and every verb first checks that the product is the account's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from offline_service import audit
from offline_service.cli.context import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    Context,
    count,
    duration,
    emit,
    iso,
    metadata_pairs,
    now,
    timestamp,
    verb,
)
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing import keys, queries
from offline_service.licensing import services as licensing
from offline_service.licensing.batch import run_batch
from offline_service.licensing.batch_names import check_response_names, response_name
from offline_service.licensing.models import UNLIMITED, LicenseStatus
from offline_service.licensing.representations import license_json
from offline_service.next_steps import next_step

__all__ = ["register"]


# -- products --------------------------------------------------------------------------------


def cmd_product_create(ctx: Context) -> int:
    a = ctx.args
    product = licensing.create_product(
        ctx.store,
        ctx.keyring,
        ctx.account(),
        name=a.name,
        now=now(),
        trial_days=a.trial_days,
        max_response_validity=a.max_response_validity,
        customer_release=a.customer_release == "on",
    )
    kid = ctx.keyring.signer(product.id).kid
    data = {
        "id": product.id,
        "name": product.name,
        "trialDays": product.trial_days,
        "customerRelease": product.customer_release,
        "kid": kid,
    }
    emit(
        a,
        data,
        f"product {product.id} ({product.name}); trials {product.trial_days} days;"
        f" customer release {_on(product.customer_release)}; key {kid}",
    )
    return EXIT_OK


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def cmd_product_update(ctx: Context) -> int:
    a = ctx.args
    if a.trial_days is None and a.max_response_validity is None and a.customer_release is None:
        print(
            "offline-service product update: error: give --trial-days, --max-response-validity"
            " or --customer-release",
            file=sys.stderr,
        )
        return EXIT_USAGE
    product = licensing.update_product(
        ctx.store,
        ctx.account(),
        a.product_id,
        now=now(),
        trial_days=a.trial_days,
        max_response_validity=a.max_response_validity,
        customer_release=None if a.customer_release is None else a.customer_release == "on",
    )
    # The settings given, as they now are.
    data: dict[str, Any] = {"id": product.id}
    said = []
    if a.trial_days is not None:
        data["trialDays"] = product.trial_days
        said.append(f"trials {product.trial_days} days" if product.trial_days else "no trials")
    if a.max_response_validity is not None:
        data["maxResponseValidity"] = product.max_response_validity
        said.append(f"maximum response validity {product.max_response_validity} s")
    if a.customer_release is not None:
        data["customerRelease"] = product.customer_release
        said.append(f"customer release {_on(product.customer_release)}")
    emit(a, data, f"product {product.id}: {'; '.join(said)}")
    return EXIT_OK


def cmd_product_list(ctx: Context) -> int:
    products = queries.products(ctx.store, ctx.account())
    data = [
        {
            "id": p.id,
            "name": p.name,
            "trialDays": p.trial_days,
            "maxResponseValidity": p.max_response_validity,
            "customerRelease": p.customer_release,
        }
        for p in products
    ]
    emit(
        ctx.args,
        data,
        "\n".join(
            f"{p.id}  {p.name}  trials={p.trial_days}d  customer-release={_on(p.customer_release)}"
            for p in products
        )
        or "no products",
    )
    return EXIT_OK


# -- licenses --------------------------------------------------------------------------------


def _limit(n: int) -> str:
    return "unlimited" if n == UNLIMITED else str(n)


def cmd_license_create(ctx: Context) -> int:
    a = ctx.args
    license = licensing.create_license(
        ctx.store,
        ctx.account(),
        product_id=a.product,
        allowed_activations=a.allowed_activations,
        allowed_deactivations=a.allowed_deactivations,
        now=now(),
        expires_at=a.expires_at,
        validity_days=a.validity_days,
        owner=a.owner,
        metadata=metadata_pairs(a.metadata),
        owner_user_email=a.user,
        owner_organization=a.organization,
        max_version=a.max_version,
        name=a.name,
    )
    emit(a, license_json(license), f"license {license.id}\nkey {license.key}")
    return EXIT_OK


def cmd_license_update(ctx: Context) -> int:
    a = ctx.args
    license = licensing.update_license(ctx.store, ctx.account(), a.key, name=a.name, owner=a.owner, now=now())
    emit(
        a,
        {"id": license.id, "name": license.name, "owner": license.owner},
        f"license {license.id}: name {license.name or '(none)'}, owner {license.owner or '(none)'}",
    )
    return EXIT_OK


def cmd_license_change(ctx: Context) -> int:
    a = ctx.args
    changes: dict[str, Any] = {
        "allowed_activations": a.allowed_activations,
        "allowed_deactivations": a.allowed_deactivations,
    }
    if a.expires_at is not None or a.no_expiry:
        changes["expires_at"] = a.expires_at
    license = licensing.change_license(ctx.store, ctx.account(), a.key, now=now(), **changes)
    expiry = (
        f"{license.validity_days} days after its first activation"
        if license.expires_at is None and license.validity_days
        else iso(license.expires_at)
    )
    emit(
        a,
        license_json(license),
        f"license {license.id}: activations {_limit(license.allowed_activations)},"
        f" deactivations {_limit(license.allowed_deactivations)}, expires {expiry}",
    )
    return EXIT_OK


_STATUS = {
    "suspend": LicenseStatus.SUSPENDED,
    "revoke": LicenseStatus.REVOKED,
    "reinstate": LicenseStatus.ACTIVE,
}


def cmd_license_status(ctx: Context) -> int:
    license = licensing.set_license_status(
        ctx.store, ctx.account(), ctx.args.key, _STATUS[ctx.args.verb], now=now()
    )
    emit(
        ctx.args,
        {"id": license.id, "status": license.status.value},
        f"license {license.id} is {license.status}",
    )
    return EXIT_OK


def cmd_license_show(ctx: Context) -> int:
    d = licensing.license_details(ctx.store, ctx.account(), ctx.args.key)
    live = [x for x in d["activations"] if x["deactivatedAt"] is None]
    lines = [
        f"license {d['id']} ({d['status']}) for product {d['productId']}",
        *([f"name {d['name']}"] if d["name"] else []),
        *([f"owner {d['owner']}"] if d["owner"] else []),
        f"activations {d['usedActivations']}/{_limit(d['allowedActivations'])},"
        f" deactivations {d['usedDeactivations']}/{_limit(d['allowedDeactivations'])}",
        f"expires {iso(d['expiresAt'])}"
        + (f" (validity {d['validityDays']} days)" if d["validityDays"] else ""),
        *(f"  {x['id']}  {x['hostname']}  {x['os']}  since {iso(x['createdAt'])}" for x in live),
    ]
    emit(ctx.args, d, "\n".join(lines))
    return EXIT_OK


def cmd_license_list(ctx: Context) -> int:
    licenses = queries.licenses(ctx.store, ctx.account(), ctx.args.product)
    text = "\n".join(
        f"{x.id}  {x.product_id}  {x.status}  {x.used_activations}/{_limit(x.allowed_activations)}"
        + (f"  {x.name}" if x.name else "")
        for x in licenses
    )
    emit(ctx.args, [license_json(x) for x in licenses], text or "no licenses")
    return EXIT_OK


def cmd_license_max_version(ctx: Context) -> int:
    value = None if ctx.args.version == "none" else ctx.args.version
    license = licensing.set_license_max_version(ctx.store, ctx.account(), ctx.args.key, value, now=now())
    shown = license.max_version or "none (every release)"
    emit(
        ctx.args,
        {"id": license.id, "maxVersion": license.max_version},
        f"license {license.id}: max version {shown}",
    )
    return EXIT_OK


def cmd_activation_release(ctx: Context) -> int:
    licensing.release_activation(ctx.store, ctx.account(), ctx.args.activation_id, now=now())
    emit(ctx.args, {"released": ctx.args.activation_id}, f"released activation {ctx.args.activation_id}")
    return EXIT_OK


# -- signing keys ----------------------------------------------------------------------------


def cmd_keys_jwks(ctx: Context) -> int:
    print(json.dumps(keys.jwks(ctx.store, ctx.keyring, ctx.account(), ctx.args.product or None), indent=2))
    return EXIT_OK


def cmd_keys_rotate(ctx: Context) -> int:
    made = keys.rotate(ctx.store, ctx.keyring, ctx.account(), ctx.args.product, now=now())
    emit(
        ctx.args,
        {"productId": ctx.args.product, "kid": made.kid},
        f"new active key {made.kid}; earlier keys retired",
    )
    return EXIT_OK


def cmd_keys_remove(ctx: Context) -> int:
    keys.remove(ctx.store, ctx.keyring, ctx.account(), ctx.args.product, ctx.args.kid, now=now())
    emit(ctx.args, {"removed": ctx.args.kid}, f"removed key {ctx.args.kid}")
    return EXIT_OK


# -- request files ---------------------------------------------------------------------------


def _read_request(path: Path) -> bytes:
    """At most one byte more than a request may hold, so a huge file is refused, not loaded."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None


def cmd_process(ctx: Context) -> int:
    a = ctx.args
    out = Path(a.out)
    files = [Path(f) for f in a.files]
    # Responses are named after the file only: a/x.req and b/x.req would overwrite each other.
    check_response_names((str(path), str(out / response_name(path.name))) for path in files)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = ctx.engine().process_many(
        [_read_request(f) for f in files],
        account_id=ctx.account().id,
        now=now(),
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
                "nextStep": None if outcome.ok else next_step(outcome.code),
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
                print(f"{r['file']}: {r['code']}: {r['message']}\n  next: {r['nextStep']}")
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_REJECTED


def cmd_batch(ctx: Context) -> int:
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
    emit(
        a,
        data,
        f"{summary.total} files: {summary.accepted} accepted, {summary.rejected} rejected"
        f" ({summary.skipped} from an earlier run) in {summary.seconds:.1f}s; report {a.report}",
    )
    return EXIT_OK if summary.rejected == 0 else EXIT_REJECTED


# -- the audit log ---------------------------------------------------------------------------


def cmd_audit(ctx: Context) -> int:
    entries = queries.audit_entries(ctx.store, ctx.account(), ctx.args.limit)
    data = [audit.entry_json(e) for e in entries]
    text = "\n".join(
        f"{iso(e.at)}  {e.actor:8} {e.action:18} {e.code:22} {e.activation_id or ''}" for e in entries
    )
    emit(ctx.args, data, text or "no entries")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def _products(verbs: Any) -> None:
    product = verbs.add_parser("product", help="create, change and list products").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(product, "create", cmd_product_create, "create a product and its first signing key")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--trial-days", type=int, default=0, metavar="D", help="trial length; 0 (default) = no trials"
    )
    p.add_argument(
        "--max-response-validity",
        type=duration,
        default=licensing.DEFAULT_MAX_RESPONSE_VALIDITY,
        metavar="DURATION",
        help="cap on how long a response may be applied for (default 30d)",
    )
    _add_customer_release(p, default="off")
    p = verb(product, "update", cmd_product_update, "change a product's settings (at least one)")
    p.add_argument("product_id", metavar="PRODUCT_ID")
    p.add_argument("--trial-days", type=int, metavar="D", help="trial length from now on; 0 = no trials")
    p.add_argument(
        "--max-response-validity",
        type=duration,
        metavar="DURATION",
        help="cap on how long a response issued from now on may be applied for",
    )
    _add_customer_release(p, default=None)
    verb(product, "list", cmd_product_list, "list products")


def _add_customer_release(p: argparse.ArgumentParser, *, default: str | None) -> None:
    p.add_argument(
        "--customer-release",
        choices=("on", "off"),
        default=default,
        help="whether organization admins may release, in the portal, the seat of a lost machine;"
        " each release counts as one of the license's deactivations"
        + (f" (default {default})" if default else ""),
    )


def _licenses(verbs: Any) -> None:
    lic = verbs.add_parser("license", help="create, show and change licenses").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(lic, "create", cmd_license_create, "create a license")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--allowed-activations", type=count, required=True, metavar="N", help="-1 for unlimited")
    p.add_argument("--allowed-deactivations", type=count, required=True, metavar="M", help="-1 for unlimited")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--expires-at", type=timestamp, metavar="ISO8601", help="fixed expiry (UTC if no zone)")
    when.add_argument(
        "--validity-days", type=int, metavar="D", help="expires D days after the first activation"
    )
    p.add_argument("--name", help="a name that tells it apart from the customer's other licenses")
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
    p = verb(lic, "update", cmd_license_update, "change a license's name or owner note")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--name", help="the new name ('' clears it)")
    p.add_argument("--owner", help="the new owner note ('' clears it)")
    p = verb(
        lic, "change", cmd_license_change, "change a license's limits or expiry (as the admin API's PATCH)"
    )
    p.add_argument("key", metavar="KEY")
    p.add_argument("--allowed-activations", type=count, metavar="N", help="-1 for unlimited")
    p.add_argument("--allowed-deactivations", type=count, metavar="M", help="-1 for unlimited")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--expires-at",
        type=timestamp,
        metavar="ISO8601",
        help="a fixed expiry in the future (UTC if no zone)",
    )
    when.add_argument("--no-expiry", action="store_true", help="the license never expires")
    p = verb(lic, "show", cmd_license_show, "show a license and its activations")
    p.add_argument("key", metavar="KEY")
    p = verb(lic, "list", cmd_license_list, "list licenses")
    p.add_argument("--product", metavar="ID")
    # The newest version a license entitles to download is an attribute of the license, so its verb
    # is here with the others that change a license, not with the releases.
    p = verb(
        lic,
        "set-max-version",
        cmd_license_max_version,
        "set the newest release version a license entitles to download ('none': every release)",
    )
    p.add_argument("key", metavar="KEY")
    p.add_argument("version", metavar="VERSION|none")

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


def _keys(verbs: Any) -> None:
    keys = verbs.add_parser("keys", help="signing keys").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(keys, "jwks", cmd_keys_jwks, "print the public keys as a JWKS")
    p.add_argument("--product", metavar="ID")
    p = verb(keys, "rotate", cmd_keys_rotate, "make a new active key; earlier keys stay as retired")
    p.add_argument("--product", required=True, metavar="ID")
    p = verb(keys, "remove", cmd_keys_remove, "delete a retired key")
    p.add_argument("--product", required=True, metavar="ID")
    # A thumbprint may start with "-", which argparse would take for an option: --kid=KID always works.
    p.add_argument(
        "--kid", required=True, metavar="KID", help="the key id, as --kid=KID (an id may start with '-')"
    )


def _add_validity(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--response-validity",
        type=duration,
        metavar="DURATION",
        help="how long the response may be applied for (default 3d, capped by the product)",
    )


def _requests(verbs: Any) -> None:
    p = verb(verbs, "process", cmd_process, "process request files; one response file per accepted request")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    _add_validity(p)

    p = verb(verbs, "batch", cmd_batch, "process a directory or zip of request files with every core")
    p.add_argument("input", metavar="INPUT", help="directory or .zip of request files")
    p.add_argument("--out", required=True, metavar="OUTPUT", help="directory or .zip for the responses")
    p.add_argument("--report", required=True, metavar="REPORT", help=".csv or .json, one row per input file")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    _add_validity(p)

    p = verb(verbs, "audit", cmd_audit, "show the newest audit log entries")
    p.add_argument("--limit", type=int, default=50)


def register(verbs: Any) -> None:
    """Add the licensing verbs to ``verbs``, the subparsers of ``offline-service``."""
    _products(verbs)
    _licenses(verbs)
    _keys(verbs)
    _requests(verbs)
