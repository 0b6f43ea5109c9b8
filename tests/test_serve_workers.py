"""``offline-service serve --workers 2``: two uvicorn worker processes on one data directory and one
keys directory. Both start and answer, the seat limit holds when activations race through both, and
a key rotated by the CLI (another process) is what both sign with a second later."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from offline_service._b64 import b64url_decode
from offline_service.accounts.models import Account
from offline_service.cli._main import worker_environment
from offline_service.fileformat.keyring import RECHECK_SECONDS
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.web.services import Services
from tests.factories import Machine, wall_now
from tests.servers import serve
from tests.web.site import EMAILS, PASSWORD, _populate, settings_for

pytestmark = pytest.mark.slow

SEATS = 5
RACERS = 24  # more activations than seats, all released at once
TIMEOUT = 60


@dataclass
class World:
    url: str
    root: Path
    settings: Settings
    account: Account
    product: Product
    scarce: License
    plenty: License
    headers: dict[str, str]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[World]:
    settings = settings_for(tmp_path)
    svc = Services.open(settings)
    try:
        world = _populate(svc)
        account, product = world["acme"], world["product"]

        def lic(seats: int) -> License:
            return admin.create_license(
                svc.store, account, product_id=product.id, allowed_activations=seats,
                allowed_deactivations=3, now=wall_now(), owner_organization="Org A",
            )  # fmt: skip

        scarce, plenty = lic(SEATS), lic(1000)
    finally:
        svc.close()
    env = {"OFFLINE_SERVICE_PASSWORD_COST": "minimum"}
    paths = ("--data", str(settings.data_dir), "--keys", str(settings.keys_dir))
    with serve(tmp_path, "--workers", "2", *paths, env=env) as url:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            login = {"accountAlias": "acme", "email": EMAILS["admin_a"], "password": PASSWORD}
            response = client.post("/v1/accounts/login", json=login)
            assert response.status_code == 200, response.text
        headers = {"authorization": f"Bearer {response.json()['accessToken']}"}
        yield World(url, tmp_path, settings, account, product, scarce, plenty, headers)
    # Stopped cleanly (tests.servers checks that); both workers had started.
    log = (tmp_path / "server.log").read_text()
    assert log.count("Started server process") == 2, log


def _race(world: World, license: License, count: int, tag: str) -> list[httpx.Response]:
    """``count`` activations of ``license`` from distinct machines, sent at once."""
    answers: list[httpx.Response] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)
    requests = [
        Machine(fingerprint=f"fp-{tag}-{i}").request(
            Kind.ACTIVATION, world.product.id, license_key=license.key, issued_at=wall_now()
        )
        for i in range(count)
    ]

    def send(data: bytes) -> None:
        try:
            with httpx.Client(base_url=world.url, timeout=TIMEOUT) as client:
                barrier.wait(timeout=TIMEOUT)
                response = client.post(
                    "/v1/activations/offline-activate",
                    json={"offlineRequest": data.decode()},
                    headers=world.headers,
                )
            with lock:
                answers.append(response)
        except BaseException as exc:  # handed to the test, which fails with it
            with lock:
                failures.append(repr(exc))

    threads = [threading.Thread(target=send, args=(data,), daemon=True) for data in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert not any(t.is_alive() for t in threads) and not failures, failures
    return answers


def _jwks(world: World) -> dict[str, bytes]:
    with httpx.Client(base_url=world.url, timeout=TIMEOUT) as client:
        response = client.get("/.well-known/jwks.json", params={"product": world.product.id})
    keys: list[dict[str, Any]] = response.json()["keys"]
    return {k["kid"]: b64url_decode(k["x"]) for k in keys}


def _kids(answers: list[httpx.Response], keys: dict[str, bytes]) -> set[str]:
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return {parse_response(a.json()["offlineResponse"].encode(), keys).kid for a in answers}


def test_activations_racing_through_two_workers_end_exactly_at_the_limit(workers: World) -> None:
    answers = _race(workers, workers.scarce, RACERS, "scarce")
    granted = [a for a in answers if a.status_code == 200]
    refused = {(a.status_code, a.json()["code"]) for a in answers if a.status_code != 200}
    assert len(granted) == SEATS, [a.text for a in answers]
    assert refused == {(409, "ACTIVATION_LIMIT")}, refused
    ids = {a.json()["activationId"] for a in granted}
    store = SQLiteStore(workers.settings.data_dir)
    try:
        with store.read() as tx:
            fresh = tx.license_by_id(workers.account.id, workers.scarce.id)
        assert fresh is not None and fresh.used_activations == SEATS
    finally:
        store.close()
    assert len(ids) == SEATS


def test_both_workers_sign_with_a_key_rotated_by_the_cli_within_a_second(workers: World) -> None:
    before = _race(workers, workers.plenty, 12, "before")
    (old_kid,) = _kids(before, _jwks(workers))
    rotate = subprocess.run(
        [sys.executable, "-m", "offline_service.cli", "keys", "rotate", "--account", "acme",
         "--product", workers.product.id, "--data", str(workers.settings.data_dir),
         "--keys", str(workers.settings.keys_dir), "--json"],
        capture_output=True, check=True, timeout=TIMEOUT,
    )  # fmt: skip
    rotated = time.monotonic()
    new_kid = json.loads(rotate.stdout)["kid"]
    time.sleep(max(0.0, RECHECK_SECONDS + 0.05 - (time.monotonic() - rotated)))
    after = _race(workers, workers.plenty, 12, "after")
    keys = _jwks(workers)
    assert _kids(after, keys) == {new_kid} != {old_kid}
    # The retired key is still published: what it signed still verifies.
    assert _kids(before, keys) == {old_kid}


def test_the_workers_environment_gives_the_settings_the_parent_resolved(tmp_path: Path) -> None:
    parent = Settings.from_env({"OFFLINE_SERVICE_TRIAL_RATE": "7"}, data_dir="d", keys_dir="k")
    parent = replace(parent, public_url="http://x:1")  # as --demo sets it
    child = Settings.from_env({"OFFLINE_SERVICE_TRIAL_RATE": "7", **worker_environment(parent)})
    assert child.data_dir == parent.data_dir.absolute() and child.keys_dir == parent.keys_dir.absolute()
    assert child.public_url == "http://x:1" and child.trial_rate_per_minute == 7


def test_every_worker_logs_with_the_token_filter(workers: World) -> None:
    barrier = threading.Barrier(16)

    def visit(i: int) -> None:
        with httpx.Client(base_url=workers.url, timeout=TIMEOUT) as client:
            barrier.wait(timeout=TIMEOUT)
            client.get(f"/set-password?token=SECRET-{i}")

    threads = [threading.Thread(target=visit, args=(i,), daemon=True) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    time.sleep(0.2)  # the access log line is written after the answer
    # uvicorn's access log goes to standard output (banner.txt), the rest to server.log.
    access, log = ((workers.root / name).read_text() for name in ("banner.txt", "server.log"))
    assert "SECRET" not in access + log and access.count("/set-password?token=[redacted]") == 16, access


def test_metrics_from_any_worker_sum_every_worker(workers: World) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    answers = _race(workers, workers.plenty, 12, "metrics")
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with httpx.Client(base_url=workers.url, timeout=TIMEOUT) as client:  # a new connection each
            response = client.get("/metrics")
        assert response.status_code == 200, response.text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    ok = ("offline_service_decisions_total", frozenset({("kind", "activation"), ("code", "OK")}))
    login = (
        "offline_service_http_requests_total",
        frozenset({("method", "POST"), ("route", "/v1/accounts/login"), ("status", "2xx")}),
    )
    # Whichever worker answers (the kernel spreads new connections over both), it answers the sum:
    # the twelve activations, spread over both workers, and the fixture's one login.
    for _ in range(8):
        samples = scrape()
        assert samples[ok] == 12 and samples[login] == 1
