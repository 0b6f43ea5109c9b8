"""The pieces every domain's OpenAPI section is written with: schema shorthands, one operation with
its error answers, and :class:`Section`, what a domain contributes to ``/openapi.json``.

Each domain describes its own routes next to them (``licensing/openapi.py``, ``accounts/openapi.py``,
``releases/openapi.py``); ``web/openapi.py`` holds what they share and merges the sections. The
error answers are named by HTTP status here, once, so every section refers to the same components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from offline_service.ids import id_pattern

__all__ = [
    "ERRORS",
    "FILE",
    "INT",
    "TEXT",
    "TIME",
    "Schema",
    "Section",
    "body",
    "closed",
    "id_schema",
    "json_answer",
    "nullable",
    "obj",
    "op",
    "optional_id",
    "query",
    "ref",
]

Schema = dict[str, Any]

TEXT: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
TIME: Schema = {"type": "integer", "description": "Unix time, seconds"}
FILE: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}

ERRORS: dict[str, tuple[str, str]] = {
    # status: (component name, description)
    "400": (
        "BadRequest",
        "Malformed input: INVALID_ARGUMENT, MALFORMED_REQUEST, BAD_SIGNATURE, BAD_ARCHIVE, ...",
    ),
    "401": (
        "Unauthenticated",
        "UNAUTHENTICATED (no, unknown, expired or revoked token) or INVALID_CREDENTIALS",
    ),
    "403": ("Forbidden", "FORBIDDEN, or LINK_INVALID / LINK_EXPIRED for a download link"),
    "404": ("NotFound", "PRODUCT_NOT_FOUND, LICENSE_NOT_FOUND, ACTIVATION_NOT_FOUND or NOT_FOUND"),
    "409": (
        "Conflict",
        "ACTIVATION_LIMIT, DEACTIVATION_LIMIT, MACHINE_KEY_MISMATCH, REQUEST_REPLAYED, CONFLICT",
    ),
    "413": ("TooLarge", "REQUEST_TOO_LARGE: the body or the request file is too large"),
    "416": ("RangeNotSatisfiable", "RANGE_NOT_SATISFIABLE: the range starts past the end of the file"),
    "422": (
        "Unprocessable",
        "License or trial state, or the request's time window (LICENSE_*, TRIAL_NOT_ALLOWED, ...)",
    ),
    "429": (
        "RateLimited",
        "RATE_LIMITED or TRIAL_DAILY_LIMIT (trials only); wait for Retry-After seconds",
    ),
    "503": ("Unavailable", "STORAGE_ERROR: the database or a stored file cannot be used now"),
}


@dataclass(frozen=True, slots=True)
class Section:
    """One domain's part of the document: its tags (in the order they are listed), paths and
    component schemas. ``web/openapi.py`` merges the sections and refuses a name given twice."""

    tags: tuple[str, ...]
    paths: Mapping[str, Any]
    schemas: Mapping[str, Schema] = field(default_factory=dict)


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], properties: dict[str, Schema], description: str = "") -> Schema:
    """An object with these properties, the ``required`` ones always present."""
    schema: Schema = {"type": "object", "required": required, "properties": properties}
    if description:
        schema["description"] = description
    return schema


def closed(required: list[str], properties: dict[str, Schema]) -> Schema:
    """A form whose fields are exactly these: the handler refuses any other (INVALID_ARGUMENT)."""
    return {**obj(required, properties), "additionalProperties": False}


def nullable(type_: str, description: str = "") -> Schema:
    """A value of ``type_`` or null."""
    schema: Schema = {"type": [type_, "null"]}
    if description:
        schema["description"] = description
    return schema


def json_answer(schema: Schema, description: str) -> dict[str, Any]:
    """An answer with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def id_schema(kind: str, description: str = "") -> Schema:
    """An identifier of ``kind``, by the shape ``ids.check_id`` accepts."""
    schema: Schema = {"type": "string", "pattern": id_pattern(kind)}
    if description:
        schema["description"] = description
    return schema


def optional_id(kind: str) -> Schema:
    """An id to filter by, or empty for no filter."""
    return {"type": "string", "pattern": f"^(?:{id_pattern(kind)[1:-1]})?$"}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def op(
    summary: str,
    ok: dict[str, Any],
    *errors: str,
    tag: str,
    public: bool = False,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    ok_status: str = "200",
) -> dict[str, Any]:
    """One operation: its success answer, and the error answers it can give (by status)."""
    statuses = sorted({*errors, *(() if public else ("401",))})
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok_status: ok,
            **{s: {"$ref": f"#/components/responses/{ERRORS[s][0]}"} for s in statuses},
        },
    }
    if public:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


def body(json_schema: str, form_schema: str | None = None) -> dict[str, Any]:
    """A required request body: JSON with component ``json_schema``, and a form if one is named."""
    content: dict[str, Any] = {"application/json": {"schema": ref(json_schema)}}
    if form_schema:
        content["multipart/form-data"] = {"schema": ref(form_schema)}
    return {"required": True, "content": content}
