"""The people part of the JSON API: ``/v1/accounts/login`` and ``/logout`` (bearer access tokens),
``/v1/me``, and ``/v1/me/tokens`` for personal access tokens.

Thin: every decision is in ``accounts.auth`` and ``accounts.profile``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts import profile
from offline_service.accounts.auth import authenticate, issue_credential, revoke_credential
from offline_service.accounts.representations import token_json, user_json
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_alias, check_id
from offline_service.web.api import json_body, json_int
from offline_service.web.auth import api_caller, client_address, services

__all__ = ["routes"]


def _text(body: dict[str, Any], name: str, limit: int = 1024) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a non-empty string")
    return value


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


async def tokens(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    if request.method in ("GET", "HEAD"):
        found = await run_in_threadpool(lambda: profile.credentials(svc.store, caller.user, now=svc.now()))
        return JSONResponse([token_json(c) for c in found.personal])
    if caller.kind == "personal":
        # A token that could make tokens would never have to expire: logging in is needed.
        raise OfflineServiceError(
            Code.FORBIDDEN, "a personal access token cannot make another; use an access token from a login"
        )
    body = await json_body(request)
    name, days = body.get("name"), json_int(body.get("expiresInDays"))
    if not isinstance(name, str) or days is None:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "send {name: string, expiresInDays: integer}")
    if name != name.strip():  # the portal trims what a person typed; the API takes names as sent
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a token name has no spaces around it")
    credential, token = await run_in_threadpool(
        lambda: profile.create_personal_token(svc.store, caller.user, name=name, days=days, now=svc.now())
    )
    return JSONResponse({**token_json(credential), "token": token}, status_code=201)


async def token_delete(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    await run_in_threadpool(
        lambda: profile.revoke(
            svc.store,
            caller.user,
            check_id(request.path_params["id"], "credential"),
            personal=True,
            now=svc.now(),
        )
    )
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/v1/accounts/login", login, methods=["POST"]),
    Route("/v1/accounts/logout", logout, methods=["POST"]),
    Route("/v1/me", me),
    Route("/v1/me/tokens", tokens, methods=["GET", "POST"]),
    Route("/v1/me/tokens/{id}", token_delete, methods=["DELETE"]),
]
