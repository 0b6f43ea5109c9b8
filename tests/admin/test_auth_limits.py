"""Failed admin token authentications, limited per client address, on both backends: the service
(counted in the transaction that decides, refused without a lookup once over, a success clears
nothing, the window, an IPv6 /64 counted as one, stale counters pruned), the app (429 with
Retry-After, the settings, another address unaffected), and guesses racing: in threads through
two stores on one database (two instances), and through a real server of two worker processes
behind a trusted proxy: never more answered than the limit."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.admin import tokens
from offline_service.admin.models import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import DAY
from offline_service.licensing.trial_limits import RateLimited
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from tests.db import rows
from tests.servers import serve
from tests.web.site import CheckedClient, Site, SiteFactory, error

BAD = "ofs_admin_" + "A" * 43  # an admin token's shape, of no token
LICENSES = "/v1/admin/licenses"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The secrets looked up, in order (every call of the lookup ``authenticate`` makes)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = tokens._live

    def counted(tx: Any, secret: str, now: int) -> Any:
        with lock:
            seen.append(secret)
        return real(tx, secret, now)

    monkeypatch.setattr(tokens, "_live", counted)
    yield seen


def _auth(store: Store, secret: str, now: int, address: str = "192.0.2.1", **limits: int) -> Any:
    limits = {"failures": 3, "window": 60, **limits}
    return tokens.authenticate(store, secret, now=now, address=address, **limits)


def _code(store: Store, secret: str, now: int, address: str = "192.0.2.1", **limits: int) -> str:
    try:
        _auth(store, secret, now, address, **limits)
    except OfflineServiceError as exc:
        return exc.code.value
    return "OK"


def _counter(store: Store, address: str) -> list[tuple[Any, ...]]:
    key = tokens.failures_key(address)
    return rows(store, "SELECT day_count FROM trial_limits WHERE address_key = ?", key)


def _secret(site: Site, account: str = "acme") -> str:
    headers = site.admin_auth(Scope.LICENSES_READ.value, account=account)
    return headers["authorization"].removeprefix("Bearer ")


# -- the service --------------------------------------------------------------------------------


def test_failures_past_the_limit_are_refused_without_a_lookup(site: Site, lookups: list[str]) -> None:
    store, now = site.svc.store, site.svc.now()
    good = _secret(site)
    for guess in (BAD, "short", BAD):  # a wrong shape counts as a failure too
        assert _code(store, guess, now) == "UNAUTHENTICATED"
    assert _counter(store, "192.0.2.1") == [(3,)]
    looked_up = list(lookups)
    with pytest.raises(RateLimited) as refused:
        _auth(store, BAD, now + 10)
    assert refused.value.code is Code.RATE_LIMITED and refused.value.retry_after == 50
    # A right token from the blocked address is refused the same way: a refusal says nothing.
    assert _code(store, good, now + 10) == "RATE_LIMITED"
    assert lookups == looked_up  # nothing was looked up once the address was over its limit
    assert _counter(store, "192.0.2.1") == [(3,)]  # and nothing more counted
    # The window over, the address starts again; a right token works.
    assert _auth(store, good, now + 60).account_id == site.acme.id
    assert _code(store, BAD, now + 60) == "UNAUTHENTICATED"
    assert _counter(store, "192.0.2.1") == [(1,)]


def test_a_success_clears_no_failure(site: Site) -> None:
    store, now = site.svc.store, site.svc.now()
    own = _secret(site, "other")  # an attacker's own valid token, between guesses at acme's
    for _ in range(3):
        assert _code(store, own, now) == "OK"
        assert _code(store, BAD, now) == "UNAUTHENTICATED"
    assert _counter(store, "192.0.2.1") == [(3,)]
    assert _code(store, own, now) == "RATE_LIMITED"


def test_another_address_is_not_affected_and_an_ipv6_64_counts_as_one(site: Site) -> None:
    store, now = site.svc.store, site.svc.now()
    good = _secret(site)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        assert _code(store, BAD, now, host) == "UNAUTHENTICATED"
    assert _code(store, good, now, "2001:db8:1:2::9") == "RATE_LIMITED"  # the same /64
    assert _code(store, good, now, "2001:db8:1:3::1") == "OK"  # another /64
    assert _code(store, good, now, "192.0.2.1") == "OK"
    assert _code(store, BAD, now, "192.0.2.1") == "UNAUTHENTICATED"


def test_stale_counters_are_pruned_by_later_failures(site: Site) -> None:
    store, now = site.svc.store, site.svc.now()
    for i in range(20):
        assert _code(store, BAD, now, f"198.51.100.{i}") == "UNAUTHENTICATED"
    keys = "SELECT address_key FROM trial_limits WHERE address_key LIKE 'adminauth:%'"
    assert len(rows(store, keys)) == 20
    later = now + DAY + 1
    assert _code(store, BAD, later, "203.0.113.1") == "UNAUTHENTICATED"
    assert _code(store, BAD, later, "203.0.113.2") == "UNAUTHENTICATED"
    assert [r[0] for r in rows(store, keys)] == ["adminauth:203.0.113.1", "adminauth:203.0.113.2"]


def test_guesses_at_once_through_two_instances_get_no_more_answers_than_the_limit(
    site: Site, lookups: list[str]
) -> None:
    """Two stores on one database stand for two instances (or processes); 24 guesses race through
    them from one address: exactly the limit are looked up and answered 401, the rest 429."""
    second = open_store(site.svc.settings, migrate=False)
    stores, now, guesses = (site.svc.store, second), site.svc.now(), 24
    start = threading.Barrier(guesses)
    codes: list[str] = []

    def guess(i: int) -> None:
        start.wait()
        codes.append(_code(stores[i % 2], f"ofs_admin_{i:043d}", now, failures=5))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        close = getattr(second, "close", None)
        if close is not None:
            close()
    assert sorted(codes) == ["RATE_LIMITED"] * 19 + ["UNAUTHENTICATED"] * 5
    assert len(lookups) == 5
    assert _counter(site.svc.store, "192.0.2.1") == [(5,)]


# -- through the app ----------------------------------------------------------------------------


def _from(site: Site, address: str) -> CheckedClient:
    return CheckedClient(site.client.app, client=(address, 50000))


def test_the_app_answers_429_with_retry_after_from_its_settings(make_site: SiteFactory) -> None:
    site = make_site(admin_auth_failures=2, admin_auth_window=120)
    good = site.admin_auth(Scope.LICENSES_READ.value)
    attacker, vendor = _from(site, "192.0.2.66"), _from(site, "192.0.2.7")
    assert error(attacker.get(LICENSES)) == (401, "UNAUTHENTICATED")  # no token: not counted
    for headers in ({"authorization": f"Bearer {BAD}"}, site.auth("admin_a")):  # a person's token counts
        assert error(attacker.get(LICENSES, headers=headers)) == (401, "UNAUTHENTICATED")
    site.clock.now += 30
    for headers in ({"authorization": f"Bearer {BAD}"}, good):
        blocked = attacker.get(LICENSES, headers=headers)
        assert error(blocked) == (429, "RATE_LIMITED")
        assert blocked.headers["retry-after"] == "90"
    assert error(attacker.post(LICENSES, json={}, headers=good)) == (429, "RATE_LIMITED")
    # The vendor's script at another address goes on working meanwhile.
    assert vendor.get(LICENSES, headers=good).status_code == 200
    site.clock.now += 90
    assert attacker.get(LICENSES, headers=good).status_code == 200


def _wrong(client: CheckedClient) -> httpx.Response:
    return client.get(LICENSES, headers={"authorization": f"Bearer {BAD}"})


def test_the_app_counts_the_address_it_is_given(make_site: SiteFactory) -> None:
    site = make_site(admin_auth_failures=1)
    first = _from(site, "2001:db8:5:6::1")
    assert error(_wrong(first)) == (401, "UNAUTHENTICATED")
    assert error(_wrong(_from(site, "2001:db8:5:6::abcd"))) == (429, "RATE_LIMITED")
    assert error(_wrong(_from(site, "203.0.113.9"))) == (401, "UNAUTHENTICATED")


def _get(url: str, secret: str, forwarded_for: str) -> tuple[int, str, str | None]:
    headers = {"authorization": f"Bearer {secret}", "x-forwarded-for": forwarded_for}
    request = urllib.request.Request(f"{url}/v1/admin/licenses", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, "OK", None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["code"], err.headers.get("retry-after")


@pytest.mark.slow
@pytest.mark.sqlite_only  # a real server on the default database, as make run starts it
def test_guesses_at_once_through_two_worker_processes_behind_a_proxy(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    store = open_store(Settings(data_dir=data, keys_dir=keys))
    try:
        account, _ = admin.ensure_account(store, "acme", now=int(time.time()))
        _, good = tokens.create_token(store, account, scopes=["licenses:read"], now=int(time.time()))
    finally:
        store.close()
    env = {
        "OFFLINE_SERVICE_DATA": str(data),
        "OFFLINE_SERVICE_KEYS": str(keys),
        "OFFLINE_SERVICE_ADMIN_AUTH_FAILURES": "5",
    }
    # The proxy (this test, from 127.0.0.1) names the client: the limit counts that address.
    args = ("--workers", "2", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    with serve(tmp_path, *args, env=env) as url:
        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(lambda i: _get(url, f"ofs_admin_{i:043d}", "198.51.100.7"), range(24)))
        assert sorted(a[:2] for a in answers) == [(401, "UNAUTHENTICATED")] * 5 + [(429, "RATE_LIMITED")] * 19
        assert all(0 < int(a[2] or 0) <= 900 for a in answers if a[0] == 429)
        assert _get(url, good, "198.51.100.7")[:2] == (429, "RATE_LIMITED")  # its token too
        assert _get(url, good, "203.0.113.5")[:2] == (200, "OK")  # another client goes on
