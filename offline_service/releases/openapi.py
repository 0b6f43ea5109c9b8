"""The releases' part of ``/openapi.json``: ``/v1/releases`` and the signed file links.

Written next to the handlers it describes (releases/api.py); the link's ``exp`` and ``sig``
patterns are the ones LinkSigner accepts.
"""

from __future__ import annotations

from typing import Any

from offline_service.web.openapi_kit import TEXT, TIME, Section, id_schema, json_answer, obj, op, ref

__all__ = ["SECTION"]


_SCHEMAS = {
    "ReleaseFile": obj(
        ["id", "name", "size", "sha256", "downloadUrl", "expiresAt"],
        {
            "id": TEXT,
            "name": TEXT,
            "size": {"type": "integer", "description": "Bytes"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "downloadUrl": {
                "type": "string",
                "description": "A path on this service, signed for this person and file; send the same bearer token",
            },
            "expiresAt": {
                "type": "integer",
                "description": "Unix time, seconds, when downloadUrl stops working",
            },
        },
    ),
    "Release": obj(
        ["id", "productId", "version", "channel", "notes", "publishedAt", "files"],
        {
            "id": TEXT,
            "productId": TEXT,
            "version": TEXT,
            "channel": TEXT,
            "notes": {"type": "string", "description": "Plain text"},
            "publishedAt": TIME,
            "files": {"type": "array", "items": ref("ReleaseFile")},
        },
    ),
    "ProductReleases": obj(
        ["productId", "productName", "releases"],
        {
            "productId": TEXT,
            "productName": TEXT,
            "releases": {
                "type": "array",
                "items": ref("Release"),
                "description": "Newest version first",
            },
        },
    ),
}


def _download() -> dict[str, Any]:
    link = [
        {"name": name, "in": "query", "required": True, "schema": schema, "description": "From downloadUrl"}
        for name, schema in (
            ("exp", {"type": "string", "pattern": "^(?:0|[1-9][0-9]{0,11})$"}),
            ("sig", {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
        )
    ]
    file_headers = {
        name: {"schema": {"type": "string"}, "description": text}
        for name, text in (
            ("ETag", "The file's SHA-256, quoted"),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", "attachment with the file's name"),
        )
    }
    download = op(
        "Download a release file through its signed link (one byte range at most: Range: bytes=a-b,"
        " a- or -n; several ranges, or a malformed one, get the whole file)",
        {
            "description": "The whole file",
            "content": {"application/octet-stream": {}},
            "headers": file_headers,
        },
        "400",
        "403",
        "404",
        "416",
        "503",
        tag="releases",
        parameters=[
            *link,
            {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
    )
    download["responses"]["206"] = {
        "description": "The range asked for",
        "content": {"application/octet-stream": {}},
        "headers": {
            **file_headers,
            "Content-Range": {"schema": {"type": "string"}, "description": "bytes FIRST-LAST/SIZE"},
        },
    }
    return download


_PATHS = {
    "/v1/releases": {
        "get": op(
            "Releases the person may download (products of their active licenses, up to each"
            " license's maximum version), with signed download links",
            json_answer({"type": "array", "items": ref("ProductReleases")}, "By product"),
            tag="releases",
        )
    },
    "/v1/releases/files/{id}": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": id_schema("file")}],
        "get": _download(),
    },
}

SECTION = Section(tags=("releases",), paths=_PATHS, schemas=_SCHEMAS)
