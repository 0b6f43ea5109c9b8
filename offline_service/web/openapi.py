"""The OpenAPI 3.1 description of the JSON API, written by hand and served at ``/openapi.json``.

Kept next to the handlers it describes; a test checks that every route under ``/v1``,
``/.well-known`` and ``/healthz`` appears here with its methods, and schemathesis checks that the
service accepts what this document calls valid and refuses the rest (tests/web/test_schemathesis.py):
the lengths, patterns and bounds below are the ones the handlers enforce, taken from them.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_service import __version__
from offline_service.accounts.models import Role
from offline_service.accounts.profile import MAX_TOKEN_NAME, TOKEN_DAYS
from offline_service.errors import Code
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.ids import ALIAS_PATTERN, id_pattern
from offline_service.licensing.models import LicenseStatus
from offline_service.web.activations import API_LIMIT, MAX_OFFSET, MAX_TEXT, STATUSES
from offline_service.web.api import MAX_VALIDITY

__all__ = ["document", "endpoint", "routes"]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], properties: dict[str, Schema], description: str = "") -> Schema:
    schema: Schema = {"type": "object", "required": required, "properties": properties}
    if description:
        schema["description"] = description
    return schema


def _closed(required: list[str], properties: dict[str, Schema]) -> Schema:
    """A form whose fields are exactly these: the handler refuses any other (INVALID_ARGUMENT)."""
    return {**_obj(required, properties), "additionalProperties": False}


def _nullable(type_: str, description: str = "") -> Schema:
    schema: Schema = {"type": [type_, "null"]}
    if description:
        schema["description"] = description
    return schema


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TEXT: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}


def _id(kind: str, description: str = "") -> Schema:
    schema: Schema = {"type": "string", "pattern": id_pattern(kind)}
    if description:
        schema["description"] = description
    return schema


# What Python's str.strip() removes, besides the control characters refused anyway: a token name
# may not start or end with it.
_SPACE = "\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_CONTROL = "\\x00-\\x1f\\x7f"
_TOKEN_NAME = f"^[^{_CONTROL}{_SPACE}](?:[^{_CONTROL}]*[^{_CONTROL}{_SPACE}])?$"
_VALIDITY_TEXT: Schema = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,11}$",
    "description": "Seconds the response may be applied for; capped at the product's maximum.",
}
_TIME: Schema = {"type": "integer", "description": "Unix time, seconds"}
_REQUEST_FILE = (
    f"The request file the app wrote (compact JWS, armored or not), at most {MAX_FILE_BYTES} bytes."
)
_FILE: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}
_VALIDITY: Schema = {
    "type": "integer",
    "minimum": 1,
    "description": "Seconds the response may be applied for; capped at the product's maximum.",
}
_VALIDITY_QUERY: Schema = {**_VALIDITY, "maximum": MAX_VALIDITY}
_REQUEST_TEXT: Schema = {"type": "string", "minLength": 1, "description": _REQUEST_FILE}
_REQUEST_UPLOAD: Schema = {**_FILE, "minLength": 1, "description": _REQUEST_FILE}

_SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        ["code", "message"],
        {
            "code": {
                "type": "string",
                "enum": [c.value for c in Code if c is not Code.OK],
                "description": "Stable; see docs/ERRORS.md",
            },
            "message": {"type": "string", "description": "For people; may change"},
        },
        "Every error answer.",
    ),
    "LoginRequest": _obj(
        ["accountAlias", "email", "password"],
        {
            "accountAlias": {"type": "string", "pattern": ALIAS_PATTERN, "maxLength": 64},
            "email": {"type": "string", "minLength": 1, "maxLength": 254},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
        },
    ),
    "AccessToken": _obj(
        ["accessToken", "tokenType", "expiresIn"],
        {
            "accessToken": {"type": "string", "description": "Send as `Authorization: Bearer <token>`"},
            "tokenType": {"const": "Bearer"},
            "expiresIn": {"type": "integer", "description": "Seconds until the token expires"},
        },
    ),
    "User": _obj(
        ["id", "email", "role", "organizationId", "firstName", "lastName"],
        {
            "id": _TEXT,
            "email": _TEXT,
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "organizationId": _nullable("string"),
            "firstName": _TEXT,
            "lastName": _TEXT,
        },
    ),
    "License": _obj(
        [
            "id",
            "key",
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
            "id": _TEXT,
            "key": _TEXT,
            "productId": _TEXT,
            "status": {"type": "string", "enum": [s.value for s in LicenseStatus]},
            "expiresAt": _nullable("integer", "Unix time, seconds"),
            "validityDays": _nullable("integer"),
            "allowedActivations": {"type": "integer", "description": "-1: unlimited"},
            "usedActivations": _INT,
            "allowedDeactivations": {"type": "integer", "description": "-1: unlimited"},
            "usedDeactivations": _INT,
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "createdAt": _TIME,
            "maxVersion": _nullable(
                "string", "The newest release version it entitles to download; null: every release"
            ),
        },
    ),
    "Activation": _obj(
        ["id", "licenseId", "fingerprint", "hostname", "os", "appVersion", "createdAt", "deactivatedAt"],
        {
            "id": _TEXT,
            "licenseId": _TEXT,
            "fingerprint": _TEXT,
            "hostname": _TEXT,
            "os": _TEXT,
            "appVersion": _TEXT,
            "createdAt": _TIME,
            "deactivatedAt": _nullable("integer", "Unix time, seconds; null while live"),
        },
    ),
    # activations across licenses, personal access tokens
    "ActivationPage": _obj(
        ["total", "items"],
        {
            "total": {"type": "integer", "description": "How many activations match, in all pages"},
            "items": {
                "type": "array",
                "items": {"allOf": [_ref("Activation"), _obj(["productId"], {"productId": _TEXT})]},
            },
        },
        "Newest first",
    ),
    "PersonalToken": _obj(
        ["id", "name", "createdAt", "expiresAt", "lastUsedAt"],
        {
            "id": {"type": "string", "description": "Names the token; not a secret"},
            "name": _TEXT,
            "createdAt": _TIME,
            "expiresAt": _TIME,
            "lastUsedAt": _nullable("integer", "Unix time, seconds, to the nearest 5 minutes; null if never"),
        },
    ),
    "NewPersonalTokenRequest": _obj(
        ["name", "expiresInDays"],
        {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TOKEN_NAME,
                "pattern": _TOKEN_NAME,
                "description": "No control characters, no spaces at either end",
            },
            "expiresInDays": {"type": "integer", "enum": list(TOKEN_DAYS)},
        },
    ),
    "NewPersonalToken": {
        "allOf": [
            _ref("PersonalToken"),
            _obj(
                ["token"],
                {"token": {"type": "string", "description": "The secret, shown in this answer only"}},
            ),
        ]
    },
    "OfflineActivateRequest": _obj(
        ["offlineRequest"], {"offlineRequest": _REQUEST_TEXT, "responseValidity": _VALIDITY}
    ),
    "OfflineActivateForm": _closed(
        ["offlineRequest"], {"offlineRequest": _REQUEST_UPLOAD, "responseValidity": _VALIDITY_TEXT}
    ),
    "OfflineDeactivateRequest": _obj(["offlineRequest"], {"offlineRequest": _REQUEST_TEXT}),
    "OfflineDeactivateForm": _closed(["offlineRequest"], {"offlineRequest": _REQUEST_UPLOAD}),
    "OfflineResult": _obj(
        ["offlineResponse", "activationId", "licenseId", "reissued"],
        {
            "offlineResponse": {"type": "string", "description": "The signed response file (compact JWS)"},
            "activationId": _TEXT,
            "licenseId": _TEXT,
            "reissued": {
                "type": "boolean",
                "description": "True when nothing new was counted (same machine again, or already deactivated)",
            },
        },
    ),
    "TrialRequest": _obj(
        ["productId", "offlineRequest"],
        {"productId": _id("product", "Must equal the request's productId"), "offlineRequest": _REQUEST_TEXT},
    ),
    "TrialForm": _closed(
        ["productId", "offlineRequest"],
        {
            "productId": _id("product", "Must equal the request's productId"),
            "offlineRequest": _REQUEST_UPLOAD,
        },
    ),
    "TrialResult": _obj(
        ["offlineResponse", "trialEndsAt", "existing"],
        {
            "offlineResponse": {"type": "string", "description": "The signed response file (compact JWS)"},
            "trialEndsAt": _TIME,
            "existing": {
                "type": "boolean",
                "description": "True when this machine already had a trial: its original end is given",
            },
        },
    ),
    "BatchForm": _closed(
        ["file"],
        {
            "file": {**_FILE, "contentMediaType": "application/zip", "description": "A zip of request files"},
            "responseValidity": _VALIDITY_TEXT,
        },
    ),
    "Health": _obj(["status", "schemaVersion"], {"status": {"const": "ok"}, "schemaVersion": _INT}),
    "Jwk": _obj(
        ["kty", "crv", "x", "kid", "use", "alg", "product", "status"],
        {
            "kty": {"const": "OKP"},
            "crv": {"const": "Ed25519"},
            "x": _TEXT,
            "kid": _TEXT,
            "use": {"const": "sig"},
            "alg": _TEXT,
            "product": _TEXT,
            "status": {"type": "string", "enum": ["active", "retired"]},
        },
    ),
    "Jwks": _obj(["keys"], {"keys": {"type": "array", "items": _ref("Jwk")}}),
    # releases
    "ReleaseFile": _obj(
        ["id", "name", "size", "sha256", "downloadUrl", "expiresAt"],
        {
            "id": _TEXT,
            "name": _TEXT,
            "size": {"type": "integer", "description": "Bytes"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "downloadUrl": {
                "type": "string",
                "description": "A path on this service, signed for this person and file; send the same bearer token",
            },
            "expiresAt": {
                "type": "integer",
                "description": "Unix time, seconds, when downloadUrl stops working",
            },
        },
    ),
    "Release": _obj(
        ["id", "productId", "version", "channel", "notes", "publishedAt", "files"],
        {
            "id": _TEXT,
            "productId": _TEXT,
            "version": _TEXT,
            "channel": _TEXT,
            "notes": {"type": "string", "description": "Plain text"},
            "publishedAt": _TIME,
            "files": {"type": "array", "items": _ref("ReleaseFile")},
        },
    ),
    "ProductReleases": _obj(
        ["productId", "productName", "releases"],
        {
            "productId": _TEXT,
            "productName": _TEXT,
            "releases": {
                "type": "array",
                "items": _ref("Release"),
                "description": "Newest version first",
            },
        },
    ),
}

_ERRORS: dict[str, tuple[str, str]] = {
    # status: (component name, description)
    "400": (
        "BadRequest",
        "Malformed input: INVALID_ARGUMENT, MALFORMED_REQUEST, BAD_SIGNATURE, BAD_ARCHIVE, ...",
    ),
    "401": (
        "Unauthenticated",
        "UNAUTHENTICATED (no, unknown, expired or revoked token) or INVALID_CREDENTIALS",
    ),
    "403": ("Forbidden", "FORBIDDEN, or LINK_INVALID / LINK_EXPIRED for a download link"),
    "404": ("NotFound", "PRODUCT_NOT_FOUND, LICENSE_NOT_FOUND, ACTIVATION_NOT_FOUND or NOT_FOUND"),
    "409": (
        "Conflict",
        "ACTIVATION_LIMIT, DEACTIVATION_LIMIT, MACHINE_KEY_MISMATCH, REQUEST_REPLAYED, CONFLICT",
    ),
    "413": ("TooLarge", "REQUEST_TOO_LARGE: the body or the request file is too large"),
    "416": ("RangeNotSatisfiable", "RANGE_NOT_SATISFIABLE: the range starts past the end of the file"),
    "422": (
        "Unprocessable",
        "License or trial state, or the request's time window (LICENSE_*, TRIAL_NOT_ALLOWED, ...)",
    ),
    "429": (
        "RateLimited",
        "RATE_LIMITED or TRIAL_DAILY_LIMIT (trials only); wait for Retry-After seconds",
    ),
    "503": ("Unavailable", "STORAGE_ERROR: the database or a stored file cannot be used now"),
}


def _responses() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, description in _ERRORS.values():
        found[name] = _json(_ref("Error"), description)
    found["RateLimited"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    found["RangeNotSatisfiable"]["headers"] = {
        "Content-Range": {"description": "bytes */SIZE", "schema": {"type": "string"}}
    }
    return found


def _op(
    summary: str,
    ok: dict[str, Any],
    *errors: str,
    tag: str,
    public: bool = False,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    ok_status: str = "200",
) -> dict[str, Any]:
    """One operation: its success answer, and the error answers it can give (by status)."""
    statuses = sorted({*errors, *(() if public else ("401",))})
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok_status: ok,
            **{s: {"$ref": f"#/components/responses/{_ERRORS[s][0]}"} for s in statuses},
        },
    }
    if public:
        op["security"] = []
    if body is not None:
        op["requestBody"] = body
    if parameters:
        op["parameters"] = parameters
    return op


def _body(json_schema: str, form_schema: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _ref(json_schema)}}
    if form_schema:
        content["multipart/form-data"] = {"schema": _ref(form_schema)}
    return {"required": True, "content": content}


_LICENSE_ID = {"name": "id", "in": "path", "required": True, "schema": _id("license")}


def _optional_id(kind: str) -> Schema:
    """An id to filter by, or empty for no filter."""
    return {"type": "string", "pattern": f"^(?:{id_pattern(kind)[1:-1]})?$"}


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_OFFLINE_ERRORS = ("400", "404", "409", "413", "422")


def _paths() -> dict[str, Any]:
    return {
        "/healthz": {
            "get": _op(
                "Health check",
                _json(_ref("Health"), "The service and its database answer"),
                "503",
                tag="service",
                public=True,
            )
        },
        "/openapi.json": {
            "get": _op("This document", _json({"type": "object"}, "OpenAPI 3.1"), tag="service", public=True)
        },
        "/.well-known/jwks.json": {
            "get": _op(
                "Public keys that sign responses (CORS for the trial origins)",
                _json(_ref("Jwks"), "JWKS (RFC 7517); retired keys have status retired"),
                "400",
                "404",
                tag="service",
                public=True,
                parameters=[_query("product", _id("product"), "Only this product's keys (404 if none)")],
            )
        },
        "/v1/accounts/login": {
            "post": _op(
                "Log in: an access token for the API",
                _json(_ref("AccessToken"), "Logged in"),
                "400",
                "401",
                "413",
                "429",
                tag="accounts",
                public=True,
                body=_body("LoginRequest"),
            )
        },
        "/v1/accounts/logout": {
            "post": _op(
                "Log out: revoke this access token",
                {"description": "Revoked"},
                tag="accounts",
                ok_status="204",
            )
        },
        "/v1/me": {"get": _op("The logged-in person", _json(_ref("User"), "The person"), tag="accounts")},
        "/v1/licenses": {
            "get": _op(
                "Licenses the person may see (own, their groups', or their organization's for an admin)",
                _json({"type": "array", "items": _ref("License")}, "The licenses"),
                tag="licenses",
            )
        },
        "/v1/licenses/{id}": {
            "parameters": [_LICENSE_ID],
            "get": _op("One license", _json(_ref("License"), "The license"), "400", "404", tag="licenses"),
        },
        "/v1/licenses/{id}/activations": {
            "parameters": [_LICENSE_ID],
            "get": _op(
                "A license's activations, live and deactivated",
                _json({"type": "array", "items": _ref("Activation")}, "The activations"),
                "400",
                "404",
                tag="licenses",
            ),
        },
        "/v1/activations/offline-activate": {
            "post": _op(
                "Process an activation request file; the answer carries the signed response file",
                _json(_ref("OfflineResult"), "Activated (or the same machine again)"),
                *_OFFLINE_ERRORS,
                tag="activations",
                body=_body("OfflineActivateRequest", "OfflineActivateForm"),
            )
        },
        "/v1/activations/offline-deactivate": {
            "post": _op(
                "Process a deactivation request file; the seat is freed",
                _json(_ref("OfflineResult"), "Deactivated (or already deactivated)"),
                *_OFFLINE_ERRORS,
                tag="activations",
                body=_body("OfflineDeactivateRequest", "OfflineDeactivateForm"),
            )
        },
        "/v1/trial-activations/offline-activate": {
            # The CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered
            # for browsers; it is no operation of the API.
            "post": _op(
                "Process a trial request file (no login; CORS for the configured origins; rate limited"
                " and new trials capped per day per client address)",
                _json(_ref("TrialResult"), "Trial granted, or the machine's existing trial"),
                "400",
                "404",
                "413",
                "422",
                "429",
                tag="trials",
                public=True,
                body=_body("TrialRequest", "TrialForm"),
            ),
        },
        "/v1/activations": {
            "get": _op(
                "Activations of every license the person may see, filtered, newest first",
                _json(_ref("ActivationPage"), "One page of activations and how many match"),
                "400",
                "404",
                tag="activations",
                parameters=[
                    _query(
                        "productId", _optional_id("product"), "Only this product's (empty: every product)"
                    ),
                    _query(
                        "licenseId",
                        _optional_id("license"),
                        "Only this license's, 404 if not the person's (empty: every license)",
                    ),
                    _query(
                        "status",
                        {"type": "string", "enum": ["", *STATUSES]},
                        "Live or deactivated only (empty: both)",
                    ),
                    _query(
                        "q", {"type": "string", "maxLength": MAX_TEXT}, "Part of the hostname or fingerprint"
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": API_LIMIT, "default": 100},
                        "Page size",
                    ),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
                        "Rows to skip",
                    ),
                ],
            )
        },
        "/v1/me/tokens": {
            "get": _op(
                "The person's live personal access tokens (never their secrets)",
                _json({"type": "array", "items": _ref("PersonalToken")}, "The tokens, newest first"),
                tag="accounts",
            ),
            "post": _op(
                "Make a personal access token; needs an access token from a login, not a personal one",
                _json(_ref("NewPersonalToken"), "Made; the secret is in this answer only"),
                "400",
                "403",
                "409",
                "413",
                tag="accounts",
                body=_body("NewPersonalTokenRequest"),
                ok_status="201",
            ),
        },
        "/v1/me/tokens/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _id("credential")}],
            "delete": _op(
                "Revoke a personal access token",
                {"description": "Revoked"},
                "400",
                "404",
                tag="accounts",
                ok_status="204",
            ),
        },
        "/v1/batches": {
            "post": _op(
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
                        "application/zip": {"schema": {**_FILE, "contentMediaType": "application/zip"}},
                        "multipart/form-data": {"schema": _ref("BatchForm")},
                    },
                },
                parameters=[
                    {"name": "responseValidity", "in": "query", "required": False, "schema": _VALIDITY_QUERY}
                ],
            )
        },
        **_release_paths(),
    }


def _release_paths() -> dict[str, Any]:
    link = [
        {"name": name, "in": "query", "required": True, "schema": schema, "description": "From downloadUrl"}
        for name, schema in (
            ("exp", {"type": "string", "pattern": "^(?:0|[1-9][0-9]{0,11})$"}),
            ("sig", {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
        )
    ]
    file_headers = {
        name: {"schema": {"type": "string"}, "description": text}
        for name, text in (
            ("ETag", "The file's SHA-256, quoted"),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", "attachment with the file's name"),
        )
    }
    download = _op(
        "Download a release file through its signed link (one byte range at most: Range: bytes=a-b,"
        " a- or -n; several ranges, or a malformed one, get the whole file)",
        {
            "description": "The whole file",
            "content": {"application/octet-stream": {}},
            "headers": file_headers,
        },
        "400",
        "403",
        "404",
        "416",
        "503",
        tag="releases",
        parameters=[
            *link,
            {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
    )
    download["responses"]["206"] = {
        "description": "The range asked for",
        "content": {"application/octet-stream": {}},
        "headers": {
            **file_headers,
            "Content-Range": {"schema": {"type": "string"}, "description": "bytes FIRST-LAST/SIZE"},
        },
    }
    return {
        "/v1/releases": {
            "get": _op(
                "Releases the person may download (products of their active licenses, up to each"
                " license's maximum version), with signed download links",
                _json({"type": "array", "items": _ref("ProductReleases")}, "By product"),
                tag="releases",
            )
        },
        "/v1/releases/files/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _id("file")}],
            "get": download,
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; treat it as read-only)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Offline activation service",
            "version": __version__,
            "summary": "Offline license activation: signed request and response files for air-gapped machines.",
            "description": "Errors are JSON `{code, message}`; the codes are stable and listed in docs/ERRORS.md.",
        },
        "tags": [
            {"name": n} for n in ("service", "accounts", "licenses", "activations", "trials", "releases")
        ],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token from POST /v1/accounts/login, or a personal access"
                    " token (portal: Profile, Sessions and tokens; or POST /v1/me/tokens)",
                }
            },
            "schemas": _SCHEMAS,
            "responses": _responses(),
        },
    }


async def endpoint(request: Request) -> Response:
    return JSONResponse(document(), headers={"cache-control": "public, max-age=300"})


routes = [Route("/openapi.json", endpoint)]
