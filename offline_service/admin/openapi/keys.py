"""The admin API's signing keys: public parts only."""

from __future__ import annotations

from typing import Any

from offline_service.admin.api.keys import KID_PATTERN
from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import admin_op, create_op, path_id
from offline_service.fileformat.jws import EMITTED_ALG
from offline_service.web.openapi_kit import TIME, Schema, id_schema, json_answer, obj, ref

__all__ = ["PATHS", "SCHEMAS"]

_PRODUCT_ID = path_id(id_schema("product"))
_KID = {"type": "string", "pattern": KID_PATTERN, "description": "The key's RFC 7638 thumbprint"}

SCHEMAS: dict[str, Schema] = {
    "AdminKey": obj(
        ["kid", "productId", "algorithm", "status", "createdAt", "jwk"],
        {
            "kid": _KID,
            "productId": id_schema("product"),
            "algorithm": {"type": "string", "enum": [EMITTED_ALG]},
            "status": {
                "type": "string",
                "enum": ["active", "retired"],
                "description": "The active key signs; retired ones still verify what they signed",
            },
            "createdAt": TIME,
            "jwk": obj(
                ["kty", "crv", "x", "kid", "alg", "use"],
                {
                    "kty": {"type": "string", "enum": ["OKP"]},
                    "crv": {"type": "string", "enum": ["Ed25519"]},
                    "x": {"type": "string"},
                    "kid": _KID,
                    "alg": {"type": "string"},
                    "use": {"type": "string"},
                },
                "The public key as a JWK (RFC 7517), as in /.well-known/jwks.json",
            ),
        },
    ),
    "AdminKeys": obj(
        ["keys"], {"keys": {"type": "array", "items": ref("AdminKey"), "description": "Oldest first"}}
    ),
}

PATHS: dict[str, Any] = {
    "/v1/admin/products/{id}/keys": {
        "parameters": [_PRODUCT_ID],
        "get": admin_op(
            "A product's signing keys: public parts only",
            Scope.KEYS_READ,
            json_answer(ref("AdminKeys"), "Keys"),
            "400",
            "404",
        ),
    },
    "/v1/admin/products/{id}/keys/rotate": {
        "parameters": [_PRODUCT_ID],
        "post": create_op(
            "Make a new active signing key; the earlier ones stay, retired, so that what they signed"
            " keeps verifying",
            Scope.KEYS_WRITE,
            json_answer(ref("AdminKey"), "The new active key"),
            "400",
            "404",
        ),
    },
    "/v1/admin/products/{id}/keys/{kid}": {
        "parameters": [_PRODUCT_ID, {"name": "kid", "in": "path", "required": True, "schema": _KID}],
        "delete": admin_op(
            "Delete a retired key (the active one: CONFLICT); responses it signed stop verifying",
            Scope.KEYS_WRITE,
            json_answer(ref("AdminRemoved"), "Removed"),
            "400",
            "404",
            "409",
        ),
    },
}
