"""The service-wide routes (the JWKS, liveness and readiness) and the JSON body helpers every /v1 route
uses. Each domain's routes are in its own package (licensing/api.py, accounts/api.py, ...)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_service import health
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.web.auth import services
from offline_service.web.bodies import parse_json_object

__all__ = ["JWKS_PATH", "json_body", "json_int", "routes"]

JWKS_PATH = "/.well-known/jwks.json"


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON object body: MALFORMED_REQUEST if it is not strict JSON, INVALID_ARGUMENT if it is
    JSON but not an object (see bodies.parse_json_object)."""
    return parse_json_object(await request.body())


def json_int(value: object) -> int | None:
    """A JSON integer as JSON Schema counts them (``90`` and ``90.0``, never ``true``), else None."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


async def jwks(request: Request) -> Response:
    svc = services(request)
    if "product" not in request.query_params:
        data = await run_in_threadpool(svc.keyring.jwks)
    else:
        product = check_id(request.query_params["product"], "product", "product")
        data = await run_in_threadpool(svc.keyring.jwks, product)
        if not data["keys"]:  # every product has keys from its creation on
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, "no such product")
    return JSONResponse(data, headers={"cache-control": "public, max-age=300"})


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. No database round trip, so that a database outage makes
    instances unready (``/readyz``), not restarted."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the database answers, its schema is current and the keys load (see
    ``health.readiness``); 503 with the reasons otherwise. Computed afresh on every call."""
    svc = services(request)
    state = await run_in_threadpool(health.readiness, svc.store, svc.keyring)
    headers = {"cache-control": "no-store"}
    if state.ready:
        return JSONResponse({"status": "ready", "schemaVersion": state.schema_version}, headers=headers)
    assert state.code is not None
    body = {"status": "not ready", "code": state.code.value, "reasons": state.reasons}
    return JSONResponse(body, status_code=503, headers=headers)


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route(JWKS_PATH, jwks),
]
