"""``/v1/admin/audit``: the account's audit log by filters and cursor, and its export as CSV or
JSON lines, streamed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from offline_service import audit
from offline_service.admin.api._kit import admin_token, json_response, limit
from offline_service.admin.models import Scope
from offline_service.audit import AuditEntry
from offline_service.csvcell import csv_cell
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.web.auth import services

__all__ = [
    "AUDIT_CURSOR_PATTERN",
    "AUDIT_TEXT_PATTERN",
    "EXPORT_FORMATS",
    "EXPORT_PAGE",
    "TIME_PATTERN",
    "routes",
]

EXPORT_PAGE = 500  # audit entries an export reads at a time: its memory is bounded by this
AUDIT_CURSOR_PATTERN = "^[1-9][0-9]{0,17}$"
_AUDIT_CURSOR = re.compile(AUDIT_CURSOR_PATTERN)
TIME_PATTERN = "^(?:0|[1-9][0-9]{0,11})$"  # Unix seconds, as text
_TIME = re.compile(TIME_PATTERN)
AUDIT_TEXT_PATTERN = "^[\\x21-\\x7e]{0,200}$"  # an actor or a code to filter by: printable ASCII
_AUDIT_TEXT = re.compile(AUDIT_TEXT_PATTERN)
_CSV_COLUMNS = ("id", "at", "actor", "action", "code", "productId", "licenseId", "activationId", "detail")
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _audit_json(entry_id: int, e: AuditEntry) -> dict[str, Any]:
    return {"id": entry_id, **audit.entry_json(e)}


def _audit_filters(params: QueryParams) -> dict[str, Any]:
    """The audit filters of a query (since, until, actor, license, code), checked: the list and the
    export take the same ones."""
    filters: dict[str, Any] = {}
    for name in ("since", "until"):
        if name in params:
            if not _TIME.fullmatch(params[name]):
                raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be Unix time in seconds")
            filters[name] = int(params[name])
    for name, field in (("actor", "actor"), ("code", "code")):
        if params.get(name):
            if not _AUDIT_TEXT.fullmatch(params[name]):
                raise OfflineServiceError(
                    Code.INVALID_ARGUMENT, f"{name} is at most 200 printable ASCII characters, no spaces"
                )
            filters[field] = params[name]
    if params.get("license"):
        filters["license_id"] = check_id(params["license"], "license", "license")
    return filters


async def audit_log(request: Request) -> Response:
    _, account = await admin_token(request, Scope.AUDIT_READ)
    params = request.query_params
    filters = _audit_filters(params)
    size = limit(params)
    before = None
    if "cursor" in params:
        if not _AUDIT_CURSOR.fullmatch(params["cursor"]):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "cursor must be the nextCursor of a previous page"
            )
        before = int(params["cursor"])
    page, last = await run_in_threadpool(
        lambda: queries.audit_page(services(request).store, account, limit=size, before=before, **filters)
    )
    return json_response(
        {
            "entries": [_audit_json(i, e) for i, e in page],
            "nextCursor": str(last) if last is not None else None,
        }
    )


def _csv_line(row: dict[str, Any]) -> str:
    """One CSV record; every cell made inert for spreadsheets (actors and details come from people
    and request files). The detail is its JSON text."""
    out = io.StringIO()
    cells = [row[c] if c != "detail" else json.dumps(row[c], sort_keys=True) for c in _CSV_COLUMNS]
    csv.writer(out, lineterminator="\r\n").writerow([csv_cell("" if c is None else str(c)) for c in cells])
    return out.getvalue()


async def audit_export(request: Request) -> Response:
    """Every entry of the account's audit log the filters keep, newest first, as CSV or JSON lines:
    streamed, read EXPORT_PAGE entries at a time (each page a read of its own, after the last id of
    the one before, so entries written meanwhile are not in it)."""
    _, account = await admin_token(request, Scope.AUDIT_READ)
    params = request.query_params
    fmt = params.get("format") or "csv"
    if fmt not in EXPORT_FORMATS:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "format must be csv or jsonl")
    filters = _audit_filters(params)
    svc = services(request)
    stamp = dt.datetime.fromtimestamp(svc.now(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    async def lines() -> AsyncIterator[str]:
        if fmt == "csv":
            yield ",".join(_CSV_COLUMNS) + "\r\n"
        before: int | None = None
        while True:
            page, last = await run_in_threadpool(
                queries.audit_page, svc.store, account, limit=EXPORT_PAGE, before=before, **filters
            )
            for entry_id, entry in page:
                row = _audit_json(entry_id, entry)
                yield _csv_line(row) if fmt == "csv" else json.dumps(row, separators=(",", ":")) + "\n"
            if last is None:
                return
            before = last

    return StreamingResponse(
        lines(),
        media_type=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"'},
    )


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/audit", audit_log),
    Route("/v1/admin/audit/export", audit_export),
)
