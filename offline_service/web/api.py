"""The service-wide routes (the JWKS and the health check), the accounts routes of the JSON API, and
the JSON body helpers every /v1 route uses. The licensing routes are in licensing/api.py."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_service.accounts.models import User
from offline_service.accounts.people import authenticate, issue_credential, revoke_credential
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_alias, check_id
from offline_service.web.auth import api_caller, client_address, services
from offline_service.web.bodies import parse_json_object

__all__ = ["JWKS_PATH", "json_body", "json_int", "routes"]

JWKS_PATH = "/.well-known/jwks.json"


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON object body: MALFORMED_REQUEST if it is not strict JSON, INVALID_ARGUMENT if it is
    JSON but not an object (see bodies.parse_json_object)."""
    return parse_json_object(await request.body())


def _text(body: dict[str, Any], name: str, limit: int = 1024) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a non-empty string")
    return value


def json_int(value: object) -> int | None:
    """A JSON integer as JSON Schema counts them (``90`` and ``90.0``, never ``true``), else None."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "organizationId": user.organization_id,
        "firstName": user.first_name,
        "lastName": user.last_name,
    }


async def login(request: Request) -> Response:
    body = await json_body(request)
    svc = services(request)
    alias, email, password = (
        check_alias(body.get("accountAlias"), "accountAlias"),
        _text(body, "email", 254),
        _text(body, "password"),
    )
    address, agent = client_address(request), request.headers.get("user-agent", "")

    def run() -> str:
        user = authenticate(
            svc.store,
            account_alias=alias,
            email=email,
            password=password,
            address=address,
            now=svc.now(),
            cost=svc.settings.password_cost,
        )
        return issue_credential(
            svc.store,
            user,
            kind="access",
            lifetime=svc.settings.token_lifetime,
            now=svc.now(),
            user_agent=agent,
            address=address,
        )

    token = await run_in_threadpool(run)
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


async def jwks(request: Request) -> Response:
    svc = services(request)
    if "product" not in request.query_params:
        data = await run_in_threadpool(svc.keyring.jwks)
    else:
        product = check_id(request.query_params["product"], "product", "product")
        data = await run_in_threadpool(svc.keyring.jwks, product)
        if not data["keys"]:  # every product has keys from its creation on
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, "no such product")
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
    Route(JWKS_PATH, jwks),
    Route("/v1/accounts/login", login, methods=["POST"]),
    Route("/v1/accounts/logout", logout, methods=["POST"]),
    Route("/v1/me", me),
]
