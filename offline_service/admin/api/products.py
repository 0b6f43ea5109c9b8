"""``/v1/admin/products``: the account's products."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.admin.api._kit import admin_token, json_response
from offline_service.admin.models import Scope
from offline_service.licensing import queries
from offline_service.licensing.representations import product_json
from offline_service.web.auth import services

__all__ = ["routes"]


async def product_list(request: Request) -> Response:
    _, account = await admin_token(request, Scope.PRODUCTS_READ)
    found = await run_in_threadpool(queries.products, services(request).store, account)
    return json_response({"products": [product_json(p) for p in found]})


routes: tuple[BaseRoute, ...] = (Route("/v1/admin/products", product_list),)
