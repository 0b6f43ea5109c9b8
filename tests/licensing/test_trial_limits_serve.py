"""Two real ``offline-service serve`` processes on the same data share one trial budget: the new
trials one address gets through both together are the daily cap, not twice it."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest

from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.factories import Machine, database_for, database_options
from tests.servers import serve

pytestmark = pytest.mark.slow

CAP = 3
TIMEOUT = 30.0  # seconds for any one request: the test is bounded however the servers behave


def test_two_server_processes_share_one_daily_cap(tmp_path: Path, backend: str) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    url, database = database_for(tmp_path, backend), database_options(tmp_path, backend)
    store = open_store(Settings(data_dir=data, database_url=url))
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        product = admin.create_product(store, Keyring(keys), account, name="App", now=now, trial_days=14)
    finally:
        store.close()
    env = {"OFFLINE_SERVICE_TRIAL_DAILY_CAP": str(CAP), "OFFLINE_SERVICE_TRIAL_RATE": "100"}
    with ExitStack() as stack:
        urls = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            urls.append(
                stack.enter_context(
                    serve(tmp_path / name, "--data", str(data), "--keys", str(keys), *database, env=env)
                )
            )
        statuses = []
        with httpx.Client(timeout=TIMEOUT) as client:
            for n in range(2 * CAP + 2):
                request = Machine(fingerprint=f"fp-serve-{n}").request(Kind.TRIAL, product.id, issued_at=now)
                body = {"productId": product.id, "offlineRequest": request.decode()}
                answer = client.post(f"{urls[n % 2]}/v1/trial-activations/offline-activate", json=body)
                statuses.append((answer.status_code, answer.json().get("code")))
    assert statuses.count((200, None)) == CAP
    assert statuses.count((429, "TRIAL_DAILY_LIMIT")) == CAP + 2
