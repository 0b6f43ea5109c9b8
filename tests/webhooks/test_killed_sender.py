"""A sender process killed (SIGKILL) while a delivery is on the wire loses no event: the delivery
stays in the outbox, claimed by the dead sender until its claim lapses, so that no second sender
sends it meanwhile; then it is sent, signed, and logged as delivered. On every backend, with a real
``offline-service webhook send`` process and a real receiver that holds the first delivery open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store.backends import open_store
from offline_service.webhooks import services
from offline_service.webhooks.sealing import Sealer
from offline_service.webhooks.sender import SenderConfig, send_due
from offline_service.webhooks.urls import URLPolicy
from tests.cli.test_cli import Cli, new_license
from tests.factories import database_for
from tests.webhooks.receiver import receiver

REPOSITORY = Path(__file__).resolve().parents[2]
CONFIG = SenderConfig(
    sealer=Sealer("unused"), policy=URLPolicy(allow_loopback=True), timeout=5.0, disable_after=3 * 86400
)


def test_a_sender_killed_mid_delivery_loses_no_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK", "1")
    url = database_for(tmp_path, backend)
    cli = Cli(tmp_path, capsys, database_url=url)
    cli.ok("init")
    product = cli.ok("product", "create", "--name", "App")["id"]
    with receiver(hang_first=1) as r:
        hook = cli.ok("webhook", "add", "--url", r.url, "--event", "license.created")
        r.secret = hook["secret"]
        license = new_license(cli, product)
        argv = [sys.executable, "-m", "offline_service.cli", "webhook", "send", *map(str, cli.where)]
        env = {**os.environ, "OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK": "1"}
        with subprocess.Popen(argv, cwd=REPOSITORY, env=env, stdout=subprocess.DEVNULL) as proc:
            try:
                assert r.arrived.wait(60), "the sender never delivered"
            finally:
                os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        store = open_store(Settings(data_dir=cli.data, database_url=url))
        config = replace(CONFIG, sealer=Sealer(cli.keys))
        try:
            account, _ = admin.ensure_account(store, "default", now=int(time.time()))
            (pending,) = services.deliveries(store, account, hook["id"])
            # counted when claimed; no outcome recorded
            assert (pending.delivered_at, pending.last_attempt_at, pending.attempts) == (None, None, 1)
            now = int(time.time())
            # The dead sender's claim holds: a sender started now sends nothing twice.
            assert send_due(store, config, now=now, jitter=lambda: 0.0).sent == 0
            assert len(r.seen) == 1
            # Once the dead sender's claim lapses (its length is its settings'), the delivery goes
            # out, with the same webhook-id, verified (within the verifier's 5 minutes of clock).
            claimed_for = SenderConfig.from_settings(Settings.from_env(env)).claim_seconds
            assert claimed_for < 300
            later = now + claimed_for + 1
            report = send_due(store, config, now=later, jitter=lambda: 0.0)
            assert report.sent == 1
            (done,) = services.deliveries(store, account, hook["id"])
            assert (done.delivered_at, done.attempts, done.last_status) == (later, 2, 200)
        finally:
            store.close()
    assert r.ids() == [pending.id, pending.id]
    assert [(e["type"], e["data"]["id"]) for e in r.verified] == [("license.created", license["id"])]
