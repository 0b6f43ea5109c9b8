"""``/v1/admin/activations/...`` and a license's activations."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import admin_token, json_response
from offline_service.admin.models import Scope
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.representations import activation_json
from offline_service.web.auth import services

__all__ = ["routes"]


async def license_activations(request: Request) -> Response:
    _, account = await admin_token(request, Scope.ACTIVATIONS_READ)
    license_id = check_id(request.path_params["id"], "license")
    store = services(request).store

    def read() -> list[dict[str, Any]]:
        license = queries.license_by_id(store, account, license_id)
        found: list[dict[str, Any]] = licensing.license_details(store, account, license.key)["activations"]
        return found

    return json_response({"activations": await run_in_threadpool(read)})


async def activation_release(request: Request) -> Response:
    token, account = await admin_token(request, Scope.ACTIVATIONS_WRITE)
    activation_id = check_id(request.path_params["id"], "activation")
    svc = services(request)

    def release() -> dict[str, Any]:
        licensing.release_activation(svc.store, account, activation_id, now=svc.now(), actor=token.actor)
        return activation_json(queries.account_activation(svc.store, account, activation_id))

    return json_response(await run_in_threadpool(release))


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/licenses/{id}/activations", license_activations),
    Route("/v1/admin/activations/{id}/release", activation_release, methods=["POST"]),
)
