"""What the admin API's sections share: an operation with its scope and the admin token's
security, the Idempotency-Key header, the page-size query, a removal's answer."""

from __future__ import annotations

from typing import Any

from offline_service.admin.api._kit import CURSOR_PATTERN, DEFAULT_LIMIT, LIMIT_PATTERN, MAX_LIMIT
from offline_service.admin.idempotency import KEY_PATTERN
from offline_service.admin.models import Scope
from offline_service.web.openapi_kit import TEXT, Schema, obj, op, query

__all__ = ["CURSOR_QUERY", "IDEMPOTENCY", "SCHEMAS", "admin_op", "create_op", "limit_query", "path_id"]

IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": KEY_PATTERN},
    "description": "A retry with the same key and body within 24 h answers the first answer"
    " (with Idempotent-Replayed: true) and creates nothing; another body: IDEMPOTENCY_KEY_REUSED",
}

SCHEMAS: dict[str, Schema] = {
    "AdminRemoved": obj(["removed"], {"removed": TEXT}),
}


def admin_op(summary: str, scope: Scope, ok: dict[str, Any], *errors: str, **kw: Any) -> dict[str, Any]:
    """An admin operation: its summary names the scope it needs; 403 without it; 429 after too many
    failed authentications from the client's address."""
    operation = op(f"{summary} (scope {scope.value})", ok, "403", "429", *errors, tag="admin", **kw)
    operation["security"] = [{"adminToken": []}]
    return operation


def create_op(
    summary: str, scope: Scope, ok: dict[str, Any], *errors: str, ok_status: str = "201", **kw: Any
) -> dict[str, Any]:
    """An admin operation that creates (or issues a secret): it takes an Idempotency-Key."""
    return admin_op(summary, scope, ok, *errors, parameters=[IDEMPOTENCY], ok_status=ok_status, **kw)


def path_id(schema: Schema) -> dict[str, Any]:
    """The ``{id}`` path parameter."""
    return {"name": "id", "in": "path", "required": True, "schema": schema}


def limit_query(what: str) -> dict[str, Any]:
    return query(
        "limit",
        {"type": "string", "pattern": LIMIT_PATTERN},
        f"{what} per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    )


CURSOR_QUERY = query(
    "cursor", {"type": "string", "pattern": CURSOR_PATTERN}, "nextCursor of the previous page"
)
"""The ``cursor`` of a list paged by id (licenses, activations, organizations, users)."""
