"""The releases' JSON API: ``GET /v1/releases`` (what the person may download, with signed links)
and ``GET /v1/releases/files/{id}`` (a file through such a link, with the same bearer token)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

# The module, not its names: importing delivery starts web/ (create_app), which imports
# this module again before delivery is complete.
from offline_service.releases import delivery
from offline_service.releases.representations import release_file_json, release_json
from offline_service.web.auth import api_caller
from offline_service.web.errors import error_body

__all__ = ["api_download", "api_releases", "routes"]


async def api_releases(request: Request) -> Response:
    caller = await api_caller(request)
    found, signer, exp = await delivery.offers(request, caller)
    body: list[dict[str, Any]] = []
    for o in found:
        items = []
        for p in o.releases:
            item = release_json(p.release, ())
            item["files"] = [
                {
                    **release_file_json(f),
                    "downloadUrl": delivery.link(signer, "/v1/releases/files", caller, f, exp),
                    "expiresAt": exp,
                }
                for f in p.files
            ]
            items.append(item)
        body.append({"productId": o.product.id, "productName": o.product.name, "releases": items})
    return JSONResponse(body)


async def api_download(request: Request) -> Response:
    caller = await api_caller(request)
    try:
        return await delivery.deliver(request, caller, request.path_params["id"])
    except delivery.RangeNotSatisfiable as exc:
        return JSONResponse(
            error_body(exc.code, exc.message),
            status_code=416,
            headers={"content-range": f"bytes */{exc.size}"},
        )


routes: list[BaseRoute] = [
    Route("/v1/releases", api_releases),
    Route("/v1/releases/files/{id}", api_download),
]
