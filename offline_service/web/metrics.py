"""Prometheus metrics: requests per route and status class, the engine's decisions, batches, and the
time spent in the database and in signing; ``GET /metrics`` to scrape them (docs/OBSERVABILITY.md).

Each app has its own ``Metrics`` (its own registry; nothing module-level is counted into). Under
``serve --workers N`` the workers write their values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by
``serve``), and ``/metrics`` sums every worker's, so a scrape answered by any one worker is whole."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.engine import Outcome

if TYPE_CHECKING:
    from offline_service.licensing.batch import BatchSummary

__all__ = ["METRICS_PATH", "Metrics", "RequestMetrics", "route_label", "routes"]

METRICS_PATH = "/metrics"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A method label is one of these or OTHER: a client chooses the method, and must not choose labels.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A write transaction holds from one request to a 512-file chunk; a signature takes ~25 µs.
_TRANSACTION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SIGN_BUCKETS = (0.00001, 0.00002, 0.00003, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005)
_BATCH_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


class Metrics:
    """The service's metrics, one set per app; also the engine's ``Observer`` (licensing/engine.py).

    ``multiprocess_dir``: where the worker processes of ``serve --workers N`` keep their values
    (``PROMETHEUS_MULTIPROC_DIR``, which prometheus-client reads when it is imported); ``None`` for
    one process, whose values are its own."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "offline_service_http_requests",
            "HTTP requests answered, by method, route template and status class (2xx, 4xx...)",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "offline_service_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "offline_service_decisions",
            "Request files decided by the engine, by kind and code (OK, REISSUED or the refusal's code)",
            ["kind", "code"],
            registry=registry,
        )
        self.transaction_seconds = Histogram(
            "offline_service_database_transaction_seconds",
            "The engine's write transactions, from asking for the writers' lock to the commit",
            buckets=_TRANSACTION_BUCKETS,
            registry=registry,
        )
        self.sign_seconds = Histogram(
            "offline_service_signing_seconds",
            "Signing one response (Ed25519 and its JWS encoding)",
            buckets=_SIGN_BUCKETS,
            registry=registry,
        )
        self.batch_files = Counter(
            "offline_service_batch_files",
            "Files of batch uploads (portal and /v1/batches), by result: accepted, rejected, or skipped",
            ["result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "offline_service_batch_duration_seconds",
            "Time to process one batch upload",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        # The labelled children, looked up once per label set: ``labels()`` takes a lock and checks
        # its arguments on every call, the larger part of the cost per request. A bounded cache
        # (label values are routes, codes and kinds) whose entries never change once made; two
        # threads making the same entry get the same child from ``labels()``.
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._decision_children: dict[tuple[str, str], Any] = {}

    # -- the engine's Observer ---------------------------------------------------------------

    def decided(self, outcome: Outcome) -> None:
        key = (
            outcome.kind.value if outcome.kind is not None else "unknown",
            "REISSUED" if outcome.reissued else outcome.code.value,
        )
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        child.inc()

    def transaction(self, seconds: float) -> None:
        self.transaction_seconds.observe(seconds)

    def signed(self, seconds: float) -> None:
        self.sign_seconds.observe(seconds)

    # -- the adapters' -------------------------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        key = (method, route, f"{status // 100}xx")
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(*key),
                self.request_seconds.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def batch(self, summary: BatchSummary) -> None:
        """One batch upload, done."""
        self.batch_files.labels("accepted").inc(summary.accepted)
        self.batch_files.labels("rejected").inc(summary.rejected)
        self.batch_files.labels("skipped").inc(summary.skipped)
        self.batch_seconds.observe(summary.seconds)

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format: this process's, or every worker's summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        # prometheus-client leaves this constructor unannotated.
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def route_label(scope: Scope) -> str:
    """The route template that answered (``/licenses/{license_id}``), never the path itself, so
    that the number of label values stays that of the routes; UNMATCHED for no route."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    if isinstance(route, Route):
        return route.path
    return "UNMATCHED"


class RequestMetrics:
    """Counts and times every HTTP request by route template and status class (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(scope["method"], route_label(scope), status, perf_counter() - started)


def _check_access(request: Request, token: str | None) -> None:
    """With a token set: ``Authorization: Bearer <token>``. Without: loopback clients only, and no
    request a proxy forwarded (a proxy on this machine connects from loopback for everyone)."""
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise OfflineServiceError(Code.UNAUTHENTICATED, "metrics need the metrics bearer token")
        return
    forwarded = "forwarded" in request.headers or "x-forwarded-for" in request.headers
    if request.client is None or request.client.host not in _LOOPBACK or forwarded:
        raise OfflineServiceError(
            Code.FORBIDDEN, "metrics are served to this machine only, unless a metrics token is set"
        )


async def metrics_endpoint(request: Request) -> Response:
    svc = request.app.state.services
    _check_access(request, svc.settings.metrics_token)
    body = await run_in_threadpool(svc.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})


routes = [Route(METRICS_PATH, metrics_endpoint, methods=["GET"])]
