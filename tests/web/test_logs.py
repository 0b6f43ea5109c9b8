"""Request ids and the server's log lines: every line of a request carries its id, ``--log-format json``
writes one JSON object per line, and no token, password, license key or cookie is ever written."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from offline_service.cli.demo import prepare_portal
from offline_service.fileformat.messages import Kind
from offline_service.settings import Settings
from offline_service.web.logs import JsonFormatter, RedactSecrets, RequestIdFilter, redact
from tests.factories import Machine
from tests.servers import serve
from tests.web.site import Site


def plain(site: Site) -> TestClient:
    """A plain client of the site's app (not entered: its lifespan's end would close the store)."""
    return TestClient(site.client.app)


def test_a_well_formed_request_id_is_kept_and_returned(site: Site) -> None:
    client = plain(site)
    for given in ("abc-123", "7f9c2ba4-e88f-49b1-9b1c-3c1a2e5d8f00", "req.1:2_3"):
        assert client.get("/healthz", headers={"x-request-id": given}).headers["x-request-id"] == given


def test_a_missing_or_malformed_request_id_is_replaced_by_a_new_one(site: Site) -> None:
    client = plain(site)
    seen = set()
    for given in (None, "", "a" * 65, "has space", "-leading-dash", "x;y", "a,b"):
        headers = {} if given is None else {"x-request-id": given}
        answer = client.get("/healthz", headers=headers)
        request_id = answer.headers["x-request-id"]
        assert request_id != given and len(request_id) == 32 and int(request_id, 16) >= 0
        seen.add(request_id)
    assert len(seen) == 7  # a new one each time
    # Errors carry it too: a refusal, a page not found, a body over its limit.
    assert "x-request-id" in client.get("/v1/me").headers
    assert client.get("/nowhere", headers={"x-request-id": "r-404"}).headers["x-request-id"] == "r-404"


def test_an_unexpected_error_answers_and_logs_with_the_request_id(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(site.svc.keyring, "jwks", broken)
    # A handler as serve configures it: the id filter and the JSON line, at the time of the record.
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("offline_service.web")
    logger.addHandler(handler)
    try:
        client = TestClient(site.client.app, raise_server_exceptions=False)
        answer = client.get("/.well-known/jwks.json", headers={"x-request-id": "r-500"})
    finally:
        logger.removeHandler(handler)
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "r-500"
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (
        line["request_id"] == "r-500" and line["level"] == "ERROR" and line["logger"] == "offline_service.web"
    )
    assert line["message"] == "unexpected error on GET /.well-known/jwks.json"
    assert "RuntimeError: boom" in line["exception"]


def test_redaction_of_secrets_in_any_line() -> None:
    key = "R2FYV-GCJQ3-7TWKM-8HXNP-4DBZA"
    assert redact(f"GET /licenses?q={key}&page=2") == "GET /licenses?q=[license key]&page=2"
    assert redact(f"GET /licenses?q={key.lower().replace('-', '')}") == "GET /licenses?q=[license key]"
    assert redact("GET /set-password?token=abc&x=1") == "GET /set-password?token=[redacted]&x=1"
    assert redact("GET /x?password=hunter2") == "GET /x?password=[redacted]"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    assert redact("cookie: session=abc; csrf=def") == "cookie: [redacted]"
    # Identifiers are no license keys.
    assert redact("act_019ad5b0c3e2a1b2c3d4e5f60718293a") == "act_019ad5b0c3e2a1b2c3d4e5f60718293a"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (key,), None)
    assert RedactSecrets().filter(record) and record.getMessage() == "key [license key]"


@pytest.mark.slow
def test_json_logs_of_a_real_server_carry_request_ids_and_no_secrets(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    demo = prepare_portal(Settings(data_dir=data, keys_dir=keys), account_alias="default")
    assert demo.password is not None
    key = demo.license.key
    machine = Machine(fingerprint="fp-json-logs")
    now = int(time.time())
    env = {"OFFLINE_SERVICE_LOG_FORMAT": "json"}
    with serve(tmp_path, "--data", str(data), "--keys", str(keys), env=env) as url, httpx.Client() as client:
        login = client.post(
            f"{url}/v1/accounts/login",
            json={"accountAlias": "default", "email": demo.email, "password": demo.password},
            headers={"x-request-id": "r-login"},
        )
        assert login.status_code == 200, login.text
        token = login.json()["accessToken"]
        bearer = {"authorization": f"Bearer {token}"}
        request = machine.request(Kind.ACTIVATION, demo.product.id, license_key=key, issued_at=now)
        activated = client.post(
            f"{url}/v1/activations/offline-activate",
            json={"offlineRequest": request.decode()},
            headers={**bearer, "x-request-id": "r-activate"},
        )
        assert activated.status_code == 200, activated.text
        assert activated.headers["x-request-id"] == "r-activate"
        # Secrets in query strings: a typed license key, a set-password link's token.
        client.get(f"{url}/v1/licenses", params={"q": key}, headers=bearer)
        client.get(f"{url}/set-password", params={"token": "SECRET-LINK-TOKEN"})
        client.get(f"{url}/v1/me", headers={**bearer, "cookie": "session=SECRET-COOKIE"})
        wrong = client.post(
            f"{url}/v1/accounts/login",
            json={"accountAlias": "default", "email": demo.email, "password": "WRONG-PASSWORD-123"},
        )
        assert wrong.status_code == 401
    # uvicorn writes its access lines to stdout (banner.txt here), the others to stderr.
    text = (tmp_path / "server.log").read_text() + (tmp_path / "banner.txt").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, text
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    by_id = {line.get("request_id"): line for line in access}
    assert by_id["r-login"]["path"] == "/v1/accounts/login" and by_id["r-login"]["status"] == 200
    assert by_id["r-activate"]["method"] == "POST" and by_id["r-activate"]["status"] == 200
    assert all(len(line.get("request_id", "")) > 0 for line in access)  # every access line has one
    for secret in (token, demo.password, key, key.replace("-", ""), "SECRET-LINK-TOKEN", "SECRET-COOKIE"):
        assert secret not in text, secret
    assert "WRONG-PASSWORD-123" not in text
    assert any("[license key]" in line["message"] for line in access)
