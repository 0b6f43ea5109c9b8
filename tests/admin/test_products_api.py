"""The admin API's products in-process, on both backends: each route with its scope (and 403
without), no, a person's or a made-up token (401), another account's token (404, nothing of this
account's in the answer, nothing changed), an idempotent create (one product, one signing key,
written once), a create whose transaction fails (no key left behind), hostile bodies (nothing
changed), and a change audited as the token."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.admin import tokens
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing.decisions import DAY
from tests.db import table
from tests.factories import Machine
from tests.web.site import Site, error

Call = Callable[[Site], tuple[str, str, dict[str, Any] | None]]

ROUTES: dict[str, tuple[Scope, Call]] = {
    "list": (Scope.PRODUCTS_READ, lambda site: ("GET", "/v1/admin/products", None)),
    "create": (Scope.PRODUCTS_WRITE, lambda site: ("POST", "/v1/admin/products", {"name": "Shop App"})),
    "show": (Scope.PRODUCTS_READ, lambda site: ("GET", f"/v1/admin/products/{site.product.id}", None)),
    "change": (
        Scope.PRODUCTS_WRITE,
        lambda site: ("PATCH", f"/v1/admin/products/{site.product.id}", {"trialDays": 30}),
    ),
}


def _send(site: Site, name: str, headers: dict[str, str]) -> httpx.Response:
    method, path, body = ROUTES[name][1](site)
    return site.client.request(method, path, json=body, headers=headers)


def _key_dirs(site: Site) -> list[str]:
    return sorted(p.name for p in Path(site.svc.keyring.directory).iterdir())


def _everything(site: Site) -> tuple[Any, ...]:
    """The products, the license state, the keyring's folders and the kept idempotent answers."""
    return (
        table(site.svc.store, "products"),
        site.state(),
        _key_dirs(site),
        table(site.svc.store, "admin_idempotency"),
    )


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_product_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    scope = ROUTES[name][0]
    others = [s.value for s in Scope if s is not scope]
    before = _everything(site)
    assert error(_send(site, name, site.admin_auth(*others))) == (403, "FORBIDDEN")
    assert _everything(site) == before
    allowed = _send(site, name, site.admin_auth(scope.value))
    assert allowed.status_code == (201 if name == "create" else 200), allowed.text


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_product_route_refuses_no_token_a_persons_token_and_a_made_up_one(site: Site, name: str) -> None:
    before = _everything(site)
    for headers in (
        {},
        site.auth("admin_a"),
        {"authorization": "Bearer ofs_admin_" + "A" * 43},
        {"authorization": "Basic x"},
    ):
        assert error(_send(site, name, headers)) == (401, "UNAUTHENTICATED"), headers
    assert _everything(site) == before


@pytest.mark.parametrize("name", ["show", "change"])
def test_another_accounts_token_finds_none_of_this_accounts_products(site: Site, name: str) -> None:
    before = _everything(site)
    answer = _send(site, name, site.admin_auth(account="other"))
    assert error(answer) == (404, "PRODUCT_NOT_FOUND")
    assert site.product.name not in answer.text
    assert _everything(site) == before


def test_a_product_is_shown_as_listed(site: Site) -> None:
    headers = site.admin_auth(Scope.PRODUCTS_READ.value)
    listed = site.client.get("/v1/admin/products", headers=headers).json()["products"]
    for product in listed:
        shown = site.client.get(f"/v1/admin/products/{product['id']}", headers=headers)
        assert shown.json() == product
    missing = "prod_" + "0" * 32
    assert error(site.client.get(f"/v1/admin/products/{missing}", headers=headers)) == (
        404,
        "PRODUCT_NOT_FOUND",
    )
    assert error(site.client.get("/v1/admin/products/lic_x", headers=headers))[0] == 400


# -- create ------------------------------------------------------------------------------------


