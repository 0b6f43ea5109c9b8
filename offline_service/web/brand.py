"""Which account each portal page is for, and so its look (name, stylesheet and logo).

Web infrastructure rather than a branding route: a middleware that runs before every page and a
template context processor every page uses; the stylesheet and logo routes themselves are in
branding/pages.py, the customization in branding/services.py.

The account of a page is, in this order: the logged-in person's (the session decides, always), the
account whose custom domain is the request's ``Host``, or the one named by ``?account=`` on the
login page and the forgot-password page. The Host only ever chooses the look and the login form's
account; it never grants access to anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request

from offline_service.accounts.auth import resolve_credential
from offline_service.branding import services as branding
from offline_service.branding.models import Branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import is_alias
from offline_service.web.auth import SESSION_COOKIE
from offline_service.web.security import ASGIApp, Receive, Scope, Send
from offline_service.web.services import Services

__all__ = ["SCOPE_KEY", "Brand", "BrandResolver", "brand_context", "host_of", "resolve_brand"]

log = logging.getLogger("offline_service.web")

SCOPE_KEY = "ofs.brand"
# Paths that are no portal page: nothing on them shows an account's look.
# The pages before logging in, where ``?account=`` names the account (a link from a vendor's site).
_NAMED_BY_QUERY = ("/login", "/forgot-password")
_NOT_PAGES = ("/v1/", "/.well-known/", "/static/", "/branding/", "/healthz", "/readyz", "/openapi.json")


@dataclass(frozen=True, slots=True)
class Brand:
    """What a page shows of its account."""

    account_id: str
    account_alias: str
    portal_name: str
    theme_url: str | None
    logo_url: str | None
    source: str  # "session", "host" (custom domain) or "query" (?account= before logging in)


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
        logo_url = f"/branding/{account_id}/logo?v={branding.logo_version(found)}"
    return Brand(
        account_id=account_id,
        account_alias=alias,
        portal_name=(found.portal_name if found else None) or branding.DEFAULT_PORTAL_NAME,
        theme_url=theme_url,
        logo_url=logo_url,
        source=source,
    )


def resolve_brand(svc: Services, *, token: str, host: str | None, alias: str | None) -> Brand | None:
    """The account a page is for and its look, or None when no account is known (blocking)."""
    account_id = None
    if token:
        try:
            user, _ = resolve_credential(svc.store, token, kind="session", now=svc.now())
            account_id = user.account_id
        except OfflineServiceError as exc:
            if exc.code is not Code.UNAUTHENTICATED:
                raise
    page = branding.page_account(svc.store, account_id=account_id, host=host, alias=alias)
    if page is None:
        return None
    account, found, source = page
    return _brand(account.id, account.alias, found, source)


class BrandResolver:
    """Finds the account of every portal page before its handler runs (pure ASGI); templates get it
    as ``brand``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_NOT_PAGES):
            request = Request(scope)
            alias = request.query_params.get("account") if scope["path"] in _NAMED_BY_QUERY else None
            if not is_alias(alias):
                alias = None  # only the look of the page: nothing to refuse, nothing to look up
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
