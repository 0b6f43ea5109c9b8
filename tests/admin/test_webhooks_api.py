"""The admin API's webhook routes in-process, on both backends: each route with its scope (and 403
without), another account's token (404, nothing of this account's in the answer, nothing changed),
the signing secret shown in the create answer only, idempotent creates, refused URLs with their
reason. Then one end to end: a real server, a real receiver, an endpoint registered and a license
created through the admin API, a machine activated with the CLI, and both events arriving signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from standardwebhooks.webhooks import Webhook

from offline_service.admin import tokens
from offline_service.admin.models import Scope
from offline_service.fileformat.messages import Kind
from offline_service.settings import Settings
from offline_service.store import open_store
from offline_service.webhooks import services as webhooks
from offline_service.webhooks.sender import SenderConfig, send_due
from offline_service.webhooks.urls import URLPolicy
from tests.db import table
from tests.factories import Machine
from tests.servers import serve
from tests.web.site import Site, error
from tests.webhooks.receiver import receiver

ROOT = Path(__file__).resolve().parent.parent.parent
HOOK = "https://93.184.216.34/hook"  # a global address, written as one: nothing to resolve
EVENTS = ["license.created", "activation.created"]

Call = Callable[[Site, str, str], tuple[str, str, dict[str, Any] | None]]


def _endpoint(site: Site, account: str = "acme") -> tuple[str, str]:
    """An endpoint of ``account`` made with the service, and one delivery of it (a license created)."""
    owner = site.acme if account == "acme" else site.other
    made = webhooks.add_endpoint(
        site.svc.store, owner, url=HOOK, events=EVENTS, policy=URLPolicy(), sealer=site.svc.sealer,
        now=site.svc.now(),
    )  # fmt: skip
    headers = site.admin_auth(Scope.LICENSES_WRITE.value, account=account)
    product = site.product if account == "acme" else site.other_product
    body = {"productId": product.id, "allowedActivations": 1, "allowedDeactivations": 1}
    assert site.client.post("/v1/admin/licenses", json=body, headers=headers).status_code == 201
    (delivery,) = webhooks.deliveries(site.svc.store, owner, made.id)
    return made.id, delivery.id


# Every webhook route: (method, path, JSON body) given an endpoint and a delivery id, and its scope.
ROUTES: dict[str, tuple[Scope, Call]] = {
    "list": (Scope.WEBHOOKS_READ, lambda site, e, d: ("GET", "/v1/admin/webhooks", None)),
    "create": (
        Scope.WEBHOOKS_WRITE,
        lambda site, e, d: ("POST", "/v1/admin/webhooks", {"url": HOOK, "events": EVENTS}),
    ),
    "show": (Scope.WEBHOOKS_READ, lambda site, e, d: ("GET", f"/v1/admin/webhooks/{e}", None)),
    "deliveries": (
        Scope.WEBHOOKS_READ,
        lambda site, e, d: ("GET", f"/v1/admin/webhooks/{e}/deliveries?limit=5", None),
    ),
    "enable": (Scope.WEBHOOKS_WRITE, lambda site, e, d: ("POST", f"/v1/admin/webhooks/{e}/enable", None)),
    "disable": (Scope.WEBHOOKS_WRITE, lambda site, e, d: ("POST", f"/v1/admin/webhooks/{e}/disable", None)),
    "redeliver": (
        Scope.WEBHOOKS_WRITE,
        lambda site, e, d: ("POST", f"/v1/admin/webhook-deliveries/{d}/redeliver", None),
    ),
    "remove": (Scope.WEBHOOKS_WRITE, lambda site, e, d: ("DELETE", f"/v1/admin/webhooks/{e}", None)),
    "rotate-secret": (
        Scope.WEBHOOKS_WRITE,
        lambda site, e, d: ("POST", f"/v1/admin/webhooks/{e}/rotate-secret", {"graceSeconds": 60}),
    ),
}


def _send(site: Site, name: str, headers: dict[str, str], ids: tuple[str, str]) -> httpx.Response:
    method, path, body = ROUTES[name][1](site, *ids)
    return site.client.request(method, path, json=body, headers=headers)


def _hook_state(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    return {t: table(site.svc.store, t) for t in ("webhook_endpoints", "webhook_deliveries")}


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_webhook_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    ids = _endpoint(site)
    scope = ROUTES[name][0]
    others = [s.value for s in Scope if s is not scope]
    before = _hook_state(site)
    assert error(_send(site, name, site.admin_auth(*others), ids)) == (403, "FORBIDDEN")
    assert _hook_state(site) == before
    allowed = _send(site, name, site.admin_auth(scope.value), ids)
    assert allowed.status_code == (201 if name == "create" else 200), allowed.text
    assert error(_send(site, name, {}, ids)) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize("name", sorted(set(ROUTES) - {"list", "create"}))
def test_another_accounts_token_finds_none_of_this_accounts_webhooks(site: Site, name: str) -> None:
    ids = _endpoint(site)
    _endpoint(site, "other")
    before = _hook_state(site)
    answer = _send(site, name, site.admin_auth(account="other"), ids)
    assert error(answer) == (404, "NOT_FOUND")
    assert HOOK not in answer.text
    assert _hook_state(site) == before


def test_another_accounts_token_lists_only_its_own(site: Site) -> None:
    mine, _ = _endpoint(site)
    theirs, _ = _endpoint(site, "other")
    listed = site.client.get("/v1/admin/webhooks", headers=site.admin_auth(account="other")).json()
    assert [e["id"] for e in listed["endpoints"]] == [theirs] and mine not in str(listed)


def test_the_secret_is_shown_in_the_create_answer_only(site: Site) -> None:
    headers = site.admin_auth(Scope.WEBHOOKS_READ.value, Scope.WEBHOOKS_WRITE.value)
    created = site.client.post("/v1/admin/webhooks", json={"url": HOOK, "events": EVENTS}, headers=headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    secret, eid = shown["secret"], shown["id"]
    assert secret.startswith("whsec_") and shown["events"] == EVENTS and shown["enabled"] is True
    for path in (
        "/v1/admin/webhooks",
        f"/v1/admin/webhooks/{eid}",
        f"/v1/admin/webhooks/{eid}/deliveries",
    ):
        answer = site.client.get(path, headers=headers)
        assert answer.status_code == 200 and secret not in answer.text and "secret" not in answer.text
    for verb in ("disable", "enable"):
        answer = site.client.post(f"/v1/admin/webhooks/{eid}/{verb}", headers=headers)
        assert answer.json()["enabled"] is (verb == "enable") and secret not in answer.text
    assert all(secret not in e.detail.values() for e in site.audit())
    removed = site.client.delete(f"/v1/admin/webhooks/{eid}", headers=headers)
    assert removed.json() == {"removed": eid}
    assert error(site.client.get(f"/v1/admin/webhooks/{eid}", headers=headers)) == (404, "NOT_FOUND")


def test_a_retried_create_answers_the_first_answer_and_registers_one(site: Site) -> None:
    headers = {**site.admin_auth(Scope.WEBHOOKS_WRITE.value), "idempotency-key": "hook-1"}
    body = {"url": HOOK, "events": EVENTS}
    first = site.client.post("/v1/admin/webhooks", json=body, headers=headers)
    again = site.client.post("/v1/admin/webhooks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    # the caller who lost the first answer gets it again, secret and all: it is the only copy
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(table(site.svc.store, "webhook_endpoints")) == 1
    other = site.client.post("/v1/admin/webhooks", json={**body, "events": EVENTS[:1]}, headers=headers)
    assert error(other) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len(table(site.svc.store, "webhook_endpoints")) == 1


def test_refused_urls_and_bad_bodies_register_nothing(site: Site) -> None:
    headers = {**site.admin_auth(Scope.WEBHOOKS_WRITE.value), "idempotency-key": "k"}
    for url, reason in (
        ("http://93.184.216.34/hook", "scheme"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@93.184.216.34/", "credentials"),
    ):
        answer = site.client.post("/v1/admin/webhooks", json={"url": url, "events": EVENTS}, headers=headers)
        assert error(answer) == (400, "WEBHOOK_URL_REFUSED") and answer.json()["reason"] == reason, url
    for body in (
        {"url": HOOK, "events": []},
        {"url": HOOK, "events": ["license.exploded"]},
        {"url": HOOK},
        {"url": 5, "events": EVENTS},
        {"url": HOOK, "events": EVENTS, "secret": "mine"},
    ):
        answer = site.client.post("/v1/admin/webhooks", json=body, headers=headers)
        assert error(answer) == (400, "INVALID_ARGUMENT"), body
    assert table(site.svc.store, "webhook_endpoints") == []
    assert table(site.svc.store, "admin_idempotency") == []


def test_the_delivery_log_and_redelivery(site: Site) -> None:
    eid, did = _endpoint(site)
    headers = site.admin_auth(Scope.WEBHOOKS_READ.value, Scope.WEBHOOKS_WRITE.value)
    log = site.client.get(f"/v1/admin/webhooks/{eid}/deliveries", headers=headers).json()["deliveries"]
    assert [(d["id"], d["event"], d["state"]) for d in log] == [(did, "license.created", "pending")]
    again = site.client.post(f"/v1/admin/webhook-deliveries/{did}/redeliver", headers=headers)
    assert again.json()["id"] == did and again.json()["attempts"] == 0
    assert error(site.client.get(f"/v1/admin/webhooks/{eid}/deliveries?limit=0", headers=headers)) == (
        400,
        "INVALID_ARGUMENT",
    )
    token_id = next(
        t.id for t in tokens.list_tokens(site.svc.store, site.acme) if Scope.WEBHOOKS_WRITE in t.scopes
    )
    assert ("webhook.redeliver", f"admin_token:{token_id}") in [(e.action, e.actor) for e in site.audit()]


def _new_delivery(site: Site) -> None:
    """One more delivery of acme's endpoints: a license created (its license.created event)."""
    headers = site.admin_auth(Scope.LICENSES_WRITE.value)
    body = {"productId": site.product.id, "allowedActivations": 1, "allowedDeactivations": 1}
    assert site.client.post("/v1/admin/licenses", json=body, headers=headers).status_code == 201


