"""The admin API under ``/v1/admin/`` (admin tokens, JSON): the account's products, licenses,
their activations, the audit log and webhook endpoints.

Thin: each route checks the admin token and its scope (``tokens``), reads its input, and calls the
same services and queries as the CLI (``licensing.services``, ``licensing.queries``,
``webhooks.services``), scoped to the
token's account; another account's id answers as an unknown one. Audited as ``admin_token:<id>``.
"""

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
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from offline_service import audit
from offline_service.accounts.models import Account
from offline_service.admin import idempotency, tokens
from offline_service.admin.models import AdminToken, Scope
from offline_service.audit import AuditEntry
from offline_service.csvcell import csv_cell
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import MAX_COUNT
from offline_service.ids import ID_PREFIXES, check_id
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.models import LicenseStatus
from offline_service.licensing.representations import activation_json, license_json, product_json
from offline_service.store import Transaction
from offline_service.web.api import json_body, json_int
from offline_service.web.auth import services
from offline_service.webhooks import services as webhooks
from offline_service.webhooks.sender import SenderConfig

__all__ = [
    "AUDIT_CURSOR_PATTERN",
    "AUDIT_TEXT_PATTERN",
    "CREATE_MEMBERS",
    "CURSOR_PATTERN",
    "DEFAULT_LIMIT",
    "EXPORT_FORMATS",
    "EXPORT_PAGE",
    "LIMIT_PATTERN",
    "MAX_LIMIT",
    "PATCH_MEMBERS",
    "TIME_PATTERN",
    "WEBHOOK_MEMBERS",
    "routes",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
EXPORT_PAGE = 500  # audit entries an export reads at a time: its memory is bounded by this
CURSOR_PATTERN = "^[0-9a-f]{24,32}$"
_LICENSE_PREFIX = ID_PREFIXES["license"] + "_"
_CURSOR = re.compile(CURSOR_PATTERN)
LIMIT_PATTERN = "^(?:[1-9][0-9]?|1[0-9][0-9]|200)$"  # 1 to MAX_LIMIT
_LIMIT = re.compile(LIMIT_PATTERN)
CREATE_MEMBERS = frozenset(
    {
        "productId",
        "allowedActivations",
        "allowedDeactivations",
        "expiresAt",
        "validityDays",
        "name",
        "owner",
        "ownerUserEmail",
        "ownerOrganization",
        "metadata",
        "maxVersion",
    }
)
PATCH_MEMBERS = frozenset({"allowedActivations", "allowedDeactivations", "expiresAt", "maxVersion"})
REPLAYED_HEADER = "idempotent-replayed"
WEBHOOK_MEMBERS = frozenset({"url", "events"})


async def _token(request: Request, scope: Scope) -> tuple[AdminToken, Account]:
    """The admin token of ``Authorization: Bearer``, with ``scope``, and its account."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise OfflineServiceError(Code.UNAUTHENTICATED, "send Authorization: Bearer <admin token>")
    svc = services(request)
    token = await run_in_threadpool(tokens.authenticate, svc.store, secret.strip(), now=svc.now())
    tokens.require(token, scope)
    account = await run_in_threadpool(tokens.account_of, svc.store, token)
    return token, account


def _members(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"unknown member {unknown[0][:64]!r}: the members are {', '.join(sorted(allowed))}",
        )


def _count(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    if name not in body and not required:
        return None
    value = json_int(body.get(name))
    if value is None or not -1 <= value <= MAX_COUNT:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be -1 (unlimited) or a count")
    return value


def _optional_int(body: dict[str, Any], name: str, *, nullable: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if name in body and not nullable:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number")
        return None
    number = json_int(value)
    if number is None or not 0 < number <= 2**53:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number > 0")
    return number


def _optional_text(body: dict[str, Any], name: str, *, nullable: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if name in body and not nullable:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be text")
        return None
    if not isinstance(value, str) or not value.isprintable():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be text without control characters")
    return value


def _metadata(body: dict[str, Any]) -> dict[str, str] | None:
    value = body.get("metadata")
    if value is None and "metadata" not in body:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and "\x00" not in k + v for k, v in value.items()
    ):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "metadata must be an object of text values, without NUL"
        )
    return value


def _license_id(request: Request) -> str:
    return check_id(request.path_params["id"], "license")


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


async def products(request: Request) -> Response:
    _, account = await _token(request, Scope.PRODUCTS_READ)
    found = await run_in_threadpool(queries.products, services(request).store, account)
    return _json({"products": [product_json(p) for p in found]})


def _cursor(text: str | None) -> str | None:
    """The license id a cursor stands for (the last one of the previous page). Callers treat the
    cursor as opaque; it is the id's digits, so that its shape alone says whether it is valid."""
    if text is None:
        return None
    if not _CURSOR.fullmatch(text):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "cursor must be the nextCursor of a previous page")
    return f"{_LICENSE_PREFIX}{text}"


