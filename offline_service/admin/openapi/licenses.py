"""The admin API's licenses."""

from __future__ import annotations

from typing import Any

from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import CURSOR_QUERY, admin_op, create_op, limit_query, path_id
from offline_service.fileformat.messages import MAX_COUNT
from offline_service.licensing.models import LicenseStatus
from offline_service.licensing.services import MAX_LICENSE_TEXT
from offline_service.web.openapi_kit import (
    Schema,
    body,
    closed,
    id_schema,
    json_answer,
    nullable,
    obj,
    optional_id,
    query,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_COUNT: Schema = {"type": "integer", "minimum": -1, "maximum": MAX_COUNT, "description": "-1: unlimited"}
_FUTURE: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**53,
    "description": "Unix time, seconds; must be in the future",
}
_LICENSE_TEXT: Schema = {"type": "string", "maxLength": MAX_LICENSE_TEXT}
_ID = path_id(id_schema("license"))

SCHEMAS: dict[str, Schema] = {
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
}


def _status(verb: str) -> dict[str, Any]:
    return {
        "parameters": [_ID],
        "post": admin_op(
            f"{verb.capitalize()} a license",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), f"The license, {verb}d"),
            "400",
            "404",
        ),
    }


PATHS: dict[str, Any] = {
    "/v1/admin/licenses": {
        "get": admin_op(
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
                limit_query("Licenses"),
                CURSOR_QUERY,
            ],
        ),
        "post": create_op(
            "Create a license",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), "Created"),
            "400",
            "404",
            "409",
            body=body("AdminLicenseCreate"),
        ),
    },
    "/v1/admin/licenses/{id}": {
        "parameters": [_ID],
        "get": admin_op(
            "One license with its activations",
            Scope.LICENSES_READ,
            json_answer(ref("AdminLicenseDetails"), "The license"),
            "400",
            "404",
        ),
        "patch": admin_op(
            "Change a license's limits, expiry or maximum version",
            Scope.LICENSES_WRITE,
            json_answer(ref("License"), "The license, changed"),
            "400",
            "404",
            body=body("AdminLicenseChange"),
        ),
    },
    "/v1/admin/licenses/{id}/suspend": _status("suspend"),
    "/v1/admin/licenses/{id}/reinstate": _status("reinstate"),
    "/v1/admin/licenses/{id}/revoke": _status("revoke"),
}
