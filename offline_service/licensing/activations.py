"""Activations across every license a person may see: a filterable page, a CSV export of the same
rows, and ``GET /v1/activations`` for the API.

Filters are query parameters, so the page works without JavaScript and a filtered view can be
bookmarked. The page shows PAGE_SIZE rows at a time; the CSV holds at most CSV_LIMIT rows, the
newest, and says in ``X-Total-Count`` how many matched.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.csvcell import csv_cell
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing.models import ACTIVATION_ORDERS, Activation, ActivationFilter
from offline_service.licensing.pages import license_rows
from offline_service.licensing.representations import activation_json
from offline_service.web.auth import Caller, api_caller, services
from offline_service.web.kit import error_page, mask_key, page_caller, render, to_login
from offline_service.web.services import Services

__all__ = ["API_LIMIT", "CSV_LIMIT", "MAX_OFFSET", "MAX_TEXT", "PAGE_SIZE", "STATUSES", "csv_cell", "routes"]

PAGE_SIZE = 50
CSV_LIMIT = 10_000
API_LIMIT = 1000  # the most one API call returns (limit), 100 unless asked
MAX_OFFSET = 10**9  # rows an API call may skip
MAX_TEXT = 100
STATUSES = ("live", "deactivated")


@dataclass(frozen=True, slots=True)
class Row:
    activation: Activation
    license_id: str
    masked_key: str
    product: str
    status: str  # live or deactivated


def _text(params: Mapping[str, str], name: str, limit: int) -> str | None:
    """Free text (searched for): at most ``limit`` characters as sent, then trimmed; None if empty."""
    value = params.get(name, "")
    if len(value) > limit:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} is at most {limit} characters")
    return value.strip() or None


def _id(params: Mapping[str, str], name: str, kind: str) -> str | None:
    """An id to filter by, exactly as sent; None when absent or empty (no filter)."""
    value = params.get(name, "")
    return check_id(value, kind, name) if value else None


def _whole(params: Mapping[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    """A whole number, ``lowest`` to ``highest``, in ASCII digits; ``default`` when absent."""
    if name not in params:
        return default
    value = params[name]
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and lowest <= int(value) <= highest):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"{name} must be a whole number, {lowest} to {highest}"
        )
    return int(value)


def parse_filter(params: Mapping[str, str], *, product: str, license: str) -> ActivationFilter:
    """The filter of a query string (the page and the API name product and license differently)."""
    status = params.get("status", "")
    if status not in ("", *STATUSES):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "status is live or deactivated")
    return ActivationFilter(
        product_id=_id(params, product, "product"),
        license_id=_id(params, license, "license"),
        live=None if not status else status == "live",
        text=_text(params, "q", MAX_TEXT) or "",
    )


def _find(
    svc: Services, caller: Caller, query: ActivationFilter, limit: int, offset: int
) -> tuple[int, list[Row]]:
    """One page of matching activations, only ever of the licenses ``caller`` may see. A license id
    the caller may not see is LICENSE_NOT_FOUND, like one that does not exist."""
    found = queries.find_activations(
        svc.store, caller.user.account_id, caller.license_ids, query, limit=limit, offset=offset
    )
    rows = []
    for a in found.activations:
        lic = found.licenses.get(a.license_id)
        rows.append(
            Row(
                activation=a,
                license_id=a.license_id,
                masked_key=mask_key(lic.key) if lic else "",
                product=found.products.get(a.product_id, a.product_id),
                status="live" if a.deactivated_at is None else "deactivated",
            )
        )
    return found.total, rows


def _choices(svc: Services, caller: Caller) -> dict[str, Any]:
    """What the filter form offers: the person's licenses and their products."""
    rows = license_rows(svc, caller)
    products = sorted({(r.product, r.license.product_id) for r in rows})
    return {"licenses": rows, "products": [(pid, name) for name, pid in products]}


async def page(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    params = request.query_params
    try:
        # The order is the page's only (the CSV and the API list newest first); any other value
        # falls back to newest first.
        order = params.get("sort", "")
        query = replace(
            parse_filter(params, product="product", license="license"),
            order=order if order in ACTIVATION_ORDERS else "newest",
        )
        number = _whole(params, "page", 1, 1, 1_000_000)
        total, rows = await run_in_threadpool(_find, svc, caller, query, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    except OfflineServiceError as exc:
        return error_page(request, caller, exc)
    choices = await run_in_threadpool(_choices, svc, caller)
    kept = {k: v for k, v in (("product", query.product_id), ("license", query.license_id)) if v}
    if query.live is not None:
        kept["status"] = "live" if query.live else "deactivated"
    if query.text:
        kept["q"] = query.text
    csv_link = "/activations.csv" + (f"?{urlencode(kept)}" if kept else "")
    if query.order != "newest":
        kept["sort"] = query.order
    pages = max(1, -(-total // PAGE_SIZE))

    def at(n: int) -> str:
        return "/activations?" + urlencode({**kept, "page": str(n)})

    context = {
        "section": "activations",
        "rows": rows,
        "total": total,
        "query": query,
        "status": kept.get("status", ""),
        "number": number,
        "pages": pages,
        "previous": at(number - 1) if number > 1 else None,
        "next": at(number + 1) if number < pages else None,
        "export": csv_link,
        "order": query.order,
        "csv_limit": CSV_LIMIT,
        "page_size": PAGE_SIZE,
        **choices,
    }
    return render(request, "activations.html", context, caller=caller)


def _iso(ts: int | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CSV_COLUMNS = (
    "activation_id",
    "license_id",
    "license",
    "product",
    "hostname",
    "fingerprint",
    "os",
    "app_version",
    "created_at",
    "deactivated_at",
    "status",
)


def to_csv(rows: list[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        a = r.activation
        cells = (
            a.id,
            r.license_id,
            r.masked_key,
            r.product,
            a.hostname,
            a.fingerprint,
            a.os,
            a.app_version,
            _iso(a.created_at),
            _iso(a.deactivated_at),
            r.status,
        )
        writer.writerow([csv_cell(c) for c in cells])
    return out.getvalue().encode("utf-8")


async def export(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    try:
        query = parse_filter(request.query_params, product="product", license="license")
        total, rows = await run_in_threadpool(_find, svc, caller, query, CSV_LIMIT, 0)
    except OfflineServiceError as exc:
        return error_page(request, caller, exc)
    stamp = dt.datetime.fromtimestamp(svc.now(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="activations-{stamp}.csv"',
            "X-Total-Count": str(total),
        },
    )


async def api_list(request: Request) -> Response:
    caller = await api_caller(request)
    params = request.query_params
    unknown = set(params) - {"productId", "licenseId", "status", "q", "limit", "offset"}
    if unknown:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"unknown parameter {sorted(unknown)[0][:64]!r}")
    query = parse_filter(params, product="productId", license="licenseId")
    limit = _whole(params, "limit", 100, 1, API_LIMIT)
    offset = _whole(params, "offset", 0, 0, MAX_OFFSET)
    total, rows = await run_in_threadpool(_find, services(request), caller, query, limit, offset)
    items = [{**activation_json(r.activation), "productId": r.activation.product_id} for r in rows]
    return JSONResponse({"total": total, "items": items})


routes: list[BaseRoute] = [
    Route("/activations", page, name="portal_activations"),
    Route("/activations.csv", export, name="portal_activations_csv"),
    Route("/v1/activations", api_list),
]
