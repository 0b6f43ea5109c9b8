"""Each account's look in the portal: which account a page is for, its stylesheet and its logo.

The account of a page is, in this order: the logged-in person's (the session decides, always), the
account whose custom domain is the request's ``Host``, or the one named by ``?account=`` on the
login page. The Host only ever chooses the look and the login form's account; it never grants
access to anything.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts.auth import resolve_credential
from offline_service.branding import services as branding
from offline_service.branding.models import Branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id, is_alias
from offline_service.web.auth import SESSION_COOKIE, services
from offline_service.web.security import ASGIApp, Receive, Scope, Send
from offline_service.web.services import Services

__all__ = ["SCOPE_KEY", "Brand", "BrandResolver", "brand_context", "host_of", "routes"]

log = logging.getLogger("offline_service.web")

SCOPE_KEY = "ofs.brand"
IMMUTABLE = "public, max-age=31536000, immutable"
# Paths that are no portal page: nothing on them shows an account's look.
_NOT_PAGES = ("/v1/", "/.well-known/", "/static/", "/branding/", "/healthz", "/openapi.json")


@dataclass(frozen=True, slots=True)
class Brand:
    """What a page shows of its account."""

    account_id: str
    account_alias: str
    portal_name: str
    theme_url: str | None
    logo_url: str | None
    source: str  # "session", "host" (custom domain) or "query" (?account= on the login page)


def host_of(headers: Headers) -> str | None:
    """The request's host name without port or trailing dot, lower case; None for an IP literal."""
    host = headers.get("host", "").strip().lower()
    if not host or host.startswith("["):
        return None
    return host.rsplit(":", 1)[0].rstrip(".") or None


def _brand(account_id: str, alias: str, found: Branding | None, source: str) -> Brand:
    theme_url = logo_url = None
    if found is not None and found.accent_color is not None:
        theme_url = f"/branding/{account_id}/theme.css?v={found.accent_color[1:]}"
    if found is not None and found.logo_file is not None:
        logo_url = f"/branding/{account_id}/logo?v={_logo_version(found)}"
    return Brand(
        account_id=account_id,
        account_alias=alias,
        portal_name=(found.portal_name if found else None) or branding.DEFAULT_PORTAL_NAME,
        theme_url=theme_url,
        logo_url=logo_url,
        source=source,
    )


def _logo_version(found: Branding) -> str:
    # The file is named <account>-<sha256>.<ext>: its hash is the version.
    return (found.logo_file or "").rsplit("-", 1)[-1][:16]


def resolve_brand(svc: Services, *, token: str, host: str | None, alias: str | None) -> Brand | None:
    """The account a page is for and its look, or None when no account is known (blocking)."""
    account_id, source = None, ""
    if token:
        try:
            user, _ = resolve_credential(svc.store, token, kind="session", now=svc.now())
            account_id, source = user.account_id, "session"
        except OfflineServiceError as exc:
            if exc.code is not Code.UNAUTHENTICATED:
                raise
    with svc.store.read() as tx:
        if account_id is None and host:
            by_domain = tx.branding_by_domain(host)
            if by_domain is not None:
                account_id, source = by_domain.account_id, "host"
        if account_id is None and alias:
            named = tx.account_by_alias(alias)
            if named is not None:
                account_id, source = named.id, "query"
        account = tx.account_by_id(account_id) if account_id else None
        found = tx.branding(account.id) if account else None
    if account is None:
        return None
    return _brand(account.id, account.alias, found, source)


class BrandResolver:
    """Finds the account of every portal page before its handler runs (pure ASGI); templates get it
    as ``brand``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_NOT_PAGES):
            request = Request(scope)
            alias = request.query_params.get("account") if scope["path"] == "/login" else None
            if not is_alias(alias):
                alias = None  # only the look of the login page: nothing to refuse, nothing to look up
            svc: Services = scope["app"].state.services
            try:
                scope[SCOPE_KEY] = await run_in_threadpool(
                    resolve_brand,
                    svc,
                    token=request.cookies.get(SESSION_COOKIE, ""),
                    host=host_of(request.headers),
                    alias=alias,
                )
            except OfflineServiceError as exc:
                # The look is not worth failing a page for: the handler meets the same problem
                # (the database, most likely) and reports it with its proper status.
                log.warning("cannot tell the account of %s: %s", scope["path"], exc.code.value)
        await self.app(scope, receive, send)


def brand_context(request: Request) -> dict[str, Any]:
    """The templates' ``brand`` (a Jinja2 context processor)."""
    return {"brand": request.scope.get(SCOPE_KEY)}


def _branding_of(svc: Services, account_id: str) -> Branding | None:
    with svc.store.read() as tx:
        return tx.branding(account_id)


async def theme_css(request: Request) -> Response:
    svc = services(request)
    account_id = check_id(request.path_params["account"], "account")
    found = await run_in_threadpool(_branding_of, svc, account_id)
    if found is None or found.accent_color is None:
        raise OfflineServiceError(Code.NOT_FOUND, "this account has no accent colour")
    current = request.query_params.get("v") == found.accent_color[1:]
    return Response(
        branding.theme_css(found.accent_color),
        media_type="text/css",
        headers={"cache-control": IMMUTABLE if current else "no-cache"},
    )


async def logo(request: Request) -> Response:
    svc = services(request)
    account_id = check_id(request.path_params["account"], "account")
    found = await run_in_threadpool(_branding_of, svc, account_id)
    path = branding.logo_path(svc.settings.data_dir, found) if found is not None else None
    if found is None or path is None or not await run_in_threadpool(os.path.isfile, path):
        raise OfflineServiceError(Code.NOT_FOUND, "this account has no logo")
    media_type = found.logo_type or "application/octet-stream"
    current = request.query_params.get("v") == _logo_version(found)
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"logo.{branding.LOGO_TYPES.get(media_type, 'bin')}",
        content_disposition_type="inline",
        headers={"cache-control": IMMUTABLE if current else "no-cache"},
    )


routes: list[BaseRoute] = [
    Route("/branding/{account}/theme.css", theme_css, name="branding_theme"),
    Route("/branding/{account}/logo", logo, name="branding_logo"),
]
