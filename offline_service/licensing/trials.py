"""Trials for anyone: ``POST /v1/trial-activations/offline-activate`` needs no login. Browser pages of
the configured origins may call it and read the JWKS (CORS, no credentials); each client address
gets a few requests a minute and a few new trials a day."""

from __future__ import annotations

import ipaddress
import json
import math
from collections import OrderedDict
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
from offline_service.settings import Settings
from offline_service.web.api import JWKS_PATH
from offline_service.web.auth import client_address, services
from offline_service.web.security import ASGIApp, Message, Receive, Scope, Send
from offline_service.web.services import Services

__all__ = [
    "CORS_PATHS",
    "MAX_ADDRESSES",
    "PATH",
    "DailyCap",
    "RateLimited",
    "RateLimiter",
    "TrialCors",
    "client_key",
    "cors",
    "routes",
]

PATH = "/v1/trial-activations/offline-activate"
# What a trial page may call from another origin: the trial endpoint, and the JWKS it verifies with.
CORS_PATHS: Mapping[str, bytes] = {PATH: b"POST", JWKS_PATH: b"GET"}
MAX_ADDRESSES = 100_000  # client addresses each limiter remembers (about 15 MB at most)
PREFLIGHT_MAX_AGE = 600
DAY = 86_400
_MAX_PRODUCTS = 10_000  # product id -> account id, remembered to save a query per trial


class RateLimited(OfflineServiceError):
    """Too many requests from one address; ``retry_after`` seconds until the next is accepted."""

    def __init__(
        self, retry_after: int, *, code: Code = Code.RATE_LIMITED, what: str = "too many trial requests"
    ) -> None:
        super().__init__(code, f"{what}; try again in {retry_after} s")
        self.retry_after = retry_after


def client_key(address: str) -> str:
    """What the limits count by: the address, except that an IPv6 address counts as its /64, the
    block one subscriber usually gets (else each could take 2**64 fresh allowances)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP address (a Unix socket, a test client): count it as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests a minute, in bursts of up to
    ``per_minute``. At most ``max_addresses`` are remembered; the least recently seen is forgotten
    first (and comes back with a full bucket), so memory stays bounded whoever sends.

    Used on the event loop only (no awaits inside ``hit``), so it needs no lock. Each server
    process has its own."""

    def __init__(self, *, per_minute: int, max_addresses: int = MAX_ADDRESSES) -> None:
        if per_minute <= 0 or max_addresses <= 0:
            raise ValueError("the rate and the number of addresses must be positive")
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, address: str, now: float) -> None:
        """Take one request's token for ``address``, or raise RateLimited."""
        tokens, at = self._buckets.pop(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.per_second)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1 - tokens) / self.per_second)))
        self._buckets[address] = (tokens - 1, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)


class DailyCap:
    """At most ``per_day`` new trials per client address in a day that starts at the first one it
    counts. Only new trials use it up: a trial is counted before the engine runs, so requests in
    flight together cannot overshoot, and given back when the answer is a refusal or the machine's
    existing trial. Farming trials with fresh fingerprints is what it stops; the rate limiter
    bounds everything else an address can make the engine do.

    In memory, one per server process (a restart forgets the counts), bounded like RateLimiter,
    and used on the event loop only."""

    def __init__(self, *, per_day: int, max_addresses: int = MAX_ADDRESSES) -> None:
        if per_day <= 0 or max_addresses <= 0:
            raise ValueError("the cap and the number of addresses must be positive")
        self.per_day = per_day
        self.max_addresses = max_addresses
        self._days: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (day start, count)

    def __len__(self) -> int:
        return len(self._days)

    def count(self, address: str) -> int:
        """New trials counted for ``address`` in its current day."""
        return self._days.get(address, (0.0, 0))[1]

    def take(self, address: str, now: float) -> float:
        """Count one trial for ``address`` and return the start of its day, for ``give_back``; or
        raise RateLimited (TRIAL_DAILY_LIMIT) with the seconds until that day ends."""
        start, count = self._days.pop(address, (now, 0))
        if not start <= now < start + DAY:  # a new day (or the clock went back): start afresh
            start, count = now, 0
        if count >= self.per_day:
            self._days[address] = (start, count)
            raise RateLimited(
                max(1, math.ceil(start + DAY - now)),
                code=Code.TRIAL_DAILY_LIMIT,
                what=f"this address has had its {self.per_day} new trials for the day",
            )
        self._days[address] = (start, count + 1)
        if len(self._days) > self.max_addresses:
            self._days.popitem(last=False)
        return start

    def give_back(self, address: str, start: float) -> None:
        """Undo one ``take`` made in the day that began at ``start`` (a later day owes nothing)."""
        found = self._days.get(address)
        if found is None or found[0] != start:
            return
        if found[1] <= 1:
            del self._days[address]  # nothing counted: keep no trace of the address
        else:
            self._days[address] = (start, found[1] - 1)


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
        body = json.dumps(
            {"code": Code.FORBIDDEN.value, "message": "this origin or method may not be used here"}
        ).encode()
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
    def __init__(self, settings: Settings) -> None:
        self.limiter = RateLimiter(per_minute=settings.trial_rate_per_minute)
        self.cap = DailyCap(per_day=settings.trial_daily_cap)
        self._accounts: dict[str, str] = {}  # product id -> account id (products never move)

    async def activate(self, request: Request) -> Response:
        svc = services(request)
        address = client_address(request)
        key = client_key(address)
        self.limiter.hit(key, svc.clock())
        body = await offline_input(request, "productId")
        product_id = check_id(body.values.get("productId"), "product", "productId")
        day = self.cap.take(key, svc.clock())
        try:
            outcome = await run_in_threadpool(self._process, svc, product_id, body.data, address)
        except OfflineServiceError:
            self.cap.give_back(key, day)  # refused: the engine granted and recorded nothing
            raise
        if outcome.reissued:
            self.cap.give_back(key, day)  # the machine's existing trial: nothing new was granted
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
