"""The admin API's part of ``/openapi.json``: ``/v1/admin/...``, authenticated with an admin token
(the ``adminToken`` security scheme), each operation naming the scope it needs.

The bounds are the handlers' own (imported from them). An admin route answers 401 for a person's
token and 403 for an admin token without the scope.
"""

from __future__ import annotations

from typing import Any

from offline_service.admin.api import (
    AUDIT_CURSOR_PATTERN,
    AUDIT_TEXT_PATTERN,
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    EXPORT_FORMATS,
    LIMIT_PATTERN,
    MAX_LIMIT,
    TIME_PATTERN,
)
from offline_service.admin.idempotency import KEY_PATTERN
from offline_service.admin.models import Scope
from offline_service.fileformat.messages import MAX_COUNT
from offline_service.licensing.models import LicenseStatus
from offline_service.licensing.services import MAX_LICENSE_TEXT
from offline_service.web.openapi_kit import (
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
from offline_service.webhooks.models import EVENT_TYPES
from offline_service.webhooks.services import MAX_ENDPOINTS
from offline_service.webhooks.urls import MAX_URL

__all__ = ["SECTION"]

_COUNT: Schema = {"type": "integer", "minimum": -1, "maximum": MAX_COUNT, "description": "-1: unlimited"}
_FUTURE: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**53,
    "description": "Unix time, seconds; must be in the future",
}
_LICENSE_TEXT: Schema = {"type": "string", "maxLength": MAX_LICENSE_TEXT}

