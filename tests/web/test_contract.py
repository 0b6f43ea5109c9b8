"""The checker behind CheckedClient: it refuses what /openapi.json does not document."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.web import openapi
from tests.web.contract import Contract
from tests.web.site import CheckedClient, Site

CONTRACT = Contract(openapi.document())
ERROR = {"code": "NOT_FOUND", "message": "no such thing", "nextStep": "Check the name or id."}


def answer(
    method: str, path: str, status: int, body: Any = None, content_type: str = "application/json"
) -> Any:
    content = json.dumps(body).encode() if content_type == "application/json" else b"<html></html>"
    return httpx.Response(
        status,
        content=content,
        headers={"content-type": content_type},
        request=httpx.Request(method, f"http://testserver{path}"),
    )


def test_templates_match_literal_segments_first() -> None:
    assert CONTRACT.template("/v1/licenses/lic_x") == "/v1/licenses/{id}"
    assert CONTRACT.template("/v1/licenses/lic_x/activations") == "/v1/licenses/{id}/activations"
    assert CONTRACT.template("/v1/activations/offline-activate") == "/v1/activations/offline-activate"
    assert CONTRACT.template("/v1/licenses/a/b/c") is None
    assert CONTRACT.template("/licenses") is None  # a portal page


def test_documented_answers_pass() -> None:
    CONTRACT.check(answer("GET", "/healthz", 200, {"status": "ok"}))
    CONTRACT.check(answer("GET", "/readyz", 200, {"status": "ready", "schemaVersion": 5}))
    not_ready = {"status": "not ready", "code": "KEY_ERROR", "reasons": ["keyring: unreadable"]}
    CONTRACT.check(answer("GET", "/readyz", 503, not_ready))
    CONTRACT.check(answer("GET", "/v1/licenses/lic_x", 404, ERROR))
    CONTRACT.check(answer("GET", "/v1/me", 401, {**ERROR, "code": "UNAUTHENTICATED", "message": "log in"}))
    CONTRACT.check(answer("POST", "/v1/batches", 200, content_type="application/zip"))
    empty = httpx.Response(204, request=httpx.Request("POST", "http://testserver/v1/accounts/logout"))
    CONTRACT.check(empty)


@pytest.mark.parametrize(
    ("response", "says"),
    [
        # A member missing from the documented answer.
        (lambda: answer("GET", "/v1/licenses/lic_x", 404, {"code": "NOT_FOUND"}), "not as documented"),
        # An error code that is not a Code (nor is OK ever an error's).
        (
            lambda: answer("GET", "/v1/licenses/lic_x", 404, {"code": "OK", "message": "x"}),
            "not as documented",
        ),
        # A status the operation does not document.
        (lambda: answer("GET", "/v1/me", 409, ERROR), "has no 409"),
        # A JSON answer where the document gives no JSON schema (logout answers 204, nothing).
        (lambda: answer("POST", "/v1/accounts/logout", 204, {}), "no JSON schema"),
        # A body of a type the document does not list for the status.
        (
            lambda: answer("POST", "/v1/batches", 200, content_type="text/html"),
            "documented: \\['application/zip'\\]",
        ),
        (
            lambda: answer("POST", "/v1/accounts/logout", 204, content_type="text/plain"),
            "documented: no body",
        ),
    ],
)
def test_undocumented_answers_fail(response: Any, says: str) -> None:
    with pytest.raises(AssertionError, match=says):
        CONTRACT.check(response())


def test_pages_head_and_other_methods_are_not_checked() -> None:
    CONTRACT.check(answer("GET", "/licenses", 200, content_type="text/html; charset=utf-8"))
    CONTRACT.check(answer("GET", "/no-such-page", 404, ERROR | {"extra": 1}))
    CONTRACT.check(answer("HEAD", "/v1/me", 200, {"anything": True}))
    CONTRACT.check(answer("DELETE", "/v1/me", 405, ERROR))


def test_the_checked_client_uses_the_served_document(site: Site) -> None:
    client = site.client
    assert isinstance(client, CheckedClient)
    assert client.contract().document == client.get("/openapi.json").json()
    # A served answer that breaks its schema is caught by the client itself (here the schema is
    # made stricter, in a copy of the document for this client alone).
    document = copy.deepcopy(client.contract().document)
    document["components"]["schemas"]["User"]["required"].append("notAMember")
    client._contract = Contract(document)
    with pytest.raises(AssertionError, match="notAMember"):
        client.get("/v1/me", headers=site.auth("user1"))
