"""The JSON API under /v1 (bearer tokens), the JWKS and the health check."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import Code, OfflineServiceError
from ..models import Activation, License, User
from ..people import authenticate, issue_credential, revoke_credential
from .auth import Caller, api_caller, client_address, services

__all__ = ["license_json", "routes"]


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON object body, or INVALID_ARGUMENT."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, limit: int = 1024) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a non-empty string")
    return value


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "organizationId": user.organization_id,
        "firstName": user.first_name,
        "lastName": user.last_name,
    }


def license_json(license: License) -> dict[str, Any]:
    return {
        "id": license.id,
        "key": license.key,
        "productId": license.product_id,
        "status": license.status.value,
        "expiresAt": license.expires_at,
        "validityDays": license.validity_days,
        "allowedActivations": license.allowed_activations,
        "usedActivations": license.used_activations,
        "allowedDeactivations": license.allowed_deactivations,
        "usedDeactivations": license.used_deactivations,
        "metadata": dict(license.metadata),
        "createdAt": license.created_at,
    }


def activation_json(a: Activation) -> dict[str, Any]:
    return {
        "id": a.id,
        "licenseId": a.license_id,
        "fingerprint": a.fingerprint,
        "hostname": a.hostname,
        "os": a.os,
        "appVersion": a.app_version,
        "createdAt": a.created_at,
        "deactivatedAt": a.deactivated_at,
    }


async def login(request: Request) -> Response:
    body = await json_body(request)
    svc = services(request)
    user = await run_in_threadpool(
        authenticate,
        svc.store,
        account_alias=_text(body, "accountAlias", 64),
        email=_text(body, "email", 254),
        password=_text(body, "password"),
        address=client_address(request),
        now=svc.now(),
        cost=svc.settings.password_cost,
    )
    token = await run_in_threadpool(
        issue_credential,
        svc.store,
        user,
        kind="access",
        lifetime=svc.settings.token_lifetime,
        now=svc.now(),
        user_agent=request.headers.get("user-agent", ""),
        address=client_address(request),
    )
    return JSONResponse(
        {"accessToken": token, "tokenType": "Bearer", "expiresIn": svc.settings.token_lifetime},
        status_code=200,
    )


async def logout(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    await run_in_threadpool(revoke_credential, svc.store, caller.token, now=svc.now())
    return Response(status_code=204)


async def me(request: Request) -> Response:
    caller = await api_caller(request)
    return JSONResponse(user_json(caller.user))


def _licenses(svc: Any, caller: Caller) -> list[License]:
    with svc.store.read() as tx:
        found = [tx.license_by_id(caller.user.account_id, i) for i in sorted(caller.license_ids)]
    return [x for x in found if x is not None]


async def licenses(request: Request) -> Response:
    caller = await api_caller(request)
    found = await run_in_threadpool(_licenses, services(request), caller)
    return JSONResponse([license_json(x) for x in found])


def visible_license(svc: Any, caller: Caller, license_id: str) -> License:
    """A license the caller may see, or LICENSE_NOT_FOUND (never FORBIDDEN: ids are not confirmed)."""
    with svc.store.read() as tx:
        found: License | None = tx.license_by_id(caller.user.account_id, license_id)
    if found is None or not caller.may_use(found):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license")
    return found


async def license_detail(request: Request) -> Response:
    caller = await api_caller(request)
    found = await run_in_threadpool(visible_license, services(request), caller, request.path_params["id"])
    return JSONResponse(license_json(found))


async def license_activations(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)

    def load() -> list[Activation]:
        lic = visible_license(svc, caller, request.path_params["id"])
        with svc.store.read() as tx:
            return list(tx.activations(lic.id))

    return JSONResponse([activation_json(a) for a in await run_in_threadpool(load)])


async def jwks(request: Request) -> Response:
    svc = services(request)
    product = request.query_params.get("product")
    data = (
        await run_in_threadpool(svc.keyring.jwks, product)
        if product
        else await run_in_threadpool(svc.keyring.jwks)
    )
    return JSONResponse(data, headers={"cache-control": "public, max-age=300"})


async def healthz(request: Request) -> Response:
    svc = services(request)

    def check() -> int:
        with svc.store.read() as tx:
            tx.account_by_alias("")
        return svc.store.schema_version

    return JSONResponse({"status": "ok", "schemaVersion": await run_in_threadpool(check)})


routes = [
    Route("/healthz", healthz),
    Route("/.well-known/jwks.json", jwks),
    Route("/v1/accounts/login", login, methods=["POST"]),
    Route("/v1/accounts/logout", logout, methods=["POST"]),
    Route("/v1/me", me),
    Route("/v1/licenses", licenses),
    Route("/v1/licenses/{id}", license_detail),
    Route("/v1/licenses/{id}/activations", license_activations),
]
