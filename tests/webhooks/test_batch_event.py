"""``batch.completed``: a finished batch run queues one delivery per subscribed endpoint of the
batch's account, with the run's counts and file names (never its folders); an unsubscribed
account, another account's endpoint and a refused input get none. An upload over the API is a
batch run too (with the app's engine and store)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from offline_service.errors import OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.webhooks import services
from offline_service.webhooks.models import Endpoint
from offline_service.webhooks.sealing import Sealer
from offline_service.webhooks.urls import URLPolicy
from tests.db import execute, table
from tests.factories import Machine, World
from tests.licensing.test_api import _zip
from tests.licensing.test_batch import activation, run, write
from tests.web.site import Site, activation_request

LOOPBACK = URLPolicy(allow_loopback=True)


def _endpoint(world: World, *events: str, account: Any = None) -> Endpoint:
    return services.add_endpoint(
        world.store,
        account or world.account,
        url="http://127.0.0.1:9/hook",
        events=events,
        policy=LOOPBACK,
        sealer=Sealer(world.keyring.directory),
        now=int(time.time()),
    )


def _batch(world: World, tmp_path: Path) -> None:
    """A run of three files: two accepted, one refused (not a request file)."""
    lic = world.license(activations=5)
    inputs = tmp_path / "in"
    write(inputs / "a.req", activation(world, lic, "a"))
    write(inputs / "b.req", activation(world, lic, "b"))
    write(inputs / "c.req", b"not a request")
    run(world, inputs, tmp_path / "out", tmp_path / "report.csv")


def test_a_finished_batch_queues_one_delivery_with_its_counts(world: World, tmp_path: Path) -> None:
    mine = _endpoint(world, "batch.completed")
    other, _ = admin.ensure_account(world.store, "other", now=int(time.time()))
    theirs = _endpoint(world, "batch.completed", account=other)
    _batch(world, tmp_path)
    (delivery,) = services.deliveries(world.store, world.account, mine.id)
    body = json.loads(delivery.payload)
    assert body["type"] == "batch.completed"
    data = body["data"]
    seconds = data.pop("seconds")
    assert isinstance(seconds, float) and seconds >= 0
    assert data == {
        "total": 3,
        "accepted": 2,
        "rejected": 1,
        "skipped": 0,
        "input": "in",
        "output": "out",
    }
    assert not services.deliveries(world.store, other, theirs.id)


def test_an_account_not_subscribed_gets_none(world: World, tmp_path: Path) -> None:
    e = _endpoint(world, "license.created")
    _batch(world, tmp_path)
    found = services.deliveries(world.store, world.account, e.id)
    assert {d.event_type for d in found} == {"license.created"}


def test_a_refused_input_queues_nothing(world: World, tmp_path: Path) -> None:
    e = _endpoint(world, "batch.completed")
    with pytest.raises(OfflineServiceError):
        run(world, tmp_path / "missing", tmp_path / "out", tmp_path / "report.csv")
    assert not services.deliveries(world.store, world.account, e.id)


def test_an_upload_over_the_api_is_a_batch_too(site: Site) -> None:
    e = services.add_endpoint(
        site.svc.store,
        site.acme,
        url="http://127.0.0.1:9/hook",
        events=["batch.completed"],
        policy=LOOPBACK,
        sealer=site.svc.sealer,
        now=site.svc.now(),
    )
    upload = _zip(
        {
            "a.req": activation_request(site, "user1", "user1", Machine("fp-a")),
            "theirs.req": activation_request(site, "user1", "org_b", Machine("fp-c")),
        }
    )
    answer = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert answer.status_code == 200, answer.text
    (delivery,) = services.deliveries(site.svc.store, site.acme, e.id)
    data = json.loads(delivery.payload)["data"]
    assert {k: data[k] for k in ("total", "accepted", "rejected", "input", "output")} == {
        "total": 2,
        "accepted": 1,
        "rejected": 1,
        "input": "requests.zip",
        "output": "responses.zip",
    }


def _refuse_batch_completed(world: World) -> None:
    """From now on the database refuses to record a batch.completed delivery (a trigger: a real
    database error in the emitting transaction, on either backend), and nothing else."""
    if world.database_url is None:
        execute(
            world.store,
            "CREATE TRIGGER refuse_batch_completed BEFORE INSERT ON webhook_deliveries"
            " WHEN NEW.event_type = 'batch.completed' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
        )
    else:
        execute(
            world.store,
            "CREATE FUNCTION refuse_batch_completed() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$",
        )
        execute(
            world.store,
            "CREATE TRIGGER refuse_batch_completed BEFORE INSERT ON webhook_deliveries FOR EACH ROW"
            " WHEN (NEW.event_type = 'batch.completed') EXECUTE FUNCTION refuse_batch_completed()",
        )


def test_a_batch_whose_event_cannot_be_recorded_still_reports_its_results(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    e = _endpoint(world, "batch.completed", "activation.created")
    _refuse_batch_completed(world)
    lic = world.license(activations=5)
    inputs = tmp_path / "in"
    write(inputs / "a.req", activation(world, lic, "a"))
    write(inputs / "c.req", b"not a request")
    with caplog.at_level(logging.ERROR, logger="offline_service.licensing.batch"):
        summary = run(world, inputs, tmp_path / "out", tmp_path / "report.csv")
    assert (summary.total, summary.accepted, summary.rejected) == (2, 1, 1)
    assert (tmp_path / "report.csv").read_text().count("\n") == 3  # the header and both files
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.response"]
    (record,) = [r for r in caplog.records if r.name == "offline_service.licensing.batch"]
    message = record.getMessage()
    assert record.levelno == logging.ERROR
    assert message.startswith(f"batch.completed was not recorded for account {world.account.id}")
    assert "STORAGE_ERROR" in message and "disk on fire" in message and "1 accepted, 1 rejected" in message
    # The run's own events were recorded; only the notice of its end is missing.
    assert {d.event_type for d in services.deliveries(world.store, world.account, e.id)} == {
        "activation.created"
    }
    assert len(table(world.store, "activations")) == 1
