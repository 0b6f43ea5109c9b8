"""Two vendors' shops drive the admin API at the same moment, through a real server with two worker
processes on one database: each creates licenses with the same Idempotency-Keys as the other (keys
belong to an account, so neither answers the other's order), and retries every create. Each ends
with exactly its own licenses, sees none of the other's, and every retry answered the first
answer."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from offline_service.admin.tokens import create_token
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.servers import serve

pytestmark = pytest.mark.slow

THREADS = 6  # per tenant
ORDERS = 4  # per thread, each sent twice


def _call(url: str, token: str, method: str = "GET", body: Any = None, key: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    if key:
        headers["idempotency-key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _all_licenses(url: str, token: str) -> list[dict[str, Any]]:
    found, cursor = [], ""
    while True:
        status, page = _call(f"{url}/v1/admin/licenses?limit=7{'&cursor=' + cursor if cursor else ''}", token)
        assert status == 200, page
        found += page["licenses"]
        if not page["nextCursor"]:
            return found
        cursor = page["nextCursor"]


@pytest.mark.sqlite_only  # a real server on the default database, two workers sharing it
def test_two_tenants_create_licenses_at_once_and_stay_apart(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    settings = Settings(data_dir=data, keys_dir=keys)
    store = open_store(settings)
    tenants: dict[str, dict[str, str]] = {}
    try:
        now = int(time.time())
        for alias in ("north", "south"):
            account, _ = admin.ensure_account(store, alias, now=now)
            product = admin.create_product(store, Keyring(keys), account, name=f"{alias} app", now=now)
            _, secret = create_token(
                store, account, scopes=["licenses:read", "licenses:write"], now=now, name="shop"
            )
            tenants[alias] = {"token": secret, "product": product.id}
    finally:
        store.close()
    env = {"OFFLINE_SERVICE_DATA": str(data), "OFFLINE_SERVICE_KEYS": str(keys)}

    with serve(tmp_path, "--workers", "2", env=env) as url:

        def shop(alias: str, thread: int) -> list[str]:
            made = []
            tenant = tenants[alias]
            for n in range(ORDERS):
                order = {
                    "productId": tenant["product"],
                    "allowedActivations": n + 1,
                    "allowedDeactivations": 1,
                }
                key = f"order-{thread}-{n}"  # the same keys in both tenants
                first = _call(f"{url}/v1/admin/licenses", tenant["token"], "POST", order, key)
                again = _call(f"{url}/v1/admin/licenses", tenant["token"], "POST", order, key)
                assert first[0] == 201 and again == first, (first, again)
                made.append(first[1]["id"])
            return made

        with ThreadPoolExecutor(max_workers=2 * THREADS) as pool:
            futures = {
                alias: [pool.submit(shop, alias, t) for t in range(THREADS)] for alias in ("north", "south")
            }
            made = {alias: [i for f in fs for i in f.result()] for alias, fs in futures.items()}

        for alias, other in (("north", "south"), ("south", "north")):
            token = tenants[alias]["token"]
            listed = _all_licenses(url, token)
            assert sorted(x["id"] for x in listed) == sorted(made[alias])
            assert len(made[alias]) == THREADS * ORDERS == len(set(made[alias]))
            assert {x["productId"] for x in listed} == {tenants[alias]["product"]}
            for stranger in made[other][:3]:
                status, body = _call(f"{url}/v1/admin/licenses/{stranger}", token)
                assert status == 404 and stranger not in json.dumps(body), body
                status, body = _call(f"{url}/v1/admin/licenses/{stranger}/suspend", token, "POST")
                assert status == 404, body

    store = open_store(settings)
    try:
        with store.read() as tx:
            for alias in ("north", "south"):
                account = tx.account_by_alias(alias)
                assert account is not None
                found = [tx.license_by_id(account.id, i) for i in made[alias]]
                statuses = {x.status.value if x else None for x in found}
                assert statuses == {"active"}  # the stranger's suspend changed nothing
    finally:
        store.close()