def _encode_cursor(license_id: str) -> str:
    return license_id.removeprefix(_LICENSE_PREFIX)


async def license_list(request: Request) -> Response:
    _, account = await _token(request, Scope.LICENSES_READ)
    params = request.query_params
    product = params.get("product") or None
    if product is not None:
        check_id(product, "product", "product")
    status = None
    if params.get("status"):
        try:
            status = LicenseStatus(params["status"])
        except ValueError:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "status must be active, suspended or revoked"
            ) from None
    limit = DEFAULT_LIMIT
    if "limit" in params:
        text = params["limit"]
        if not _LIMIT.fullmatch(text):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"limit must be 1 to {MAX_LIMIT}")
        limit = int(text)
    after = _cursor(params.get("cursor"))
    page, last = await run_in_threadpool(
        lambda: queries.license_page(
            services(request).store, account, product_id=product, status=status, after=after, limit=limit
        )
    )
    return _json(
        {
            "licenses": [license_json(x) for x in page],
            "nextCursor": _encode_cursor(last) if last is not None else None,
        }
    )


def _idempotency_key(request: Request) -> str | None:
    key_header = request.headers.get("idempotency-key")
    return idempotency.check_key(key_header) if key_header is not None else None


def _answer(answer: idempotency.Answer) -> Response:
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)


async def license_create(request: Request) -> Response:
    token, account = await _token(request, Scope.LICENSES_WRITE)
    key = _idempotency_key(request)
    body = await json_body(request)
    _members(body, CREATE_MEMBERS)
    product_id = check_id(body.get("productId"), "product", "productId")
    fields: dict[str, Any] = {
        "product_id": product_id,
        "allowed_activations": _count(body, "allowedActivations", required=True),
        "allowed_deactivations": _count(body, "allowedDeactivations", required=True),
        "expires_at": _optional_int(body, "expiresAt"),
        "validity_days": _optional_int(body, "validityDays"),
        "name": _optional_text(body, "name"),
        "owner": _optional_text(body, "owner"),
        "owner_user_email": _optional_text(body, "ownerUserEmail"),
        "owner_organization": _optional_text(body, "ownerOrganization"),
        "metadata": _metadata(body),
        "max_version": _optional_text(body, "maxVersion"),
    }
    svc = services(request)
    now = svc.now()

    def create(tx: Transaction) -> idempotency.Answer:
        license = licensing.create_license_in(tx, account, now=now, actor=token.actor, **fields)
        return idempotency.Answer(201, json.dumps(license_json(license)))

    fingerprint = idempotency.request_hash("POST", request.url.path, body)
    answer = await run_in_threadpool(idempotency.once, svc.store, token, key, fingerprint, create, now=now)
    return _answer(answer)


async def license_detail(request: Request) -> Response:
    _, account = await _token(request, Scope.LICENSES_READ)
    license_id = _license_id(request)
    store = services(request).store

    def read() -> dict[str, Any]:
        license = queries.license_by_id(store, account, license_id)
        return licensing.license_details(store, account, license.key)

    return _json(await run_in_threadpool(read))


async def license_change(request: Request) -> Response:
    token, account = await _token(request, Scope.LICENSES_WRITE)
    license_id = _license_id(request)
    body = await json_body(request)
    _members(body, PATCH_MEMBERS)
    changes: dict[str, Any] = {
        "allowed_activations": _count(body, "allowedActivations", required=False),
        "allowed_deactivations": _count(body, "allowedDeactivations", required=False),
    }
    if "expiresAt" in body:
        changes["expires_at"] = _optional_int(body, "expiresAt", nullable=True)
    if "maxVersion" in body:
        changes["max_version"] = _optional_text(body, "maxVersion", nullable=True)
    svc = services(request)

    def change() -> dict[str, Any]:
        license = queries.license_by_id(svc.store, account, license_id)
        changed = licensing.change_license(
            svc.store, account, license.key, now=svc.now(), actor=token.actor, **changes
        )
        return license_json(changed)

    return _json(await run_in_threadpool(change))


