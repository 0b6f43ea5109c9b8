"""Limits hold across real processes: each opens its own store and keyring on the same data."""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pytest

from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.db import rows
from tests.factories import NOW, World

pytestmark = pytest.mark.slow

PROCESSES = 16
ALLOWED = 5
TIMEOUT = 120


def _worker(
    data_dir: str, url: str | None, keys_dir: str, account_id: str, request: bytes, barrier: Any, results: Any
) -> None:
    """Runs in a spawned process: open everything afresh, wait for the others, process one file."""
    try:
        store = open_store(Settings(data_dir=Path(data_dir), database_url=url))
        try:
            engine = Engine(store=store, keyring=Keyring(keys_dir))
            barrier.wait(timeout=TIMEOUT)
            outcome = engine.process(request, account_id=account_id, now=NOW)
            results.put((outcome.code, outcome.activation_id, outcome.reissued, outcome.response is not None))
        finally:
            store.close()
    except BaseException as exc:  # reported to the parent, which fails the test with it
        results.put(("CRASH", repr(exc), False, False))
        raise


def _race(world: World, requests: list[bytes]) -> list[tuple[str, str | None, bool, bool]]:
    """Process each request in its own process, all released at once; outcomes in any order."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(requests))
    results = ctx.Queue()
    data_dir = str(world.root / "data")
    keys_dir = str(world.keyring.directory)
    args = (data_dir, world.database_url, keys_dir, world.account.id)
    processes = [ctx.Process(target=_worker, args=(*args, request, barrier, results)) for request in requests]
    for p in processes:
        p.start()
    try:
        outcomes = [results.get(timeout=TIMEOUT) for _ in processes]
    except queue.Empty:
        pytest.fail("a worker process did not report")
    finally:
        for p in processes:
            p.join(timeout=TIMEOUT)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes), outcomes
    return outcomes


def _live(world: World, license_id: str) -> int:
    found = rows(
        world.store,
        "SELECT COUNT(*) FROM activations WHERE license_id = ? AND deactivated_at IS NULL",
        license_id,
    )
    return int(found[0][0])


def test_racing_activations_never_exceed_the_limit(world: World) -> None:
    lic = world.license(activations=ALLOWED)
    requests = [
        world.machine(f"racer{i}").request(Kind.ACTIVATION, world.product.id, license_key=lic.key)
        for i in range(PROCESSES)
    ]

    outcomes = _race(world, requests)

    codes = sorted(code for code, *_ in outcomes)
    assert codes == ["ACTIVATION_LIMIT"] * (PROCESSES - ALLOWED) + ["OK"] * ALLOWED, outcomes
    granted = [o for o in outcomes if o[0] == "OK"]
    assert all(has_response and not reissued for _, _, reissued, has_response in granted)
    assert len({activation_id for _, activation_id, _, _ in granted}) == ALLOWED
    assert world.reload_license(lic.key).used_activations == ALLOWED
    assert _live(world, lic.id) == ALLOWED


def test_racing_copies_of_one_deactivation_count_once(world: World) -> None:
    lic = world.license(activations=2, deactivations=3)
    m = world.machine()
    activated = world.process(m.request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert activated.ok
    request = m.request(Kind.DEACTIVATION, world.product.id, activation_id=activated.activation_id)

    outcomes = _race(world, [request] * PROCESSES)

    assert [code for code, *_ in outcomes] == ["OK"] * PROCESSES, outcomes
    assert {activation_id for _, activation_id, _, _ in outcomes} == {activated.activation_id}
    assert sorted(reissued for _, _, reissued, _ in outcomes) == [False] + [True] * (PROCESSES - 1)
    license = world.reload_license(lic.key)
    assert (license.used_activations, license.used_deactivations) == (0, 1)
    assert _live(world, lic.id) == 0


def test_racing_identical_activation_files_take_one_seat(world: World) -> None:
    lic = world.license(activations=ALLOWED)
    request = world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key)

    outcomes = _race(world, [request] * 8)

    assert [code for code, *_ in outcomes] == ["OK"] * 8, outcomes
    assert len({activation_id for _, activation_id, _, _ in outcomes}) == 1
    assert sorted(reissued for _, _, reissued, _ in outcomes) == [False] + [True] * 7
    assert world.reload_license(lic.key).used_activations == 1
    assert _live(world, lic.id) == 1
