"""The admin API's activations."""

from __future__ import annotations

from typing import Any

from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op, path_id
from offline_service.web.openapi_kit import Schema, id_schema, json_answer, obj, ref

__all__ = ["PATHS", "SCHEMAS"]

SCHEMAS: dict[str, Schema] = {
    "AdminActivations": obj(["activations"], {"activations": {"type": "array", "items": ref("Activation")}}),
}

PATHS: dict[str, Any] = {
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
