"""What every admin route shares: the admin token and its scope, the checks of a JSON body's
members, paging bounds, and idempotent creates. Each concept's routes are in a module of their own
(``products``, ``licenses``, ``activations``, ``audit``, ``webhooks``); this module knows no concept."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offline_service.accounts.models import Account
from offline_service.admin import idempotency, tokens
from offline_service.admin.models import AdminToken, Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import MAX_COUNT
from offline_service.ids import ID_PREFIXES, check_id
from offline_service.store import Transaction
from offline_service.web.api import json_body, json_int
from offline_service.web.auth import client_address, services

__all__ = [
    "CURSOR_PATTERN",
    "DEFAULT_LIMIT",
    "LIMIT_PATTERN",
    "MAX_LIMIT",
    "REPLAYED_HEADER",
    "admin_token",
    "count",
    "create_once",
    "flag",
    "id_cursor",
    "json_body",
    "json_response",
    "limit",
    "members",
    "next_cursor",
    "optional_int",
    "optional_text",
    "path_id",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIMIT_PATTERN = "^(?:[1-9][0-9]?|1[0-9][0-9]|200)$"  # 1 to MAX_LIMIT
_LIMIT = re.compile(LIMIT_PATTERN)
REPLAYED_HEADER = "idempotent-replayed"
CURSOR_PATTERN = "^[0-9a-f]{24,32}$"  # an id's digits (ids.new_id)
_CURSOR = re.compile(CURSOR_PATTERN)


async def admin_token(request: Request, scope: Scope) -> tuple[AdminToken, Account]:
    """The admin token of ``Authorization: Bearer``, with ``scope``, and its account. A wrong token
    counts against the client's address (behind a proxy, the address ``serve --proxy-headers``
    trusts it to give); too many, and RATE_LIMITED (tokens.authenticate)."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise OfflineServiceError(Code.UNAUTHENTICATED, "send Authorization: Bearer <admin token>")
    svc = services(request)
    token = await run_in_threadpool(
        tokens.authenticate,
        svc.store,
        secret.strip(),
        now=svc.now(),
        address=client_address(request),
        failures=svc.settings.admin_auth_failures,
        window=svc.settings.admin_auth_window,
    )
    tokens.require(token, scope)
    account = await run_in_threadpool(tokens.account_of, svc.store, token)
    return token, account


def members(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """INVALID_ARGUMENT naming the first member of ``body`` that is not ``allowed``."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"unknown member {unknown[0][:64]!r}: the members are {', '.join(sorted(allowed))}",
        )


def count(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    """A limit of activations or deactivations: -1 (unlimited) or a count."""
    if name not in body and not required:
        return None
    value = json_int(body.get(name))
    if value is None or not -1 <= value <= MAX_COUNT:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be -1 (unlimited) or a count")
    return value


def optional_int(body: dict[str, Any], name: str, *, nullable: bool = False) -> int | None:
    """A whole number > 0, or None when absent (or null, when ``nullable``)."""
    value = body.get(name)
    if value is None:
        if name in body and not nullable:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number")
        return None
    number = json_int(value)
    if number is None or not 0 < number <= 2**53:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be a whole number > 0")
    return number


def optional_text(body: dict[str, Any], name: str, *, nullable: bool = False) -> str | None:
    """Text without control characters, or None when absent (or null, when ``nullable``)."""
    value = body.get(name)
    if value is None:
        if name in body and not nullable:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be text")
        return None
    if not isinstance(value, str) or not value.isprintable():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be text without control characters")
    return value


def flag(body: dict[str, Any], name: str) -> bool | None:
    """A true/false member, None when absent."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{name} must be true or false")
    return value


def path_id(request: Request, kind: str, name: str = "id") -> str:
    """The path parameter ``name``, checked to be an id of ``kind`` (INVALID_ARGUMENT otherwise)."""
    return check_id(request.path_params[name], kind, name)


def limit(params: QueryParams) -> int:
    """The page size asked for by ``limit``: 1 to MAX_LIMIT, DEFAULT_LIMIT when absent."""
    if "limit" not in params:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(params["limit"]):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"limit must be 1 to {MAX_LIMIT}")
    return int(params["limit"])


def id_cursor(params: QueryParams, kind: str) -> str | None:
    """The id of ``kind`` that the ``cursor`` query stands for (the last one of the previous page of
    a list by id), None without one. Callers treat the cursor as opaque; it is the id's digits, so
    that its shape alone says whether it is valid."""
    text = params.get("cursor")
    if text is None:
        return None
    if not _CURSOR.fullmatch(text):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "cursor must be the nextCursor of a previous page")
    return f"{ID_PREFIXES[kind]}_{text}"


def next_cursor(last_id: str | None) -> str | None:
    """The ``nextCursor`` of a page whose last id is ``last_id`` (None: the last page)."""
    return last_id.partition("_")[2] if last_id is not None else None


def json_response(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


async def create_once(
    request: Request,
    token: AdminToken,
    body: Any,
    create: Callable[[Transaction], Any],
    *,
    now: int,
    status: int = 201,
    secret: bool = False,
) -> Response:
    """Run ``create`` (which writes in the transaction it is given and returns the JSON answer) once
    for the request's ``Idempotency-Key``: a retry with the same key and body answers the first
    answer, with ``Idempotent-Replayed: true``, and creates nothing. ``body`` is what identifies the
    request beside its method and path (the parsed JSON body, or what stands for an upload).
    ``secret``: the answer carries one (shown once, and again to a retry), so the kept answer is
    sealed (``webhooks.sealing``), bound to its account, token and key: a database dump taken
    within the day it is kept does not show it."""
    header = request.headers.get("idempotency-key")
    key = idempotency.check_key(header) if header is not None else None
    keep = reopen = None
    if secret and key is not None:
        sealer = services(request).sealer
        place = ("idempotent-answer", token.account_id, token.id, key)

        def keep(text: str) -> str:
            return sealer.seal(text, place)

        def reopen(text: str) -> str:
            return sealer.open(text, place)

    def write(tx: Transaction) -> idempotency.Answer:
        return idempotency.Answer(status, json.dumps(create(tx)))

    fingerprint = idempotency.request_hash(request.method, request.url.path, body)
    store = services(request).store
    answer = await run_in_threadpool(
        lambda: idempotency.once(store, token, key, fingerprint, write, now=now, keep=keep, reopen=reopen)
    )
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)
