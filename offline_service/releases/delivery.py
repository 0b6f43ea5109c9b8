"""Delivering release files over HTTP, for the Downloads page and the API alike: signed links,
single byte ranges and the ``Content-Disposition`` of a file.

Each file link works for ``OFFLINE_SERVICE_DOWNLOAD_LINK_MINUTES``, only for the person it was made
for and only while that person is logged in (a session for ``/downloads/f/...``, a bearer token for
``/v1/releases/files/...``) and still entitled to the file. Files are streamed in chunks with
single-range support: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` answer 206; a range past the end
answers 416; several ranges, another unit or a malformed header get the whole file (200).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.releases import services as releases
from offline_service.releases.links import LinkSigner
from offline_service.releases.models import ReleaseFile
from offline_service.web.auth import Caller, services
from offline_service.web.services import Services

__all__ = [
    "CHUNK",
    "RangeNotSatisfiable",
    "byte_range",
    "content_disposition",
    "deliver",
    "link",
    "offers",
]

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


def link(signer: LinkSigner, base: str, caller: Caller, f: ReleaseFile, exp: int) -> str:
    """The signed link under ``base`` to file ``f`` for ``caller``, working until ``exp``."""
    return f"{base}/{f.id}?{urlencode({'exp': exp, 'sig': signer.sign(caller.user.id, f.id, exp)})}"


async def offers(request: Request, caller: Caller) -> tuple[list[releases.Offer], LinkSigner, int]:
    """What ``caller`` may download, the signer for its links, and when links made now expire."""
    svc = services(request)
    found = await run_in_threadpool(
        releases.offer, svc.store, caller.user.account_id, caller.license_ids, now=svc.now()
    )
    return found, await _signer(request), svc.now() + svc.settings.download_link_lifetime


# -- delivering a file -----------------------------------------------------------------------------


def _audit(svc: Services, caller: Caller, file_id: str, code: str, detail: dict[str, str]) -> None:
    releases.record_download(
        svc.store,
        actor=caller.actor,
        account_id=caller.user.account_id,
        file_id=file_id,
        code=code,
        detail=detail,
        now=svc.now(),
    )


async def deliver(request: Request, caller: Caller, file_id: str) -> Response:
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
    path = await run_in_threadpool(releases.file_on_disk, svc.settings.release_root, f)
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