async def _license_status(request: Request, status: LicenseStatus) -> Response:
    token, account = await _token(request, Scope.LICENSES_WRITE)
    license_id = _license_id(request)
    svc = services(request)

    def change() -> dict[str, Any]:
        license = queries.license_by_id(svc.store, account, license_id)
        changed = licensing.set_license_status(
            svc.store, account, license.key, status, now=svc.now(), actor=token.actor
        )
        return license_json(changed)

    return _json(await run_in_threadpool(change))


async def license_activations(request: Request) -> Response:
    _, account = await _token(request, Scope.ACTIVATIONS_READ)
    license_id = _license_id(request)
    store = services(request).store

    def read() -> list[dict[str, Any]]:
        license = queries.license_by_id(store, account, license_id)
        found: list[dict[str, Any]] = licensing.license_details(store, account, license.key)["activations"]
        return found

    return _json({"activations": await run_in_threadpool(read)})


async def activation_release(request: Request) -> Response:
    token, account = await _token(request, Scope.ACTIVATIONS_WRITE)
    activation_id = check_id(request.path_params["id"], "activation")
    svc = services(request)

    def release() -> dict[str, Any]:
        licensing.release_activation(svc.store, account, activation_id, now=svc.now(), actor=token.actor)
        return activation_json(queries.account_activation(svc.store, account, activation_id))

    return _json(await run_in_threadpool(release))


AUDIT_CURSOR_PATTERN = "^[1-9][0-9]{0,17}$"
_AUDIT_CURSOR = re.compile(AUDIT_CURSOR_PATTERN)
TIME_PATTERN = "^(?:0|[1-9][0-9]{0,11})$"  # Unix seconds, as text
_TIME = re.compile(TIME_PATTERN)
AUDIT_TEXT_PATTERN = "^[\\x21-\\x7e]{0,200}$"  # an actor or a code to filter by: printable ASCII
_AUDIT_TEXT = re.compile(AUDIT_TEXT_PATTERN)


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
    _, account = await _token(request, Scope.AUDIT_READ)
    params = request.query_params
    filters = _audit_filters(params)
    limit = DEFAULT_LIMIT
    if "limit" in params:
        if not _LIMIT.fullmatch(params["limit"]):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"limit must be 1 to {MAX_LIMIT}")
        limit = int(params["limit"])
    before = None
    if "cursor" in params:
        if not _AUDIT_CURSOR.fullmatch(params["cursor"]):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "cursor must be the nextCursor of a previous page"
            )
        before = int(params["cursor"])
    page, last = await run_in_threadpool(
        lambda: queries.audit_page(services(request).store, account, limit=limit, before=before, **filters)
    )
    return _json(
        {
            "entries": [_audit_json(i, e) for i, e in page],
            "nextCursor": str(last) if last is not None else None,
        }
    )


_CSV_COLUMNS = ("id", "at", "actor", "action", "code", "productId", "licenseId", "activationId", "detail")
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


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
    _, account = await _token(request, Scope.AUDIT_READ)
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


async def license_suspend(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.SUSPENDED)


async def license_reinstate(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.ACTIVE)


async def license_revoke(request: Request) -> Response:
    return await _license_status(request, LicenseStatus.REVOKED)


async def licenses(request: Request) -> Response:
    return await (license_create if request.method == "POST" else license_list)(request)


async def license(request: Request) -> Response:
    return await (license_change if request.method == "PATCH" else license_detail)(request)


def _endpoint_id(request: Request) -> str:
    return check_id(request.path_params["id"], "webhook_endpoint")


async def webhook_list(request: Request) -> Response:
    _, account = await _token(request, Scope.WEBHOOKS_READ)
    found = await run_in_threadpool(webhooks.endpoints, services(request).store, account)
    return _json({"endpoints": [webhooks.endpoint_json(e) for e in found]})


async def webhook_create(request: Request) -> Response:
    """Register an endpoint; the 201 answer is the only one that carries its signing secret (and a
    retry with the same Idempotency-Key, which answers the first answer: the caller who lost it
    needs the secret). The URL is checked, its host resolved, before the transaction."""
    token, account = await _token(request, Scope.WEBHOOKS_WRITE)
    key = _idempotency_key(request)
    body = await json_body(request)
    _members(body, WEBHOOK_MEMBERS)
    url, events = body.get("url"), body.get("events")
    if not isinstance(url, str):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "url must be text: the https URL to send to")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "events must be a list of event types")
    svc = services(request)
    now = svc.now()
    policy = SenderConfig.from_settings(svc.settings).policy
    endpoint = await run_in_threadpool(
        lambda: webhooks.new_endpoint(account, url=url, events=events, policy=policy, now=now)
    )

    def create(tx: Transaction) -> idempotency.Answer:
        webhooks.add_endpoint_in(tx, endpoint, now=now, actor=token.actor)
        shown = {**webhooks.endpoint_json(endpoint), "secret": endpoint.secret}
        return idempotency.Answer(201, json.dumps(shown))

    fingerprint = idempotency.request_hash("POST", request.url.path, body)
    answer = await run_in_threadpool(idempotency.once, svc.store, token, key, fingerprint, create, now=now)
    return _answer(answer)


