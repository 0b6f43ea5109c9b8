"""The admin API's releases: publish (a multipart upload), list by cursor, show, remove."""

from __future__ import annotations

from typing import Any

from offline_service.admin.api._upload import FILE_PART, MAX_FIELD_BYTES
from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import CURSOR_QUERY, admin_op, create_op, limit_query, path_id
from offline_service.releases.services import CHANNEL_PATTERN, DEFAULT_CHANNEL, MAX_FILES, MAX_NAME, MAX_NOTES
from offline_service.releases.versions import MAX_VERSION_LENGTH
from offline_service.web.openapi_kit import (
    FILE,
    TIME,
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
    "AdminReleaseFile": obj(
        ["id", "name", "size", "sha256"],
        {
            "id": id_schema("file"),
            "name": {"type": "string", "maxLength": MAX_NAME},
            "size": {"type": "integer", "description": "Bytes"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    ),
    "AdminRelease": obj(
        ["id", "productId", "version", "channel", "notes", "publishedAt", "files"],
        {
            "id": id_schema("release"),
            "productId": id_schema("product"),
            "version": {"type": "string"},
            "channel": {"type": "string"},
            "notes": {"type": "string", "description": "Plain text"},
            "publishedAt": TIME,
            "files": {"type": "array", "items": ref("AdminReleaseFile")},
        },
    ),
    "AdminReleasePage": obj(
        ["releases", "nextCursor"],
        {
            "releases": {
                "type": "array",
                "items": ref("AdminRelease"),
                "description": "By id: oldest published first",
            },
            "nextCursor": nullable("string", "Send as cursor for the next page; null on the last page"),
        },
    ),
    "AdminReleaseUpload": {
        "type": "object",
        "required": ["product", "version", FILE_PART],
        "additionalProperties": False,
        "description": "The fields first, then the files (a field after a file is refused)",
        "properties": {
            "product": id_schema("product"),
            "version": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_VERSION_LENGTH,
                "description": "e.g. 2.10.0 or 2.10.0-beta.1",
            },
            "channel": {
                "type": "string",
                "pattern": CHANNEL_PATTERN,
                "description": f"Default {DEFAULT_CHANNEL}",
            },
            "notes": {
                "type": "string",
                "maxLength": MAX_NOTES,
                "description": f"Plain text; the part is at most {MAX_FIELD_BYTES} bytes",
            },
            FILE_PART: {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_FILES,
                "items": {
                    **FILE,
                    "description": f"One file per part, with its file name (1-{MAX_NAME} printable"
                    " characters, no '/' or '\\\\', not starting with '.')",
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/v1/admin/releases": {
        "get": admin_op(
            "The account's releases with their files' sizes and SHA-256, a page at a time by id"
            " (oldest published first: releases published meanwhile come on later pages)",
            Scope.RELEASES_READ,
            json_answer(ref("AdminReleasePage"), "One page"),
            "400",
            "404",
            parameters=[
                query("product", optional_id("product"), "Only this product's releases"),
                query(
                    "channel",
                    {"type": "string", "pattern": f"^(?:{CHANNEL_PATTERN[1:-1]})?$"},
                    "Only the releases on this channel",
                ),
                limit_query("Releases"),
                CURSOR_QUERY,
            ],
        ),
        "post": create_op(
            "Publish a release: its fields and files as multipart/form-data, streamed to disk; the"
            " whole body at most OFFLINE_SERVICE_RELEASE_MAX_MB (REQUEST_TOO_LARGE). CONFLICT when the"
            " product already has the version on the channel",
            Scope.RELEASES_WRITE,
            json_answer(ref("AdminRelease"), "Published"),
            "400",
            "404",
            "409",
            "413",
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": ref("AdminReleaseUpload"),
                        "encoding": {FILE_PART: {"contentType": "application/octet-stream"}},
                    }
                },
            },
        ),
    },
    "/v1/admin/releases/{id}": {
        "parameters": [path_id(id_schema("release"))],
        "get": admin_op(
            "One release with its files' sizes and SHA-256",
            Scope.RELEASES_READ,
            json_answer(ref("AdminRelease"), "The release"),
            "400",
            "404",
        ),
        "delete": admin_op(
            "Unpublish a release: its rows, then its files",
            Scope.RELEASES_WRITE,
            json_answer(ref("AdminRemoved"), "Removed"),
            "400",
            "404",
        ),
    },
}
