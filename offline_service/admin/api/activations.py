"""``/v1/admin/activations``: the account's activations a page at a time (of a product, of a
license, live or deactivated), one activation, a release; and a license's activations."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import admin_token, id_cursor, json_response, limit, next_cursor, path_id
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.representations import activation_json
from offline_service.web.auth import services

__all__ = ["STATES", "routes"]

STATES = {"live": True, "deactivated": False}  # the state filter: which activations it keeps


async def activation_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.ACTIVATIONS_READ)
    params = request.query_params
    product = params.get("product") or None
    if product is not None:
        check_id(product, "product", "product")
    license = params.get("license") or None
    if license is not None:
        check_id(license, "license", "license")
    state = params.get("state") or None
    if state is not None and state not in STATES:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "state must be live or deactivated")
    size = limit(params)
    after = id_cursor(params, "activation")
    page, last = await run_in_threadpool(
        lambda: queries.activation_page(
            services(request).store,
            account,
            product_id=product,
            license_id=license,
            live=None if state is None else STATES[state],
            after=after,
            limit=size,
        )
    )
    return json_response(
        {
            "activations": [activation_json(a) for a in page],
            "nextCursor": next_cursor(last),
        }
    )


async def activation_detail(request: Request) -> Response:
    _, account = await admin_token(request, Scope.ACTIVATIONS_READ)
    activation_id = path_id(request, "activation")
    found = await run_in_threadpool(
        queries.account_activation, services(request).store, account, activation_id
    )
    return json_response(activation_json(found))


async def license_activations(request: Request) -> Response:
    _, account = await admin_token(request, Scope.ACTIVATIONS_READ)
    license_id = path_id(request, "license")
    store = services(request).store

    def read() -> list[dict[str, Any]]:
        license = queries.license_by_id(store, account, license_id)
        found: list[dict[str, Any]] = licensing.license_details(store, account, license.key)["activations"]
        return found

    return json_response({"activations": await run_in_threadpool(read)})


async def activation_release(request: Request) -> Response:
    token, account = await admin_token(request, Scope.ACTIVATIONS_WRITE)
    activation_id = path_id(request, "activation")
    svc = services(request)

    def release() -> dict[str, Any]:
        licensing.release_activation(svc.store, account, activation_id, now=svc.now(), actor=token.actor)
        return activation_json(queries.account_activation(svc.store, account, activation_id))

    return json_response(await run_in_threadpool(release))


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/activations", activation_list),
    Route("/v1/admin/activations/{id}", activation_detail),
    Route("/v1/admin/licenses/{id}/activations", license_activations),
    Route("/v1/admin/activations/{id}/release", activation_release, methods=["POST"]),
)
