"""The accounts part of the JSON API: logins and bearer tokens, logout, and /v1/me."""

from __future__ import annotations

import pytest

from offline_service.accounts.auth import FREE_FAILURES
from tests.web.site import (
    EMAILS,
    PASSWORD,
    Site,
    error,
)

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
