"""HTTP benchmark: ``python -m benchmarks.http [--json] [--quick] [--profile]``.

Measures with wrk (Debian's package; ``make bench-http`` installs it) against uvicorn on
127.0.0.1, one worker process, the same server options as ``offline-service serve``, in one run:
  (a) a bare Starlette endpoint that parses a multipart upload of one request file (~730 bytes)
      and echoes the file back: the floor of uvicorn + Starlette + multipart on this machine;
  (b) POST /v1/activations/offline-activate with a bearer token, every request a FRESH activation
      request (its own machine key, fingerprint and nonce) for an unlimited license, so the engine
      verifies, decides against SQLite, records and signs each one. wrk's Lua script takes the
      next of N pre-generated JSON bodies for every request; N is larger than wrk can send.
Target: (b) >= 0.5 x (a) in requests per second. wrk runs with one thread and 8 connections. Both
servers start once and are warmed up; then ``--rounds`` rounds (default 5) each run (a) and then (b)
for 10 s, and the ratio reported is the median of the rounds' ratios (every round is printed). Data,
keys and request bodies live in a temporary directory; both servers are stopped at the end. All of (b) comes from one person (one token), so the
endpoint can group the requests that wait at the same time into one engine transaction: its best
case. ``--profile`` then shows where the extra time of (b) goes: the work behind the HTTP layer
(resolve the token to a person and their licenses, then the engine), timed one request per
transaction and in groups of 8, and profiled with cProfile, in this process, one thread, on fresh
requests against the same data directory. (A profiler in the server would mostly measure threads
waiting for the GIL and the store's lock.)
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import starlette
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks._machine import machine
from benchmarks.engine import _requests as activation_requests
from offline_service.accounts import auth as accounts_auth
from offline_service.accounts import membership
from offline_service.accounts.models import Role
from offline_service.accounts.scope import Scope
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.web.auth import Caller
from offline_service.web.services import Services

TARGET = 0.5
THREADS, CONNECTIONS = 1, 8
BOUNDARY = "ofsbenchboundary7d1f"
ACTIVATE = "/v1/activations/offline-activate"
EMAIL, PASSWORD = "bench@example.com", "bench-password-7d1f"


# -- (a): the bare endpoint ----------------------------------------------------------------------


async def _echo(request: Request) -> Response:
    form = await request.form()
    upload = form["offlineRequest"]
    assert isinstance(upload, UploadFile)
    data = await upload.read()
    await form.close()
    return Response(data, media_type="application/octet-stream")


echo_app = Starlette(routes=[Route("/echo", _echo, methods=["POST"])])


def _run(app: Any, port: int) -> None:
    """uvicorn with the options ``offline-service serve`` uses, quiet."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


def multipart(data: bytes) -> bytes:
    """One file field, ``offlineRequest``, as a browser's upload form sends it."""
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="offlineRequest"; filename="activation.req"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


# -- servers and wrk -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(argv: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process on 127.0.0.1:``port``, ready when this yields; stopped (SIGINT, so uvicorn
    shuts down cleanly and a profiler writes its file) when the block ends."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not listen on {port}: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_LUA = """
-- Written by benchmarks/http.py. With OFS_BODIES set, every request takes the next line of that
-- file as its body (wrk -t1: one Lua state sends them all, so no body is sent twice).
wrk.method = "POST"
for name, value in string.gmatch(os.getenv("OFS_HEADERS") or "", "([^\\n:]+): ([^\\n]+)") do
  wrk.headers[name] = value
