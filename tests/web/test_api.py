"""The JSON API: logins and tokens, offline activation and deactivation, trials (CORS, rate limit),
batches, errors, the JWKS, the health check and the OpenAPI document."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import zipfile
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.auth import FREE_FAILURES
from offline_service.errors import Code
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind
from offline_service.licensing import batch
from offline_service.licensing.decisions import Policy
from offline_service.licensing.offline import RequestQueue
from offline_service.licensing.services import DEFAULT_MAX_RESPONSE_VALIDITY
from offline_service.licensing.trials import DAY, DailyCap, RateLimited, RateLimiter, client_key
from tests.db import rows
from tests.factories import NOW, Machine
from tests.web.conftest import (
    EMAILS,
    ORIGIN,
    PASSWORD,
    SECURITY_HEADERS,
    CheckedClient,
    Site,
    SiteFactory,
    activation_request,
    error,
)

ACTIVATE = "/v1/activations/offline-activate"
DEACTIVATE = "/v1/activations/offline-deactivate"
TRIAL = "/v1/trial-activations/offline-activate"
POSTS = ("/v1/accounts/login", ACTIVATE, DEACTIVATE, TRIAL)

# -- accounts: login, tokens, logout --------------------------------------------------------------


def test_login_gives_a_bearer_token_and_is_audited(site: Site) -> None:
    response = site.login("admin_a")
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600
    assert len(body["accessToken"]) >= 40
    me = site.client.get("/v1/me", headers={"authorization": f"Bearer {body['accessToken']}"})
    assert me.status_code == 200
    assert me.json()["email"] == EMAILS["admin_a"] and me.json()["role"] == "organization-admin"
    assert me.json()["organizationId"] is not None
    entry = site.audit()[0]
    assert (entry.actor, entry.action, entry.code) == (f"user:{me.json()['id']}", "login", "OK")


@pytest.mark.parametrize(
    "body",
    [
        {"accountAlias": "acme", "email": EMAILS["user1"], "password": "wrong password!"},
        {"accountAlias": "acme", "email": "nobody@acme.example", "password": PASSWORD},
        {"accountAlias": "nope", "email": EMAILS["user1"], "password": PASSWORD},
        {"accountAlias": "other", "email": EMAILS["admin_a"], "password": PASSWORD},
    ],
)
def test_login_failures_all_say_invalid_credentials(site: Site, body: dict[str, str]) -> None:
    response = site.client.post("/v1/accounts/login", json=body)
    assert error(response) == (401, "INVALID_CREDENTIALS")
    assert response.json()["message"] == "invalid email or password"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"accountAlias": "acme", "email": EMAILS["user1"]},
        {"accountAlias": "acme", "email": EMAILS["user1"], "password": ""},
        {"accountAlias": "acme", "email": EMAILS["user1"], "password": 12345678901234},
        {"accountAlias": ["acme"], "email": EMAILS["user1"], "password": PASSWORD},
        {"accountAlias": "acme", "email": "x" * 300, "password": PASSWORD},
    ],
)
def test_login_with_missing_or_wrong_members_is_invalid_argument(site: Site, body: dict[str, object]) -> None:
    assert error(site.client.post("/v1/accounts/login", json=body)) == (400, "INVALID_ARGUMENT")


def test_login_backs_off_after_repeated_failures(site: Site) -> None:
    for _ in range(FREE_FAILURES + 1):
        assert error(site.login("user1", "wrong password!")) == (401, "INVALID_CREDENTIALS")
    throttled = site.login("user1")  # even the right password waits
    assert error(throttled) == (429, "RATE_LIMITED")
    assert int(throttled.headers["retry-after"]) == 2
    site.clock.now += 2
    assert site.login("user1").status_code == 200


def test_an_expired_token_is_refused(site: Site) -> None:
    headers = site.auth("user1")
    site.clock.now += 3599
    assert site.client.get("/v1/me", headers=headers).status_code == 200
    site.clock.now += 1
    assert error(site.client.get("/v1/me", headers=headers)) == (401, "UNAUTHENTICATED")


def test_logout_revokes_the_token_and_is_audited(site: Site) -> None:
    headers = site.auth("user2")
    other = site.login("user2").json()["accessToken"]
    response = site.client.post("/v1/accounts/logout", headers=headers)
    assert response.status_code == 204 and response.content == b""
    assert error(site.client.get("/v1/me", headers=headers)) == (401, "UNAUTHENTICATED")
    assert error(site.client.post("/v1/accounts/logout", headers=headers)) == (401, "UNAUTHENTICATED")
    # Only that token: another login of the same person still works.
    assert site.client.get("/v1/me", headers={"authorization": f"Bearer {other}"}).status_code == 200
    assert [e.action for e in site.audit()[:1]] == ["logout"]


def test_me_answers_the_person(site: Site) -> None:
    me = site.client.get("/v1/me", headers=site.auth("user2")).json()
    assert set(me) == {"id", "email", "role", "organizationId", "firstName", "lastName"}
    assert (me["email"], me["role"]) == (EMAILS["user2"], "user")


# -- offline activation and deactivation ----------------------------------------------------------


def test_offline_activate_json(site: Site) -> None:
    machine = Machine(fingerprint="fp-laptop")
    data = activation_request(site, "user1", "user1", machine)
    response = site.activate("user1", data)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"offlineResponse", "activationId", "licenseId", "reissued"}
    assert body["licenseId"] == site.licenses["user1"].id and body["reissued"] is False
    verified = site.verify(body["offlineResponse"])
    assert verified.kind is Kind.ACTIVATION and verified.fingerprint == "fp-laptop"
    assert verified.activation_id == body["activationId"] and verified.used_activations == 1
    assert verified.apply_before - verified.issued_at == Policy().default_response_validity
    listed = site.client.get(
        f"/v1/licenses/{site.licenses['user1'].id}/activations", headers=site.auth("user1")
    ).json()
    assert [(a["id"], a["fingerprint"], a["deactivatedAt"]) for a in listed] == [
        (body["activationId"], "fp-laptop", None)
    ]
    detail = site.client.get(f"/v1/licenses/{site.licenses['user1'].id}", headers=site.auth("user1"))
    assert detail.json()["usedActivations"] == 1
    # The same machine again: the same activation, no second seat.
    again = site.activate("user1", activation_request(site, "user1", "user1", machine))
    assert again.json()["activationId"] == body["activationId"] and again.json()["reissued"] is True
    assert site.license("user1").used_activations == 1


def test_offline_activate_multipart(site: Site) -> None:
    data = activation_request(site, "user1", "user1")
    armored = b"-----BEGIN OFFLINE REQUEST-----\n" + data + b"\n-----END OFFLINE REQUEST-----\n"
    for upload in (data, armored):
        response = site.client.post(
            ACTIVATE,
            files={"offlineRequest": ("request.req", upload, "application/octet-stream")},
            data={"responseValidity": "600"},
            headers=site.auth("user1"),
        )
        assert response.status_code == 200, response.text
        verified = site.verify(response.json()["offlineResponse"])
        assert verified.apply_before == NOW + 600
    # The request as a plain form field works too.
    response = site.client.post(ACTIVATE, data={"offlineRequest": data.decode()}, headers=site.auth("user1"))
    assert response.status_code == 200


def test_multipart_without_the_request_or_with_extra_files_is_refused(site: Site) -> None:
    data = activation_request(site, "user1", "user1")
    missing = site.client.post(
        ACTIVATE, files={"other": ("a.req", data, "application/octet-stream")}, headers=site.auth("user1")
    )
    assert error(missing) == (400, "INVALID_ARGUMENT")
    two = site.client.post(
        ACTIVATE,
        files=[
            ("offlineRequest", ("a.req", data, "application/octet-stream")),
            ("offlineRequest", ("b.req", data, "application/octet-stream")),
        ],
        headers=site.auth("user1"),
    )
    assert error(two) == (400, "INVALID_ARGUMENT")
    assert site.license("user1").used_activations == 0


@pytest.mark.parametrize(
    ("asked", "granted"), [(1, 1), (3600, 3600), (10**12, DEFAULT_MAX_RESPONSE_VALIDITY)]
)
def test_response_validity_is_honoured_and_capped(site: Site, asked: int, granted: int) -> None:
    response = site.activate("user1", activation_request(site, "user1", "user1"), validity=asked)
    verified = site.verify(response.json()["offlineResponse"])
    assert verified.apply_before - verified.issued_at == granted


@pytest.mark.parametrize("validity", [0, -5, 1.5, "600", True, [600], {"s": 1}])
def test_invalid_response_validity_is_invalid_argument(site: Site, validity: object) -> None:
    response = site.activate("user1", activation_request(site, "user1", "user1"), validity=validity)
    assert error(response) == (400, "INVALID_ARGUMENT")
    assert site.license("user1").used_activations == 0


@pytest.mark.parametrize("validity", ["0", "-1", "1.5", "abc", "1" * 20, "١٢"])
def test_invalid_response_validity_in_a_form_is_invalid_argument(site: Site, validity: str) -> None:
    response = site.client.post(
        ACTIVATE,
        files={"offlineRequest": ("r.req", activation_request(site, "user1", "user1"), "text/plain")},
        data={"responseValidity": validity},
        headers=site.auth("user1"),
    )
    assert error(response) == (400, "INVALID_ARGUMENT")


def test_deactivate_frees_the_seat(site: Site) -> None:
    machine = Machine(fingerprint="fp-desk")
    activation_id = site.activate("user1", activation_request(site, "user1", "user1", machine)).json()[
        "activationId"
    ]
    request = machine.request(Kind.DEACTIVATION, site.product.id, activation_id=activation_id, issued_at=NOW)
    response = site.deactivate("user1", request)
    assert response.status_code == 200
    assert response.json()["activationId"] == activation_id and response.json()["reissued"] is False
    verified = site.verify(response.json()["offlineResponse"])
    assert verified.kind is Kind.DEACTIVATION and verified.deactivated_at == NOW
    lic = site.license("user1")
    assert (lic.used_activations, lic.used_deactivations) == (0, 1)
    # Multipart works too, and sending it again counts nothing more.
    again = site.client.post(
        DEACTIVATE,
        files={"offlineRequest": ("d.req", request, "application/octet-stream")},
        headers=site.auth("user1"),
    )
    assert again.status_code == 200 and again.json()["reissued"] is True
    assert site.license("user1").used_deactivations == 1


def test_a_request_of_the_wrong_kind_is_refused_before_anything_is_recorded(site: Site) -> None:
    machine = Machine(fingerprint="fp-kind")
    trial = machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)
    deactivation = machine.request(Kind.DEACTIVATION, site.product.id, activation_id="act_x", issued_at=NOW)
    activation = activation_request(site, "user1", "user1", machine)
    before = site.state()
    assert error(site.activate("user1", trial)) == (400, "MALFORMED_REQUEST")
    assert error(site.activate("user1", deactivation)) == (400, "MALFORMED_REQUEST")
    assert error(site.deactivate("user1", activation)) == (400, "MALFORMED_REQUEST")
    assert site.state() == before


@pytest.mark.parametrize(("case", "status", "code"), [
    ("tampered", 400, "BAD_SIGNATURE"),
    ("garbage", 400, "MALFORMED_REQUEST"),
    ("old", 422, "REQUEST_EXPIRED"),
    ("future", 422, "REQUEST_FROM_FUTURE"),
    ("unknown product", 404, "PRODUCT_NOT_FOUND"),
    ("other product", 422, "PRODUCT_MISMATCH"),
    ("seats", 409, "ACTIVATION_LIMIT"),
])  # fmt: skip
def test_engine_refusals_map_to_statuses(site: Site, case: str, status: int, code: str) -> None:
    key = site.licenses["user1"].key
    machine = Machine(fingerprint="fp-errors")
    if case == "tampered":
        head, payload, sig = activation_request(site, "user1", "user1").split(b".")
        data = b".".join((head, payload, (b"A" if sig[:1] != b"A" else b"B") + sig[1:]))
    elif case == "garbage":
        data = b"not a request"
    elif case == "old":
        data = machine.request(Kind.ACTIVATION, site.product.id, license_key=key, issued_at=NOW - 40 * 86400)
    elif case == "future":
        data = machine.request(Kind.ACTIVATION, site.product.id, license_key=key, issued_at=NOW + 3600)
    elif case == "unknown product":
        data = machine.request(Kind.ACTIVATION, "prod_nope", license_key=key, issued_at=NOW)
    elif case == "other product":
        data = machine.request(Kind.ACTIVATION, site.no_trials.id, license_key=key, issued_at=NOW)
    else:
        for i in range(3):
            assert site.activate(
                "user1", activation_request(site, "user1", "user1", Machine(f"fp-{i}"))
            ).is_success
        data = activation_request(site, "user1", "user1", machine)
    before = site.state()
    assert error(site.activate("user1", data)) == (status, code)
    assert site.state() == before


def test_a_request_file_over_16_kib_is_too_large(site: Site) -> None:
    data = b" " * (MAX_FILE_BYTES + 1 - 100) + activation_request(site, "user1", "user1")[:100]
    assert len(data) > MAX_FILE_BYTES
    assert error(site.activate("user1", data)) == (413, "REQUEST_TOO_LARGE")
    upload = site.client.post(
        ACTIVATE,
        files={"offlineRequest": ("big.req", data, "application/octet-stream")},
        headers=site.auth("user1"),
    )
    assert error(upload) == (413, "REQUEST_TOO_LARGE")
    assert site.audit()[0].code == "REQUEST_TOO_LARGE"  # refused by the engine, and audited
    body = json.dumps({"offlineRequest": "x" * (4 * MAX_FILE_BYTES)})
    too_big = site.client.post(
        ACTIVATE, content=body, headers={**site.auth("user1"), "content-type": "application/json"}
    )
    assert error(too_big) == (413, "REQUEST_TOO_LARGE")


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "MALFORMED_REQUEST"),
        (b"\xff\xfe", "MALFORMED_REQUEST"),
        (b"", "MALFORMED_REQUEST"),
        (b"[]", "INVALID_ARGUMENT"),
        (b"null", "INVALID_ARGUMENT"),
        (b'"x"', "INVALID_ARGUMENT"),
        (b'{"offlineRequest": 5}', "INVALID_ARGUMENT"),
    ],
)
def test_json_that_cannot_be_parsed_is_malformed_and_the_wrong_json_is_invalid(
    site: Site, path: str, body: bytes, code: str
) -> None:
    headers = {"content-type": "application/json"}
    if path in (ACTIVATE, DEACTIVATE):
        headers.update(site.auth("user1"))
    assert error(site.client.post(path, content=body, headers=headers)) == (400, code)


def test_a_broken_multipart_body_is_invalid_argument(site: Site) -> None:
    response = site.client.post(
        ACTIVATE,
        content=b"--x\r\nnonsense",
        headers={**site.auth("user1"), "content-type": "multipart/form-data; boundary=x"},
    )
    assert error(response)[0] == 400


def test_decisions_are_audited_under_the_caller(site: Site) -> None:
    site.activate("user1", activation_request(site, "user1", "user1"))
    site.activate("user1", activation_request(site, "user1", "org_b"))
    user1 = site.client.get("/v1/me", headers=site.auth("user1")).json()["id"]
    entries = [(e.actor, e.action, e.code) for e in site.audit()[:2]]
    assert entries == [
        (f"user:{user1}", "activation", "LICENSE_NOT_FOUND"),
        (f"user:{user1}", "activation", "OK"),
    ]


# -- the request queue: requests waiting together share one trip and one transaction per caller --


def test_waiting_requests_share_a_trip_and_each_gets_its_own_answer(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = site.svc.engine.process_many

    def counted(files: Any, **kw: Any) -> Any:
        calls.append(len(files))
        return real(files, **kw)

    monkeypatch.setattr(site.svc.engine, "process_many", counted)
    user1, user2 = (site.auth(r)["authorization"].split()[1] for r in ("user1", "user2"))
    machine = Machine(fingerprint="fp-kinds")
    jobs = [
        *((user1, activation_request(site, "user1", "user1", Machine(f"fp-q{i}"))) for i in range(4)),
        (user1, activation_request(site, "user1", "org_b")),
        (user2, activation_request(site, "user2", "group")),
        ("not-a-token", activation_request(site, "user1", "user1")),
        (user1, machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)),
    ]
    queue = RequestQueue(site.svc)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(queue.process(t, d, validity=None, kinds=(Kind.ACTIVATION,)) for t, d in jobs),
            return_exceptions=True,
        )

    results = site.client.portal.call(run)  # on the app's event loop (pytest's thread may have one)
    assert sorted(calls) == [1, 6]  # one transaction for user1's six, one for user2's
    codes = [r.code for r in results]
    assert codes == [
        "OK",
        "OK",
        "OK",
        "ACTIVATION_LIMIT",
        "LICENSE_NOT_FOUND",
        "OK",
        "UNAUTHENTICATED",
        "MALFORMED_REQUEST",
    ]
    assert site.license("user1").used_activations == 3 and site.license("group").used_activations == 1


def test_an_unexpected_failure_fails_only_its_own_request(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = activation_request(site, "user1", "user1", Machine("fp-poison"))
    real = site.svc.engine.process_many

    def flaky(files: Any, **kw: Any) -> Any:
        if poison in files:
            raise RuntimeError("boom")
        return real(files, **kw)

    monkeypatch.setattr(site.svc.engine, "process_many", flaky)
    token = site.auth("user1")["authorization"].split()[1]
    good = activation_request(site, "user1", "user1", Machine("fp-good"))
    queue = RequestQueue(site.svc)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(queue.process(token, d, validity=None, kinds=(Kind.ACTIVATION,)) for d in (poison, good)),
            return_exceptions=True,
        )

    failed, granted = site.client.portal.call(run)
    assert isinstance(failed, RuntimeError) and granted.ok
    assert site.license("user1").used_activations == 1
    # Through HTTP it is a 500 with a stable code, no details, and the security headers (the
    # last-resort handler sits outside every middleware, so it adds them itself).
    client = TestClient(site.client.app, raise_server_exceptions=False)
    response = client.post(ACTIVATE, json={"offlineRequest": poison.decode()}, headers=site.auth("user1"))
    assert response.json() == {"code": "INTERNAL_ERROR", "message": "internal error"}
    assert response.status_code == 500 and "boom" not in response.text and "Traceback" not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- trials ---------------------------------------------------------------------------------------


def test_a_trial_needs_no_login_and_a_second_one_is_the_same_trial(site: Site) -> None:
    machine = Machine(fingerprint="fp-trial")
    first = site.trial(machine.request(Kind.TRIAL, site.product.id, issued_at=NOW))
    assert first.status_code == 200
    body = first.json()
    assert body["existing"] is False and body["trialEndsAt"] == NOW + 14 * 86400
    verified = site.verify(body["offlineResponse"])
    assert verified.kind is Kind.TRIAL and verified.trial_ends_at == body["trialEndsAt"]
    site.clock.now += 86400
    again = site.trial(machine.request(Kind.TRIAL, site.product.id, issued_at=NOW + 86400))
    assert again.json()["existing"] is True and again.json()["trialEndsAt"] == body["trialEndsAt"]
    assert site.audit()[0].actor == "trial:testclient"


def test_a_trial_as_a_form(site: Site) -> None:
    data = Machine(fingerprint="fp-form").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.client.post(
        TRIAL,
        data={"productId": site.product.id},
        files={"offlineRequest": ("trial.req", data, "application/octet-stream")},
    )
    assert response.status_code == 200 and response.json()["existing"] is False


def test_a_trial_of_another_account_s_product_uses_that_account(site: Site) -> None:
    data = Machine(fingerprint="fp-o").request(Kind.TRIAL, site.other_product.id, issued_at=NOW)
    response = site.trial(data, site.other_product.id)
    assert response.status_code == 200 and response.json()["trialEndsAt"] == NOW + 7 * 86400
    site.verify(response.json()["offlineResponse"], site.other_product.id)
    assert site.audit(site.other)[0].action == "trial"


def test_trial_refusals(site: Site) -> None:
    machine = Machine(fingerprint="fp-refused")
    before = site.state()
    no_trials = machine.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW)
    assert error(site.trial(no_trials, site.no_trials.id)) == (422, "TRIAL_NOT_ALLOWED")
    # The product named in the body must be the request's.
    assert error(site.trial(no_trials, site.product.id)) == (422, "PRODUCT_MISMATCH")
    other = machine.request(Kind.TRIAL, site.other_product.id, issued_at=NOW)
    assert error(site.trial(other, site.product.id)) == (422, "PRODUCT_MISMATCH")
    assert error(site.trial(no_trials, "prod_000000000000000000000000")) == (404, "PRODUCT_NOT_FOUND")
    # Activations and deactivations have their own endpoints (and need a login).
    activation = activation_request(site, "user1", "user1", machine)
    assert error(site.trial(activation)) == (400, "MALFORMED_REQUEST")
    assert error(site.trial(b"junk")) == (400, "MALFORMED_REQUEST")
    for body in (
        {"offlineRequest": "x"},
        {"productId": 5, "offlineRequest": "x"},
        {"productId": site.product.id},
    ):
        assert error(site.client.post(TRIAL, json=body)) == (400, "INVALID_ARGUMENT")
    assert site.state() == before


def test_trial_cors_for_an_allowed_origin(site: Site) -> None:
    data = Machine(fingerprint="fp-cors").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.trial(data, headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in response.headers["vary"].lower()
    for name in SECURITY_HEADERS:
        assert name in response.headers
    # Errors carry the header too, so the page can show them.
    refused = site.trial(data, site.no_trials.id, headers={"origin": ORIGIN})
    assert error(refused) == (422, "PRODUCT_MISMATCH")
    assert refused.headers["access-control-allow-origin"] == ORIGIN


def test_trial_cors_for_a_page_opened_from_disk(site: Site) -> None:
    data = Machine(fingerprint="fp-null").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.trial(data, headers={"origin": "null"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "null"


def test_no_cors_for_other_origins_or_unlisted_null(make_site: SiteFactory) -> None:
    site = make_site(trial_origins=("https://vendor.example",))
    data = Machine(fingerprint="fp-evil").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    for origin in (
        "https://evil.example",
        "null",
        "https://vendor.example.evil.example",
        "https://VENDOR.example",
    ):
        response = site.trial(data, headers={"origin": origin})
        assert "access-control-allow-origin" not in response.headers, origin
        preflight = site.client.options(
            TRIAL, headers={"origin": origin, "access-control-request-method": "POST"}
        )
        assert error(preflight) == (403, "FORBIDDEN")
        assert "access-control-allow-origin" not in preflight.headers
    # No CORS anywhere else, even for the allowed origin.
    assert (
        "access-control-allow-origin" not in site.client.get("/healthz", headers={"origin": ORIGIN}).headers
    )


@pytest.mark.parametrize("origin", [ORIGIN, "null"])
def test_trial_preflight(site: Site, origin: str) -> None:
    response = site.client.options(
        TRIAL,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"].lower() == "content-type"
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers
    wrong_method = site.client.options(
        TRIAL, headers={"origin": origin, "access-control-request-method": "DELETE"}
    )
    assert error(wrong_method) == (403, "FORBIDDEN")
    # A preflight is not a trial request: it uses none of the rate limit.
    for _ in range(20):
        site.client.options(TRIAL, headers={"origin": origin, "access-control-request-method": "POST"})
    data = Machine(fingerprint="fp-pre").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    assert site.trial(data).status_code == 200


def test_trials_are_rate_limited_per_address(make_site: SiteFactory) -> None:
    site = make_site(trial_rate_per_minute=3)
    machine = Machine(fingerprint="fp-rate")
    data = machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)
    for _ in range(3):
        assert site.trial(data).status_code == 200
    limited = site.trial(data, headers={"origin": ORIGIN})
    assert error(limited) == (429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) == 20
    assert limited.headers["access-control-allow-origin"] == ORIGIN
    assert limited.headers["access-control-expose-headers"] == "Retry-After"  # the page may read it
    site.clock.now += 20
    assert site.trial(data).status_code == 200
    assert error(site.trial(data)) == (429, "RATE_LIMITED")
    # Other endpoints are not limited by it.
    assert site.client.get("/healthz").status_code == 200


def test_rate_limiter_refills_and_forgets_the_least_recent_address() -> None:
    limiter = RateLimiter(per_minute=2, max_addresses=3)
    for address in ("a", "a", "b", "c"):
        limiter.hit(address, 0.0)
    with pytest.raises(RateLimited) as info:
        limiter.hit("a", 0.0)
    assert info.value.code is Code.RATE_LIMITED and info.value.retry_after == 30
    limiter.hit("a", 30.0)  # half a minute: one request back
    limiter.hit("d", 30.0)  # a fourth address: the least recently seen ("b") is forgotten
    assert len(limiter) == 3
    limiter.hit("b", 30.0)
    limiter.hit("b", 30.0)  # "b" came back with a full bucket
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0)


def test_new_trials_are_capped_per_address_and_day(make_site: SiteFactory) -> None:
    site = make_site(trial_daily_cap=2, trial_rate_per_minute=100)
    first, second, third = (Machine(fingerprint=f"fp-cap-{n}") for n in range(3))
    # Refusals use none of the cap and change nothing.
    before = site.state()
    refused = [
        (site.trial(b"junk"), "MALFORMED_REQUEST"),
        (
            site.trial(first.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW), site.no_trials.id),
            "TRIAL_NOT_ALLOWED",
        ),
        (site.trial(first.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW)), "PRODUCT_MISMATCH"),
        (site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW - 40 * DAY)), "REQUEST_EXPIRED"),
    ]
    assert [error(r)[1] for r, _ in refused] == [code for _, code in refused]
    assert site.state() == before
    assert site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is False
    # The machine's existing trial again is not a new one.
    for _ in range(3):
        assert (
            site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is True
        )
    site.clock.now += 3600
    assert site.trial(second.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is False
    state = site.state()
    capped = site.trial(third.request(Kind.TRIAL, site.product.id, issued_at=NOW), headers={"origin": ORIGIN})
    assert error(capped) == (429, "TRIAL_DAILY_LIMIT")
    assert int(capped.headers["retry-after"]) == DAY - 3600  # a day after the first new trial
    assert capped.headers["access-control-allow-origin"] == ORIGIN
    assert capped.headers["access-control-expose-headers"] == "Retry-After"
    # While capped, the address gets nothing, its existing trials included; nothing is recorded.
    assert error(site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW))) == (
        429,
        "TRIAL_DAILY_LIMIT",
    )
    assert site.state() == state
    site.clock.now += DAY - 3600
    later = site.trial(third.request(Kind.TRIAL, site.product.id, issued_at=int(site.clock.now)))
    assert later.status_code == 200 and later.json()["existing"] is False


def test_the_trial_limits_count_an_ipv6_address_by_its_64(make_site: SiteFactory) -> None:
    site = make_site(trial_daily_cap=1, trial_rate_per_minute=100)

    def trial_from(address: str, fingerprint: str) -> Any:
        client = CheckedClient(site.client.app, client=(address, 50000))
        data = Machine(fingerprint=fingerprint).request(Kind.TRIAL, site.product.id, issued_at=NOW)
        return client.post(TRIAL, json={"productId": site.product.id, "offlineRequest": data.decode()})

    assert trial_from("2001:db8:1:2::1", "fp-v6-a").status_code == 200
    assert error(trial_from("2001:db8:1:2:ffff::9", "fp-v6-b")) == (429, "TRIAL_DAILY_LIMIT")
    assert trial_from("2001:db8:1:3::1", "fp-v6-c").status_code == 200  # another /64
    assert trial_from("192.0.2.7", "fp-v4-a").status_code == 200
    assert error(trial_from("::ffff:192.0.2.7", "fp-v4-b")) == (429, "TRIAL_DAILY_LIMIT")
    assert site.audit()[0].actor == "trial:192.0.2.7"  # the audit log keeps the address itself


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
        ("unknown", "unknown"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_daily_cap_counts_a_day_from_its_first_trial_and_forgets_the_least_recent_address() -> None:
    cap = DailyCap(per_day=2, max_addresses=2)
    day = cap.take("a", 100.0)
    assert day == 100.0 and cap.take("a", 200.0) == 100.0 and cap.count("a") == 2
    with pytest.raises(RateLimited) as info:
        cap.take("a", 100.0 + DAY - 0.5)
    assert info.value.code is Code.TRIAL_DAILY_LIMIT and info.value.retry_after == 1
    cap.give_back("a", day)
    assert cap.count("a") == 1
    assert cap.take("a", 300.0) == 100.0
    assert cap.take("a", 100.0 + DAY) == 100.0 + DAY  # a new day
    assert cap.count("a") == 1
    cap.give_back("a", day)  # owed to the day that ended: nothing changes
    assert cap.count("a") == 1
    cap.give_back("a", 100.0 + DAY)
    assert cap.count("a") == 0 and len(cap) == 0  # nothing counted: no trace of the address
    cap.take("a", 0.0)
    cap.take("b", 0.0)
    cap.take("c", 0.0)  # a third address: the least recently seen ("a") is forgotten
    assert len(cap) == 2 and cap.count("a") == 0
    cap.take("b", -10.0)  # the clock went back: a new day rather than a day that never ends
    assert cap.count("b") == 1
    for bad in ({"per_day": 0}, {"per_day": 1, "max_addresses": 0}):
        with pytest.raises(ValueError):
            DailyCap(**bad)


def test_jwks_cors_for_the_trial_origins(make_site: SiteFactory) -> None:
    site = make_site(trial_origins=(ORIGIN,))
    url = f"/.well-known/jwks.json?product={site.product.id}"
    allowed = site.client.get(url, headers={"origin": ORIGIN})
    assert allowed.status_code == 200 and allowed.json()["keys"]
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    assert "origin" in allowed.headers["vary"].lower()  # caches keep one answer per origin
    for origin in ("https://evil.example", "null"):
        refused = site.client.get(url, headers={"origin": origin})
        assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    preflight = site.client.options(url, headers={"origin": ORIGIN, "access-control-request-method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-methods"] == "GET"
    post = site.client.options(url, headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert error(post) == (403, "FORBIDDEN")
    # "null" (pages opened from disk) only when listed.
    opted_in = make_site(trial_origins=("null",))
    found = opted_in.client.get(url.replace(site.product.id, opted_in.product.id), headers={"origin": "null"})
    assert found.headers["access-control-allow-origin"] == "null"


# -- batches --------------------------------------------------------------------------------------


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _report(archive: bytes) -> tuple[list[str], dict[str, dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("report.csv").decode())))
        return z.namelist(), {r["file"]: r for r in rows}


def test_batch_zip_in_zip_out(site: Site) -> None:
    upload = _zip(
        {
            "a.req": activation_request(site, "user1", "user1", Machine("fp-a")),
            "b.req": activation_request(site, "user1", "user1", Machine("fp-b")),
            "theirs.req": activation_request(site, "user1", "org_b", Machine("fp-c")),
        }
    )
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert (response.headers["x-accepted"], response.headers["x-rejected"]) == ("2", "1")
    names, rows = _report(response.content)
    assert "report.csv" in names
    assert {f: r["code"] for f, r in rows.items()} == {
        "a.req": "OK",
        "b.req": "OK",
        "theirs.req": "LICENSE_NOT_FOUND",
    }
    assert site.license("user1").used_activations == 2 and site.license("org_b").used_activations == 0
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        responses = [n for n in z.namelist() if n != "report.csv"]
        assert len(responses) == 2
        for name in responses:
            site.verify(z.read(name).decode())


def test_a_batch_upload_uses_the_apps_engine_and_opens_no_store_of_its_own(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kw: object) -> None:
        raise AssertionError("a web batch opened a store or keyring of its own")

    monkeypatch.setattr(batch, "open_store", refused)
    monkeypatch.setattr(batch, "Keyring", refused)
    upload = _zip({"a.req": activation_request(site, "user1", "user1")})
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert response.status_code == 200 and response.headers["x-accepted"] == "1"


def test_batch_as_a_form_with_response_validity(site: Site) -> None:
    upload = _zip({"a.req": activation_request(site, "admin_a", "org_a")})
    response = site.client.post(
        "/v1/batches",
        files={"file": ("requests.zip", upload, "application/zip")},
        data={"responseValidity": "120"},
        headers=site.auth("admin_a"),
    )
    assert response.status_code == 200 and response.headers["x-accepted"] == "1"
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        name = next(n for n in z.namelist() if n != "report.csv")
        verified = site.verify(z.read(name).decode())
    assert verified.apply_before == NOW + 120
    missing = site.client.post(
        "/v1/batches",
        files={"zip": ("requests.zip", upload, "application/zip")},
        headers=site.auth("admin_a"),
    )
    assert error(missing) == (400, "INVALID_ARGUMENT")


def test_a_batch_takes_no_trial_requests(site: Site) -> None:
    trial = Machine(fingerprint="fp-zip-trial").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    deactivation = Machine(fingerprint="fp-zip-d").request(
        Kind.DEACTIVATION, site.product.id, activation_id="act_nope", issued_at=NOW
    )
    before = site.state()
    response = site.client.post(
        "/v1/batches",
        content=_zip({"t.req": trial, "d.req": deactivation}),
        headers={**site.auth("user1"), "content-type": "application/zip"},
    )
    assert {f: r["code"] for f, r in _report(response.content)[1].items()} == {
        "t.req": "MALFORMED_REQUEST",
        "d.req": "ACTIVATION_NOT_FOUND",
    }
    assert site.state() == before


@pytest.mark.parametrize("upload", [b"", b"not a zip", "traversal", "symlink"])
def test_hostile_or_broken_zip_is_bad_archive(site: Site, upload: bytes | str) -> None:
    if upload == "traversal":
        upload = _zip({"../../etc/evil.req": b"x"})
    elif upload == "symlink":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            info = zipfile.ZipInfo("link.req")
            info.external_attr = 0o120777 << 16
            z.writestr(info, "/etc/passwd")
        upload = buffer.getvalue()
    assert isinstance(upload, bytes)
    before = site.state()
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(response) == (400, "BAD_ARCHIVE")
    assert site.state() == before


@pytest.mark.parametrize(
    "names",
    [("a.req", "a.response/b.req"), ("A.req", "a.req"), ("X.req", "x.jws"), ("x" * 250 + ".req",)],
    ids=["file and folder", "case", "responses differ in case", "response name over 255 bytes"],
)
def test_a_zip_whose_responses_cannot_be_written_apart_uses_no_seat(
    site: Site, names: tuple[str, ...]
) -> None:
    upload = _zip(
        {name: activation_request(site, "user1", "user1", Machine(f"fp-{n}")) for n, name in enumerate(names)}
    )
    headers = {**site.auth("user1"), "content-type": "application/zip"}  # logged in before the snapshot
    before, audit = site.state(), site.audit()
    response = site.client.post("/v1/batches", content=upload, headers=headers)
    assert error(response) == (400, "BAD_ARCHIVE")
    assert names[-1][:40] in response.json()["message"]
    assert site.state() == before and site.audit() == audit


def test_batch_over_the_upload_limit_is_refused(make_site: SiteFactory) -> None:
    site = make_site(max_upload_bytes=1000)
    upload = _zip(
        {f"{i}.req": activation_request(site, "user1", "user1", Machine(f"fp-{i}")) for i in range(3)}
    )
    assert len(upload) > 1000
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(response) == (413, "REQUEST_TOO_LARGE")

    def chunks():  # no Content-Length: counted while streaming
        yield upload[:600]
        yield upload[600:]

    streamed = site.client.post(
        "/v1/batches", content=chunks(), headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(streamed) == (413, "REQUEST_TOO_LARGE")
    assert site.license("user1").used_activations == 0


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
    assert error_schema["required"] == ["code", "message"]
    assert set(error_schema["properties"]["code"]["enum"]) == {c.value for c in Code if c is not Code.OK}
    routes = [
        r
        for r in site.client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and r.path.startswith(("/v1/", "/healthz", "/.well-known/", "/openapi.json"))
    ]
    assert len(routes) >= 13
    for route in routes:
        assert route.path in doc["paths"], route.path
        for method in (route.methods or set()) - {"HEAD"}:
            operation = doc["paths"][route.path][method.lower()]
            assert operation["responses"], (route.path, method)
            assert operation["summary"]
    # Every operation: responses present, every $ref resolves, public ones opt out of the token.
    public = {"/healthz", "/openapi.json", "/.well-known/jwks.json", "/v1/accounts/login", TRIAL}
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
