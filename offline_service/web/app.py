"""The application factory: ``create_app(settings)`` for uvicorn, tests and ``offline-service serve``;
``app_from_env`` for ``serve --workers N``, whose worker processes each build their own app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from offline_service.accounts import api as accounts_api
from offline_service.accounts import pages as accounts_pages
from offline_service.accounts.mail import Mailer
from offline_service.admin import api as admin_api
from offline_service.branding import pages as branding_pages
from offline_service.errors import OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing import activations, pages, trials
from offline_service.licensing import api as licensing_api
from offline_service.releases import api as releases_api
from offline_service.releases import pages as releases_pages
from offline_service.settings import Settings
from offline_service.web import (
    api,
    brand,
    kit,
    metrics,
    openapi,
)
from offline_service.web.errors import exception_handlers
from offline_service.web.logs import RequestId
from offline_service.web.security import BodyLimit, SecurityHeaders
from offline_service.web.services import Services

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("offline_service.web")

STATIC = Path(__file__).parent / "static"
UPLOAD_PATHS = ("/v1/batches", "/batch")
RELEASE_UPLOAD_PATH = "/v1/admin/releases"  # POST: a release's files (admin/api/releases.py)


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time, mailer: Mailer | None = None
) -> Starlette:
    """``mailer`` sends the portal's mails; by default through the configured SMTP relay, or else
    each one is written to <data>/mail."""
    settings = settings or Settings.from_env()
    svc = Services.open(settings, clock=clock, mailer=mailer)

    def body_limit(path: str) -> int:
        # Request files are small: a little room for JSON or form framing around 16 KiB of token.
        if path == RELEASE_UPLOAD_PATH:
            return settings.release_max_bytes
        return settings.max_upload_bytes if path.startswith(UPLOAD_PATHS) else 4 * MAX_FILE_BYTES

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.public_url is None:
            # Said at start-up, where the operator looks; each refused link then says it again.
            log.warning(
                "OFFLINE_SERVICE_PUBLIC_URL is not set: set-password links cannot be mailed (except"
                " for accounts with a custom domain) until it is set to the portal's address, like"
                " https://portal.example; links never take their address from a request's Host header"
            )
        sender = (
            asyncio.create_task(_send_outbox(svc, settings.outbox_seconds))
            if settings.outbox_seconds
            else None
        )
        hooks = (
            asyncio.create_task(_send_webhooks(svc, settings.webhook_seconds))
            if settings.webhook_seconds
            else None
        )
        try:
            yield
        finally:
            for task in (sender, hooks):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            svc.close()

    routes: list[BaseRoute] = [
        # Offline activation and deactivation first: Starlette tries the routes in turn, and from
        # their place after 38 others, finding them took 26-38 us of each request (about 2 us
        # first). No other route matches their paths, by any method (tests/web/test_http.py), so
        # the order changes no answer, 405s included.
        *licensing_api.offline_routes,
        *api.routes,
        *metrics.routes,
        *openapi.routes,
        *accounts_api.routes,
        *accounts_pages.routes,
    ]
    routes += [*licensing_api.routes, *trials.routes(settings), *pages.routes, *activations.routes]
    routes += [
        *releases_pages.routes,
        *releases_api.routes,
        *branding_pages.routes,
        *admin_api.routes,
    ]
    if STATIC.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[
            # First the request's id, so that every line logged while it is answered carries it;
            # then its count and time, which include every refusal the middleware below makes.
            Middleware(RequestId),
            Middleware(metrics.RequestMetrics, metrics=svc.metrics),
            Middleware(SecurityHeaders),
            trials.cors(settings),
            # The look of the page first: a portal upload over the limit is refused in it.
            Middleware(brand.BrandResolver),
            Middleware(BodyLimit, limit=body_limit, portal=kit.too_large),
        ],
        exception_handlers=exception_handlers(kit.problem_page),
        lifespan=lifespan,
    )
    app.state.services = svc
    return app


async def _send_outbox(svc: Services, seconds: int) -> None:
    """Send the queued notification mails every ``seconds``, in a thread (SMTP blocks), never on the
    event loop. Every worker and instance may run this: claims keep them off each other's mails."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(svc.deliver_outbox)
        except OfflineServiceError as exc:  # the database is away: the next round tries again
            log.error("notification mails not sent this round: %s", exc.code.value)


async def _send_webhooks(svc: Services, seconds: int) -> None:
    """Send the due webhook deliveries every ``seconds``, in a thread (HTTP blocks). Every worker
    and instance may run this: claims keep them off each other's deliveries."""
    while True:
        await asyncio.sleep(seconds)
        await run_in_threadpool(svc.send_webhooks)


def app_from_env() -> Starlette:
    """The app of one ``serve --workers N`` worker process (uvicorn's ``factory=True``).

    uvicorn starts workers from an import string, so the settings cannot be handed over as an
    object: the parent resolves them once and writes what differs from its environment (command-line
    paths, the demo's address) into the environment its workers inherit; each worker reads it here,
    once, and opens its own store and keyring."""
    return create_app(Settings.from_env())
