"""``/v1/admin/webhooks`` and ``/v1/admin/webhook-deliveries``: the account's webhook endpoints
(the same services as the CLI's ``webhook`` verbs) and their delivery logs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import (
    admin_token,
    create_once,
    json_body,
    json_response,
    limit,
    members,
    path_id,
)
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.store import Transaction
from offline_service.web.api import json_int
from offline_service.web.auth import services
from offline_service.webhooks import services as webhooks
from offline_service.webhooks.sender import SenderConfig

__all__ = ["ROTATE_MEMBERS", "WEBHOOK_MEMBERS", "routes"]

WEBHOOK_MEMBERS = frozenset({"url", "events"})
ROTATE_MEMBERS = frozenset({"graceSeconds"})


async def webhook_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.WEBHOOKS_READ)
    found = await run_in_threadpool(webhooks.endpoints, services(request).store, account)
    return json_response({"endpoints": [webhooks.endpoint_json(e) for e in found]})


async def webhook_create(request: Request) -> Response:
    """Register an endpoint; the 201 answer is the only one that carries its signing secret (and a
    retry with the same Idempotency-Key, which answers the first answer: the caller who lost it
    needs the secret: the kept answer is sealed). The URL is checked, its host resolved, before the
    transaction."""
    token, account = await admin_token(request, Scope.WEBHOOKS_WRITE)
    body = await json_body(request)
    members(body, WEBHOOK_MEMBERS)
    url, events = body.get("url"), body.get("events")
    if not isinstance(url, str):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "url must be text: the https URL to send to")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "events must be a list of event types")
    svc = services(request)
    now = svc.now()
    policy = SenderConfig.from_settings(svc.settings).policy
    endpoint = await run_in_threadpool(
        lambda: webhooks.new_endpoint(account, url=url, events=events, policy=policy, now=now)
    )
    await run_in_threadpool(svc.sealer.prepare)

    def create(tx: Transaction) -> dict[str, Any]:
        webhooks.add_endpoint_in(tx, endpoint, sealer=svc.sealer, now=now, actor=token.actor)
        return {**webhooks.endpoint_json(endpoint), "secret": endpoint.secret}

    return await create_once(request, token, body, create, now=now, secret=True)


async def webhook_rotate_secret(request: Request) -> Response:
    """Give the endpoint a new signing secret, in this answer only (and a retry's with the same
    Idempotency-Key, kept sealed); the replaced one signs beside it for ``graceSeconds``."""
    token, account = await admin_token(request, Scope.WEBHOOKS_WRITE)
    endpoint_id = path_id(request, "webhook_endpoint")
    body = await json_body(request) if await request.body() else {}
    members(body, ROTATE_MEMBERS)
    grace = json_int(body.get("graceSeconds", webhooks.ROTATION_GRACE))
    if grace is None or not 0 <= grace <= webhooks.ROTATION_GRACE:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"graceSeconds must be a whole number from 0 to {webhooks.ROTATION_GRACE}"
        )
    svc = services(request)
    now = svc.now()
    await run_in_threadpool(svc.sealer.prepare)

    def rotate(tx: Transaction) -> dict[str, Any]:
        rotated = webhooks.rotate_secret_in(
            tx, account, endpoint_id, sealer=svc.sealer, now=now, actor=token.actor, grace=grace
        )
        return webhooks.rotated_json(rotated)

    return await create_once(request, token, body, rotate, now=now, status=200, secret=True)


async def webhook_detail(request: Request) -> Response:
    _, account = await admin_token(request, Scope.WEBHOOKS_READ)
    endpoint_id = path_id(request, "webhook_endpoint")
    found = await run_in_threadpool(webhooks.endpoint, services(request).store, account, endpoint_id)
    return json_response(webhooks.endpoint_json(found))


async def webhook_remove(request: Request) -> Response:
    token, account = await admin_token(request, Scope.WEBHOOKS_WRITE)
    endpoint_id = path_id(request, "webhook_endpoint")
    svc = services(request)
    await run_in_threadpool(
        lambda: webhooks.remove_endpoint(svc.store, account, endpoint_id, now=svc.now(), actor=token.actor)
    )
    return json_response({"removed": endpoint_id})


async def _webhook_enabled(request: Request, enabled: bool) -> Response:
    token, account = await admin_token(request, Scope.WEBHOOKS_WRITE)
    endpoint_id = path_id(request, "webhook_endpoint")
    svc = services(request)
    changed = await run_in_threadpool(
        lambda: webhooks.set_enabled(
            svc.store, account, endpoint_id, enabled, now=svc.now(), actor=token.actor
        )
    )
    return json_response(webhooks.endpoint_json(changed))


async def webhook_enable(request: Request) -> Response:
    return await _webhook_enabled(request, True)


async def webhook_disable(request: Request) -> Response:
    return await _webhook_enabled(request, False)


async def webhook_deliveries(request: Request) -> Response:
    _, account = await admin_token(request, Scope.WEBHOOKS_READ)
    endpoint_id = path_id(request, "webhook_endpoint")
    size = limit(request.query_params)
    cursor = request.query_params.get("cursor")
    found, next_cursor = await run_in_threadpool(
        lambda: webhooks.delivery_page(
            services(request).store, account, endpoint_id, limit=size, cursor=cursor
        )
    )
    return json_response(
        {"deliveries": [webhooks.delivery_json(d) for d in found], "nextCursor": next_cursor}
    )


async def webhook_redeliver(request: Request) -> Response:
    token, account = await admin_token(request, Scope.WEBHOOKS_WRITE)
    delivery_id = path_id(request, "webhook_delivery")
    svc = services(request)
    queued = await run_in_threadpool(
        lambda: webhooks.redeliver(svc.store, account, delivery_id, now=svc.now(), actor=token.actor)
    )
    return json_response(webhooks.delivery_json(queued))


async def webhooks_root(request: Request) -> Response:
    return await (webhook_create if request.method == "POST" else webhook_list)(request)


async def webhook(request: Request) -> Response:
    return await (webhook_remove if request.method == "DELETE" else webhook_detail)(request)


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/webhooks", webhooks_root, methods=["GET", "POST"]),
    Route("/v1/admin/webhooks/{id}", webhook, methods=["GET", "DELETE"]),
    Route("/v1/admin/webhooks/{id}/enable", webhook_enable, methods=["POST"]),
    Route("/v1/admin/webhooks/{id}/disable", webhook_disable, methods=["POST"]),
    Route("/v1/admin/webhooks/{id}/rotate-secret", webhook_rotate_secret, methods=["POST"]),
    Route("/v1/admin/webhooks/{id}/deliveries", webhook_deliveries),
    Route("/v1/admin/webhook-deliveries/{id}/redeliver", webhook_redeliver, methods=["POST"]),
)
