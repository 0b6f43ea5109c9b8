"""The admin API's activations."""

from __future__ import annotations

from typing import Any

from offline_service.admin.api.activations import STATES
from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import CURSOR_QUERY, admin_op, limit_query, path_id
from offline_service.web.openapi_kit import (
    Schema,
    id_schema,
    json_answer,
    nullable,
    obj,
    optional_id,
    query,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

SCHEMAS: dict[str, Schema] = {
    "AdminActivations": obj(["activations"], {"activations": {"type": "array", "items": ref("Activation")}}),
    "AdminActivationPage": obj(
        ["activations", "nextCursor"],
        {
            "activations": {"type": "array", "items": ref("Activation"), "description": "By id"},
            "nextCursor": nullable("string", "Send as cursor for the next page; null on the last page"),
        },
    ),
}

PATHS: dict[str, Any] = {
    "/v1/admin/activations": {
        "get": admin_op(
            "The account's activations, a page at a time by id",
            Scope.ACTIVATIONS_READ,
            json_answer(ref("AdminActivationPage"), "One page"),
            "400",
            parameters=[
                query("product", optional_id("product"), "Only this product's activations"),
                query("license", optional_id("license"), "Only this license's activations"),
                query(
                    "state",
                    {"type": "string", "enum": ["", *STATES]},
                    "live: not deactivated; deactivated: deactivated or released",
                ),
                limit_query("Activations"),
                CURSOR_QUERY,
            ],
        ),
    },
    "/v1/admin/activations/{id}": {
        "parameters": [path_id(id_schema("activation"))],
        "get": admin_op(
            "One activation",
            Scope.ACTIVATIONS_READ,
            json_answer(ref("Activation"), "The activation"),
            "400",
            "404",
        ),
    },
    "/v1/admin/licenses/{id}/activations": {
        "parameters": [path_id(id_schema("license"))],
        "get": admin_op(
            "A license's activations, live and deactivated",
            Scope.ACTIVATIONS_READ,
            json_answer(ref("AdminActivations"), "The activations"),
            "400",
            "404",
        ),
    },
    "/v1/admin/activations/{id}/release": {
        "parameters": [path_id(id_schema("activation"))],
        "post": admin_op(
            "Release a seat whose machine can no longer deactivate (not counted as a deactivation)",
            Scope.ACTIVATIONS_WRITE,
            json_answer(ref("Activation"), "The activation, deactivated"),
            "400",
            "404",
            "409",
        ),
    },
}
