"""The licensing part of ``/openapi.json``: licenses, activations, offline activation and
deactivation, trials and batches.

The bounds are the handlers' own (imported from them), so schemathesis finds the document and the
service agreeing on what is valid.
"""

from __future__ import annotations

from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing.activations import API_LIMIT, MAX_OFFSET, MAX_TEXT, STATUSES
from offline_service.licensing.api import MAX_VALIDITY
from offline_service.licensing.models import LicenseStatus
from offline_service.web.openapi_kit import (
    FILE,
    INT,
    TEXT,
    TIME,
    Schema,
    Section,
    body,
    closed,
    id_schema,
    json_answer,
    nullable,
    obj,
    op,
    optional_id,
    query,
    ref,
)

__all__ = ["SECTION"]

_VALIDITY_TEXT: Schema = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,11}$",
    "description": "Seconds the response may be applied for; capped at the product's maximum.",
}
_REQUEST_FILE = (
    f"The request file the app wrote (compact JWS, armored or not), at most {MAX_FILE_BYTES} bytes."
)
_VALIDITY: Schema = {
    "type": "integer",
    "minimum": 1,
    "description": "Seconds the response may be applied for; capped at the product's maximum.",
}
_VALIDITY_QUERY: Schema = {**_VALIDITY, "maximum": MAX_VALIDITY}
_REQUEST_TEXT: Schema = {"type": "string", "minLength": 1, "description": _REQUEST_FILE}
_REQUEST_UPLOAD: Schema = {**FILE, "minLength": 1, "description": _REQUEST_FILE}

_SCHEMAS: dict[str, Schema] = {
    "License": obj(
        [
            "id",
            "key",
            "name",
            "productId",
            "status",
            "expiresAt",
            "validityDays",
            "allowedActivations",
            "usedActivations",
            "allowedDeactivations",
            "usedDeactivations",
            "metadata",
            "createdAt",
            "maxVersion",
        ],
        {
            "id": TEXT,
            "key": TEXT,
            "name": nullable("string", "The vendor's name for the license, to tell it apart; null: none"),
            "productId": TEXT,
            "status": {"type": "string", "enum": [s.value for s in LicenseStatus]},
            "expiresAt": nullable("integer", "Unix time, seconds"),
            "validityDays": nullable("integer"),
            "allowedActivations": {"type": "integer", "description": "-1: unlimited"},
            "usedActivations": INT,
            "allowedDeactivations": {"type": "integer", "description": "-1: unlimited"},
            "usedDeactivations": INT,
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "createdAt": TIME,
            "maxVersion": nullable(
                "string", "The newest release version it entitles to download; null: every release"
            ),
        },
    ),
    "Activation": obj(
        ["id", "licenseId", "fingerprint", "hostname", "os", "appVersion", "createdAt", "deactivatedAt"],
        {
            "id": TEXT,
            "licenseId": TEXT,
            "fingerprint": TEXT,
            "hostname": TEXT,
            "os": TEXT,
            "appVersion": TEXT,
            "createdAt": TIME,
            "deactivatedAt": nullable("integer", "Unix time, seconds; null while live"),
        },
    ),
    "ActivationPage": obj(
        ["total", "items"],
        {
            "total": {"type": "integer", "description": "How many activations match, in all pages"},
            "items": {
                "type": "array",
                "items": {"allOf": [ref("Activation"), obj(["productId"], {"productId": TEXT})]},
            },
        },
        "Newest first",
    ),
    "OfflineActivateRequest": obj(
        ["offlineRequest"], {"offlineRequest": _REQUEST_TEXT, "responseValidity": _VALIDITY}
    ),
    "OfflineActivateForm": closed(
        ["offlineRequest"], {"offlineRequest": _REQUEST_UPLOAD, "responseValidity": _VALIDITY_TEXT}
    ),
    "OfflineDeactivateRequest": obj(["offlineRequest"], {"offlineRequest": _REQUEST_TEXT}),
    "OfflineDeactivateForm": closed(["offlineRequest"], {"offlineRequest": _REQUEST_UPLOAD}),
    "OfflineResult": obj(
        ["offlineResponse", "activationId", "licenseId", "reissued"],
        {
            "offlineResponse": {"type": "string", "description": "The signed response file (compact JWS)"},
            "activationId": TEXT,
            "licenseId": TEXT,
            "reissued": {
                "type": "boolean",
                "description": "True when nothing new was counted (same machine again, or already deactivated)",
            },
        },
    ),
    "TrialRequest": obj(
        ["productId", "offlineRequest"],
        {
            "productId": id_schema("product", "Must equal the request's productId"),
            "offlineRequest": _REQUEST_TEXT,
        },
    ),
    "TrialForm": closed(
        ["productId", "offlineRequest"],
        {
            "productId": id_schema("product", "Must equal the request's productId"),
            "offlineRequest": _REQUEST_UPLOAD,
        },
    ),
    "TrialResult": obj(
        ["offlineResponse", "trialEndsAt", "existing"],
        {
            "offlineResponse": {"type": "string", "description": "The signed response file (compact JWS)"},
            "trialEndsAt": TIME,
            "existing": {
                "type": "boolean",
                "description": "True when this machine already had a trial: its original end is given",
            },
        },
    ),
    "BatchForm": closed(
        ["file"],
        {
            "file": {**FILE, "contentMediaType": "application/zip", "description": "A zip of request files"},
            "responseValidity": _VALIDITY_TEXT,
        },
    ),
}

