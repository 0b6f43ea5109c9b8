"""The OpenAPI 3.1 description of the JSON API, written by hand and served at ``/openapi.json``.

Each domain describes its own routes in its ``openapi.py`` section (accounts, licensing, releases);
this module holds the service-wide routes (health, this document, the JWKS), the schemas and error
answers every section shares, and merges the sections into one document. A test checks that every
route under ``/v1``, ``/.well-known`` and ``/healthz`` appears here with its methods, and
schemathesis checks that the service accepts what this document calls valid and refuses the rest
(tests/web/test_schemathesis.py): the lengths, patterns and bounds are the ones the handlers
enforce, taken from them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_service import __version__
from offline_service.accounts import openapi as accounts
from offline_service.admin import openapi as admin
from offline_service.errors import Code
from offline_service.licensing import openapi as licensing
from offline_service.releases import openapi as releases
from offline_service.web.openapi_kit import (
    ERRORS,
    INT,
    TEXT,
    Schema,
    Section,
    id_schema,
    json_answer,
    obj,
    op,
    query,
    ref,
)

__all__ = ["SECTION", "document", "endpoint", "merge", "routes"]

_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ["code", "message", "nextStep"],
        {
            "code": {
                "type": "string",
                "enum": [c.value for c in Code if c is not Code.OK],
                "description": "Stable; see docs/ERRORS.md",
            },
            "message": {"type": "string", "description": "For people; may change"},
            "nextStep": {
                "type": "string",
                "description": "What to do next, one line for people; the same for every error of the code; may change",
            },
            "reason": {
                "type": "string",
                "description": "WEBHOOK_URL_REFUSED only: why, stable (scheme, private, loopback, ...)",
            },
        },
        "Every error answer.",
    ),
    "Health": obj(["status"], {"status": {"const": "ok"}}, "Liveness: no database round trip."),
    "Ready": obj(["status", "schemaVersion"], {"status": {"const": "ready"}, "schemaVersion": INT}),
    "NotReady": obj(
        ["status", "code", "reasons"],
        {
            "status": {"const": "not ready"},
            "code": {
                "type": "string",
                "enum": [Code.STORAGE_ERROR.value, Code.KEY_ERROR.value, Code.INSECURE_KEY_FILE.value],
                "description": "The first failing check's code",
            },
            "reasons": {"type": "array", "items": {"type": "string"}, "description": "For people"},
        },
        "The database does not answer, its schema is behind, or a product's key does not load.",
    ),
    "Jwk": obj(
        ["kty", "crv", "x", "kid", "use", "alg", "product", "status"],
        {
            "kty": {"const": "OKP"},
            "crv": {"const": "Ed25519"},
            "x": TEXT,
            "kid": TEXT,
            "use": {"const": "sig"},
            "alg": TEXT,
            "product": TEXT,
            "status": {"type": "string", "enum": ["active", "retired"]},
        },
    ),
    "Jwks": obj(["keys"], {"keys": {"type": "array", "items": ref("Jwk")}}),
}


def _readyz() -> dict[str, Any]:
    operation = op(
        "Readiness: the database answers, the schema is current, every product's key loads",
        json_answer(ref("Ready"), "Ready to serve"),
        tag="service",
        public=True,
    )
    operation["responses"]["503"] = json_answer(ref("NotReady"), "Not ready; the reasons say why")
    return operation


_PATHS = {
    "/healthz": {
        "get": op(
            "Liveness: the process answers (no database round trip)",
            json_answer(ref("Health"), "The process is alive"),
            tag="service",
            public=True,
        )
    },
    "/readyz": {"get": _readyz()},
    "/openapi.json": {
        "get": op("This document", json_answer({"type": "object"}, "OpenAPI 3.1"), tag="service", public=True)
    },
    "/.well-known/jwks.json": {
        "get": op(
            "Public keys that sign responses (CORS for the trial origins)",
            json_answer(ref("Jwks"), "JWKS (RFC 7517); retired keys have status retired"),
            "400",
            "404",
            tag="service",
            public=True,
            parameters=[query("product", id_schema("product"), "Only this product's keys (404 if none)")],
        )
    },
}

SECTION = Section(tags=("service",), paths=_PATHS, schemas=_SCHEMAS)
"""The service-wide routes and the schemas every section may refer to (``Error`` above all)."""


def _responses() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, description in ERRORS.values():
        found[name] = json_answer(ref("Error"), description)
    found["RateLimited"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    found["RangeNotSatisfiable"]["headers"] = {
        "Content-Range": {"description": "bytes */SIZE", "schema": {"type": "string"}}
    }
    return found


def merge(sections: Iterable[Section]) -> tuple[list[str], dict[str, Any], dict[str, Schema]]:
    """The sections' tags, paths and schemas together, in the sections' order; ValueError for a tag,
    path or schema two sections both give, which one of them would otherwise silently replace."""
    tags: list[str] = []
    paths: dict[str, Any] = {}
    schemas: dict[str, Schema] = {}
    for section in sections:
        for what, found, new in (
            ("tag", dict.fromkeys(tags), dict.fromkeys(section.tags)),
            ("path", paths, section.paths),
            ("schema", schemas, section.schemas),
        ):
            twice = sorted(set(found) & set(new))
            if twice:
                raise ValueError(f"OpenAPI sections both give the {what} {', '.join(twice)}")
        tags += section.tags
        paths.update(section.paths)
        schemas.update(section.schemas)
    return tags, paths, schemas


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; treat it as read-only)."""
    tags, paths, schemas = merge(
        [SECTION, accounts.SECTION, licensing.SECTION, releases.SECTION, admin.SECTION]
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Offline activation service",
            "version": __version__,
            "summary": "Offline license activation: signed request and response files for air-gapped machines.",
            "description": "Errors are JSON `{code, message, nextStep}`; the codes are stable and listed in docs/ERRORS.md.",
        },
        "tags": [{"name": n} for n in tags],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token from POST /v1/accounts/login, or a personal access"
                    " token (portal: Profile, Sessions and tokens; or POST /v1/me/tokens)",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token of the account (`offline-service token create`; starts"
                    " with ofs_admin_), for /v1/admin/ only; each operation names the scope it needs",
                },
            },
            "schemas": schemas,
            "responses": _responses(),
        },
    }


async def endpoint(request: Request) -> Response:
    return JSONResponse(document(), headers={"cache-control": "public, max-age=300"})


routes = [Route("/openapi.json", endpoint)]