def test_a_created_product_has_its_signing_key_written_privately(site: Site) -> None:
    headers = site.admin_auth(Scope.PRODUCTS_WRITE.value)
    body = {"name": "Shop App", "trialDays": 7, "maxResponseValidity": 2 * DAY, "customerRelease": True}
    created = site.client.post("/v1/admin/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    pid = shown.pop("id")
    kid = shown.pop("kid")
    assert shown == {
        "name": "Shop App",
        "trialsEnabled": True,
        "trialDays": 7,
        "maxResponseValidity": 2 * DAY,
        "customerRelease": True,
        "createdAt": site.svc.now(),
    }
    key_file = Path(site.svc.keyring.directory) / pid / f"{kid}.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert site.svc.keyring.signer(pid).kid == kid
    assert [k["kid"] for k in site.client.get(f"/.well-known/jwks.json?product={pid}").json()["keys"]] == [
        kid
    ]
    # defaults: no trials, 30 days, no customer release, as `product create`
    plain = site.client.post("/v1/admin/products", json={"name": "Plain"}, headers=headers).json()
    assert (plain["trialsEnabled"], plain["trialDays"], plain["maxResponseValidity"]) == (False, 0, 30 * DAY)
    assert plain["customerRelease"] is False
    token_id = next(
        t.id for t in tokens.list_tokens(site.svc.store, site.acme) if t.scopes == {Scope.PRODUCTS_WRITE}
    )
    created_by = [(e.product_id, e.actor) for e in site.audit() if e.action == "product.create"]
    assert (pid, f"admin_token:{token_id}") in created_by


def test_a_retried_create_answers_the_first_answer_and_makes_one_product_and_one_key(site: Site) -> None:
    headers = {**site.admin_auth(Scope.PRODUCTS_WRITE.value), "idempotency-key": "product-1"}
    products, keys = len(table(site.svc.store, "products")), _key_dirs(site)
    first = site.client.post("/v1/admin/products", json={"name": "Once"}, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = site.client.post("/v1/admin/products", json={"name": "Once"}, headers=headers)
        assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (
            201,
            first.json(),
            "true",
        )
    assert len(table(site.svc.store, "products")) == products + 1
    assert _key_dirs(site) == sorted([*keys, first.json()["id"]])
    assert len(list((Path(site.svc.keyring.directory) / first.json()["id"]).glob("*.json"))) == 1
    # the same key with another body: refused, nothing made
    before = _everything(site)
    other = site.client.post("/v1/admin/products", json={"name": "Twice"}, headers=headers)
    assert error(other) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert _everything(site) == before


def test_creates_racing_with_one_key_make_one_product_and_one_key(site: Site) -> None:
    headers = {**site.admin_auth(Scope.PRODUCTS_WRITE.value), "idempotency-key": "race"}
    products, keys = len(table(site.svc.store, "products")), _key_dirs(site)
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def create() -> None:
        start.wait()
        answers.append(site.client.post("/v1/admin/products", json={"name": "Raced"}, headers=headers))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 4
    (pid,) = {a.json()["id"] for a in answers}
    assert len(table(site.svc.store, "products")) == products + 1
    assert _key_dirs(site) == sorted([*keys, pid])


def test_a_create_whose_transaction_fails_leaves_no_key(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is written inside the create's transaction; when that transaction does not commit,
    the key of the product it never stored is removed, and the Idempotency-Key keeps no answer."""
    from offline_service.licensing import services as licensing

    real = licensing.audit.record

    def failing(tx: Any, **kw: Any) -> Any:
        if kw.get("action") == "product.create":  # after the key and the row were written
            # a code the route documents (409); the store's own failures are 503s
            raise OfflineServiceError(Code.CONFLICT, "the transaction fails")
        return real(tx, **kw)

    monkeypatch.setattr(licensing.audit, "record", failing)
    headers = {**site.admin_auth(Scope.PRODUCTS_WRITE.value), "idempotency-key": "fails"}
    before = _everything(site)
    failed = site.client.post("/v1/admin/products", json={"name": "Doomed"}, headers=headers)
    assert error(failed) == (409, "CONFLICT")
    assert _everything(site) == before
    monkeypatch.setattr(licensing.audit, "record", real)
    # the retry of the same key creates it now, once
    done = site.client.post("/v1/admin/products", json={"name": "Doomed"}, headers=headers)
    assert done.status_code == 201 and "idempotent-replayed" not in done.headers
    assert _key_dirs(site) == sorted([*before[2], done.json()["id"]])


def test_the_cli_create_whose_transaction_fails_leaves_no_key(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offline_service.licensing import services as licensing

    def failing(tx: Any, **kw: Any) -> Any:
        raise OfflineServiceError(Code.STORAGE_ERROR, "the disk is full")

    monkeypatch.setattr(licensing.audit, "record", failing)
    keys = _key_dirs(site)
    with pytest.raises(OfflineServiceError):
        licensing.create_product(
            site.svc.store, site.svc.keyring, site.acme, name="Doomed", now=site.svc.now()
        )
    assert _key_dirs(site) == keys


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": None},
        {"name": 7},
        {"name": "a\x00b"},
        {"name": "line\nbreak"},
        {"name": "x" * 201},
        {"name": "App", "color": "red"},
        {"name": "App", "trialDays": -1},
        {"name": "App", "trialDays": 3651},
        {"name": "App", "trialDays": "7"},
        {"name": "App", "trialDays": True},
        {"name": "App", "trialDays": 7.5},
        {"name": "App", "trialDays": 10**30},
        {"name": "App", "maxResponseValidity": 0},
        {"name": "App", "maxResponseValidity": 2**63},
        {"name": "App", "maxResponseValidity": 1e300},
        {"name": "App", "customerRelease": "on"},
        {"name": "App", "customerRelease": 1},
        {"name": "App", "customerRelease": None},
    ],
)
def test_a_hostile_create_body_creates_nothing(site: Site, body: dict[str, Any]) -> None:
    headers = {**site.admin_auth(Scope.PRODUCTS_WRITE.value), "idempotency-key": "hostile"}
    before = _everything(site)
    assert error(site.client.post("/v1/admin/products", json=body, headers=headers)) == (
        400,
        "INVALID_ARGUMENT",
    ), body
    assert _everything(site) == before


def test_a_body_that_is_not_a_json_object_creates_nothing(site: Site) -> None:
    headers = {**site.admin_auth(Scope.PRODUCTS_WRITE.value), "content-type": "application/json"}
    before = _everything(site)
    for content in (b"[]", b'"App"', b"{", b"null"):
        answer = site.client.post("/v1/admin/products", content=content, headers=headers)
        assert answer.status_code == 400, content
    assert _everything(site) == before


# -- change ------------------------------------------------------------------------------------


def test_a_change_sets_the_trial_and_the_other_settings_audited_as_the_token(site: Site) -> None:
    headers = site.admin_auth(Scope.PRODUCTS_WRITE.value)
    url = f"/v1/admin/products/{site.product.id}"
    off = site.client.patch(url, json={"trialDays": 0}, headers=headers)
    assert off.status_code == 200, off.text
    assert (off.json()["trialsEnabled"], off.json()["trialDays"]) == (False, 0)
    assert off.json()["maxResponseValidity"] == site.product.max_response_validity  # kept
    both = site.client.patch(
        url, json={"trialDays": 21, "maxResponseValidity": 3 * DAY, "customerRelease": True}, headers=headers
    ).json()
    assert (
        both["trialsEnabled"],
        both["trialDays"],
        both["maxResponseValidity"],
        both["customerRelease"],
    ) == (
        True,
        21,
        3 * DAY,
        True,
    )
    shown = site.client.get(url, headers=site.admin_auth(Scope.PRODUCTS_READ.value)).json()
    assert shown == both
    token_id = next(
        t.id for t in tokens.list_tokens(site.svc.store, site.acme) if t.scopes == {Scope.PRODUCTS_WRITE}
    )
    entries = [e for e in reversed(site.audit()) if e.action == "product.update"]
    assert [(e.product_id, e.actor, dict(e.detail)) for e in entries] == [
        (site.product.id, f"admin_token:{token_id}", {"trialDays": "0"}),
        (
            site.product.id,
            f"admin_token:{token_id}",
            {"trialDays": "21", "maxResponseValidity": str(3 * DAY), "customerRelease": "on"},
        ),
    ]


def test_trials_follow_the_changed_setting(site: Site) -> None:
    headers = site.admin_auth(Scope.PRODUCTS_WRITE.value)
    url = f"/v1/admin/products/{site.product.id}"
    site.client.patch(url, json={"trialDays": 0}, headers=headers)
    refused = Machine(fingerprint="fp-refused").request(Kind.TRIAL, site.product.id)
    assert error(site.trial(refused)) == (422, "TRIAL_NOT_ALLOWED")
    site.client.patch(url, json={"trialDays": 3}, headers=headers)
    granted = site.trial(Machine(fingerprint="fp-granted").request(Kind.TRIAL, site.product.id))
    assert granted.status_code == 200, granted.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Renamed"},
        {"trialDays": -1},
        {"trialDays": None},
        {"trialDays": 10**30},
        {"maxResponseValidity": 0},
        {"maxResponseValidity": -5},
        {"maxResponseValidity": 2**53 + 2},
        {"customerRelease": "off"},
        {"trialDays": 5, "unknown": 1},
    ],
)
def test_a_hostile_change_changes_nothing(site: Site, body: dict[str, Any]) -> None:
    headers = site.admin_auth(Scope.PRODUCTS_WRITE.value)
    before = (_everything(site), len(site.audit()))
    answer = site.client.patch(f"/v1/admin/products/{site.product.id}", json=body, headers=headers)
    assert error(answer) == (400, "INVALID_ARGUMENT"), body
    assert (_everything(site), len(site.audit())) == before
