"""The licensing routes of the JSON API under /v1 (bearer tokens): the licenses a person may use
and their activations, offline activation and deactivation, and batches of request files.

Reads go through licensing.queries, scoped to the caller; request files through licensing.offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.ids import check_id
from offline_service.licensing import queries
from offline_service.licensing.engine import Outcome
from offline_service.licensing.offline import RequestQueue, process_zip
from offline_service.licensing.representations import activation_json, license_json
from offline_service.web.api import json_body, json_int
from offline_service.web.auth import api_caller, bearer_token, services

__all__ = ["MAX_VALIDITY", "OfflineInput", "offline_input", "outcome_json", "routes"]

# responseValidity as text (a form field, a query parameter): at most 12 digits. The engine caps any
# validity at the product's maximum.
MAX_VALIDITY = 10**12 - 1
_VALIDITY_TEXT = re.compile(r"[1-9][0-9]{0,11}")


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
                    expected = ", ".join(["offlineRequest", *fields])
                    raise OfflineServiceError(
                        Code.INVALID_ARGUMENT,
                        f"unexpected form field {name[:64]!r}: the fields are {expected} (each once)",
                    )
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


async def licenses(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    found = await run_in_threadpool(
        queries.visible_licenses, svc.store, caller.user.account_id, caller.license_ids
    )
    return JSONResponse([license_json(x) for x in found])


async def license_detail(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    license_id = check_id(request.path_params["id"], "license")
    found = await run_in_threadpool(
        queries.visible_license, svc.store, caller.user.account_id, caller.license_ids, license_id
    )
    return JSONResponse(license_json(found))


async def license_activations(request: Request) -> Response:
    caller = await api_caller(request)
    svc = services(request)
    license_id = check_id(request.path_params["id"], "license")
    found = await run_in_threadpool(
        queries.license_activations, svc.store, caller.user.account_id, caller.license_ids, license_id
    )
    return JSONResponse([activation_json(a) for a in found])


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


# The service's busiest routes, which the app tries before all others (web/app.py).
# Constant route tables, read once when the app is built.
offline_routes: tuple[BaseRoute, ...] = (
    Route("/v1/activations/offline-activate", offline_activate, methods=["POST"]),
    Route("/v1/activations/offline-deactivate", offline_deactivate, methods=["POST"]),
)
routes: list[BaseRoute] = [
    Route("/v1/licenses", licenses),
    Route("/v1/licenses/{id}", license_detail),
    Route("/v1/licenses/{id}/activations", license_activations),
    Route("/v1/batches", batches, methods=["POST"]),
]