def _page(site: Site, eid: str, query: str, account: str = "acme") -> httpx.Response:
    headers = site.admin_auth(Scope.WEBHOOKS_READ.value, account=account)
    return site.client.get(f"/v1/admin/webhooks/{eid}/deliveries?{query}", headers=headers)


def test_the_delivery_log_pages_by_cursor_while_deliveries_are_written(site: Site) -> None:
    eid, first_delivery = _endpoint(site)
    for _ in range(4):
        site.clock.now += 1
        _new_delivery(site)
    everything = [d["id"] for d in _page(site, eid, "limit=200").json()["deliveries"]]
    assert len(everything) == 5 and everything[-1] == first_delivery
    seen: list[str] = []
    cursor, pages = "", 0
    while True:
        page = _page(site, eid, f"limit=2{'&cursor=' + cursor if cursor else ''}").json()
        seen += [d["id"] for d in page["deliveries"]]
        pages += 1
        _new_delivery(site)  # between pages: newer than every page read, so no page moves
        site.clock.now += 1  # and later ones at a later time (the cursor holds the time too)
        if page["nextCursor"] is None:
            break
        cursor = page["nextCursor"]
    assert (seen, pages) == (everything, 3)
    # The newest ones written meanwhile are on a fresh first page.
    assert [d["id"] for d in _page(site, eid, "limit=200").json()["deliveries"]][3:] == everything


