"""One place that turns errors into responses: JSON ``{"code", "message", "nextStep"}`` for the API, the
portal's own error page (in its frame, with its brand) for every other path, and never a stack
trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from html import escape
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from offline_service.errors import Code, OfflineServiceError
from offline_service.next_steps import next_step
from offline_service.web.logs import REQUEST_ID_HEADER, current_request_id
from offline_service.web.security import SECURITY_HEADERS
from offline_service.web.words import PLAIN_WORDS

__all__ = [
    "STATUS",
    "PortalPage",
    "error_body",
    "exception_handlers",
    "handle_unexpected",
    "status_of",
    "wants_json",
]

log = logging.getLogger("offline_service.web")

STATUS: dict[Code, int] = {
    Code.INVALID_CREDENTIALS: 401,
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.RELEASE_NOT_ALLOWED: 403,
    Code.CSRF_FAILED: 403,
    Code.RATE_LIMITED: 429,
    Code.TRIAL_DAILY_LIMIT: 429,
    Code.REQUEST_TOO_LARGE: 413,
    Code.CONFLICT: 409,
    Code.IDEMPOTENCY_KEY_REUSED: 409,
    Code.ACTIVATION_LIMIT: 409,
    Code.DEACTIVATION_LIMIT: 409,
    Code.MACHINE_KEY_MISMATCH: 409,
    Code.REQUEST_REPLAYED: 409,
    Code.PRODUCT_NOT_FOUND: 404,
    Code.LICENSE_NOT_FOUND: 404,
    Code.ACTIVATION_NOT_FOUND: 404,
    Code.NOT_FOUND: 404,
    Code.PRODUCT_MISMATCH: 422,
    Code.LICENSE_SUSPENDED: 422,
    Code.LICENSE_REVOKED: 422,
    Code.LICENSE_EXPIRED: 422,
    Code.TRIAL_NOT_ALLOWED: 422,
    Code.REQUEST_EXPIRED: 422,
    Code.REQUEST_FROM_FUTURE: 422,
    Code.STORAGE_ERROR: 503,
    Code.USER_LIMIT: 409,
    Code.SELF_LOCKOUT: 409,
    Code.INVALID_PASSWORD_LINK: 400,
    Code.WRONG_PASSWORD: 403,
    Code.KEY_ERROR: 500,
    Code.INSECURE_KEY_FILE: 500,
    # downloads and customization
    Code.LINK_EXPIRED: 403,
    Code.LINK_INVALID: 403,
    Code.RANGE_NOT_SATISFIABLE: 416,
}


def error_body(code: Code, message: str) -> dict[str, str]:
    """The JSON API's error body: the stable code, the message for people, and what to do next."""
    return {"code": code.value, "message": message, "nextStep": next_step(code)}


def status_of(code: Code | str) -> int:
    """The HTTP status of a code; 400 for the rest (malformed input of some kind)."""
    return STATUS.get(Code(code), 400)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(
        ("/v1/", "/.well-known/", "/openapi.json", "/healthz", "/readyz", "/metrics")
    )


# The portal's error page for an error no page showed itself (kit.problem_page): the code, what it
# said, and the status. Passed in by the app, because the page kit itself imports this module.
PortalPage = Callable[[Request, Code, str, int, Mapping[str, str]], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(portal_page: PortalPage) -> dict[Any, Handler]:
    """The app's handlers: an OfflineServiceError or an HTTP error becomes JSON ``{code, message, nextStep}``
    on the API's paths and ``portal_page`` on every other; anything else, a 500 without internals."""

    async def handle_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OfflineServiceError)
        status = status_of(exc.code)
        headers = {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if status >= 500:
            log.error("service error %s: %s", exc.code.value, exc.message)
        if wants_json(request):
            answer: dict[str, str] = error_body(exc.code, exc.message)
            reason = getattr(exc, "reason", None)  # a refused webhook URL's stable reason
            if isinstance(reason, str):
                answer["reason"] = reason
            return JSONResponse(answer, status_code=status, headers=headers)
        return await portal_page(request, exc.code, exc.message, status, headers)

    async def handle_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: Code.NOT_FOUND, 405: Code.INVALID_ARGUMENT, 413: Code.REQUEST_TOO_LARGE}.get(
            exc.status_code, Code.INVALID_ARGUMENT
        )
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        # Starlette's own headers stay: a 405 names the allowed methods in Allow (RFC 9110).
        if wants_json(request):
            return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)
        return await portal_page(request, code, message, exc.status_code, exc.headers or {})

    return {OfflineServiceError: handle_error, HTTPException: handle_http_error, Exception: handle_unexpected}


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # The one place a broad catch is right: whatever went wrong is logged here with its traceback
    # for the operator, and the client gets a stable code and no internals. No template and no
    # database here: whatever failed may be one of them.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    if wants_json(request):
        response: Response = JSONResponse(error_body(Code.INTERNAL_ERROR, "internal error"), status_code=500)
    else:
        response = HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<link rel=stylesheet href='/static/portal.css'><link rel=icon href='/static/favicon.svg'>"
            "<title>Something went wrong</title><main class=narrow><h1>Something went wrong</h1>"
            f"<p>{escape(PLAIN_WORDS[Code.INTERNAL_ERROR])}</p><p class=code>Code: INTERNAL_ERROR</p>"
            "<p><a href='/'>Back to the portal</a></p></main>",
            status_code=500,
        )
    # Starlette answers unexpected errors outside every middleware: add the headers here.
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    request_id = current_request_id()
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
