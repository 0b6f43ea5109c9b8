"""Trials for anyone: ``POST /v1/trial-activations/offline-activate`` needs no login. Browser pages of
the configured origins may call it and read the JWKS (CORS, no credentials); each client address
gets a few requests a minute and a few new trials a day, counted in the database
(``licensing.trial_limits``), so the limits hold across server processes and instances."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service._b64 import b64url_decode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES, strict_json, unarmor
from offline_service.fileformat.messages import Kind
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing.api import offline_input
from offline_service.licensing.engine import Outcome
from offline_service.licensing.trial_limits import (
    DAY,
    RateLimited,
    client_key,
    give_back_trial,
    hit_rate,
    take_trial,
)
from offline_service.settings import Settings
from offline_service.web.api import JWKS_PATH
from offline_service.web.auth import client_address, services
from offline_service.web.errors import error_body
from offline_service.web.security import ASGIApp, Message, Receive, Scope, Send
from offline_service.web.services import Services

__all__ = [
    "CORS_PATHS",
    "DAY",
    "PATH",
    "RateLimited",
    "TrialCors",
    "client_key",
    "cors",
    "routes",
]

PATH = "/v1/trial-activations/offline-activate"
# What a trial page may call from another origin: the trial endpoint, and the JWKS it verifies with.
CORS_PATHS: Mapping[str, bytes] = {PATH: b"POST", JWKS_PATH: b"GET"}
PREFLIGHT_MAX_AGE = 600
_MAX_PRODUCTS = 10_000  # product id -> account id, remembered to save a query per trial


class TrialCors:
    """CORS for the paths a trial page calls (``paths``: path -> its one method). A listed origin
    (``null`` too, if listed: pages opened from disk) gets ``Access-Control-Allow-Origin`` on every
    answer, errors included, and its preflight is answered; any other origin gets no CORS header,
    so its pages cannot read the answer. No credentials are ever allowed: these paths take none."""

    def __init__(
        self, app: ASGIApp, *, origins: Iterable[str], paths: Mapping[str, bytes] = CORS_PATHS
    ) -> None:
        self.app = app
        self.origins = frozenset(o.encode("latin-1") for o in origins)
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if method is None:
            await self.app(scope, receive, send)
            return
        origin = requested = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requested = value
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and origin is not None and requested is not None:
            await _preflight(send, origin if allowed and requested == method else None, method)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed:
                    assert origin is not None
                    extra.append((b"access-control-allow-origin", origin))
                    extra.append((b"access-control-expose-headers", b"Retry-After"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send, origin: bytes | None, method: bytes) -> None:
    headers = [(b"vary", b"Origin")]
    if origin is None:
        body = json.dumps(error_body(Code.FORBIDDEN, "this origin or method may not be used here")).encode()
        status = 403
        headers.append((b"content-type", b"application/json"))
    else:
        body, status = b"", 204
        headers += [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", method),
            (b"access-control-allow-headers", b"content-type"),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
        ]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_TRIAL = frozenset({Kind.TRIAL})


def _declared_product(data: bytes) -> str | None:
    """The ``productId`` a request file names, read without verifying anything: only to refuse a
    file for another product than the body's before the engine records a trial for it. The engine
    still verifies everything. None when the file is too large or cannot be read."""
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        parts = unarmor(data).split(b".")
        value = strict_json(b64url_decode(parts[1])).get("productId") if len(parts) == 3 else None
    except (ValueError, UnicodeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


class _Trials:
    """The endpoint. Its limits live in the database (``trial_limits``): the only state it keeps
    is ``_accounts``, product id -> account id, which is harmless per process: products never
    move between accounts, so every process's copy says the same, and it only saves a query."""

    def __init__(self, settings: Settings) -> None:
        self.per_minute = settings.trial_rate_per_minute
        self.per_day = settings.trial_daily_cap
        if self.per_minute <= 0 or self.per_day <= 0:
            raise ValueError("the trial rate and the daily cap must be positive")
        self._accounts: dict[str, str] = {}  # product id -> account id (products never move)

    async def activate(self, request: Request) -> Response:
        svc = services(request)
        address = client_address(request)
        key = client_key(address)
        await run_in_threadpool(hit_rate, svc.store, key, svc.clock(), self.per_minute)
        body = await offline_input(request, "productId")
        product_id = check_id(body.values.get("productId"), "product", "productId")
        # Counted before the engine runs, so requests in flight together (in any process) cannot
        # overshoot; given back when the answer is a refusal or the machine's existing trial.
        day = await run_in_threadpool(take_trial, svc.store, key, svc.clock(), self.per_day)
        try:
            outcome = await run_in_threadpool(self._process, svc, product_id, body.data, address)
        except OfflineServiceError:
            # refused: the engine granted and recorded nothing
            await run_in_threadpool(give_back_trial, svc.store, key, day)
            raise
        if outcome.reissued:
            # the machine's existing trial: nothing new was granted
            await run_in_threadpool(give_back_trial, svc.store, key, day)
        if outcome.kind is not Kind.TRIAL or outcome.product_id != product_id:
            # Only if the unverified look in _process could not read a file the engine then
            # accepted; the trial it recorded stays counted.
            raise OfflineServiceError(Code.PRODUCT_MISMATCH, "the request file is for another product")
        return JSONResponse(
            {
                "offlineResponse": outcome.response,
                "trialEndsAt": outcome.trial_ends_at,
                "existing": outcome.reissued,
            }
        )

    def _account_of(self, svc: Services, product_id: str) -> str:
        account_id = self._accounts.get(product_id)
        if account_id is None:
            found = queries.account_of_product(svc.store, product_id)
            if len(self._accounts) >= _MAX_PRODUCTS:
                self._accounts.clear()
            account_id = self._accounts[product_id] = found
        return account_id

    def _process(self, svc: Services, product_id: str, data: bytes, address: str) -> Outcome:
        account_id = self._account_of(svc, product_id)
        if _declared_product(data) not in (None, product_id):
            raise OfflineServiceError(Code.PRODUCT_MISMATCH, "the request file is for another product")
        outcome = svc.engine.process(
            data, account_id=account_id, now=svc.now(), actor=f"trial:{address[:64]}", kinds=_TRIAL
        )
        if not outcome.ok:
            raise OfflineServiceError(outcome.code, outcome.message)
        return outcome


def routes(settings: Settings) -> list[BaseRoute]:
    """The trial endpoint, with its own rate limiter and daily cap."""
    return [Route(PATH, _Trials(settings).activate, methods=["POST"])]


def cors(settings: Settings) -> Middleware:
    """The CORS middleware of the trial endpoint and the JWKS, for ``settings.trial_origins``."""
    return Middleware(TrialCors, origins=settings.trial_origins)
