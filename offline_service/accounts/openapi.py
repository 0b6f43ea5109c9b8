"""The accounts' part of ``/openapi.json``: log in and out, the logged-in person, and their
personal access tokens.

The lengths and patterns are the ones the handlers enforce (accounts/profile.py for token names
and lifetimes), so schemathesis finds the document and the service agreeing.
"""

from __future__ import annotations

from offline_service.accounts.models import Role
from offline_service.accounts.profile import MAX_TOKEN_NAME, TOKEN_DAYS
from offline_service.ids import ALIAS_PATTERN
from offline_service.web.openapi_kit import (
    TEXT,
    TIME,
    Section,
    body,
    id_schema,
    json_answer,
    nullable,
    obj,
    op,
    ref,
)

__all__ = ["SECTION"]

# What Python's str.strip() removes, besides the control characters refused anyway: a token name
# may not start or end with it.
_SPACE = "\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_CONTROL = "\\x00-\\x1f\\x7f"
_TOKEN_NAME = f"^[^{_CONTROL}{_SPACE}](?:[^{_CONTROL}]*[^{_CONTROL}{_SPACE}])?$"

_SCHEMAS = {
    "LoginRequest": obj(
        ["accountAlias", "email", "password"],
        {
            "accountAlias": {"type": "string", "pattern": ALIAS_PATTERN, "maxLength": 64},
            "email": {"type": "string", "minLength": 1, "maxLength": 254},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
        },
    ),
    "AccessToken": obj(
        ["accessToken", "tokenType", "expiresIn"],
        {
            "accessToken": {"type": "string", "description": "Send as `Authorization: Bearer <token>`"},
            "tokenType": {"const": "Bearer"},
            "expiresIn": {"type": "integer", "description": "Seconds until the token expires"},
        },
    ),
    "User": obj(
        ["id", "email", "role", "organizationId", "firstName", "lastName"],
        {
            "id": TEXT,
            "email": TEXT,
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "organizationId": nullable("string"),
            "firstName": TEXT,
            "lastName": TEXT,
        },
    ),
    "PersonalToken": obj(
        ["id", "name", "createdAt", "expiresAt", "lastUsedAt"],
        {
            "id": {"type": "string", "description": "Names the token; not a secret"},
            "name": TEXT,
            "createdAt": TIME,
            "expiresAt": TIME,
            "lastUsedAt": nullable("integer", "Unix time, seconds, to the nearest 5 minutes; null if never"),
        },
    ),
    "NewPersonalTokenRequest": obj(
        ["name", "expiresInDays"],
        {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TOKEN_NAME,
                "pattern": _TOKEN_NAME,
                "description": "No control characters, no spaces at either end",
            },
            "expiresInDays": {"type": "integer", "enum": list(TOKEN_DAYS)},
        },
    ),
    "NewPersonalToken": {
        "allOf": [
            ref("PersonalToken"),
            obj(
                ["token"],
                {"token": {"type": "string", "description": "The secret, shown in this answer only"}},
            ),
        ]
    },
}

_PATHS = {
    "/v1/accounts/login": {
        "post": op(
            "Log in: an access token for the API",
            json_answer(ref("AccessToken"), "Logged in"),
            "400",
            "401",
            "413",
            "429",
            tag="accounts",
            public=True,
            body=body("LoginRequest"),
        )
    },
    "/v1/accounts/logout": {
        "post": op(
            "Log out: revoke this access token",
            {"description": "Revoked"},
            tag="accounts",
            ok_status="204",
        )
    },
    "/v1/me": {"get": op("The logged-in person", json_answer(ref("User"), "The person"), tag="accounts")},
    "/v1/me/tokens": {
        "get": op(
            "The person's live personal access tokens (never their secrets)",
            json_answer({"type": "array", "items": ref("PersonalToken")}, "The tokens, newest first"),
            tag="accounts",
        ),
        "post": op(
            "Make a personal access token; needs an access token from a login, not a personal one",
            json_answer(ref("NewPersonalToken"), "Made; the secret is in this answer only"),
            "400",
            "403",
            "409",
            "413",
            tag="accounts",
            body=body("NewPersonalTokenRequest"),
            ok_status="201",
        ),
    },
    "/v1/me/tokens/{id}": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": id_schema("credential")}],
        "delete": op(
            "Revoke a personal access token",
            {"description": "Revoked"},
            "400",
            "404",
            tag="accounts",
            ok_status="204",
        ),
    },
}

SECTION = Section(tags=("accounts",), paths=_PATHS, schemas=_SCHEMAS)
