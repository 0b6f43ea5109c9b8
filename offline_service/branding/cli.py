"""The ``offline-service account`` verbs: customize the account's portal and show how it looks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_service.branding import services as branding
from offline_service.branding.representations import branding_json
from offline_service.cli.context import EXIT_OK, Context, emit, now, verb
from offline_service.errors import Code, OfflineServiceError

__all__ = ["register"]


def _text(data: dict[str, Any]) -> str:
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


def _customize(ctx: Context) -> int:
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
    updated = branding.customize(ctx.store, account, data_dir=ctx.settings.data_dir, now=now(), **changes)
    data = branding_json(account.alias, updated)
    emit(a, data, _text(data))
    return EXIT_OK


def _show(ctx: Context) -> int:
    account = ctx.account()
    data = branding_json(account.alias, branding.branding_of(ctx.store, account.id))
    emit(ctx.args, data, _text(data))
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``account customize|show`` to the command's subparsers."""
    acc = subparsers.add_parser("account", help="customize the account's portal").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(
        acc,
        "customize",
        _customize,
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
    verb(acc, "show", _show, "show the account's portal customization")