_LICENSE_ID = {"name": "id", "in": "path", "required": True, "schema": id_schema("license")}
_OFFLINE_ERRORS = ("400", "404", "409", "413", "422")

_PATHS = {
    "/v1/licenses": {
        "get": op(
            "Licenses the person may see (own, their groups', or their organization's for an admin)",
            json_answer({"type": "array", "items": ref("License")}, "The licenses"),
            tag="licenses",
        )
    },
    "/v1/licenses/{id}": {
        "parameters": [_LICENSE_ID],
        "get": op("One license", json_answer(ref("License"), "The license"), "400", "404", tag="licenses"),
    },
    "/v1/licenses/{id}/activations": {
        "parameters": [_LICENSE_ID],
        "get": op(
            "A license's activations, live and deactivated",
            json_answer({"type": "array", "items": ref("Activation")}, "The activations"),
            "400",
            "404",
            tag="licenses",
        ),
    },
    "/v1/activations/offline-activate": {
        "post": op(
            "Process an activation request file; the answer carries the signed response file",
            json_answer(ref("OfflineResult"), "Activated (or the same machine again)"),
            *_OFFLINE_ERRORS,
            tag="activations",
            body=body("OfflineActivateRequest", "OfflineActivateForm"),
        )
    },
    "/v1/activations/offline-deactivate": {
        "post": op(
            "Process a deactivation request file; the seat is freed",
            json_answer(ref("OfflineResult"), "Deactivated (or already deactivated)"),
            *_OFFLINE_ERRORS,
            tag="activations",
            body=body("OfflineDeactivateRequest", "OfflineDeactivateForm"),
        )
    },
    "/v1/trial-activations/offline-activate": {
        # The CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered
        # for browsers; it is no operation of the API.
        "post": op(
            "Process a trial request file (no login; CORS for the configured origins; rate limited"
            " and new trials capped per day per client address)",
            json_answer(ref("TrialResult"), "Trial granted, or the machine's existing trial"),
            "400",
            "404",
            "413",
            "422",
            "429",
            tag="trials",
            public=True,
            body=body("TrialRequest", "TrialForm"),
        ),
    },
    "/v1/activations": {
        "get": op(
            "Activations of every license the person may see, filtered, newest first",
            json_answer(ref("ActivationPage"), "One page of activations and how many match"),
            "400",
            "404",
            tag="activations",
            parameters=[
                query("productId", optional_id("product"), "Only this product's (empty: every product)"),
                query(
                    "licenseId",
                    optional_id("license"),
                    "Only this license's, 404 if not the person's (empty: every license)",
                ),
                query(
                    "status",
                    {"type": "string", "enum": ["", *STATUSES]},
                    "Live or deactivated only (empty: both)",
                ),
                query("q", {"type": "string", "maxLength": MAX_TEXT}, "Part of the hostname or fingerprint"),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": API_LIMIT, "default": 100},
                    "Page size",
                ),
                query(
                    "offset",
                    {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
                    "Rows to skip",
                ),
            ],
        )
    },
    "/v1/batches": {
        "post": op(
            "Process a zip of request files; the answer is a zip of responses and report.csv",
            {
                "description": "Responses for the accepted files, and report.csv with one row per file",
                "content": {"application/zip": {}},
                "headers": {
                    "X-Accepted": {"schema": {"type": "integer"}},
                    "X-Rejected": {"schema": {"type": "integer"}},
                },
            },
            "400",
            "413",
            tag="activations",
            body={
                "required": True,
                "content": {
                    "application/zip": {"schema": {**FILE, "contentMediaType": "application/zip"}},
                    "multipart/form-data": {"schema": ref("BatchForm")},
                },
            },
            parameters=[
                {"name": "responseValidity", "in": "query", "required": False, "schema": _VALIDITY_QUERY}
            ],
        )
    },
}

SECTION = Section(tags=("licenses", "activations", "trials"), paths=_PATHS, schemas=_SCHEMAS)
