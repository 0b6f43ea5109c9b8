"""Who sees and uses which license through the JSON API: every role against every license.

A user sees their own licenses and their groups'; an organization admin sees every license of the
organization and none of another's; nobody sees another account's. What a caller may not see is
"not found", never "forbidden", and using it records nothing.
"""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from offline_service.fileformat.messages import Kind
from tests.factories import NOW, Machine
from tests.web.site import EMAILS, LICENSES, VISIBLE, Site, activation_request, error

ROLES = tuple(VISIBLE)
PROTECTED = (
    ("GET", "/v1/me"),
    ("GET", "/v1/licenses"),
    ("GET", "/v1/licenses/lic_000000000000000000000000"),
    ("GET", "/v1/licenses/lic_000000000000000000000000/activations"),
    ("POST", "/v1/accounts/logout"),
    ("POST", "/v1/activations/offline-activate"),
    ("POST", "/v1/activations/offline-deactivate"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/activations"),
    ("GET", "/v1/me/tokens"),
    ("POST", "/v1/me/tokens"),
    ("DELETE", "/v1/me/tokens/crd_000000000000000000000000"),
)


@pytest.mark.parametrize("role", ROLES)
def test_license_list_is_exactly_what_the_role_may_see(site: Site, role: str) -> None:
    response = site.client.get("/v1/licenses", headers=site.auth(role))
    assert response.status_code == 200
    ids = {x["id"] for x in response.json()}
    assert ids == {site.licenses[name].id for name in VISIBLE[role]}
    keys = {x["key"] for x in response.json()}
    assert keys == {site.licenses[name].key for name in VISIBLE[role]}


@pytest.mark.parametrize("role", ROLES)
def test_license_detail_and_activations_of_others_are_not_found(site: Site, role: str) -> None:
    for name in LICENSES:
        lic = site.licenses[name]
        detail = site.client.get(f"/v1/licenses/{lic.id}", headers=site.auth(role))
        activations = site.client.get(f"/v1/licenses/{lic.id}/activations", headers=site.auth(role))
        if name in VISIBLE[role]:
            assert detail.status_code == 200 and detail.json()["id"] == lic.id
            assert detail.json()["key"] == lic.key
            assert activations.status_code == 200 and activations.json() == []
        else:
            assert error(detail) == (404, "LICENSE_NOT_FOUND"), (role, name)
            assert error(activations) == (404, "LICENSE_NOT_FOUND"), (role, name)
    # An id that exists nowhere answers the same as one that belongs to someone else.
    assert error(site.client.get("/v1/licenses/lic_000000000000000000000000", headers=site.auth(role))) == (
        404,
        "LICENSE_NOT_FOUND",
    )


@pytest.mark.parametrize("role", ROLES)
def test_activating_a_license_the_caller_cannot_see_records_nothing(site: Site, role: str) -> None:
    for name in LICENSES:
        before = site.state()
        response = site.activate(role, activation_request(site, role, name))
        if name in VISIBLE[role]:
            assert response.status_code == 200, (role, name, response.text)
            assert site.license(name).used_activations == 1
        else:
            assert error(response) == (404, "LICENSE_NOT_FOUND"), (role, name)
            assert site.state() == before, (role, name)


def test_each_refusal_is_audited_under_the_caller(site: Site) -> None:
    site.activate("user2", activation_request(site, "user2", "user1"))
    entry = site.audit()[0]
    user2 = site.client.get("/v1/me", headers=site.auth("user2")).json()["id"]
    assert (entry.actor, entry.action, entry.code) == (f"user:{user2}", "activation", "LICENSE_NOT_FOUND")


@pytest.mark.parametrize("intruder", ["user2", "admin_a", "admin_b", "other"])
def test_deactivating_an_activation_of_a_license_the_caller_cannot_see(site: Site, intruder: str) -> None:
    machine = Machine(fingerprint="fp-user1-laptop")
    granted = site.activate("user1", activation_request(site, "user1", "user1", machine))
    assert granted.status_code == 200
    activation_id = granted.json()["activationId"]
    before = site.state()
    # Even the machine's own, correctly signed request is refused to someone who cannot see the license.
    request = machine.request(
        Kind.DEACTIVATION, site.product_of(intruder).id, activation_id=activation_id, issued_at=NOW
    )
    assert error(site.deactivate(intruder, request)) == (404, "ACTIVATION_NOT_FOUND")
    assert site.state() == before
    assert site.license("user1").used_activations == 1


def test_the_group_member_and_the_org_admin_share_the_group_license(site: Site) -> None:
    machine = Machine(fingerprint="fp-shared")
    granted = site.activate("user2", activation_request(site, "user2", "group", machine))
    assert granted.status_code == 200
    activation_id = granted.json()["activationId"]
    # The admin of the organization sees the activation and may deactivate it.
    listed = site.client.get(
        f"/v1/licenses/{site.licenses['group'].id}/activations", headers=site.auth("admin_a")
    )
    assert [a["id"] for a in listed.json()] == [activation_id]
    request = machine.request(Kind.DEACTIVATION, site.product.id, activation_id=activation_id, issued_at=NOW)
    assert site.deactivate("admin_a", request).status_code == 200
    assert site.license("group").used_activations == 0


def test_same_email_in_two_accounts_logs_in_to_each_separately(site: Site) -> None:
    acme = site.client.get("/v1/me", headers=site.auth("user1")).json()
    other = site.client.get("/v1/me", headers=site.auth("other")).json()
    assert acme["email"] == other["email"] and acme["id"] != other["id"]
    # The password of one account's user does not open the other's, and vice versa for licenses.
    assert {x["id"] for x in site.client.get("/v1/licenses", headers=site.auth("other")).json()} == {
        site.licenses["other"].id
    }
    wrong_alias = site.client.post(
        "/v1/accounts/login",
        json={"accountAlias": "nope", "email": acme["email"], "password": "correct horse battery"},
    )
    assert error(wrong_alias) == (401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "bearer  ", "Token abc"]
)
def test_every_protected_route_needs_a_valid_token(
    site: Site, method: str, path: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    body = {"offlineRequest": activation_request(site, "user1", "user1").decode()}
    before = site.state()
    response = site.client.request(method, path, headers=headers, json=body)
    assert error(response) == (401, "UNAUTHENTICATED")
    assert site.state() == before


def test_a_portal_session_is_not_an_api_token(site: Site) -> None:
    from offline_service.accounts.auth import issue_credential

    with site.svc.store.read() as tx:
        user = tx.user_by_email(site.acme.id, "user1@example.com")
    assert user is not None
    session = issue_credential(site.svc.store, user, kind="session", lifetime=3600, now=NOW)
    response = site.client.get("/v1/me", headers={"authorization": f"Bearer {session}"})
    assert error(response) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_through_every_route_on_its_own_licenses(site: Site, role: str) -> None:
    headers = site.auth(role)
    me = site.client.get("/v1/me", headers=headers).json()
    assert me["email"] == EMAILS[role]
    name = sorted(VISIBLE[role])[0]
    lic = site.licenses[name]
    product = site.product_of(role)
    machine = Machine(fingerprint=f"fp-{role}-e2e")
    granted = site.activate(role, activation_request(site, role, name, machine))
    assert granted.status_code == 200
    site.verify(granted.json()["offlineResponse"], product.id)
    activations = site.client.get(f"/v1/licenses/{lic.id}/activations", headers=headers).json()
    assert [a["id"] for a in activations] == [granted.json()["activationId"]]
    request = machine.request(
        Kind.DEACTIVATION, product.id, activation_id=granted.json()["activationId"], issued_at=NOW
    )
    assert site.deactivate(role, request).status_code == 200
    assert site.client.get(f"/v1/licenses/{lic.id}", headers=headers).json()["usedActivations"] == 0
    # A batch: their own license is processed, every other license is not found.
    files = {
        f"{other}.req": activation_request(site, role, other, Machine(f"fp-b-{other}")) for other in LICENSES
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for file, data in files.items():
            z.writestr(file, data)
    response = site.client.post(
        "/v1/batches", content=buffer.getvalue(), headers={**headers, "content-type": "application/zip"}
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        rows = {r["file"]: r["code"] for r in csv.DictReader(io.StringIO(z.read("report.csv").decode()))}
    assert rows == {
        f"{other}.req": "OK" if other in VISIBLE[role] else "LICENSE_NOT_FOUND" for other in LICENSES
    }
    assert site.client.post("/v1/accounts/logout", headers=headers).status_code == 204
    assert error(site.client.get("/v1/licenses", headers=headers)) == (401, "UNAUTHENTICATED")
