"""``/v1/admin/products/{id}/keys``: a product's signing keys, public parts only (never a private
key or where it is kept); rotate (idempotent) and remove a retired one. The same services as the
CLI's ``keys`` verbs (``licensing.keys``)."""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import admin_token, create_once, json_response, path_id
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import THUMBPRINT
from offline_service.licensing import keys
from offline_service.store import Transaction
from offline_service.web.auth import services

__all__ = ["KID_PATTERN", "routes"]

KID_PATTERN = f"^{THUMBPRINT}$"  # a key id is its RFC 7638 thumbprint
_KID = re.compile(KID_PATTERN)


class _KidConvertor(Convertor[str]):
    """A key id in a path: only the thumbprint's shape matches, so ``.../keys/rotate`` is never
    taken for a key (a DELETE there answers 405, not a refused kid); another shape answers 404."""

    regex = THUMBPRINT

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("kid", _KidConvertor())


async def key_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.KEYS_READ)
    product_id = path_id(request, "product")
    svc = services(request)
    found = await run_in_threadpool(keys.keys, svc.store, svc.keyring, account, product_id)
    return json_response({"keys": [keys.key_json(k) for k in found]})


async def key_rotate(request: Request) -> Response:
    """A new active key; a retry with the same Idempotency-Key answers the first answer and does
    not rotate again. The key files are written inside the write transaction (mode 0600)."""
    token, account = await admin_token(request, Scope.KEYS_WRITE)
    product_id = path_id(request, "product")
    svc = services(request)
    now = svc.now()

    def create(tx: Transaction) -> dict[str, Any]:
        made = keys.rotate_in(tx, svc.keyring, account, product_id, now=now, actor=token.actor)
        return keys.key_json(made)

    return await create_once(request, token, {}, create, now=now)


async def key_remove(request: Request) -> Response:
    token, account = await admin_token(request, Scope.KEYS_WRITE)
    product_id = path_id(request, "product")
    kid = request.path_params["kid"]
    if not _KID.fullmatch(kid):  # the route's convertor already says so; this holds without it
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "kid must be a key id as the key list shows it")
    svc = services(request)
    await run_in_threadpool(
        lambda: keys.remove(
            svc.store, svc.keyring, account, product_id, kid, now=svc.now(), actor=token.actor
        )
    )
    return json_response({"removed": kid})


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/products/{id}/keys", key_list),
    Route("/v1/admin/products/{id}/keys/rotate", key_rotate, methods=["POST"]),
    Route("/v1/admin/products/{id}/keys/{kid:kid}", key_remove, methods=["DELETE"]),
)