end
local bodies_file = os.getenv("OFS_BODIES")
if bodies_file then
  local bodies, i = {}, 0
  for line in io.lines(bodies_file) do bodies[#bodies + 1] = line end
  request = function()
    i = i + 1
    if i > #bodies then i = 1 end
    return wrk.format(nil, nil, nil, bodies[i])
  end
else
  local f = assert(io.open(os.getenv("OFS_BODY"), "rb"))
  wrk.body = f:read("*a")
  f:close()
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'OFS_RESULT {"requests": %d, "microseconds": %d, "non2xx": %d, "socketErrors": %d,'
      .. ' "p50us": %d, "p90us": %d, "p99us": %d, "meanUs": %.1f, "maxUs": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def wrk(
    url: str, script: Path, seconds: int, *, headers: dict[str, str], body: Path, cycle: bool
) -> dict[str, Any]:
    """One wrk run; its figures from the script's done() callback."""
    env = dict(os.environ, OFS_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()))
    env["OFS_BODIES" if cycle else "OFS_BODY"] = str(body)
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("OFS_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    r: dict[str, Any] = json.loads(line.removeprefix("OFS_RESULT "))
    r["perSecond"] = r["requests"] / (r["microseconds"] / 1e6)
    return r


# -- (b): the service ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Service:
    data: Path
    keys: Path
    product_id: str
    license_key: str


def _setup(root: Path) -> _Service:
    """A fresh data dir and keyring: one product, an unlimited license owned by an organization, and
    an organization admin who may use it."""
    data, keys = root / "data", root / "keys"
    store = SQLiteStore(data)
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        vendor = Scope.vendor(account)
        org = membership.create_organization(store, vendor, name="Bench Org", now=now)
        membership.create_user(
            store,
            vendor,
            email=EMAIL,
            role=Role.ORGANIZATION_ADMIN,
            organization_id=org.id,
            password=PASSWORD,
            now=now,
        )
        product = admin.create_product(store, Keyring(keys), account, name="Bench", now=now)
        lic = admin.create_license(
            store,
            account,
            product_id=product.id,
            allowed_activations=-1,
            allowed_deactivations=-1,
            now=now,
            owner_organization="Bench Org",
        )
        return _Service(data=data, keys=keys, product_id=product.id, license_key=lic.key)
    finally:
        store.close()


def _post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:  # only ever http://127.0.0.1
        result: dict[str, Any] = json.loads(resp.read())
    return result


def _login(base: str) -> dict[str, str]:
    """The headers of an authenticated JSON call: a fresh access token from the login endpoint."""
    body = {"accountAlias": "default", "email": EMAIL, "password": PASSWORD}
    token = _post_json(f"{base}/v1/accounts/login", body)["accessToken"]
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def _write_bodies(path: Path, tokens: list[bytes]) -> None:
    with open(path, "w", encoding="ascii") as f:
        for token in tokens:
            f.write(json.dumps({"offlineRequest": token.decode().strip()}, separators=(",", ":")) + "\n")


def _count_activations(svc: _Service) -> int:
    store = SQLiteStore(svc.data)
    try:
        with store.read() as tx:
            account = tx.account_by_alias("default")
            lic = tx.license_by_key(account.id, svc.license_key) if account else None
            assert lic is not None
            return len(tx.activations(lic.id))
    finally:
        store.close()


# Where a function's own time is counted, by where it lives; C functions by their name.
_PLACES = [
    ("SQLite (sqlite3 C calls)", lambda f, n: f == "~" and "sqlite3." in n),
    ("Ed25519 sign and verify (libsodium)", lambda f, n: f == "~" and "_sodium" in n),
    ("offline_service Python code", lambda f, n: "/offline_service/" in f),
    ("JSON (json module)", lambda f, n: "/json/" in f or (f == "~" and "_json" in n)),
]


def _worker_side(svc: _Service, tokens: list[bytes], top: int = 15) -> dict[str, Any]:
    """What (b) does per request outside the HTTP stack: resolve the bearer token to a person and
    the licenses they may use, then the engine processes the request within those licenses."""
    services = Services.open(Settings(data_dir=svc.data, keys_dir=svc.keys))
    try:
        now = int(time.time())
        user = accounts_auth.authenticate(
            services.store, account_alias="default", email=EMAIL, password=PASSWORD, address="bench", now=now
        )
        token = accounts_auth.issue_credential(services.store, user, kind="access", lifetime=3600, now=now)

        def caller() -> Caller:
            person, _ = accounts_auth.resolve_credential(
                services.store, token, kind="access", now=services.now()
            )
            with services.store.read() as tx:
                ids = tx.visible_license_ids(person.account_id, person)
            return Caller(user=person, license_ids=ids, token=token)

        def engine(datas: list[bytes]) -> None:
            who = caller()
            outcomes = services.engine.process_many(
                datas,
                account_id=who.user.account_id,
                now=services.now(),
                actor=who.actor,
                license_filter=who.may_use,
            )
            assert all(o.ok for o in outcomes), [o.code for o in outcomes]

        third = len(tokens) // 3
        singles, grouped, profiled = tokens[:third], tokens[third : 2 * third], tokens[2 * third :]
        groups = lambda items: [items[i : i + CONNECTIONS] for i in range(0, len(items), CONNECTIONS)]  # noqa: E731
        start = time.perf_counter()
        for _ in range(third):
            caller()
        auth = (time.perf_counter() - start) / third
        start = time.perf_counter()
        for data in singles:
            engine([data])
        one_by_one = (time.perf_counter() - start) / third
        start = time.perf_counter()
        for group in groups(grouped):
            engine(group)
        in_groups = (time.perf_counter() - start) / third
        profiler = cProfile.Profile()
        profiler.enable()
        for group in groups(profiled):
            engine(group)
        profiler.disable()
    finally:
        services.close()
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    busy: list[tuple[float, str]] = []
    places: Counter[str] = Counter()
    for (file, line, name), (_, _, own, _, _) in raw.items():
        label = name if file == "~" else f"{name} ({Path(file).parent.name}/{Path(file).name}:{line})"
        busy.append((own, label))
        places[next((p for p, test in _PLACES if test(file, name)), "other")] += own
    total = sum(own for own, _ in busy)
    return {
        "requests": len(tokens),
        "groupSize": CONNECTIONS,
        "authMicroseconds": round(auth * 1e6, 1),
        "oneByOneMicroseconds": round(one_by_one * 1e6, 1),
        "inGroupsMicroseconds": round(in_groups * 1e6, 1),
        "profileByPlace": [{"place": p, "share": round(t / total, 3)} for p, t in places.most_common()],
        "profileTopFunctions": [
            {"function": f, "share": round(t / total, 3)} for t, f in sorted(busy, reverse=True)[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="one round of 2 s runs, to check that it works")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (a) then (b) (default 5)")
    parser.add_argument(
        "--profile", action="store_true", help="then profile (b) and print where the time of a request goes"
    )
    # Internal: server (a), in a child process of the benchmark.
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        _run(echo_app, args.serve_echo)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make wrk` (Debian package wrk)")
    seconds, warmup = (2, 1) if args.quick else (10, 2)
    rounds = 1 if args.quick else args.rounds
    # More bodies than (b) can consume in a run at any rate seen on a 2-core machine (checked below).
    fresh = 8_000 if args.quick else 40_000
    profiled = (1_000 if args.quick else 6_000) if args.profile else 0

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        root = Path(tmp)
        svc = _setup(root)
        # One batch, split: every request has its own machine (fingerprint and key) and nonce.
        made = activation_requests(2_000 + rounds * fresh + profiled, svc.product_id, svc.license_key)
        _write_bodies(root / "warmup.jsonl", made[:2_000])
        batches = [made[2_000 + i * fresh : 2_000 + (i + 1) * fresh] for i in range(rounds)]
        (root / "upload.bin").write_bytes(multipart(batches[0][0]))
        script = root / "bench.lua"
        script.write_text(_LUA, encoding="utf-8")
        mp = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

        echo_port, service_port = _free_port(), _free_port()
        serve = [
            *("-m", "offline_service.cli", "serve", "--port", str(service_port), "--log-level", "warning"),
            *("--data", str(svc.data), "--keys", str(svc.keys)),
        ]
        echo_url = f"http://127.0.0.1:{echo_port}/echo"
        base = f"http://127.0.0.1:{service_port}"
        echoes: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        # Both servers run throughout (the idle one waits in epoll), and the rounds alternate
        # between them: the speed of this shared machine drifts by a third within minutes, and a
        # ratio of two runs made next to each other is what the drift disturbs least.
        with (
            _server(
                [sys.executable, "-m", "benchmarks.http", "--serve-echo", str(echo_port)],
                echo_port,
                root / "echo.log",
            ),
            _server([sys.executable, *serve], service_port, root / "service.log"),
        ):
            auth = _login(base)
            wrk(echo_url, script, warmup, headers=mp, body=root / "upload.bin", cycle=False)
            wrk(base + ACTIVATE, script, warmup, headers=auth, body=root / "warmup.jsonl", cycle=True)
            for i, batch in enumerate(batches):
                echoes.append(
                    wrk(echo_url, script, seconds, headers=mp, body=root / "upload.bin", cycle=False)
                )
                _write_bodies(root / "bodies.jsonl", batch)
                before = _count_activations(svc)
                run = wrk(
                    base + ACTIVATE, script, seconds, headers=auth, body=root / "bodies.jsonl", cycle=True
                )
                run["freshActivationsRecorded"] = _count_activations(svc) - before
                # Every measured request must have been a fresh, accepted activation: wrk counts
                # completed requests; the server may finish a few more in flight when wrk stopped.
                run["allFresh"] = (
                    run["requests"] + CONNECTIONS <= fresh
                    and run["non2xx"] == 0
                    and run["freshActivationsRecorded"] >= run["requests"]
                )
                run["ratio"] = round(run["perSecond"] / echoes[i]["perSecond"], 3)
                services.append(run)

        profile = _worker_side(svc, made[2_000 + rounds * fresh :]) if args.profile else None

    ratios = [r["ratio"] for r in services]
    ratio = statistics.median(ratios)
    result: dict[str, Any] = {
        "benchmark": "http",
        "quick": args.quick,
        "machine": {
            **machine(),
            "uvicorn": uvicorn.__version__,
            "starlette": starlette.__version__,
            "wrk": f"-t{THREADS} -c{CONNECTIONS} -d{seconds:g}s",
        },
        "rounds": rounds,
        "a_bareEndpoint": echoes,
        "b_offlineActivate": services,
        "ratios_b_over_a": ratios,
        "ratio_b_over_a": ratio,
        "target": f">= {TARGET} (median of the rounds)",
        "meetsTarget": ratio >= TARGET,
        "allFresh": all(r["allFresh"] for r in services),
        "requestBytes": len(batches[0][0]),
    }
    if profile is not None:
        result["profile_b"] = profile
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, uvicorn {m['uvicorn']}")
    print(
        f"wrk {m['wrk']} on 127.0.0.1, one uvicorn worker; request file {result['requestBytes']} bytes;"
        f" {rounds} round(s) of (a) then (b)"
    )
    for i, (a, b) in enumerate(zip(echoes, services, strict=True), 1):
        for label, r in ((f"round {i} (a) bare multipart echo", a), (f"round {i} (b) offline-activate", b)):
            print(
                f"{label}: {r['perSecond']:>8,.0f} req/s   p50 {r['p50us'] / 1000:6.2f} ms"
                f"   p99 {r['p99us'] / 1000:6.2f} ms   ({r['requests']:,} requests, {r['non2xx']} non-2xx)"
            )
        print(f"round {i} ratio b/a: {b['ratio']:.2f}")
    verdict = "met" if result["meetsTarget"] else "NOT met"
    print(f"ratio b/a, median of {rounds}: {ratio:.2f} (target >= {TARGET}: {verdict})")
    if not result["allFresh"]:
        print("warning: not every request of (b) was a fresh accepted activation:")
        for r in services:
            print(f"  {r['requests']:,} sent, {r['freshActivationsRecorded']:,} recorded, {fresh:,} bodies")
    if profile is not None:
        echo, service = echoes[-1], services[-1]
        http_us = 1e6 / echo["perSecond"]
        single, grouped, n = (
            profile["oneByOneMicroseconds"],
            profile["inGroupsMicroseconds"],
            profile["groupSize"],
        )
        print(
            f"\nwhere the time of (b) goes, per request ({profile['requests']:,} fresh requests, one thread):"
        )
        print(f"  {http_us:7.0f} us  HTTP, multipart and Starlette, as in (a) (1 / its rate)")
        print(
            f"  {profile['authMicroseconds']:7.0f} us  token to person and licenses, once per trip to the worker"
        )
        print(
            f"  {single:7.0f} us  token + engine (parse, verify, decide, record, sign), one request per transaction"
        )
        print(
            f"  {grouped:7.0f} us  the same in groups of {n}, one transaction each: what the endpoint does"
            f" when {n} requests of one caller are waiting"
        )
        print(
            f"  so at best {1e6 / (http_us + grouped):,.0f}/s on one core, {http_us / (http_us + grouped):.2f} x (a);"
            f" measured {service['perSecond']:,.0f}/s (wrk and the server share {m['cores']} cores)"
        )
        print(f"  token + engine in groups of {n}, by place (cProfile):")
        for row in profile["profileByPlace"]:
            print(f"    {row['share']:6.1%}  {row['place']}")
        print("  busiest functions, own time:")
        for row in profile["profileTopFunctions"]:
            print(f"    {row['share']:6.1%}  {row['function']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
