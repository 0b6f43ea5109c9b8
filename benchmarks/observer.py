"""Cost of the metrics: ``python -m benchmarks.observer [--count N] [--run off|on --data DIR]``.

Two figures, each with and without the metrics, in this process:
  (1) the engine's API path: fresh activations of one unlimited license, in groups of 8 (one write
      transaction each, as the API's queue groups them), with no observer and with the server's
      ``Metrics`` (decisions, transaction and signing times); CPU microseconds per request;
  (2) the HTTP middleware: a trivial ASGI app alone and wrapped in ``RequestId`` and
      ``RequestMetrics``; the best of 7 runs of 20,000 requests, microseconds per request.
On a shared machine the CPU times wander; for a figure that does not, run one side under callgrind
with two counts and take the difference, which cancels start-up:
  valgrind --tool=callgrind python -m benchmarks.observer --run on --data DIR --count 80   (and 800)
where DIR comes from ``--prepare DIR`` (the data, keys and request files, made once).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import shutil
import sqlite3
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from starlette.routing import Route

from benchmarks.engine import _requests, _setup
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store.backends import open_store
from offline_service.web.logs import RequestId
from offline_service.web.metrics import Metrics, RequestMetrics

GROUP = 8


def prepare(root: Path, count: int) -> None:
    """A data directory, keyring and ``count`` request files under ``root``."""
    product_id, key = _setup(root)
    (root / "requests.pickle").write_bytes(pickle.dumps(_requests(count, product_id, key)))


def engine_cost(prepared: Path, observed: bool, count: int) -> float:
    """CPU microseconds per request of the first ``count`` prepared requests, on a copy of the data."""
    with tempfile.TemporaryDirectory(prefix="observer-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(prepared / "data", root / "data")
        shutil.copytree(prepared / "keys", root / "keys")
        files = pickle.loads((prepared / "requests.pickle").read_bytes())[:count]
        with sqlite3.connect(root / "data" / "offline-service.sqlite3") as db:
            account_id = db.execute("SELECT account_id FROM products").fetchone()[0]
        store = open_store(Settings(data_dir=root / "data", keys_dir=root / "keys"))
        try:
            engine = Engine(
                store=store, keyring=Keyring(root / "keys"), observer=Metrics() if observed else None
            )
            now = int(time.time())
            started = time.process_time()
            for i in range(0, len(files), GROUP):
                outcomes = engine.process_many(files[i : i + GROUP], account_id=account_id, now=now)
                assert all(o.ok for o in outcomes), outcomes[0]
            return (time.process_time() - started) / len(files) * 1e6
        finally:
            store.close()


def middleware_cost(wrapped: bool, n: int = 20_000, repeats: int = 7) -> float:
    """Microseconds per request through a trivial ASGI app, alone or in the two middlewares."""
    route = Route("/v1/activations/offline-activate", lambda request: None)
    headers = [(b"host", b"x"), (b"authorization", b"Bearer x"), (b"content-type", b"application/json")]

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    target = RequestId(RequestMetrics(app, metrics=Metrics())) if wrapped else app

    async def loop() -> None:
        for _ in range(n):
            scope = {"type": "http", "method": "POST", "path": route.path, "headers": headers}
            await target(scope, receive, send)

    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        asyncio.run(loop())
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.observer", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=800, help="requests through the engine (default 800)")
    parser.add_argument("--prepare", metavar="DIR", help="only make the data and request files in DIR")
    parser.add_argument("--run", choices=["off", "on"], help="only process DIR's requests (for callgrind)")
    parser.add_argument("--data", metavar="DIR", help="the directory --prepare made")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(Path(args.prepare), args.count)
        return 0
    if args.run:
        print(
            f"{args.run}: {engine_cost(Path(args.data), args.run == 'on', args.count):.1f} us CPU per request"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="observer-bench-") as tmp:
        prepare(Path(tmp), args.count * 2)
        off = [engine_cost(Path(tmp), False, args.count) for _ in range(3)]
        on = [engine_cost(Path(tmp), True, args.count) for _ in range(3)]
    print(f"(1) engine, {args.count} activations in groups of {GROUP}, us CPU per request (best of 3):")
    print(f"    without metrics {min(off):8.1f}   with metrics {min(on):8.1f}")
    bare, wrapped = middleware_cost(False), middleware_cost(True)
    print("(2) HTTP middleware, us per request (best of 7 x 20,000):")
    print(f"    bare app {bare:8.2f}   with RequestId and RequestMetrics {wrapped:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