async def webhook_detail(request: Request) -> Response:
    _, account = await _token(request, Scope.WEBHOOKS_READ)
    endpoint_id = _endpoint_id(request)
    found = await run_in_threadpool(webhooks.endpoint, services(request).store, account, endpoint_id)
    return _json(webhooks.endpoint_json(found))


async def webhook_remove(request: Request) -> Response:
    token, account = await _token(request, Scope.WEBHOOKS_WRITE)
    endpoint_id = _endpoint_id(request)
    svc = services(request)
    await run_in_threadpool(
        lambda: webhooks.remove_endpoint(svc.store, account, endpoint_id, now=svc.now(), actor=token.actor)
    )
    return _json({"removed": endpoint_id})


async def _webhook_enabled(request: Request, enabled: bool) -> Response:
    token, account = await _token(request, Scope.WEBHOOKS_WRITE)
    endpoint_id = _endpoint_id(request)
    svc = services(request)
    changed = await run_in_threadpool(
        lambda: webhooks.set_enabled(
            svc.store, account, endpoint_id, enabled, now=svc.now(), actor=token.actor
        )
    )
    return _json(webhooks.endpoint_json(changed))


async def webhook_enable(request: Request) -> Response:
    return await _webhook_enabled(request, True)


async def webhook_disable(request: Request) -> Response:
    return await _webhook_enabled(request, False)


async def webhook_deliveries(request: Request) -> Response:
    _, account = await _token(request, Scope.WEBHOOKS_READ)
    endpoint_id = _endpoint_id(request)
    limit = DEFAULT_LIMIT
    if "limit" in request.query_params:
        if not _LIMIT.fullmatch(request.query_params["limit"]):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"limit must be 1 to {MAX_LIMIT}")
        limit = int(request.query_params["limit"])
    found = await run_in_threadpool(
        lambda: webhooks.deliveries(services(request).store, account, endpoint_id, limit=limit)
    )
    return _json({"deliveries": [webhooks.delivery_json(d) for d in found]})


async def webhook_redeliver(request: Request) -> Response:
    token, account = await _token(request, Scope.WEBHOOKS_WRITE)
    delivery_id = check_id(request.path_params["id"], "webhook_delivery")
    svc = services(request)
    queued = await run_in_threadpool(
        lambda: webhooks.redeliver(svc.store, account, delivery_id, now=svc.now(), actor=token.actor)
    )
    return _json(webhooks.delivery_json(queued))


async def webhooks_root(request: Request) -> Response:
    return await (webhook_create if request.method == "POST" else webhook_list)(request)


async def webhook(request: Request) -> Response:
    return await (webhook_remove if request.method == "DELETE" else webhook_detail)(request)


routes: tuple[BaseRoute, ...] = (  # constant: read once when the app is built
    Route("/v1/admin/products", products),
    Route("/v1/admin/licenses", licenses, methods=["GET", "POST"]),
    Route("/v1/admin/licenses/{id}", license, methods=["GET", "PATCH"]),
    Route("/v1/admin/licenses/{id}/suspend", license_suspend, methods=["POST"]),
    Route("/v1/admin/licenses/{id}/reinstate", license_reinstate, methods=["POST"]),
    Route("/v1/admin/licenses/{id}/revoke", license_revoke, methods=["POST"]),
    Route("/v1/admin/licenses/{id}/activations", license_activations),
    Route("/v1/admin/activations/{id}/release", activation_release, methods=["POST"]),
    Route("/v1/admin/audit", audit_log),
    Route("/v1/admin/audit/export", audit_export),
    Route("/v1/admin/webhooks", webhooks_root, methods=["GET", "POST"]),
    Route("/v1/admin/webhooks/{id}", webhook, methods=["GET", "DELETE"]),
    Route("/v1/admin/webhooks/{id}/enable", webhook_enable, methods=["POST"]),
    Route("/v1/admin/webhooks/{id}/disable", webhook_disable, methods=["POST"]),
    Route("/v1/admin/webhooks/{id}/deliveries", webhook_deliveries),
    Route("/v1/admin/webhook-deliveries/{id}/redeliver", webhook_redeliver, methods=["POST"]),
)
