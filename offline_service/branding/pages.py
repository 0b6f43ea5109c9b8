"""Each account's stylesheet and logo, the two files its pages link to (``/branding/...``).

A link carries the version it was made for (``?v=``): when it matches the current one the answer
may be cached for good; an older or missing version gets ``no-cache``. Which account a page is for
is decided by web/brand.py.
"""

from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.branding import services as branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.web.auth import services

__all__ = ["IMMUTABLE", "logo", "routes", "theme_css"]

IMMUTABLE = "public, max-age=31536000, immutable"


async def theme_css(request: Request) -> Response:
    svc = services(request)
    account_id = check_id(request.path_params["account"], "account")
    found = await run_in_threadpool(branding.branding_of, svc.store, account_id)
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
    found = await run_in_threadpool(branding.branding_of, svc.store, account_id)
    path = branding.logo_path(svc.settings.data_dir, found) if found is not None else None
    if found is None or path is None or not await run_in_threadpool(os.path.isfile, path):
        raise OfflineServiceError(Code.NOT_FOUND, "this account has no logo")
    media_type = found.logo_type or "application/octet-stream"
    current = request.query_params.get("v") == branding.logo_version(found)
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
