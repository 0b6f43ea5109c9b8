"""The portal's Downloads page: the releases a person's licenses include, by product, each file
behind a signed link (``/downloads/f/{id}``) that works for a while and for that person only."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.errors import Code, OfflineServiceError

# The module, not its names: importing delivery starts web/ (create_app), which imports
# this module again before delivery is complete.
from offline_service.releases import delivery
from offline_service.releases import services as releases
from offline_service.releases.models import Release, ReleaseFile
from offline_service.web.auth import Caller
from offline_service.web.errors import status_of
from offline_service.web.kit import Problem, page_caller, render, to_login

__all__ = ["FileLink", "ProductView", "ReleaseView", "download_file", "downloads_page", "routes"]


@dataclass(frozen=True, slots=True)
class FileLink:
    file: ReleaseFile
    size: str
    url: str


@dataclass(frozen=True, slots=True)
class ReleaseView:
    release: Release
    files: list[FileLink]


@dataclass(frozen=True, slots=True)
class ProductView:
    name: str
    releases: list[ReleaseView]


async def downloads_page(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    found, signer, exp = await delivery.offers(request, caller)
    products = [
        ProductView(
            name=o.product.name,
            releases=[
                ReleaseView(
                    release=p.release,
                    files=[
                        FileLink(
                            file=f,
                            size=releases.size_text(f.size),
                            url=delivery.link(signer, "/downloads/f", caller, f, exp),
                        )
                        for f in p.files
                    ],
                )
                for p in o.releases
            ],
        )
        for o in found
    ]
    return render(
        request,
        "downloads.html",
        {"section": "downloads", "products": products, "expires": exp},
        caller=caller,
    )


async def download_file(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)  # after logging in, the same link works for the same person
    try:
        return await delivery.deliver(request, caller, request.path_params["id"])
    except delivery.RangeNotSatisfiable as exc:
        return _problem_page(request, caller, exc, {"content-range": f"bytes */{exc.size}"})
    except OfflineServiceError as exc:
        if exc.code not in (Code.LINK_EXPIRED, Code.LINK_INVALID, Code.NOT_FOUND):
            raise
        return _problem_page(request, caller, exc)


def _problem_page(
    request: Request, caller: Caller, exc: OfflineServiceError, headers: dict[str, str] | None = None
) -> Response:
    return render(
        request,
        "download_error.html",
        {"section": "downloads", "problem": Problem.of(exc)},
        caller=caller,
        status=status_of(exc.code),
        headers=headers,
    )


routes: list[BaseRoute] = [
    Route("/downloads", downloads_page, name="portal_downloads"),
    Route("/downloads/f/{id}", download_file, name="portal_download_file"),
]