_SCHEMAS: dict[str, Schema] = {
    "AdminProduct": obj(
        ["id", "name", "trialsEnabled", "trialDays", "maxResponseValidity", "customerRelease", "createdAt"],
        {
            "id": TEXT,
            "name": TEXT,
            "trialsEnabled": {"type": "boolean"},
            "trialDays": INT,
            "maxResponseValidity": {"type": "integer", "description": "Seconds"},
            "customerRelease": {"type": "boolean"},
            "createdAt": TIME,
        },
    ),
    "AdminProducts": obj(["products"], {"products": {"type": "array", "items": ref("AdminProduct")}}),
    "AdminLicensePage": obj(
        ["licenses", "nextCursor"],
        {
            "licenses": {"type": "array", "items": ref("License"), "description": "By id"},
            "nextCursor": nullable("string", "Send as cursor for the next page; null on the last page"),
        },
    ),
    "AdminLicenseDetails": {
        "allOf": [
            ref("License"),
            obj(
                ["owner", "activations"],
                {
                    "owner": nullable("string", "The vendor's free-text note of who holds it"),
                    "activations": {"type": "array", "items": ref("Activation")},
                },
            ),
        ]
    },
    "AdminAuditEntry": obj(
        ["id", "at", "actor", "action", "code", "productId", "licenseId", "activationId", "detail"],
        {
            "id": INT,
            "at": TIME,
            "actor": {"type": "string", "description": "cli, user:<id>, admin_token:<id>, login, ..."},
            "action": TEXT,
            "code": {"type": "string", "description": "OK or an error code"},
            "productId": nullable("string"),
            "licenseId": nullable("string"),
            "activationId": nullable("string"),
            "detail": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    ),
    "AdminAuditPage": obj(
        ["entries", "nextCursor"],
        {
            "entries": {"type": "array", "items": ref("AdminAuditEntry"), "description": "Newest first"},
            "nextCursor": nullable(
                "string", "Send as cursor for the next (older) page; null on the last page"
            ),
        },
    ),
    "AdminActivations": obj(["activations"], {"activations": {"type": "array", "items": ref("Activation")}}),
    "AdminLicenseCreate": closed(
        ["productId", "allowedActivations", "allowedDeactivations"],
        {
            "productId": id_schema("product"),
            "allowedActivations": _COUNT,
            "allowedDeactivations": _COUNT,
            "expiresAt": _FUTURE,
            "validityDays": {
                "type": "integer",
                "minimum": 1,
                "maximum": 36500,
                "description": "Expires this many days after the first activation (not with expiresAt)",
            },
            "name": _LICENSE_TEXT,
            "owner": _LICENSE_TEXT,
            "ownerUserEmail": {"type": "string", "description": "A portal user of the account"},
            "ownerOrganization": {"type": "string", "description": "An organization's name"},
            "metadata": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Sent in every response (the request files' metadata limits)",
            },
            "maxVersion": {"type": "string", "description": "The newest release it entitles to"},
        },
    ),
    "AdminLicenseChange": closed(
        [],
        {
            "allowedActivations": _COUNT,
            "allowedDeactivations": _COUNT,
            "expiresAt": {**_FUTURE, "type": ["integer", "null"], "description": "null: never expires"},
            "maxVersion": nullable("string", "null: every release"),
        },
    ),
    "AdminWebhookEndpoint": obj(
        ["id", "url", "events", "enabled", "createdAt", "failingSince", "disabledAt"],
        {
            "id": id_schema("webhook_endpoint"),
            "url": TEXT,
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
            "enabled": {"type": "boolean"},
            "createdAt": TIME,
            "failingSince": {"type": ["integer", "null"], "description": "Failing since (Unix seconds)"},
            "disabledAt": {"type": ["integer", "null"], "description": "Disabled at (Unix seconds)"},
        },
    ),
    "AdminWebhookCreated": {
        "allOf": [
            ref("AdminWebhookEndpoint"),
            obj(
                ["secret"],
                {
                    "secret": {
                        "type": "string",
                        "description": "The signing secret (whsec_...): shown in this answer only",
                    }
                },
            ),
        ]
    },
    "AdminWebhookEndpoints": obj(
        ["endpoints"], {"endpoints": {"type": "array", "items": ref("AdminWebhookEndpoint")}}
    ),
    "AdminWebhookCreate": closed(
        ["url", "events"],
        {
            "url": {
                "type": "string",
                "maxLength": MAX_URL,
                "description": "https:// (http only to loopback, when the settings allow it)",
            },
            "events": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": list(EVENT_TYPES)},
            },
        },
    ),
    "AdminWebhookDelivery": obj(
        [
            "id",
            "endpointId",
            "event",
            "state",
            "createdAt",
            "attempts",
            "nextAttemptAt",
            "lastAttemptAt",
            "lastStatus",
            "lastLatencyMs",
            "lastError",
            "deliveredAt",
        ],
        {
            "id": {**id_schema("webhook_delivery"), "description": "The webhook-id header"},
            "endpointId": id_schema("webhook_endpoint"),
            "event": TEXT,
            "state": {"type": "string", "enum": ["pending", "delivered", "given up"]},
            "createdAt": TIME,
            "attempts": INT,
            "nextAttemptAt": {"type": ["integer", "null"]},
            "lastAttemptAt": {"type": ["integer", "null"]},
            "lastStatus": {"type": ["integer", "null"], "description": "The receiver's HTTP status"},
            "lastLatencyMs": {"type": ["integer", "null"]},
            "lastError": nullable("string"),
            "deliveredAt": {"type": ["integer", "null"]},
        },
    ),
    "AdminWebhookDeliveries": obj(
        ["deliveries"],
        {
            "deliveries": {
                "type": "array",
                "items": ref("AdminWebhookDelivery"),
                "description": "Newest first",
            }
        },
    ),
    "AdminRemoved": obj(["removed"], {"removed": TEXT}),
}

_ID = {"name": "id", "in": "path", "required": True, "schema": id_schema("license")}
_HOOK_ID = {"name": "id", "in": "path", "required": True, "schema": id_schema("webhook_endpoint")}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": KEY_PATTERN},
    "description": "A retry with the same key and body within 24 h answers the first answer"
    " (with Idempotent-Replayed: true) and creates nothing; another body: IDEMPOTENCY_KEY_REUSED",
}


