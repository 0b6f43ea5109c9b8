"""``offline-service token``: the account's admin API tokens. ``create`` prints the secret once;
``list`` never shows one; ``revoke`` stops a token at once."""

from __future__ import annotations

import argparse
from typing import Any

from offline_service.admin import tokens
from offline_service.admin.models import AdminToken, Scope
from offline_service.cli.context import EXIT_OK, Context, emit, iso, now, verb
from offline_service.ids import check_id

__all__ = ["register"]


def _token_json(t: AdminToken, at: int) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "scopes": sorted(s.value for s in t.scopes),
        "createdAt": t.created_at,
        "expiresAt": t.expires_at,
        "revokedAt": t.revoked_at,
        "lastUsedAt": t.last_used_at,
        "live": t.live(at),
    }


def _create(ctx: Context) -> int:
    a = ctx.args
    at = now()
    token, secret = tokens.create_token(
        ctx.store, ctx.account(), scopes=a.scope, name=a.name, days=a.expires_in_days, now=at
    )
    emit(
        a,
        {**_token_json(token, at), "token": secret},
        f"{secret}\n\nadmin token {token.id} ({', '.join(sorted(s.value for s in token.scopes))}),"
        f" expires {iso(token.expires_at)}.\nThis is the only time the token is shown: store it now.",
    )
    return EXIT_OK


def _list(ctx: Context) -> int:
    at = now()
    found = tokens.list_tokens(ctx.store, ctx.account())
    lines = [
        f"{t.id}  {t.name or '-'}  {' '.join(sorted(s.value for s in t.scopes))}  "
        + ("revoked" if t.revoked_at is not None else "expired" if not t.live(at) else "live")
        + f"  expires {iso(t.expires_at)}  last used {iso(t.last_used_at)}"
        for t in found
    ]
    emit(ctx.args, [_token_json(t, at) for t in found], "\n".join(lines) or "no admin tokens")
    return EXIT_OK


def _revoke(ctx: Context) -> int:
    token_id = check_id(ctx.args.token_id, "admin_token", "TOKEN_ID")
    tokens.revoke_token(ctx.store, ctx.account(), token_id, now=now())
    emit(ctx.args, {"revoked": token_id}, f"admin token {token_id} revoked")
    return EXIT_OK


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 0 < days <= tokens.MAX_DAYS:
        raise argparse.ArgumentTypeError(f"a token lasts 1 to {tokens.MAX_DAYS} days")
    return days


def register(subparsers: Any) -> None:
    """Add ``token create|list|revoke`` to the command's subparsers."""
    group = subparsers.add_parser("token", help="admin API tokens of the account").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(group, "create", _create, "make an admin API token (printed once, stored hashed)")
    p.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[s.value for s in Scope],
        metavar="SCOPE",
        help=f"repeatable; one of {', '.join(s.value for s in Scope)}",
    )
    p.add_argument("--name", default="", help="what the token is for (a script, a shop)")
    p.add_argument(
        "--expires-in-days",
        type=_days,
        default=tokens.DEFAULT_DAYS,
        metavar="D",
        help=f"days until it stops working (default {tokens.DEFAULT_DAYS}, at most {tokens.MAX_DAYS})",
    )
    verb(group, "list", _list, "list the account's admin tokens (never their secrets)")
    p = verb(group, "revoke", _revoke, "revoke an admin token at once")
    p.add_argument("token_id", metavar="TOKEN_ID")
