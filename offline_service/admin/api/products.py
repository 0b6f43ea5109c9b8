"""``/v1/admin/products``: list, create (idempotent, with the product's first signing key), show,
change the trial and the other settings; the same services as the CLI's ``product`` verbs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import (
    admin_token,
    create_once,
    flag,
    json_body,
    json_response,
    members,
    path_id,
)
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.representations import product_json
from offline_service.store import Transaction
from offline_service.web.api import json_int
from offline_service.web.auth import services

__all__ = ["CREATE_MEMBERS", "PATCH_MEMBERS", "routes"]

PATCH_MEMBERS = frozenset({"trialDays", "maxResponseValidity", "customerRelease"})
CREATE_MEMBERS = PATCH_MEMBERS | {"name"}


def _whole(body: dict[str, Any], name: str) -> int | None:
    """A whole number member, None when absent; its bounds are the service's to check."""
    if name not in body:
        return None
    value = json_int(body[name])
    if value is None or not -(2**53) <= value <= 2**53:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number")
    return value


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    """The settings given, as the services' keyword arguments."""
    found = {
        "trial_days": _whole(body, "trialDays"),
        "max_response_validity": _whole(body, "maxResponseValidity"),
        "customer_release": flag(body, "customerRelease"),
    }
    return {k: v for k, v in found.items() if v is not None}


async def product_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.PRODUCTS_READ)
    found = await run_in_threadpool(queries.products, services(request).store, account)
    return json_response({"products": [product_json(p) for p in found]})


async def product_create(request: Request) -> Response:
    token, account = await admin_token(request, Scope.PRODUCTS_WRITE)
    body = await json_body(request)
    members(body, CREATE_MEMBERS)
    name = body.get("name")
    if not isinstance(name, str):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "name must be text")
    svc = services(request)
    now = svc.now()
    # Checked before the transaction; its id is new for each request, used only if it is stored.
    product = licensing.new_product(account, name=name, now=now, **_settings(body))

    def create(tx: Transaction) -> dict[str, Any]:
        # Within the write transaction, after the Idempotency-Key found no kept answer: a retry
        # answered from that answer writes no key.
        kid = licensing.store_product(tx, svc.keyring, product, now=now, actor=token.actor)
        return {**product_json(product), "kid": kid}

    try:
        return await create_once(request, token, body, create, now=now)
    except BaseException:
        # Whatever failed (a refused key, the transaction, its commit): a key written for a
        # product the store does not have is removed, as the CLI's create does.
        await run_in_threadpool(licensing.discard_unstored_key, svc.store, svc.keyring, product)
        raise


async def product_detail(request: Request) -> Response:
    _, account = await admin_token(request, Scope.PRODUCTS_READ)
    product_id = path_id(request, "product")
    found = await run_in_threadpool(queries.product, services(request).store, account, product_id)
    return json_response(product_json(found))


async def product_change(request: Request) -> Response:
    token, account = await admin_token(request, Scope.PRODUCTS_WRITE)
    product_id = path_id(request, "product")
    body = await json_body(request)
    members(body, PATCH_MEMBERS)
    changes = _settings(body)
    svc = services(request)

    def change() -> dict[str, Any]:
        changed = licensing.update_product(
            svc.store, account, product_id, now=svc.now(), actor=token.actor, **changes
        )
        return product_json(changed)

    return json_response(await run_in_threadpool(change))


async def products(request: Request) -> Response:
    return await (product_create if request.method == "POST" else product_list)(request)


async def product(request: Request) -> Response:
    return await (product_change if request.method == "PATCH" else product_detail)(request)


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/products", products, methods=["GET", "POST"]),
    Route("/v1/admin/products/{id}", product, methods=["GET", "PATCH"]),
)
