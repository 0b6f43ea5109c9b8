"""The admin API's signing-key routes in-process, on both backends: each route with its scope (403
without it, 401 without an admin token), another account's token (404, nothing changed, neither
rows nor key files), public parts only in every answer, a retried rotation with one
Idempotency-Key (one new key), key files written 0600, the active key never removed, and a response
signed after a rotation verified with the public JWK the API answered."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from offline_service._b64 import b64url_decode
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import parse_response
from offline_service.licensing import keys
from tests.db import table
from tests.web.site import Site, activation_request, error

Call = Callable[[Site, str], tuple[str, str]]


def _retired(site: Site) -> str:
    """The product's first key, retired by a rotation made with the service (as the CLI does)."""
    (first,) = site.svc.keyring.published(site.product.id)
    keys.rotate(site.svc.store, site.svc.keyring, site.acme, site.product.id, now=site.svc.now())
    return first.kid


def _key_files(site: Site) -> dict[str, bytes]:
    directory = site.svc.settings.keys_dir
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def _rows(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    return {t: table(site.svc.store, t) for t in ("admin_idempotency",)}


# Every key route: (method, path) given a retired key's id, and its scope.
ROUTES: dict[str, tuple[Scope, Call]] = {
    "list": (Scope.KEYS_READ, lambda site, kid: ("GET", f"/v1/admin/products/{site.product.id}/keys")),
    "rotate": (
        Scope.KEYS_WRITE,
        lambda site, kid: ("POST", f"/v1/admin/products/{site.product.id}/keys/rotate"),
    ),
    "remove": (
        Scope.KEYS_WRITE,
        lambda site, kid: ("DELETE", f"/v1/admin/products/{site.product.id}/keys/{kid}"),
    ),
}


def _send(site: Site, name: str, headers: dict[str, str], kid: str) -> httpx.Response:
    method, path = ROUTES[name][1](site, kid)
    return site.client.request(method, path, headers=headers)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_key_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    kid = _retired(site)
    scope = ROUTES[name][0]
    others = [s.value for s in Scope if s is not scope]
    before, files = _rows(site), _key_files(site)
    assert error(_send(site, name, site.admin_auth(*others), kid)) == (403, "FORBIDDEN")
    assert _rows(site) == before and _key_files(site) == files
    allowed = _send(site, name, site.admin_auth(scope.value), kid)
    assert allowed.status_code == (201 if name == "rotate" else 200), allowed.text


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_key_route_refuses_no_token_a_persons_and_a_made_up_one(site: Site, name: str) -> None:
    kid = _retired(site)
    files = _key_files(site)
    for headers in ({}, site.auth("admin_a"), {"authorization": "Bearer ofs_admin_" + "A" * 43}):
        assert error(_send(site, name, headers, kid)) == (401, "UNAUTHENTICATED"), headers
    assert _key_files(site) == files


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_another_accounts_token_finds_none_of_this_accounts_keys(site: Site, name: str) -> None:
    kid = _retired(site)
    before, files, state, audit = _rows(site), _key_files(site), site.state(), site.audit()
    answer = _send(site, name, site.admin_auth(account="other"), kid)
    assert error(answer) == (404, "PRODUCT_NOT_FOUND")
    assert kid not in answer.text
    assert _rows(site) == before and _key_files(site) == files and site.state() == state
    assert site.audit() == audit


def test_the_list_shows_public_parts_only(site: Site) -> None:
    retired = _retired(site)
    answer = site.client.get(
        f"/v1/admin/products/{site.product.id}/keys", headers=site.admin_auth(Scope.KEYS_READ.value)
    )
    listed = answer.json()["keys"]
    statuses = {k["kid"]: k["status"] for k in listed}
    assert statuses[retired] == "retired" and sorted(statuses.values()) == ["active", "retired"]
    for key in listed:
        assert key["algorithm"] == "EdDSA" and key["productId"] == site.product.id
        assert set(key["jwk"]) == {"kty", "crv", "x", "kid", "alg", "use", "product", "status"}
    text = answer.text
    assert '"d"' not in text and "private" not in text and str(site.svc.settings.keys_dir) not in text


def test_a_retried_rotation_rotates_once_and_a_rotated_key_signs(site: Site) -> None:
    headers = {**site.admin_auth(Scope.KEYS_WRITE.value), "idempotency-key": "rotate-1"}
    path = f"/v1/admin/products/{site.product.id}/keys/rotate"
    (old,) = site.svc.keyring.published(site.product.id)
    first = site.client.post(path, headers=headers)
    again = site.client.post(path, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    made = first.json()
    assert made["status"] == "active" and made["kid"] != old.kid
    published = site.svc.keyring.published(site.product.id)
    assert {k.kid: k.status for k in published} == {old.kid: "retired", made["kid"]: "active"}
    for f in (site.svc.settings.keys_dir / site.product.id).iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    entries = [(e.action, e.actor, e.detail.get("kid")) for e in site.audit() if e.action == "key.rotate"]
    assert len(entries) == 1 and entries[0][2] == made["kid"] and entries[0][1].startswith("admin_token:")

    # a response signed after the rotation verifies with the JWK the API answered, and only it
    granted = site.activate("user1", activation_request(site, "user1", "user1"))
    assert granted.status_code == 200, granted.text
    token = granted.json()["offlineResponse"].encode()
    jwk = made["jwk"]
    parse_response(token, {jwk["kid"]: b64url_decode(jwk["x"])})
    with pytest.raises(OfflineServiceError) as refused:
        parse_response(token, {old.kid: old.public_key})
    assert refused.value.code is Code.UNKNOWN_SIGNING_KEY


def test_the_active_key_is_not_removed_and_a_retired_one_is(site: Site) -> None:
    retired = _retired(site)
    headers = site.admin_auth(Scope.KEYS_WRITE.value)
    base = f"/v1/admin/products/{site.product.id}/keys"
    (active,) = [k.kid for k in site.svc.keyring.published(site.product.id) if k.status == "active"]
    files = _key_files(site)
    assert error(site.client.delete(f"{base}/{active}", headers=headers)) == (409, "CONFLICT")
    assert error(site.client.delete(f"{base}/{'A' * 43}", headers=headers)) == (404, "NOT_FOUND")
    assert error(site.client.delete(f"{base}/not-a-kid", headers=headers)) == (404, "NOT_FOUND")
    assert site.client.delete(f"{base}/rotate", headers=headers).status_code == 405
    assert _key_files(site) == files
    assert site.client.delete(f"{base}/{retired}", headers=headers).json() == {"removed": retired}
    assert [k.kid for k in site.svc.keyring.published(site.product.id)] == [active]
    assert ("key.remove", retired) in [(e.action, e.detail.get("kid")) for e in site.audit()]


def test_a_rotation_of_a_product_of_no_account_is_not_found(site: Site, tmp_path: Path) -> None:
    headers = site.admin_auth(Scope.KEYS_WRITE.value, Scope.KEYS_READ.value)
    unknown = "prod_" + "0" * 32
    files = _key_files(site)
    for method, path in (
        ("POST", f"/v1/admin/products/{unknown}/keys/rotate"),
        ("GET", f"/v1/admin/products/{unknown}/keys"),
    ):
        assert error(site.client.request(method, path, headers=headers)) == (404, "PRODUCT_NOT_FOUND")
    assert error(site.client.get("/v1/admin/products/../keys", headers=headers))[0] in (400, 404)
    assert _key_files(site) == files
