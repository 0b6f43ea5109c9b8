"""``/v1/admin/releases``: publish a release (a multipart upload, streamed to disk; idempotent),
list the account's releases by cursor, show one, remove one; the same services as the CLI's
``release`` verbs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import (
    REPLAYED_HEADER,
    admin_token,
    create_once,
    id_cursor,
    json_response,
    limit,
    next_cursor,
    path_id,
)
from offline_service.admin.api._upload import read_upload
from offline_service.admin.models import Scope
from offline_service.ids import check_id
from offline_service.releases import services as releases
from offline_service.releases.representations import release_json
from offline_service.store import Transaction
from offline_service.web.auth import services

__all__ = ["routes"]


async def release_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.RELEASES_READ)
    params = request.query_params
    product = params.get("product") or None
    if product is not None:
        check_id(product, "product", "product")
    channel = params.get("channel") or None
    if channel is not None:
        releases.check_channel(channel)
    size = limit(params)
    after = id_cursor(params, "release")
    page, last = await run_in_threadpool(
        lambda: releases.release_page(
            services(request).store, account, product_id=product, channel=channel, after=after, limit=size
        )
    )
    return json_response(
        {"releases": [release_json(p.release, p.files) for p in page], "nextCursor": next_cursor(last)}
    )


async def release_show(request: Request) -> Response:
    _, account = await admin_token(request, Scope.RELEASES_READ)
    release_id = path_id(request, "release")
    found = await run_in_threadpool(releases.release, services(request).store, account, release_id)
    return json_response(release_json(found.release, found.files))


async def release_publish(request: Request) -> Response:
    """Stream the upload into a staging directory (hashing each file), then, in the write
    transaction of ``create_once``: the kept answer of the Idempotency-Key if there is one (the
    staged copy is then removed: nothing is published twice), else the release recorded and its
    files moved into place. Any failure leaves neither a file nor a row."""
    token, account = await admin_token(request, Scope.RELEASES_WRITE)
    svc = services(request)
    now = svc.now()
    upload = await read_upload(
        request,
        svc.store,
        account,
        root=svc.settings.release_root,
        limit=svc.settings.release_max_bytes,
        now=now,
    )

    def create(tx: Transaction) -> dict[str, Any]:
        published = releases.publish_in(tx, upload.staging, upload.release, upload.files, actor=token.actor)
        return release_json(published.release, published.files)

    try:
        response = await create_once(request, token, upload.fingerprint(), create, now=now)
    except BaseException:
        upload.staging.discard()
        raise
    if REPLAYED_HEADER in response.headers:
        await run_in_threadpool(upload.staging.discard)
    return response


async def release_remove(request: Request) -> Response:
    token, account = await admin_token(request, Scope.RELEASES_WRITE)
    release_id = path_id(request, "release")
    svc = services(request)
    removed = await run_in_threadpool(
        lambda: releases.remove_release(
            svc.store,
            account,
            root=svc.settings.release_root,
            release_id=release_id,
            now=svc.now(),
            actor=token.actor,
        )
    )
    return json_response({"removed": removed.id})


async def releases_root(request: Request) -> Response:
    return await (release_publish if request.method == "POST" else release_list)(request)


async def release(request: Request) -> Response:
    return await (release_remove if request.method == "DELETE" else release_show)(request)


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/releases", releases_root, methods=["GET", "POST"]),
    Route("/v1/admin/releases/{id}", release, methods=["GET", "DELETE"]),
)
