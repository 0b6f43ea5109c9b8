"""Downloads: the releases a person's licenses include, and their files through signed links.

``/downloads`` lists them (portal); ``GET /v1/releases`` answers the same as JSON (API). Each file
link works for ``OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES``, only for the person it was made for and
only while that person is logged in (a session for ``/downloads/f/...``, a bearer token for
``/v1/releases/files/...``) and still entitled to the file. Files are streamed in chunks with
single-range support: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` answer 206; a range past the end
answers 416; several ranges, another unit or a malformed header get the whole file (200).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from offline_service import audit
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.releases import services as releases
from offline_service.releases.links import LinkSigner
from offline_service.releases.models import Release, ReleaseFile
from offline_service.releases.representations import release_file_json, release_json
from offline_service.web.auth import Caller, api_caller, services
from offline_service.web.errors import status_of
from offline_service.web.portal import Problem, page_caller, render, to_login
from offline_service.web.services import Services

__all__ = ["RangeNotSatisfiable", "byte_range", "content_disposition", "routes"]

CHUNK = 256 * 1024
_DIGITS = re.compile(r"\A[0-9]{1,19}\Z")


class RangeNotSatisfiable(OfflineServiceError):
    """A range that starts at or after the end of the file; ``size`` goes into Content-Range."""

    def __init__(self, size: int) -> None:
        super().__init__(
            Code.RANGE_NOT_SATISFIABLE, f"the file has {size} bytes; ask for a range within them"
        )
        self.size = size


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range a ``Range`` header asks for, as (start, end exclusive); None to send the whole
    file (no header, another unit, several ranges, or a malformed one, which RFC 9110 lets a server
    ignore); RangeNotSatisfiable when it starts past the end."""
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.strip().partition("-"))
    if not dash:
        return None
    if not first:  # the last n bytes
        if not _DIGITS.match(last):
            return None
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - int(last)), size
    if not _DIGITS.match(first) or (last and not _DIGITS.match(last)):
        return None
    start = int(first)
    if last and int(last) < start:
        return None  # last before first: invalid, so ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(int(last) + 1 if last else size, size)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII-safe ``filename`` and the exact name as ``filename*`` (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:100] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# -- links -----------------------------------------------------------------------------------------


async def _signer(request: Request) -> LinkSigner:
    found: LinkSigner | None = getattr(request.app.state, "link_signer", None)
    if found is None:
        found = await run_in_threadpool(LinkSigner.from_data_dir, services(request).settings.data_dir)
        request.app.state.link_signer = found
    return found


def _link(signer: LinkSigner, base: str, caller: Caller, f: ReleaseFile, exp: int) -> str:
    return f"{base}/{f.id}?{urlencode({'exp': exp, 'sig': signer.sign(caller.user.id, f.id, exp)})}"


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


async def _offers(request: Request, caller: Caller) -> tuple[list[releases.Offer], LinkSigner, int]:
    svc = services(request)
    offers = await run_in_threadpool(
        releases.offer, svc.store, caller.user.account_id, caller.license_ids, now=svc.now()
    )
    return offers, await _signer(request), svc.now() + svc.settings.download_link_lifetime


# -- delivering a file -----------------------------------------------------------------------------


def _audit(svc: Services, caller: Caller, file_id: str, code: str, detail: dict[str, str]) -> None:
    with svc.store.write() as tx:
        audit.record(
            tx,
            account_id=caller.user.account_id,
            actor=caller.actor,
            action="release.download",
            now=svc.now(),
            code=code,
            product_id=detail.pop("product", None),
            file=file_id[:64],
            **detail,
        )


def _on_disk(svc: Services, f: ReleaseFile) -> Path:
    path = releases.file_path(svc.settings.release_root, f)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1
    if size != f.size:
        raise OfflineServiceError(Code.STORAGE_ERROR, "the release file is missing or damaged on the server")
    return path


async def _deliver(request: Request, caller: Caller, file_id: str) -> Response:
    """The file, or its range, for a logged-in caller with a valid link who is entitled to it."""
    svc = services(request)
    file_id = check_id(file_id, "file")
    signer = await _signer(request)
    exp, sig = request.query_params.get("exp", ""), request.query_params.get("sig", "")
    head = request.method == "HEAD"
    try:
        signer.verify(caller.user.id, file_id, exp, sig, now=svc.now())
        release, f = await run_in_threadpool(
            releases.entitled_file,
            svc.store,
            caller.user.account_id,
            caller.license_ids,
            file_id,
            now=svc.now(),
        )
    except OfflineServiceError as exc:
        if not head:
            await run_in_threadpool(_audit, svc, caller, file_id, exc.code.value, {})
        raise
    path = await run_in_threadpool(_on_disk, svc, f)
    etag = f'"{f.sha256}"'
    if_range = request.headers.get("if-range")
    wanted = byte_range(request.headers.get("range"), f.size) if if_range in (None, etag) else None
    start, end = wanted or (0, f.size)
    if not head:
        detail = {"release": release.id, "version": release.version, "product": release.product_id}
        if wanted is not None:
            detail["range"] = f"{start}-{end - 1}"
        await run_in_threadpool(_audit, svc, caller, f.id, "OK", detail)
    headers = {
        "content-length": str(end - start),
        "accept-ranges": "bytes",
        "etag": etag,
        "content-disposition": content_disposition(f.name),
        "cache-control": "private, no-store",
    }
    if wanted is not None:
        headers["content-range"] = f"bytes {start}-{end - 1}/{f.size}"
    body: Iterator[bytes] = iter(()) if head else releases.read_chunks(path, start, end - start, CHUNK)
    return StreamingResponse(
        body, status_code=206 if wanted else 200, headers=headers, media_type="application/octet-stream"
    )


# -- portal ----------------------------------------------------------------------------------------


async def downloads_page(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    offers, signer, exp = await _offers(request, caller)
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
                            url=_link(signer, "/downloads/f", caller, f, exp),
                        )
                        for f in p.files
                    ],
                )
                for p in o.releases
            ],
        )
        for o in offers
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
        return await _deliver(request, caller, request.path_params["id"])
    except RangeNotSatisfiable as exc:
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


# -- JSON API --------------------------------------------------------------------------------------


async def api_releases(request: Request) -> Response:
    caller = await api_caller(request)
    offers, signer, exp = await _offers(request, caller)
    body: list[dict[str, Any]] = []
    for o in offers:
        items = []
        for p in o.releases:
            item = release_json(p.release, ())
            item["files"] = [
                {
                    **release_file_json(f),
                    "downloadUrl": _link(signer, "/v1/releases/files", caller, f, exp),
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
        return await _deliver(request, caller, request.path_params["id"])
    except RangeNotSatisfiable as exc:
        return JSONResponse(
            {"code": exc.code.value, "message": exc.message},
            status_code=416,
            headers={"content-range": f"bytes */{exc.size}"},
        )


routes: list[BaseRoute] = [
    Route("/downloads", downloads_page, name="portal_downloads"),
    Route("/downloads/f/{id}", download_file, name="portal_download_file"),
    Route("/v1/releases", api_releases),
    Route("/v1/releases/files/{id}", api_download),
]
