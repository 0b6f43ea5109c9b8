"""``/v1/admin/licenses``: create (idempotent), list by cursor, show, change, suspend, reinstate,
revoke; the same services as the CLI's ``license`` verbs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import (
    admin_token,
    count,
    create_once,
    id_cursor,
    json_body,
    json_response,
    limit,
    members,
    next_cursor,
    optional_int,
    optional_text,
    path_id,
)
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.models import LicenseStatus
from offline_service.licensing.representations import license_json
from offline_service.store import Transaction
from offline_service.web.auth import services

__all__ = ["CREATE_MEMBERS", "PATCH_MEMBERS", "routes"]

CREATE_MEMBERS = frozenset(
    {
        "productId",
        "allowedActivations",
        "allowedDeactivations",
        "expiresAt",
        "validityDays",
        "name",
        "owner",
        "ownerUserEmail",
        "ownerOrganization",
        "metadata",
        "maxVersion",
    }
)
PATCH_MEMBERS = frozenset({"allowedActivations", "allowedDeactivations", "expiresAt", "maxVersion"})


def _metadata(body: dict[str, Any]) -> dict[str, str] | None:
    value = body.get("metadata")
    if value is None and "metadata" not in body:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and "\x00" not in k + v for k, v in value.items()
    ):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "metadata must be an object of text values, without NUL"
        )
    return value


async def license_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.LICENSES_READ)
    params = request.query_params
    product = params.get("product") or None
    if product is not None:
        check_id(product, "product", "product")
    status = None
    if params.get("status"):
        try:
            status = LicenseStatus(params["status"])
        except ValueError:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "status must be active, suspended or revoked"
            ) from None
    size = limit(params)
    after = id_cursor(params, "license")
    page, last = await run_in_threadpool(
        lambda: queries.license_page(
            services(request).store, account, product_id=product, status=status, after=after, limit=size
        )
    )
    return json_response(
        {
            "licenses": [license_json(x) for x in page],
            "nextCursor": next_cursor(last),
        }
    )


async def license_create(request: Request) -> Response:
    token, account = await admin_token(request, Scope.LICENSES_WRITE)
    body = await json_body(request)
    members(body, CREATE_MEMBERS)
    fields: dict[str, Any] = {
        "product_id": check_id(body.get("productId"), "product", "productId"),
        "allowed_activations": count(body, "allowedActivations", required=True),
        "allowed_deactivations": count(body, "allowedDeactivations", required=True),
        "expires_at": optional_int(body, "expiresAt"),
        "validity_days": optional_int(body, "validityDays"),
        "name": optional_text(body, "name"),
        "owner": optional_text(body, "owner"),
        "owner_user_email": optional_text(body, "ownerUserEmail"),
        "owner_organization": optional_text(body, "ownerOrganization"),
        "metadata": _metadata(body),
        "max_version": optional_text(body, "maxVersion"),
    }
    now = services(request).now()

    def create(tx: Transaction) -> dict[str, Any]:
        return license_json(licensing.create_license_in(tx, account, now=now, actor=token.actor, **fields))

    return await create_once(request, token, body, create, now=now)


async def license_detail(request: Request) -> Response:
    _, account = await admin_token(request, Scope.LICENSES_READ)
    license_id = path_id(request, "license")
    store = services(request).store

    def read() -> dict[str, Any]:
        license = queries.license_by_id(store, account, license_id)
        return licensing.license_details(store, account, license.key)

    return json_response(await run_in_threadpool(read))


async def license_change(request: Request) -> Response:
    token, account = await admin_token(request, Scope.LICENSES_WRITE)
    license_id = path_id(request, "license")
    body = await json_body(request)
    members(body, PATCH_MEMBERS)
    changes: dict[str, Any] = {
        "allowed_activations": count(body, "allowedActivations", required=False),
        "allowed_deactivations": count(body, "allowedDeactivations", required=False),
    }
    if "expiresAt" in body:
        changes["expires_at"] = optional_int(body, "expiresAt", nullable=True)
    if "maxVersion" in body:
        changes["max_version"] = optional_text(body, "maxVersion", nullable=True)
    svc = services(request)

    def change() -> dict[str, Any]:
        license = queries.license_by_id(svc.store, account, license_id)
        changed = licensing.change_license(
            svc.store, account, license.key, now=svc.now(), actor=token.actor, **changes
        )
        return license_json(changed)

    return json_response(await run_in_threadpool(change))


async def _license_status(request: Request, status: LicenseStatus) -> Response:
    token, account = await admin_token(request, Scope.LICENSES_WRITE)
    license_id = path_id(request, "license")
    svc = services(request)

    def change() -> dict[str, Any]:
        license = queries.license_by_id(svc.store, account, license_id)
        changed = licensing.set_license_status(
            svc.store, account, license.key, status, now=svc.now(), actor=token.actor
        )
        return license_json(changed)

    return json_response(await run_in_threadpool(change))


async def license_suspend(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.SUSPENDED)


async def license_reinstate(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.ACTIVE)


async def license_revoke(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.REVOKED)


async def licenses(request: Request) -> Response:
    return await (license_create if request.method == "POST" else license_list)(request)


async def license(request: Request) -> Response:
    return await (license_change if request.method == "PATCH" else license_detail)(request)


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/licenses", licenses, methods=["GET", "POST"]),
    Route("/v1/admin/licenses/{id}", license, methods=["GET", "PATCH"]),
    Route("/v1/admin/licenses/{id}/suspend", license_suspend, methods=["POST"]),
    Route("/v1/admin/licenses/{id}/reinstate", license_reinstate, methods=["POST"]),
    Route("/v1/admin/licenses/{id}/revoke", license_revoke, methods=["POST"]),
)
