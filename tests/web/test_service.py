"""The service-wide routes and rules of the JSON API: the health check, the JWKS, unknown routes and
methods, security headers, what the logs never hold, and the OpenAPI document."""

from __future__ import annotations

import json
import logging
import re

import pytest

from offline_service.errors import Code
from offline_service.fileformat.messages import Kind
from tests.db import rows
from tests.factories import NOW, Machine
from tests.web.site import (
    ACTIVATE,
    PASSWORD,
    TRIAL,
    Site,
    activation_request,
    error,
)

# -- service routes, errors, headers, logs --------------------------------------------------------


def test_healthz_and_jwks(site: Site) -> None:
    health = site.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    everything = site.client.get("/.well-known/jwks.json").json()["keys"]
    assert {k["product"] for k in everything} == {site.product.id, site.no_trials.id, site.other_product.id}
    narrowed = site.client.get("/.well-known/jwks.json", params={"product": site.product.id}).json()["keys"]
    assert [k["product"] for k in narrowed] == [site.product.id]
    assert set(site.svc.keyring.public_keys(site.product.id)) == {k["kid"] for k in narrowed}


def test_unknown_routes_and_methods_answer_json(site: Site) -> None:
    assert error(site.client.get("/v1/nope")) == (404, "NOT_FOUND")
    assert error(site.client.get(ACTIVATE, headers=site.auth("user1")))[0] == 405
    assert error(site.client.put("/v1/licenses", headers=site.auth("user1")))[0] == 405


def test_security_headers_on_api_answers(site: Site) -> None:
    for response in (
        site.client.get("/v1/me", headers=site.auth("user1")),
        site.client.get("/v1/me"),
        site.client.get("/healthz"),
        site.client.get("/openapi.json"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert site.client.get("/v1/me", headers=site.auth("user1")).headers["cache-control"] == "no-store"


def test_logs_never_hold_keys_passwords_or_tokens(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, "wrong password!"]
    for role in ("user1", "admin_a"):
        secrets.append(site.auth(role)["authorization"].split()[1])
    site.login("user1", "wrong password!")
    for name in ("user1", "org_b", "other"):
        secrets.append(site.licenses[name].key)
        site.activate("user1", activation_request(site, "user1", name))
    site.trial(Machine(fingerprint="fp-log").request(Kind.TRIAL, site.product.id, issued_at=NOW))
    site.client.post("/v1/accounts/logout", headers=site.auth("admin_a"))
    site.client.get("/v1/me", headers=site.auth("admin_a"))
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in text
    # Nor does the audit log.
    audit = json.dumps(rows(site.svc.store, "SELECT * FROM audit_log"))
    for secret in secrets:
        assert secret not in audit


# -- OpenAPI ----------------------------------------------------------------------------------------


def test_openapi_document_describes_every_route(site: Site) -> None:
    from starlette.routing import Route

    doc = site.client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    components = doc["components"]
    assert components["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": components["securitySchemes"]["bearerAuth"]["description"],
    }
    error_schema = components["schemas"]["Error"]
    assert error_schema["required"] == ["code", "message", "nextStep"]
    assert set(error_schema["properties"]["code"]["enum"]) == {c.value for c in Code if c is not Code.OK}
    routes = [
        r
        for r in site.client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route)
        and r.path.startswith(("/v1/", "/healthz", "/readyz", "/.well-known/", "/openapi.json"))
    ]
    assert len(routes) >= 13
    for route in routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # a convertor is not in the document
        assert path in doc["paths"], route.path
        for method in (route.methods or set()) - {"HEAD"}:
            operation = doc["paths"][path][method.lower()]
            assert operation["responses"], (route.path, method)
            assert operation["summary"]
    # Every operation: responses present, every $ref resolves, public ones opt out of the token.
    public = {"/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json", "/v1/accounts/login", TRIAL}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["responses"]
            assert ("security" in operation and operation["security"] == []) == (path in public), path
            if path not in public:
                assert "401" in operation["responses"], (path, method)

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [x for v in node.values() for x in refs(v)]
        if isinstance(node, list):
            return [x for v in node for x in refs(v)]
        return []

    for ref in refs(doc):
        section, kind, name = ref.removeprefix("#/").split("/")
        assert name in doc[section][kind], ref


def test_openapi_document_is_valid_openapi_3_1(site: Site) -> None:
    from openapi_spec_validator import validate

    validate(site.client.get("/openapi.json").json())