def test_a_delivery_cursor_is_checked_and_finds_nothing_of_another_account(site: Site) -> None:
    eid, _ = _endpoint(site)
    _new_delivery(site)
    cursor = _page(site, eid, "limit=1").json()["nextCursor"]
    assert cursor
    for query in ("cursor=abc", "cursor=1.xyz", "limit=201", "limit=1&cursor=" + "9" * 16 + "." + "a" * 32):
        assert error(_page(site, eid, query)) == (400, "INVALID_ARGUMENT"), query
    theirs, _ = _endpoint(site, "other")
    answer = _page(site, eid, f"limit=1&cursor={cursor}", account="other")
    assert error(answer) == (404, "NOT_FOUND")
    # Acme's cursor on the other account's endpoint pages the other's log only.
    listed = _page(site, theirs, f"cursor={cursor}", account="other").json()
    assert all(d["endpointId"] == theirs for d in listed["deliveries"])


def test_the_delivery_pages_are_as_long_as_every_admin_page() -> None:
    from offline_service.admin.api._kit import MAX_LIMIT

    assert webhooks.MAX_PAGE == MAX_LIMIT


# -- end to end --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.sqlite_only  # a real server on the default database, as make run starts it
def test_events_of_an_admin_created_license_reach_a_real_receiver_signed(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    env = {
        "OFFLINE_SERVICE_DATA": str(data),
        "OFFLINE_SERVICE_KEYS": str(keys),
        "OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK": "1",
        "OFFLINE_SERVICE_WEBHOOK_SECONDS": "1",
    }
    with serve(tmp_path, "--demo", env=env) as url, receiver() as r:
        store = open_store(Settings.from_env(env))
        try:
            with store.read() as tx:
                account = tx.account_by_alias("default")
            assert account is not None
            _, secret = tokens.create_token(
                store,
                account,
                scopes=["products:read", "licenses:write", "webhooks:write"],
                now=int(time.time()),
            )
        finally:
            store.close()
        auth = {"authorization": f"Bearer {secret}"}
        hook = httpx.post(f"{url}/v1/admin/webhooks", json={"url": r.url, "events": EVENTS}, headers=auth)
        assert hook.status_code == 201, hook.text
        r.secret = hook.json()["secret"]
        product = httpx.get(f"{url}/v1/admin/products", headers=auth).json()["products"][0]["id"]
        order = {"productId": product, "allowedActivations": 1, "allowedDeactivations": 1}
        license = httpx.post(f"{url}/v1/admin/licenses", json=order, headers=auth).json()
        request = Machine("fp-e2e").request(
            Kind.ACTIVATION, product, license_key=license["key"], issued_at=int(time.time())
        )
        (tmp_path / "activate.req").write_bytes(request)
        child = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
        child.update(env, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), child.get("PYTHONPATH")])))
        done = subprocess.run(
            [sys.executable, "-m", "offline_service.cli", "process", "activate.req", "--out", "out"],
            cwd=tmp_path,
            env=child,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        for _ in range(150):  # the server's next round, a second or so away
            if len(r.verified) >= 2:
                break
            time.sleep(0.1)
    assert len(r.seen) == len(r.verified)  # every one signed as standardwebhooks verifies
    got = {json.loads(json.dumps(b))["type"]: b["data"] for b in r.verified}
    assert set(got) == set(EVENTS), r.verified
    assert got["license.created"]["id"] == license["id"]
    assert got["activation.created"]["licenseId"] == license["id"]


# -- secrets: sealed at rest, rotated ---------------------------------------------------------


def _no_secret_at_rest(site: Site, *secrets: str) -> None:
    for name in ("webhook_endpoints", "admin_idempotency", "audit_log"):
        rows = repr(table(site.svc.store, name))
        assert "whsec_" not in rows and not any(s in rows for s in secrets), name


def test_a_rotation_answers_the_new_secret_and_keeps_none_in_clear(site: Site) -> None:
    headers = site.admin_auth(Scope.WEBHOOKS_READ.value, Scope.WEBHOOKS_WRITE.value)
    body = {"url": HOOK, "events": EVENTS}
    make = {**headers, "idempotency-key": "make-1"}
    created = site.client.post("/v1/admin/webhooks", json=body, headers=make).json()
    eid, first = created["id"], created["secret"]
    path = f"/v1/admin/webhooks/{eid}/rotate-secret"
    turn = {**headers, "idempotency-key": "turn-1"}
    rotated = site.client.post(path, headers=turn)
    replayed = site.client.post(path, headers=turn)
    assert rotated.status_code == replayed.status_code == 200, rotated.text
    assert replayed.json() == rotated.json() and replayed.headers["idempotent-replayed"] == "true"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != first and rotated.json()["id"] == eid
    assert rotated.json()["previousSecretUntil"] == site.svc.now() + webhooks.ROTATION_GRACE
    # The create's kept answer, sealed, still gives its caller the first secret.
    assert site.client.post("/v1/admin/webhooks", json=body, headers=make).json()["secret"] == first
    _no_secret_at_rest(site, first, new)
    for shown in ("/v1/admin/webhooks", f"/v1/admin/webhooks/{eid}"):
        answer = site.client.get(shown, headers=headers).text
        assert new not in answer and first not in answer
    token_id = next(
        t.id for t in tokens.list_tokens(site.svc.store, site.acme) if Scope.WEBHOOKS_WRITE in t.scopes
    )
    assert ("webhook.rotate-secret", f"admin_token:{token_id}") in [(e.action, e.actor) for e in site.audit()]
    at_once = site.client.post(path, json={"graceSeconds": 0}, headers=headers).json()
    assert at_once["previousSecretUntil"] is None and at_once["secret"] not in (first, new)


def test_a_bad_rotation_body_changes_nothing(site: Site) -> None:
    eid, _ = _endpoint(site)
    headers = {**site.admin_auth(Scope.WEBHOOKS_WRITE.value), "idempotency-key": "k"}
    before = _hook_state(site)
    for body in (
        {"graceSeconds": -1},
        {"graceSeconds": webhooks.ROTATION_GRACE + 1},
        {"graceSeconds": "60"},
        {"graceSeconds": 1.5},
        {"graceSeconds": True},
        {"secret": "whsec_mine"},
        [],
    ):
        answer = site.client.post(f"/v1/admin/webhooks/{eid}/rotate-secret", json=body, headers=headers)
        assert error(answer) == (400, "INVALID_ARGUMENT"), body
    assert _hook_state(site) == before and table(site.svc.store, "admin_idempotency") == []


def test_a_secret_rotated_through_the_api_verifies_at_a_real_receiver(site: Site) -> None:
    site.clock.now = time.time()  # the receiver checks the signed timestamp against its clock
    policy = URLPolicy(allow_loopback=True)
    headers = site.admin_auth(Scope.WEBHOOKS_WRITE.value, Scope.LICENSES_WRITE.value)
    with receiver() as r:
        made = webhooks.add_endpoint(
            site.svc.store, site.acme, url=r.url, events=["license.created"], policy=policy,
            sealer=site.svc.sealer, now=site.svc.now(),
        )  # fmt: skip
        rotated = site.client.post(f"/v1/admin/webhooks/{made.id}/rotate-secret", headers=headers).json()
        r.secret = rotated["secret"]
        _new_delivery(site)
        config = SenderConfig(sealer=site.svc.sealer, policy=policy, timeout=5.0)
        assert send_due(site.svc.store, config, now=site.svc.now()).sent == 1
        body, sent = r.raw[-1]
        Webhook(made.secret).verify(body, sent)  # the replaced one, within its grace
    assert [v["type"] for v in r.verified] == ["license.created"]
