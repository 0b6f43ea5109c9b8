"""The admin API's products."""

from __future__ import annotations

from typing import Any

from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op, create_op, path_id
from offline_service.licensing.services import MAX_PRODUCT_NAME, MAX_RESPONSE_VALIDITY, MAX_TRIAL_DAYS
from offline_service.web.openapi_kit import (
    INT,
    TEXT,
    TIME,
    Schema,
    body,
    closed,
    id_schema,
    json_answer,
    obj,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_SETTINGS: dict[str, Schema] = {
    "trialDays": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_TRIAL_DAYS,
        "description": "A trial's length; 0: no trials",
    },
    "maxResponseValidity": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_RESPONSE_VALIDITY,
        "description": "Seconds: the longest a response may be applied for",
    },
    "customerRelease": {
        "type": "boolean",
        "description": "Whether organization admins may release a lost machine's seat in the portal",
    },
}
_PRODUCT: dict[str, Schema] = {
    "id": TEXT,
    "name": TEXT,
    "trialsEnabled": {"type": "boolean"},
    "trialDays": INT,
    "maxResponseValidity": {"type": "integer", "description": "Seconds"},
    "customerRelease": {"type": "boolean"},
    "createdAt": TIME,
}
_REQUIRED = list(_PRODUCT)
_ID = path_id(id_schema("product"))

SCHEMAS: dict[str, Schema] = {
    "AdminProduct": obj(_REQUIRED, _PRODUCT),
    "AdminProductCreated": obj(
        [*_REQUIRED, "kid"],
        {**_PRODUCT, "kid": {"type": "string", "description": "Its first signing key (JWKS kid)"}},
    ),
    "AdminProducts": obj(["products"], {"products": {"type": "array", "items": ref("AdminProduct")}}),
    "AdminProductCreate": closed(
        ["name"],
        {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PRODUCT_NAME,
                "description": "Not only spaces; no control characters",
            },
            **_SETTINGS,
        },
    ),
    "AdminProductChange": {**closed([], _SETTINGS), "minProperties": 1},
}

PATHS: dict[str, Any] = {
    "/v1/admin/products": {
        "get": admin_op(
            "The account's products", Scope.PRODUCTS_READ, json_answer(ref("AdminProducts"), "Products")
        ),
        "post": create_op(
            "Create a product and its first signing key",
            Scope.PRODUCTS_WRITE,
            json_answer(ref("AdminProductCreated"), "Created"),
            "400",
            "409",
            body=body("AdminProductCreate"),
        ),
    },
    "/v1/admin/products/{id}": {
        "parameters": [_ID],
        "get": admin_op(
            "One product",
            Scope.PRODUCTS_READ,
            json_answer(ref("AdminProduct"), "The product"),
            "400",
            "404",
        ),
        "patch": admin_op(
            "Change a product's trial length, response validity cap or customer release",
            Scope.PRODUCTS_WRITE,
            json_answer(ref("AdminProduct"), "The product, changed"),
            "400",
            "404",
            body=body("AdminProductChange"),
        ),
    },
}
