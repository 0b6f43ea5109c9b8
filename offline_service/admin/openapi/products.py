"""The admin API's products."""

from __future__ import annotations

from typing import Any

from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op
from offline_service.web.openapi_kit import INT, TEXT, TIME, Schema, json_answer, obj, ref

__all__ = ["PATHS", "SCHEMAS"]

SCHEMAS: dict[str, Schema] = {
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
}

PATHS: dict[str, Any] = {
    "/v1/admin/products": {
        "get": admin_op(
            "The account's products", Scope.PRODUCTS_READ, json_answer(ref("AdminProducts"), "Products")
        )
    },
}
