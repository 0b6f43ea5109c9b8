"""Round trips to PostgreSQL: ``python -m benchmarks.roundtrips [--json]``.

Counts, with libpq's protocol trace, how often the service waits for PostgreSQL on its write path:
  - an HTTP group: what ``POST /v1/activations/offline-activate`` does for 8 requests of one caller
    that wait together (the writers' lock taken if free, the token resolved to a person and their
    licenses, one engine transaction, the lock released);
  - a batch chunk: one engine transaction of 512 fresh activation requests (``batch``'s chunk);
  - the read every API call and portal page starts with: a token's credential, its person and the
    licenses they may use (one statement).
A round trip is a stretch of messages from the client followed by the server's answers; the
client waits for each. Also measured: the loopback latency of one trivial statement, so that
round trips x latency estimates the time they cost. In-process, one connection (pool size 1),
on a fresh database ``offline_bench_<random>`` (see benchmarks/_database.py), dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq

from benchmarks._database import fresh_database
from benchmarks._machine import machine
from benchmarks.engine import _requests as activation_requests
from benchmarks.http import EMAIL, PASSWORD, _setup
from offline_service.accounts import auth as accounts_auth
from offline_service.fileformat.messages import Kind
from offline_service.licensing.offline import _Job, _Run
from offline_service.settings import Settings
from offline_service.store.postgresql import PostgreSQLStore
from offline_service.web.auth import API_KINDS
from offline_service.web.services import Services

GROUP, CHUNK = 8, 512


def count(trace: str) -> dict[str, int]:
    """Round trips, statements and syncs in a libpq trace. A round trip is the client asking for
    answers (its messages ending in Sync or Flush) and then reading the server's: a wait. Reading
    results while still sending a long pipeline is not counted as one."""
    trips = statements = syncs = 0
    last_side = last_message = ""
    for line in trace.splitlines():
        side, _, rest = line.partition("\t")
        fields = rest.split("\t")
        message = fields[1] if len(fields) > 1 else ""
        if side == "B" and last_side == "F" and last_message in ("Sync", "Flush"):
            trips += 1
        if side == "F":
            statements += message == "Execute" or message == "Query"
            syncs += message == "Sync"
        if side in ("F", "B"):
            last_side, last_message = side, message
    return {"roundTrips": trips, "statements": statements, "syncs": syncs}


@contextlib.contextmanager
def _traced(conns: list[psycopg.Connection[Any]], into: Path) -> Iterator[dict[str, int]]:
    """libpq's trace of ``conns`` for the block; the counts are filled in when it ends."""
    found: dict[str, int] = {}
    files = []
    for i, conn in enumerate(conns):
        f = open(into.with_suffix(f".{i}.trace"), "w+", encoding="utf-8")  # noqa: SIM115
        conn.pgconn.trace(f.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        files.append(f)
    try:
        yield found
    finally:
        total: dict[str, int] = {}
        for conn, f in zip(conns, files, strict=True):
            conn.pgconn.untrace()
            f.seek(0)
            for k, v in count(f.read()).items():
                total[k] = total.get(k, 0) + v
            f.close()
        found.update(total)


def _connections(store: PostgreSQLStore) -> list[psycopg.Connection[Any]]:
    """The store's two connections with a pool of one: the pool's, and the writers' lock's.
    (Reaches into the store: a measurement, not an interface.)"""
    conn = store._pool.getconn()
    store._pool.putconn(conn)
    return [conn, store._lock_conn]


def latency(url: str, n: int = 2_000) -> dict[str, float]:
    """Microseconds of ``SELECT 1`` on a fresh connection: psycopg, loopback and the server."""
    with psycopg.connect(url, autocommit=True) as conn:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - start)
    times.sort()
    return {"p50us": round(times[n // 2] * 1e6, 1), "p90us": round(times[n * 9 // 10] * 1e6, 1)}


def measure(root: Path, url: str, repeats: int = 5) -> dict[str, Any]:
    settings = Settings(
        data_dir=root / "data", keys_dir=root / "keys", database_url=url, database_pool_size=1
    )
    svc = _setup(settings)
    made = activation_requests(repeats * (GROUP + CHUNK), svc.product_id, svc.license_key)
    services = Services.open(settings)
    try:
        store = services.store
        assert isinstance(store, PostgreSQLStore)
        now = int(time.time())
        user = accounts_auth.authenticate(
            store, account_alias="default", email=EMAIL, password=PASSWORD, address="bench", now=now
        )
        token = accounts_auth.issue_credential(store, user, kind="access", lifetime=3600, now=now)
        conns = _connections(store)
        kinds = (Kind.ACTIVATION,)
        out: dict[str, list[dict[str, int]]] = {
            "httpGroup": [],
            "batchChunk": [],
            "callerRead": [],
        }
        for r in range(repeats):
            base = r * (GROUP + CHUNK)
            jobs = [_Job(token, made[base + i], None, kinds) for i in range(GROUP)]
            with _traced(conns, root / "group") as found:
                run = _Run(services, jobs)  # as the API's queue does: tokens and verify, no lock,
                with store.write_lock_if_free() as free:  # the decisions under the lock,
                    assert free
                    run.decide()
                results = run.finish()  # and the signatures after it
            assert all(not isinstance(x, Exception) for x in results), results
            out["httpGroup"].append(found)
            chunk = made[base + GROUP : base + GROUP + CHUNK]
            with _traced(conns, root / "chunk") as found:
                outcomes = services.engine.process_many(chunk, account_id=user.account_id, now=services.now())
            assert all(o.ok for o in outcomes)
            out["batchChunk"].append(found)
            with _traced(conns, root / "caller") as found:
                accounts_auth.resolve_holder(store, token, kind=API_KINDS, now=services.now())
            out["callerRead"].append(found)
    finally:
        services.close()
    # The same work gives the same counts every time; the median guards against a stray one.
    return {
        name: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for name, runs in out.items()
    } | {"groupSize": GROUP, "chunkSize": CHUNK}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.roundtrips", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp, fresh_database() as url:
        result = {"benchmark": "roundtrips", "machine": machine(), **measure(Path(tmp), url)}
        result["selectOneLatency"] = latency(url)
        result["loadAverage"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    lat = result["selectOneLatency"]["p50us"]
    print(f"SELECT 1 on loopback: p50 {lat:.0f} us, p90 {result['selectOneLatency']['p90us']:.0f} us")
    for name, label in (
        ("httpGroup", f"HTTP group of {GROUP} requests (token, licenses, lock, engine, unlock)"),
        ("batchChunk", f"batch chunk of {CHUNK} requests (one engine transaction)"),
        ("callerRead", "read: a token's credential, person and licenses"),
    ):
        r = result[name]
        print(
            f"{label}: {r['roundTrips']:g} round trips (~{r['roundTrips'] * lat:,.0f} us at p50),"
            f" {r['statements']:g} statements, {r['syncs']:g} syncs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
