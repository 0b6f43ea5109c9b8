"""The admin API in-process, on both backends: every route for each scope (allowed, or 403 without
its scope), a token of another account (404 on this account's objects, never their data), tokens
that are expired, revoked, a person's or none (401), an admin token on a person's route (401),
idempotent creates (retried one after another, and racing in threads), and cursor paging while
licenses are created between pages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.admin import tokens
from offline_service.admin.idempotency import KEEP_SECONDS
from offline_service.admin.models import Scope
from offline_service.licensing.decisions import DAY
from tests.db import table
from tests.factories import Machine
from tests.web.site import Site, activation_request, error

Call = Callable[[Site], tuple[str, str, dict[str, Any] | None]]


def _create_body(site: Site, **extra: Any) -> dict[str, Any]:
    return {"productId": site.product.id, "allowedActivations": 3, "allowedDeactivations": 1, **extra}


_MACHINE = Machine(fingerprint="fp-admin-routes")  # one key: activating it again is the same installation


def _live_activation(site: Site) -> str:
    """The id of a live activation of user1's license: its machine's, activated again if it was
    released (activating a live machine again answers its activation)."""
    granted = site.activate("user1", activation_request(site, "user1", "user1", _MACHINE))
    assert granted.status_code == 200, granted.text
    return str(granted.json()["activationId"])


# Every admin route: (method, path, JSON body) for a site, and the scope it needs.
ROUTES: dict[str, tuple[Scope, Call]] = {
    "list products": (Scope.PRODUCTS_READ, lambda site: ("GET", "/v1/admin/products", None)),
    "list licenses": (Scope.LICENSES_READ, lambda site: ("GET", "/v1/admin/licenses", None)),
    "show license": (
        Scope.LICENSES_READ,
        lambda site: ("GET", f"/v1/admin/licenses/{site.licenses['nobody'].id}", None),
    ),
    "create license": (Scope.LICENSES_WRITE, lambda site: ("POST", "/v1/admin/licenses", _create_body(site))),
    "change license": (
        Scope.LICENSES_WRITE,
        lambda site: ("PATCH", f"/v1/admin/licenses/{site.licenses['nobody'].id}", {"allowedActivations": 9}),
    ),
    "read the audit log": (Scope.AUDIT_READ, lambda site: ("GET", "/v1/admin/audit", None)),
    "export the audit log": (Scope.AUDIT_READ, lambda site: ("GET", "/v1/admin/audit/export", None)),
    "list a license's activations": (
        Scope.ACTIVATIONS_READ,
        lambda site: ("GET", f"/v1/admin/licenses/{site.licenses['nobody'].id}/activations", None),
    ),
    "release an activation": (
        Scope.ACTIVATIONS_WRITE,
        lambda site: ("POST", f"/v1/admin/activations/{_live_activation(site)}/release", None),
    ),
    **{
        f"{verb} license": (
            Scope.LICENSES_WRITE,
            (lambda v: lambda site: ("POST", f"/v1/admin/licenses/{site.licenses['nobody'].id}/{v}", None))(
                verb
            ),
        )
        for verb in ("suspend", "reinstate", "revoke")
    },
}


def _send(site: Site, name: str, headers: dict[str, str]) -> httpx.Response:
    method, path, body = ROUTES[name][1](site)
    return site.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_route_answers_a_token_with_its_scope_and_refuses_one_without(site: Site, name: str) -> None:
    scope = ROUTES[name][0]
    allowed = _send(site, name, site.admin_auth(scope.value))
    assert allowed.status_code in (200, 201), allowed.text
    others = [s.value for s in Scope if s is not scope]
    assert error(_send(site, name, site.admin_auth(*others))) == (403, "FORBIDDEN")


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_route_refuses_no_token_a_persons_token_and_a_made_up_one(site: Site, name: str) -> None:
    for headers in (
        {},
        site.auth("admin_a"),
        {"authorization": "Bearer ofs_admin_" + "A" * 43},
        {"authorization": "Basic x"},
    ):
        assert error(_send(site, name, headers)) == (401, "UNAUTHENTICATED"), headers


@pytest.mark.parametrize(
    "name", sorted(n for n in ROUTES if "{" not in n and "license" in n and n != "list licenses")
)
def test_another_accounts_token_finds_none_of_this_accounts_licenses(site: Site, name: str) -> None:
    before = site.state()
    answer = _send(site, name, site.admin_auth(account="other"))
    if name == "create license":  # of this account's product
        assert error(answer) == (404, "PRODUCT_NOT_FOUND")
    else:
        assert error(answer) == (404, "LICENSE_NOT_FOUND")
    assert site.licenses["nobody"].key not in answer.text
    assert site.state() == before


def test_another_accounts_token_lists_only_its_own(site: Site) -> None:
    headers = site.admin_auth(account="other")
    listed = site.client.get("/v1/admin/licenses", headers=headers).json()
    assert [x["id"] for x in listed["licenses"]] == [site.licenses["other"].id]
    products = site.client.get("/v1/admin/products", headers=headers).json()["products"]
    assert [p["id"] for p in products] == [site.other_product.id]
    # a product filter naming this account's product finds nothing
    filtered = site.client.get(f"/v1/admin/licenses?product={site.product.id}", headers=headers).json()
    assert filtered == {"licenses": [], "nextCursor": None}


def test_expired_and_revoked_tokens_are_refused(site: Site) -> None:
    now = site.svc.now()
    token, secret = tokens.create_token(site.svc.store, site.acme, scopes=["licenses:read"], days=1, now=now)
    headers = {"authorization": f"Bearer {secret}"}
    assert site.client.get("/v1/admin/licenses", headers=headers).status_code == 200
    site.clock.now = now + DAY  # expires_at is the first second it no longer works
    assert error(site.client.get("/v1/admin/licenses", headers=headers)) == (401, "UNAUTHENTICATED")

    token, secret = tokens.create_token(site.svc.store, site.acme, scopes=["licenses:read"], now=now + DAY)
    headers = {"authorization": f"Bearer {secret}"}
    assert site.client.get("/v1/admin/licenses", headers=headers).status_code == 200
    tokens.revoke_token(site.svc.store, site.acme, token.id, now=now + DAY)
    assert error(site.client.get("/v1/admin/licenses", headers=headers)) == (401, "UNAUTHENTICATED")


def test_an_admin_token_opens_no_persons_route(site: Site) -> None:
    headers = site.admin_auth()
    for path in ("/v1/licenses", "/v1/me", "/v1/me/tokens", "/v1/releases"):
        assert error(site.client.get(path, headers=headers)) == (401, "UNAUTHENTICATED"), path


def test_the_token_is_stored_only_as_its_hash_and_its_use_is_recorded(site: Site) -> None:
    token, secret = tokens.create_token(
        site.svc.store, site.acme, scopes=["licenses:read"], now=site.svc.now()
    )
    assert secret.startswith("ofs_admin_") and len(secret) == len("ofs_admin_") + 43
    rows = table(site.svc.store, "admin_tokens")
    assert secret not in repr(rows) and secret.removeprefix("ofs_admin_") not in repr(rows)
    site.client.get("/v1/admin/licenses", headers={"authorization": f"Bearer {secret}"})
    assert [t.last_used_at for t in tokens.list_tokens(site.svc.store, site.acme) if t.id == token.id] == [
        site.svc.now()
    ]


def test_the_life_cycle_is_audited_as_the_token(site: Site) -> None:
    headers = site.admin_auth(Scope.LICENSES_WRITE.value)
    created = site.client.post(
        "/v1/admin/licenses", json=_create_body(site, name="Shop order 1"), headers=headers
    )
    assert created.status_code == 201, created.text
    lid = created.json()["id"]
    for verb, status in (("suspend", "suspended"), ("reinstate", "active"), ("revoke", "revoked")):
        answer = site.client.post(f"/v1/admin/licenses/{lid}/{verb}", headers=headers)
        assert answer.status_code == 200 and answer.json()["status"] == status
    changed = site.client.patch(
        f"/v1/admin/licenses/{lid}",
        json={"allowedActivations": -1, "expiresAt": site.svc.now() + 10 * DAY, "maxVersion": "2.0"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["allowedActivations"], changed.json()["maxVersion"]) == (-1, "2.0")
    token_id = next(
        t.id for t in tokens.list_tokens(site.svc.store, site.acme) if t.scopes == {Scope.LICENSES_WRITE}
    )
    actions = [(e.action, e.actor) for e in reversed(site.audit()) if e.license_id == lid]
    assert actions == [
        (a, f"admin_token:{token_id}")
        for a in (
            "license.create",
            "license.suspended",
            "license.active",
            "license.revoked",
            "license.change",
        )
    ]


def test_a_change_with_nothing_to_change_or_an_expiry_in_the_past_changes_nothing(site: Site) -> None:
    lid = site.licenses["nobody"].id
    headers = site.admin_auth(Scope.LICENSES_WRITE.value)
    before = site.state()
    for body in ({}, {"expiresAt": site.svc.now() - 1}, {"allowedActivations": -2}, {"color": "red"}):
        assert error(site.client.patch(f"/v1/admin/licenses/{lid}", json=body, headers=headers))[0] == 400, (
            body
        )
    assert site.state() == before


# -- idempotency -------------------------------------------------------------------------------


def _licenses(site: Site) -> int:
    return len(table(site.svc.store, "licenses"))


def test_a_retried_create_answers_the_first_answer_and_creates_nothing(site: Site) -> None:
    headers = {**site.admin_auth(Scope.LICENSES_WRITE.value), "idempotency-key": "order-1"}
    count = _licenses(site)
    first = site.client.post("/v1/admin/licenses", json=_create_body(site), headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # the same body written otherwise is the same request
    again = site.client.post(
        "/v1/admin/licenses",
        content=b'{ "allowedDeactivations": 1, "allowedActivations": 3, "productId": "%s" }'
        % site.product.id.encode(),
        headers={**headers, "content-type": "application/json"},
    )
    assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (
        201,
        first.json(),
        "true",
    )
    assert _licenses(site) == count + 1
    # the same key with another body
    other = site.client.post("/v1/admin/licenses", json=_create_body(site, name="x"), headers=headers)
    assert error(other) == (409, "IDEMPOTENCY_KEY_REUSED")
    # the key is the token's own: another token's same key is another create
    elsewhere = site.client.post(
        "/v1/admin/licenses",
        json=_create_body(site),
        headers={**site.admin_auth(), "idempotency-key": "order-1"},
    )
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
    # after a day the key is forgotten
    site.clock.now += KEEP_SECONDS
    later = site.client.post("/v1/admin/licenses", json=_create_body(site), headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    assert _licenses(site) == count + 3


def test_a_refused_create_keeps_no_answer(site: Site) -> None:
    headers = {**site.admin_auth(Scope.LICENSES_WRITE.value), "idempotency-key": "k"}
    refused = site.client.post(
        "/v1/admin/licenses", json=_create_body(site, maxVersion="not a version"), headers=headers
    )
    assert refused.status_code == 400
    assert table(site.svc.store, "admin_idempotency") == []
    assert site.client.post("/v1/admin/licenses", json=_create_body(site), headers=headers).status_code == 201


def test_two_creates_racing_with_one_key_create_one_license(site: Site) -> None:
    headers = {**site.admin_auth(Scope.LICENSES_WRITE.value), "idempotency-key": "race"}
    count = _licenses(site)
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def create() -> None:
        start.wait()
        answers.append(site.client.post("/v1/admin/licenses", json=_create_body(site), headers=headers))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == ["", "true", "true", "true"]
    assert _licenses(site) == count + 1


# -- paging ------------------------------------------------------------------------------------


def test_cursor_pages_miss_and_repeat_nothing_while_licenses_are_created(site: Site) -> None:
    headers = site.admin_auth(Scope.LICENSES_READ.value, Scope.LICENSES_WRITE.value)

    def create() -> str:
        answer = site.client.post("/v1/admin/licenses", json=_create_body(site), headers=headers)
        assert answer.status_code == 201
        return str(answer.json()["id"])

    existing = {
        x["id"] for x in site.client.get("/v1/admin/licenses?limit=200", headers=headers).json()["licenses"]
    }
    created = [create() for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/admin/licenses?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = site.client.get(url, headers=headers).json()
        seen += [x["id"] for x in page["licenses"]]
        created.append(create())  # a license made between pages sorts after every page so far
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert existing | set(created[:3]) <= set(seen)
    assert set(seen) <= existing | set(created)


def test_filters_and_bad_cursors(site: Site) -> None:
    headers = site.admin_auth(Scope.LICENSES_READ.value)
    suspended = site.licenses["org_b"]
    site.client.post(
        f"/v1/admin/licenses/{suspended.id}/suspend", headers=site.admin_auth(Scope.LICENSES_WRITE.value)
    )
    found = site.client.get("/v1/admin/licenses?status=suspended", headers=headers).json()
    assert [x["id"] for x in found["licenses"]] == [suspended.id]
    found = site.client.get(f"/v1/admin/licenses?product={site.no_trials.id}", headers=headers).json()
    assert all(x["productId"] == site.no_trials.id for x in found["licenses"])
    for query in (
        "cursor=abc",
        "cursor=" + "A" * 65,
        "limit=0",
        "limit=201",
        "status=expired",
        "product=lic_x",
    ):
        assert error(site.client.get(f"/v1/admin/licenses?{query}", headers=headers))[0] == 400, query


def test_releasing_a_seat_needs_its_scope_and_the_accounts_activation(site: Site) -> None:
    granted = site.activate("user1", activation_request(site, "user1", "user1"))
    assert granted.status_code == 200, granted.text
    activation_id = granted.json()["activationId"]
    url = f"/v1/admin/activations/{activation_id}/release"
    before = site.license("user1")
    assert error(site.client.post(url, headers=site.admin_auth(Scope.ACTIVATIONS_READ.value))) == (
        403,
        "FORBIDDEN",
    )
    other = site.admin_auth(account="other")
    assert error(site.client.post(url, headers=other)) == (404, "ACTIVATION_NOT_FOUND")
    listed = site.client.get(f"/v1/admin/licenses/{before.id}/activations", headers=other)
    assert error(listed) == (404, "LICENSE_NOT_FOUND")
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value, Scope.ACTIVATIONS_WRITE.value)
    listed = site.client.get(f"/v1/admin/licenses/{before.id}/activations", headers=headers)
    assert [(a["id"], a["deactivatedAt"]) for a in listed.json()["activations"]] == [(activation_id, None)]
    released = site.client.post(url, headers=headers)
    assert released.status_code == 200 and released.json()["deactivatedAt"] == site.svc.now()
    after = site.license("user1")
    assert (after.used_activations, after.used_deactivations) == (
        before.used_activations - 1,
        before.used_deactivations,
    )
    assert error(site.client.post(url, headers=headers)) == (409, "CONFLICT")
    entry = next(e for e in site.audit() if e.action == "activation.release")
    assert entry.actor.startswith("admin_token:adt_") and entry.activation_id == activation_id


def test_the_audit_log_pages_newest_first_filters_and_stays_in_the_account(site: Site) -> None:
    writer = site.admin_auth(Scope.LICENSES_WRITE.value)
    lid = site.licenses["nobody"].id
    for verb in ("suspend", "reinstate", "suspend"):
        site.clock.now += 10
        assert site.client.post(f"/v1/admin/licenses/{lid}/{verb}", headers=writer).status_code == 200
    headers = site.admin_auth(Scope.AUDIT_READ.value)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = site.client.get(
            f"/v1/admin/audit?license={lid}&limit=2" + (f"&cursor={cursor}" if cursor else ""),
            headers=headers,
        ).json()
        seen += page["entries"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [e["action"] for e in seen][:3] == ["license.suspended", "license.active", "license.suspended"]
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    since = int(site.clock.now) - 10
    recent = site.client.get(f"/v1/admin/audit?since={since}&license={lid}", headers=headers).json()[
        "entries"
    ]
    assert [e["action"] for e in recent] == ["license.suspended", "license.active"]  # the last two
    actor = seen[0]["actor"]
    by_actor = site.client.get(f"/v1/admin/audit?actor={actor}", headers=headers).json()["entries"]
    assert by_actor and all(e["actor"] == actor for e in by_actor)
    # another account sees none of it
    other = site.client.get(f"/v1/admin/audit?license={lid}", headers=site.admin_auth(account="other")).json()
    assert other == {"entries": [], "nextCursor": None}
    for query in ("cursor=0", "since=-1", "limit=0", "license=x"):
        assert error(site.client.get(f"/v1/admin/audit?{query}", headers=headers))[0] == 400, query


def test_text_with_control_characters_is_refused_before_any_query(site: Site) -> None:
    headers = site.admin_auth()
    before = site.state()
    for extra in (
        {"ownerUserEmail": "a\x00@example.com"},
        {"ownerOrganization": "Org\x00"},
        {"name": "x\x00"},
        {"metadata": {"k": "v\x00"}},
    ):
        answer = site.client.post("/v1/admin/licenses", json=_create_body(site, **extra), headers=headers)
        assert error(answer) == (400, "INVALID_ARGUMENT"), extra
    assert error(site.client.get("/v1/admin/audit?actor=%00", headers=headers)) == (400, "INVALID_ARGUMENT")
    assert site.state() == before
