"""The OpenAPI document says what the service validates: for values at and just past each bound
the document names, the document and the service agree (schemathesis explores the rest)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from offline_service.ids import new_id
from offline_service.web import openapi
from tests.web.site import Site

DOC = openapi.document()


def _query(path: str, name: str) -> dict[str, Any]:
    for parameter in DOC["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(name)


def _member(component: str, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = DOC["components"]["schemas"][component]["properties"][name]
    return schema


def _valid(schema: dict[str, Any], value: object) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("offset", 10**9),
        ("offset", 10**9 + 1),
        ("offset", -1),
        ("limit", 0),
        ("limit", 1000),
        ("limit", 1001),
        ("productId", ""),
        ("productId", new_id("prod")),
        ("productId", "prod_x"),
        ("licenseId", new_id("prod")),
        ("status", ""),
        ("status", "live"),
        ("status", " live"),
        ("q", "x" * 100),
        ("q", "x" * 101),
    ],
)
def test_activation_list_parameters(site: Site, name: str, value: object) -> None:
    schema = _query("/v1/activations", name)
    wire = str(value)
    response = site.client.get("/v1/activations", params={name: wire}, headers=site.auth("admin_a"))
    valid = _valid(schema, value) and (schema.get("type") != "string" or _valid(schema, wire))
    assert response.status_code == (200 if valid else 400), (name, value, response.text)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("accountAlias", ""),
        ("accountAlias", "acme"),
        ("accountAlias", "../etc"),
        ("accountAlias", "a" * 65),
        ("email", ""),
        ("password", ""),
        ("password", "x" * 1025),
    ],
)
def test_login_members(site: Site, member: str, value: str) -> None:
    body = {"accountAlias": "acme", "email": "nobody@acme.example", "password": "not it"}
    body[member] = value
    response = site.client.post("/v1/accounts/login", json=body)
    valid = _valid(_member("LoginRequest", member), value)
    # A well-formed login of nobody is refused as credentials, never as input.
    assert response.status_code == (401 if valid else 400), (member, value)


@pytest.mark.parametrize(
    "name", ["ci", "c i", " ci", "ci ", "\u00a0ci", "ci\u2028", "c\x00i", "", "x" * 100, "x" * 101, "\u3000"]
)
def test_personal_token_names(site: Site, name: str) -> None:
    response = site.client.post(
        "/v1/me/tokens", json={"name": name, "expiresInDays": 7}, headers=site.auth("admin_a")
    )
    valid = _valid(_member("NewPersonalTokenRequest", "name"), name)
    assert response.status_code == (201 if valid else 400), (name, response.text)


@pytest.mark.parametrize("value", ["1", "999999999999", "1000000000000", "0", "01", "-1", "1.5", ""])
def test_batch_response_validity_query(site: Site, value: str) -> None:
    (parameter,) = DOC["paths"]["/v1/batches"]["post"]["parameters"]
    response = site.client.post(
        "/v1/batches",
        params={"responseValidity": value},
        content=b"not a zip",
        headers={**site.auth("admin_a"), "content-type": "application/zip"},
    )
    code = response.json()["code"]
    valid = value.isdigit() and value == str(int(value)) and _valid(parameter["schema"], int(value))
    # A valid validity gets as far as the zip, which is refused on its own account.
    assert code == ("BAD_ARCHIVE" if valid or value == "" else "INVALID_ARGUMENT"), value
