"""The admin API's audit log and its export."""

from __future__ import annotations

from typing import Any

from offline_service.admin.api.audit import (
    AUDIT_CURSOR_PATTERN,
    AUDIT_TEXT_PATTERN,
    EXPORT_FORMATS,
    TIME_PATTERN,
)
from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op, limit_query
from offline_service.web.openapi_kit import (
    INT,
    TEXT,
    TIME,
    Schema,
    json_answer,
    nullable,
    obj,
    optional_id,
    query,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

SCHEMAS: dict[str, Schema] = {
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
}

_AUDIT_FILTERS = [
    query("since", {"type": "string", "pattern": TIME_PATTERN}, "Entries at or after (Unix seconds)"),
    query("until", {"type": "string", "pattern": TIME_PATTERN}, "Entries before (Unix seconds)"),
    query("actor", {"type": "string", "pattern": AUDIT_TEXT_PATTERN}, "Only this actor (empty: any)"),
    query("license", optional_id("license"), "Only entries about this license"),
    query("code", {"type": "string", "pattern": AUDIT_TEXT_PATTERN}, "Only this code (OK or an error code)"),
]

PATHS: dict[str, Any] = {
    "/v1/admin/audit": {
        "get": admin_op(
            "The account's audit log, newest first, a page at a time",
            Scope.AUDIT_READ,
            json_answer(ref("AdminAuditPage"), "One page"),
            "400",
            parameters=[
                *_AUDIT_FILTERS,
                limit_query("Entries"),
                query(
                    "cursor",
                    {"type": "string", "pattern": AUDIT_CURSOR_PATTERN},
                    "nextCursor of the previous page",
                ),
            ],
        )
    },
    "/v1/admin/audit/export": {
        "get": admin_op(
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
}
