"""``offline-service webhook ...``: register, list and remove an account's endpoints, read their
delivery log, redeliver, and send the due deliveries (for a timer; the server sends them too)."""

from __future__ import annotations

from typing import Any

from offline_service.cli.context import EXIT_OK, Context, emit, iso, now, verb
from offline_service.errors import Code, OfflineServiceError
from offline_service.webhooks import sender, services
from offline_service.webhooks.models import EVENT_TYPES
from offline_service.webhooks.sealing import Sealer

__all__ = ["register"]


def _add(ctx: Context) -> int:
    a = ctx.args
    config = sender.SenderConfig.from_settings(ctx.settings)
    endpoint = services.add_endpoint(
        ctx.store,
        ctx.account(),
        url=a.url,
        events=a.event,
        policy=config.policy,
        sealer=config.sealer,
        now=now(),
    )
    emit(
        a,
        {**services.endpoint_json(endpoint), "secret": endpoint.secret},
        f"webhook endpoint {endpoint.id} added for {', '.join(endpoint.events)}\n"
        f"signing secret (shown once; verify each delivery with it): {endpoint.secret}",
    )
    return EXIT_OK


def _rotate(ctx: Context) -> int:
    a = ctx.args
    e = services.rotate_secret(
        ctx.store,
        ctx.account(),
        a.endpoint_id,
        sealer=Sealer.for_settings(ctx.settings),
        now=now(),
        grace=a.grace,
    )
    until = (
        f"the previous secret still signs beside it until {iso(e.previous_until)}"
        if e.previous_until is not None
        else "the previous secret signs no more"
    )
    emit(
        a,
        services.rotated_json(e),
        f"webhook endpoint {e.id}: new signing secret (shown once; verify each delivery with it):"
        f" {e.secret}\n{until}",
    )
    return EXIT_OK


def _list(ctx: Context) -> int:
    found = services.endpoints(ctx.store, ctx.account())
    lines = [
        f"{e.id}  {'enabled ' if e.enabled else 'disabled'}  {e.url}  {' '.join(e.events)}" for e in found
    ]
    emit(ctx.args, [services.endpoint_json(e) for e in found], "\n".join(lines) or "no webhook endpoints")
    return EXIT_OK


def _remove(ctx: Context) -> int:
    services.remove_endpoint(ctx.store, ctx.account(), ctx.args.endpoint_id, now=now())
    emit(ctx.args, {"removed": ctx.args.endpoint_id}, f"removed webhook endpoint {ctx.args.endpoint_id}")
    return EXIT_OK


def _enable(ctx: Context) -> int:
    on = ctx.args.sub == "enable"
    e = services.set_enabled(ctx.store, ctx.account(), ctx.args.endpoint_id, on, now=now())
    emit(ctx.args, services.endpoint_json(e), f"webhook endpoint {e.id} {'enabled' if on else 'disabled'}")
    return EXIT_OK


def _deliveries(ctx: Context) -> int:
    a = ctx.args
    found, next_cursor = services.delivery_page(
        ctx.store, ctx.account(), a.endpoint_id, limit=a.limit, cursor=a.cursor
    )
    rows = [services.delivery_json(d) for d in found]
    lines = [
        f"{r['id']}  {r['event']}  {r['state']}  attempts {r['attempts']}  last {iso(r['lastAttemptAt'])}"
        f"  status {r['lastStatus'] or '-'}  {r['lastLatencyMs'] if r['lastLatencyMs'] is not None else '-'} ms"
        + (f"  error: {r['lastError']}" if r["lastError"] else "")
        for r in rows
    ]
    if next_cursor is not None:
        lines.append(f"more: --cursor {next_cursor}")
    emit(a, {"deliveries": rows, "nextCursor": next_cursor}, "\n".join(lines) or "no deliveries")
    return EXIT_OK


def _redeliver(ctx: Context) -> int:
    d = services.redeliver(ctx.store, ctx.account(), ctx.args.delivery_id, now=now())
    emit(ctx.args, services.delivery_json(d), f"delivery {d.id} queued again")
    return EXIT_OK


def _send(ctx: Context) -> int:
    report = sender.send_due(ctx.store, sender.SenderConfig.from_settings(ctx.settings), now=now())
    emit(
        ctx.args,
        {"sent": report.sent, "failed": report.failed, "disabled": report.disabled},
        f"{report.sent} webhooks delivered, {report.failed} failed (tried again later),"
        f" {report.disabled} endpoints disabled",
    )
    if report.failed:
        raise OfflineServiceError(
            Code.STORAGE_ERROR,
            f"{report.failed} webhook deliveries failed; they are tried again with back-off",
        )
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``webhook`` and its actions to the command's subparsers."""
    hooks = subparsers.add_parser("webhook", help="webhook endpoints and deliveries").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(hooks, "add", _add, "register a URL for some events; prints its signing secret once")
    p.add_argument("--url", required=True, metavar="URL", help="https URL that receives the events")
    p.add_argument(
        "--event",
        action="append",
        required=True,
        choices=EVENT_TYPES,
        metavar="EVENT",
        help=f"an event to send (repeat for more): {', '.join(EVENT_TYPES)}",
    )
    verb(hooks, "list", _list, "list the account's webhook endpoints (never their secrets)")
    p = verb(hooks, "remove", _remove, "remove an endpoint and its delivery log")
    p.add_argument("endpoint_id", metavar="ID")
    for name, text in (
        ("enable", "enable an endpoint again (its waiting deliveries go out)"),
        ("disable", "stop sending to an endpoint"),
    ):
        p = verb(hooks, name, _enable, text)
        p.add_argument("endpoint_id", metavar="ID")
    p = verb(hooks, "rotate-secret", _rotate, "give an endpoint a new signing secret; prints it once")
    p.add_argument("endpoint_id", metavar="ID")
    p.add_argument(
        "--grace",
        type=int,
        default=services.ROTATION_GRACE,
        metavar="SECONDS",
        help="how long the previous secret still signs beside the new one, 0 (a leaked secret) to"
        f" {services.ROTATION_GRACE} (default)",
    )
    p = verb(hooks, "deliveries", _deliveries, "an endpoint's delivery log, newest first")
    p.add_argument("endpoint_id", metavar="ID")
    p.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help=f"at most N deliveries a page, 1 to {services.MAX_PAGE} (default 50)",
    )
    p.add_argument("--cursor", metavar="CURSOR", help="the page after the one that printed this cursor")
    p = verb(hooks, "redeliver", _redeliver, "send a delivery again, with a fresh schedule of attempts")
    p.add_argument("delivery_id", metavar="DELIVERY_ID")
    verb(hooks, "send", _send, "send the due webhook deliveries now (for a timer; the server sends them too)")
