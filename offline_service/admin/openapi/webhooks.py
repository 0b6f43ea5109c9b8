"""The admin API's webhook endpoints and deliveries."""

from __future__ import annotations

from typing import Any

from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op, create_op, limit_query, path_id
from offline_service.web.openapi_kit import (
    INT,
    TEXT,
    TIME,
    Schema,
    body,
    closed,
    id_schema,
    json_answer,
    nullable,
    obj,
    query,
    ref,
)
from offline_service.webhooks.models import EVENT_TYPES
from offline_service.webhooks.services import CURSOR_PATTERN, MAX_ENDPOINTS, ROTATION_GRACE
from offline_service.webhooks.urls import MAX_URL

__all__ = ["PATHS", "SCHEMAS"]

_HOOK_ID = path_id(id_schema("webhook_endpoint"))

SCHEMAS: dict[str, Schema] = {
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
    "AdminWebhookRotated": {
        "allOf": [
            ref("AdminWebhookCreated"),
            obj(
                ["previousSecretUntil"],
                {
                    "previousSecretUntil": {
                        "type": ["integer", "null"],
                        "description": "Until when (Unix seconds) the replaced secret still signs beside"
                        " the new one; null: it signs no more",
                    }
                },
            ),
        ]
    },
    "AdminWebhookRotate": closed(
        [],
        {
            "graceSeconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": ROTATION_GRACE,
                "default": ROTATION_GRACE,
                "description": "How long the replaced secret still signs beside the new one"
                " (0: a leaked secret, at once)",
            }
        },
    ),
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
        ["deliveries", "nextCursor"],
        {
            "deliveries": {
                "type": "array",
                "items": ref("AdminWebhookDelivery"),
                "description": "Newest first",
            },
            "nextCursor": nullable("string", "Send as cursor for the next page; null on the last page"),
        },
    ),
}

PATHS: dict[str, Any] = {
    "/v1/admin/webhooks": {
        "get": admin_op(
            "The account's webhook endpoints (never their secrets)",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookEndpoints"), "Oldest first"),
        ),
        "post": create_op(
            f"Register a webhook endpoint (at most {MAX_ENDPOINTS} an account); the answer carries"
            " its signing secret, once. A refused URL: WEBHOOK_URL_REFUSED with its reason",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminWebhookCreated"), "Created"),
            "400",
            "409",
            body=body("AdminWebhookCreate"),
        ),
    },
    "/v1/admin/webhooks/{id}": {
        "parameters": [_HOOK_ID],
        "get": admin_op(
            "One webhook endpoint (never its secret)",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookEndpoint"), "The endpoint"),
            "400",
            "404",
        ),
        "delete": admin_op(
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
            "post": admin_op(
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
    "/v1/admin/webhooks/{id}/rotate-secret": {
        "parameters": [_HOOK_ID],
        "post": create_op(
            "Give a webhook endpoint a new signing secret, shown in this answer only; the replaced"
            " one signs beside it for graceSeconds (Standard Webhooks: several signatures)",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminWebhookRotated"), "The new secret"),
            "400",
            "404",
            body={**body("AdminWebhookRotate"), "required": False},
            ok_status="200",
        ),
    },
    "/v1/admin/webhooks/{id}/deliveries": {
        "parameters": [_HOOK_ID],
        "get": admin_op(
            "A webhook endpoint's delivery log, newest first, a page at a time",
            Scope.WEBHOOKS_READ,
            json_answer(ref("AdminWebhookDeliveries"), "One page"),
            "400",
            "404",
            parameters=[
                limit_query("Deliveries"),
                query(
                    "cursor", {"type": "string", "pattern": CURSOR_PATTERN}, "nextCursor of the previous page"
                ),
            ],
        ),
    },
    "/v1/admin/webhook-deliveries/{id}/redeliver": {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": id_schema("webhook_delivery")}
        ],
        "post": admin_op(
            "Send a delivery again, from now, with a fresh schedule of attempts",
            Scope.WEBHOOKS_WRITE,
            json_answer(ref("AdminWebhookDelivery"), "The delivery, queued"),
            "400",
            "404",
        ),
    },
}
