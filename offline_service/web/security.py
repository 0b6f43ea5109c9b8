"""Security headers on every response and a hard limit on request bodies (pure ASGI, no buffering)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from offline_service.errors import Code
from offline_service.next_steps import next_step

__all__ = ["SECURITY_HEADERS", "BodyLimit", "SecurityHeaders"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# No inline script or style anywhere, no third-party origin, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " base-uri 'none'; frame-ancestors 'none'; connect-src 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# What a portal path answers to a body over its limit (kit.too_large): called with the scope, the
# limit, and the ASGI receive and send. Passed in by the app, which knows the portal's pages.
PortalRefusal = Callable[[Scope, int, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuses bodies over ``limit(path)`` bytes with 413, by Content-Length up front and by counting
    while streaming, so a client cannot make the server read or buffer more than the limit. The
    API's paths get JSON; the portal's get ``portal`` when given, else a plain page."""

    def __init__(
        self, app: ASGIApp, *, limit: Callable[[str], int], portal: PortalRefusal | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.portal = portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        if self.portal is not None and not scope["path"].startswith(_API_PATHS):
            await self.portal(scope, limit, receive, send)
        else:
            await _refuse(scope, send, limit)


class _TooLarge(Exception):
    pass


_API_PATHS = ("/v1/", "/.well-known/")


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    message = f"the upload is larger than {limit} bytes"
    if scope["path"].startswith(_API_PATHS):
        body = json.dumps(
            {"code": "REQUEST_TOO_LARGE", "message": message, "nextStep": next_step(Code.REQUEST_TOO_LARGE)}
        ).encode()
        kind = b"application/json"
    else:  # a portal page: plain words, like every other portal error
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<link rel=stylesheet href='/static/portal.css'><link rel=icon href='/static/favicon.svg'><title>Upload too large</title>"
            f"<main class=narrow><h1>Upload too large</h1><p>{message} (REQUEST_TOO_LARGE)</p>"
            "<p><a href='/'>Back to the portal</a></p></main>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