def _op(summary: str, scope: Scope, ok: dict[str, Any], *errors: str, **kw: Any) -> dict[str, Any]:
    operation = op(f"{summary} (scope {scope.value})", ok, "403", *errors, tag="admin", **kw)
    operation["security"] = [{"adminToken": []}]
    return operation


def _status(verb: str) -> dict[str, Any]:
    return {
        "parameters": [_ID],
        "post": _op(
            f"{verb.capitalize()} a license",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), f"The license, {verb}d"),
            "400",
            "404",
        ),
    }


_AUDIT_FILTERS = [
    query("since", {"type": "string", "pattern": TIME_PATTERN}, "Entries at or after (Unix seconds)"),
    query("until", {"type": "string", "pattern": TIME_PATTERN}, "Entries before (Unix seconds)"),
    query("actor", {"type": "string", "pattern": AUDIT_TEXT_PATTERN}, "Only this actor (empty: any)"),
    query("license", optional_id("license"), "Only entries about this license"),
    query("code", {"type": "string", "pattern": AUDIT_TEXT_PATTERN}, "Only this code (OK or an error code)"),
]

_PATHS: dict[str, Any] = {
    "/v1/admin/products": {
        "get": _op(
            "The account's products", Scope.PRODUCTS_READ, json_answer(ref("AdminProducts"), "Products")
        )
    },
    "/v1/admin/licenses": {
        "get": _op(
            "The account's licenses, a page at a time by id",
            Scope.LICENSES_READ,
            json_answer(ref("AdminLicensePage"), "One page"),
            "400",
            parameters=[
                query("product", optional_id("product"), "Only this product's licenses"),
                query(
                    "status",
                    {"type": "string", "enum": ["", *(s.value for s in LicenseStatus)]},
                    "Only licenses in this status (as stored; expiry is not a status)",
                ),
                query(
                    "limit",
                    {"type": "string", "pattern": LIMIT_PATTERN},
                    f"Licenses per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
                ),
                query(
                    "cursor", {"type": "string", "pattern": CURSOR_PATTERN}, "nextCursor of the previous page"
                ),
            ],
        ),
        "post": _op(
            "Create a license",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), "Created"),
            "400",
            "404",
            "409",
            body=body("AdminLicenseCreate"),
            parameters=[_IDEMPOTENCY],
            ok_status="201",
        ),
    },
    "/v1/admin/licenses/{id}": {
        "parameters": [_ID],
        "get": _op(
            "One license with its activations",
            Scope.LICENSES_READ,
            json_answer(ref("AdminLicenseDetails"), "The license"),
            "400",
            "404",
        ),
        "patch": _op(
            "Change a license's limits, expiry or maximum version",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), "The license, changed"),
            "400",
            "404",
            body=body("AdminLicenseChange"),
        ),
    },
    "/v1/admin/licenses/{id}/activations": {
        "parameters": [_ID],
        "get": _op(
            "A license's activations, live and deactivated",
            Scope.ACTIVATIONS_READ,
            json_answer(ref("AdminActivations"), "The activations"),
            "400",
            "404",
        ),
    },
    "/v1/admin/activations/{id}/release": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": id_schema("activation")}],
        "post": _op(
            "Release a seat whose machine can no longer deactivate (not counted as a deactivation)",
            Scope.ACTIVATIONS_WRITE,
            json_answer(ref("Activation"), "The activation, deactivated"),
            "400",
            "404",
            "409",
        ),
    },
    "/v1/admin/audit": {
        "get": _op(
            "The account's audit log, newest first, a page at a time",
            Scope.AUDIT_READ,
            json_answer(ref("AdminAuditPage"), "One page"),
            "400",
            parameters=[
                *_AUDIT_FILTERS,
                query(
                    "limit",
                    {"type": "string", "pattern": LIMIT_PATTERN},
                    f"Entries per page, 1 to {MAX_LIMIT}",
                ),
                query(
                    "cursor",
                    {"type": "string", "pattern": AUDIT_CURSOR_PATTERN},
                    "nextCursor of the previous page",
                ),
            ],
        )
    },
    "/v1/admin/audit/export": {
        "get": _op(
            "Every entry of the account's audit log the filters keep, newest first, streamed as a"
            " CSV file (a header row; cells that would start a spreadsheet formula begin with ')"
            " or as JSON lines (one entry a line, as in the audit log's pages)",
            Scope.AUDIT_READ,
            {
                "description": "The entries, as an attachment",
                "headers": {
                    "Content-Disposition": {
                        "schema": {"type": "string"},
                        "description": "attachment; filename=audit-<UTC time>.csv or .jsonl",
                    }
                },
                "content": {
                    EXPORT_FORMATS["csv"].split(";")[0]: {"schema": {"type": "string"}},
                    EXPORT_FORMATS["jsonl"]: {"schema": {"type": "string"}},
                },
            },
            "400",
            parameters=[
                query(
                    "format", {"type": "string", "enum": ["", *EXPORT_FORMATS]}, "csv (the default) or jsonl"
                ),
                *_AUDIT_FILTERS,
            ],
        )
    },
    "/v1/admin/webhooks": {
        "get": _op(
            "The account's webhook endpoints (never their secrets)",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookEndpoints"), "Oldest first"),
        ),
        "post": _op(
            f"Register a webhook endpoint (at most {MAX_ENDPOINTS} an account); the answer carries"
            " its signing secret, once. A refused URL: WEBHOOK_URL_REFUSED with its reason",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminWebhookCreated"), "Created"),
            "400",
            "409",
            body=body("AdminWebhookCreate"),
            parameters=[_IDEMPOTENCY],
            ok_status="201",
        ),
    },
    "/v1/admin/webhooks/{id}": {
        "parameters": [_HOOK_ID],
        "get": _op(
            "One webhook endpoint (never its secret)",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookEndpoint"), "The endpoint"),
            "400",
            "404",
        ),
        "delete": _op(
            "Remove a webhook endpoint and its delivery log",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminRemoved"), "Removed"),
            "400",
            "404",
        ),
    },
    **{
        f"/v1/admin/webhooks/{{id}}/{verb}": {
            "parameters": [_HOOK_ID],
            "post": _op(
                text,
                Scope.WEBHOOKS_WRITE,
                json_answer(ref("AdminWebhookEndpoint"), "The endpoint"),
                "400",
                "404",
            ),
        }
        for verb, text in (
            (
                "enable",
                "Enable a webhook endpoint (its run of failures forgotten; waiting deliveries go out)",
            ),
            ("disable", "Stop sending to a webhook endpoint"),
        )
    },
    "/v1/admin/webhooks/{id}/deliveries": {
        "parameters": [_HOOK_ID],
        "get": _op(
            "A webhook endpoint's delivery log, newest first",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookDeliveries"), "The deliveries"),
            "400",
            "404",
            parameters=[
                query(
                    "limit",
                    {"type": "string", "pattern": LIMIT_PATTERN},
                    f"At most this many, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
                )
            ],
        ),
    },
    "/v1/admin/webhook-deliveries/{id}/redeliver": {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": id_schema("webhook_delivery")}
        ],
        "post": _op(
            "Send a delivery again, from now, with a fresh schedule of attempts",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminWebhookDelivery"), "The delivery, queued"),
            "400",
            "404",
        ),
    },
    "/v1/admin/licenses/{id}/suspend": _status("suspend"),
    "/v1/admin/licenses/{id}/reinstate": _status("reinstate"),
    "/v1/admin/licenses/{id}/revoke": _status("revoke"),
}

SECTION = Section(tags=("admin",), paths=_PATHS, schemas=_SCHEMAS)
