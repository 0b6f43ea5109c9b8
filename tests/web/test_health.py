"""``/healthz`` (alive: no database round trip) and ``/readyz`` (the database answers, its schema is
current, every product's key loads), in each failing case."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from offline_service.errors import Code
from tests.db import execute
from tests.store.old import LATEST
from tests.web.site import SECURITY_HEADERS, Site

UPGRADE = "run `offline-service db upgrade`"


def readyz(site: Site) -> httpx.Response:
    """GET /readyz, checked against the OpenAPI document like every answer. Not through the site's
    CheckedClient: a 503 of /readyz is, as documented, no ``{code, message}`` error but the reasons."""
    response: httpx.Response = TestClient(site.client.app).get("/readyz")
    assert "Traceback" not in response.text
    for name in SECURITY_HEADERS:
        assert name in response.headers, name
    site.client.contract().check(response)
    return response


def not_ready(site: Site) -> tuple[str, list[str]]:
    response = readyz(site)
    assert response.status_code == 503
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "not ready"
    return body["code"], body["reasons"]


def test_ready_when_the_database_answers_and_every_key_loads(site: Site) -> None:
    response = readyz(site)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schemaVersion": LATEST}


def test_healthz_makes_no_database_round_trip(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object) -> list[tuple[object, ...]]:
        raise AssertionError("healthz must not query the database")

    monkeypatch.setattr(type(site.svc.store), "schema_version", property(refused))
    monkeypatch.setattr(site.svc.store, "pending_migrations", refused)
    assert site.client.get("/healthz").json() == {"status": "ok"}
    assert not_ready(site)[0] == Code.STORAGE_ERROR.value  # readyz does query, and says it failed


def test_not_ready_while_the_schema_is_behind(site: Site) -> None:
    execute(site.svc.store, "DELETE FROM schema_migrations WHERE version = ?", LATEST)
    code, reasons = not_ready(site)
    assert code == Code.STORAGE_ERROR.value
    assert reasons == [
        f"the database schema is at version {LATEST - 1}, this release needs {LATEST}: {UPGRADE}"
    ]
    execute(site.svc.store, "INSERT INTO schema_migrations VALUES (?, 0)", LATEST)  # as if upgraded
    assert readyz(site).status_code == 200  # nothing was cached


def test_not_ready_without_a_readable_keyring_directory(site: Site) -> None:
    keys: Path = site.svc.keyring.directory
    keys.rename(keys.with_name("keys.moved"))
    code, reasons = not_ready(site)
    assert code == Code.KEY_ERROR.value
    assert reasons == ["keyring: the keyring directory is missing or not readable"]
    keys.with_name("keys.moved").rename(keys)
    assert readyz(site).status_code == 200


def test_not_ready_when_a_key_file_is_damaged(site: Site) -> None:
    key_file = next((site.svc.keyring.directory / site.product.id).glob("*.json"))
    key_file.write_text("{not json")
    code, reasons = not_ready(site)
    assert code == Code.KEY_ERROR.value
    assert reasons == [f"keyring: {key_file.name}: damaged key file"]


def test_not_ready_when_a_key_file_is_readable_by_others(site: Site) -> None:
    key_file = next((site.svc.keyring.directory / site.product.id).glob("*.json"))
    key_file.chmod(0o644)
    code, reasons = not_ready(site)
    assert code == Code.INSECURE_KEY_FILE.value and str(key_file) in reasons[0]


def test_not_ready_when_a_product_has_no_active_key(site: Site) -> None:
    key_file = next((site.svc.keyring.directory / site.product.id).glob("*.json"))
    key_file.write_text(key_file.read_text().replace('"active"', '"retired"'))
    code, reasons = not_ready(site)
    assert code == Code.KEY_ERROR.value
    assert reasons == [f"keyring: product {site.product.id} has no active signing key"]


def test_every_failing_check_is_a_reason(site: Site) -> None:
    execute(site.svc.store, "DELETE FROM schema_migrations WHERE version = ?", LATEST)
    keys: Path = site.svc.keyring.directory
    keys.rename(keys.with_name("keys.moved"))
    code, reasons = not_ready(site)
    assert code == Code.STORAGE_ERROR.value and len(reasons) == 2
    assert UPGRADE in reasons[0] and reasons[1].startswith("keyring: ")
