"""The portal's login and logout pages. The other pages live with their domain (licensing.pages,
the accounts and releases pages) and are built with the page kit, web.kit."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts.people import LoginThrottled, authenticate, issue_credential, revoke_credential
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_alias
from offline_service.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    client_address,
    services,
    set_cookie,
)
from offline_service.web.kit import (
    FIELD_BYTES,
    Problem,
    forget_session,
    form_field,
    page_caller,
    render,
    safe_next,
)

__all__ = ["routes"]


# -- login and logout ------------------------------------------------------------------------


async def login(request: Request) -> Response:
    if request.method in ("GET", "HEAD"):
        if await page_caller(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return render(request, "login.html", {"next": safe_next(request.query_params.get("next"))})
    async with request.form(max_files=0, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        account_alias = form_field(form, "account", 1024).strip()
        email = form_field(form, "email", 254).strip()
        password = form_field(form, "password", 1024)
        target = safe_next(form.get("next"))
    svc = services(request)
    context: dict[str, Any] = {"next": target, "account": account_alias, "email": email}
    try:
        if not (account_alias and email and password):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "fill in the account, email and password")
        check_alias(account_alias, "the account")
    except OfflineServiceError as exc:
        context["account"] = account_alias[:64]
        return render(request, "login.html", {**context, "problem": Problem.of(exc)}, status=400)
    try:
        user = await run_in_threadpool(
            authenticate,
            svc.store,
            account_alias=account_alias,
            email=email,
            password=password,
            address=client_address(request),
            now=svc.now(),
            cost=svc.settings.password_cost,
        )
    except LoginThrottled as exc:
        problem = Problem(
            code=exc.code.value,
            plain=f"Too many failed logins. Wait {exc.retry_after} seconds, then try again.",
            message=exc.message,
        )
        return render(
            request,
            "login.html",
            {**context, "problem": problem},
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except OfflineServiceError as exc:
        if exc.code is not Code.INVALID_CREDENTIALS:
            raise
        return render(request, "login.html", {**context, "problem": Problem.of(exc)}, status=401)
    token = await run_in_threadpool(
        issue_credential,
        svc.store,
        user,
        kind="session",
        lifetime=svc.settings.session_lifetime,
        now=svc.now(),
        user_agent=request.headers.get("user-agent", ""),
        address=client_address(request),
    )
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=svc.settings.session_lifetime)
    # A fresh CSRF token for the new session: one planted before login is worth nothing after it.
    set_cookie(request, response, CSRF_COOKIE, secrets.token_urlsafe(32), max_age=None)
    return response


async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        svc = services(request)
        await run_in_threadpool(revoke_credential, svc.store, token, now=svc.now())
    response = RedirectResponse("/login", status_code=303)
    forget_session(request, response)
    return response


routes: list[BaseRoute] = [
    Route("/login", login, methods=["GET", "POST"], name="portal_login"),
    Route("/logout", logout, methods=["POST"], name="portal_logout"),
]
