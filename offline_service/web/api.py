"""The JSON API under /v1 (bearer tokens), the JWKS and the health check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.ids import check_id
from offline_service.licensing.engine import Outcome
from offline_service.licensing.models import Activation, License
from offline_service.licensing.representations import activation_json, license_json
from offline_service.web.auth import Caller, api_caller, bearer_token, services
from offline_service.web.bodies import parse_json_object
from offline_service.web.offline import RequestQueue, process_zip

__all__ = ["JWKS_PATH", "MAX_VALIDITY", "OfflineInput", "json_body", "json_int", "offline_input", "routes"]

JWKS_PATH = "/.well-known/jwks.json"
# responseValidity as text (a form field, a query parameter): at most 12 digits. The engine caps any
# validity at the product's maximum.
MAX_VALIDITY = 10**12 - 1
_VALIDITY_TEXT = re.compile(r"[1-9][0-9]{0,11}")


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


def _validity(value: object, *, text: bool = False) -> int | None:
    """``responseValidity``: whole seconds > 0, a JSON integer (or, with ``text``, the digits of a
    form field or query parameter: 1 to MAX_VALIDITY, no leading zero); the engine caps it at the
    product's maximum."""
    if value is None or (text and value == ""):
        return None
    if text:
        number = int(value) if isinstance(value, str) and _VALIDITY_TEXT.fullmatch(value) else None
    else:
        number = json_int(value)
    if number is None or number <= 0:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "responseValidity must be a whole number of seconds > 0"
        )
    return number


_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass(frozen=True, slots=True)
class OfflineInput:
    data: bytes  # the request file
    values: dict[str, Any]  # the other members asked for (text when ``form``)
    form: bool

    def validity(self) -> int | None:
        return _validity(self.values.get("responseValidity"), text=self.form)


async def offline_input(request: Request, *fields: str) -> OfflineInput:
    """The request file and the named other members of an offline call, from a JSON body
    (``offlineRequest`` as text) or a form (``offlineRequest`` as a file or as text)."""
    data: object = None
    values: dict[str, Any] = {}
    form = request.headers.get("content-type", "").startswith(_FORMS)
    if form:
        async with request.form(max_files=1, max_fields=len(fields) + 1) as parsed:
            for name, value in parsed.multi_items():
                if name == "offlineRequest" and data is None:
                    data = await value.read() if isinstance(value, UploadFile) else value.encode("utf-8")
                elif name in fields and name not in values and isinstance(value, str):
                    values[name] = value
                else:
                    raise OfflineServiceError(Code.INVALID_ARGUMENT, f"unexpected form field {name[:64]!r}")
    else:
        body = await json_body(request)
        data = body.get("offlineRequest")
        if isinstance(data, str):
            data = data.encode("utf-8")
        values = {name: body[name] for name in fields if name in body}
    if not isinstance(data, bytes) or not data:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "offlineRequest must be the request file (its text, or the file itself)"
        )
    return OfflineInput(data=data, values=values, form=form)


def _licenses(svc: Any, caller: Caller) -> list[License]:
    with svc.store.read() as tx:
        found = [tx.license_by_id(caller.user.account_id, i) for i in sorted(caller.license_ids)]
    return [x for x in found if x is not None]


async def licenses(request: Request) -> Response:
    caller = await api_caller(request)
    found = await run_in_threadpool(_licenses, services(request), caller)
    return JSONResponse([license_json(x) for x in found])


def visible_license(svc: Any, caller: Caller, license_id: str) -> License:
    """A license the caller may see, or LICENSE_NOT_FOUND (never FORBIDDEN: ids are not confirmed)."""
    with svc.store.read() as tx:
        found: License | None = tx.license_by_id(caller.user.account_id, license_id)
    if found is None or not caller.may_use(found):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license")
    return found


async def license_detail(request: Request) -> Response:
    caller = await api_caller(request)
    license_id = check_id(request.path_params["id"], "license")
    found = await run_in_threadpool(visible_license, services(request), caller, license_id)
    return JSONResponse(license_json(found))


async def license_activations(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    license_id = check_id(request.path_params["id"], "license")

    def load() -> list[Activation]:
        lic = visible_license(svc, caller, license_id)
        with svc.store.read() as tx:
            return list(tx.activations(lic.id))

    return JSONResponse([activation_json(a) for a in await run_in_threadpool(load)])


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "offlineResponse": outcome.response,
        "activationId": outcome.activation_id,
        "licenseId": outcome.license_id,
        "reissued": outcome.reissued,
    }


def _queue(request: Request) -> RequestQueue:
    found: RequestQueue | None = getattr(request.app.state, "request_queue", None)
    if found is None:
        found = request.app.state.request_queue = RequestQueue(services(request))
    return found


async def offline_activate(request: Request) -> Response:
    token = bearer_token(request)
    body = await offline_input(request, "responseValidity")
    outcome = await _queue(request).process(
        token, body.data, validity=body.validity(), kinds=(Kind.ACTIVATION,)
    )
    return JSONResponse(outcome_json(outcome))


async def offline_deactivate(request: Request) -> Response:
    token = bearer_token(request)
    body = await offline_input(request)
    outcome = await _queue(request).process(token, body.data, validity=None, kinds=(Kind.DEACTIVATION,))
    return JSONResponse(outcome_json(outcome))


async def batches(request: Request) -> Response:
    caller = await api_caller(request)
    validity = _validity(request.query_params.get("responseValidity"), text=True)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise OfflineServiceError(Code.INVALID_ARGUMENT, "send the zip as the form's `file`")
            data = await upload.read()
            if "responseValidity" in form:
                validity = _validity(form["responseValidity"], text=True)
    else:
        data = await request.body()
    result = await process_zip(services(request), caller, data, validity=validity)
    return Response(
        result.archive,
        media_type="application/zip",
        headers={
            "content-disposition": 'attachment; filename="responses.zip"',
            "x-accepted": str(result.accepted),
            "x-rejected": str(result.rejected),
        },
    )


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
    svc = services(request)

    def check() -> int:
        with svc.store.read() as tx:
            tx.account_by_alias("")
        return svc.store.schema_version

    return JSONResponse({"status": "ok", "schemaVersion": await run_in_threadpool(check)})


routes = [
    Route("/healthz", healthz),
    Route(JWKS_PATH, jwks),
    Route("/v1/licenses", licenses),
    Route("/v1/licenses/{id}", license_detail),
    Route("/v1/licenses/{id}/activations", license_activations),
    Route("/v1/activations/offline-activate", offline_activate, methods=["POST"]),
    Route("/v1/activations/offline-deactivate", offline_deactivate, methods=["POST"]),
    Route("/v1/batches", batches, methods=["POST"]),
]
