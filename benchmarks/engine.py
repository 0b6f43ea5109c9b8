"""Engine benchmark: ``python -m benchmarks.engine [--json] [--quick] [--no-http] [--backend B]``.

Measures in one run, on this machine, every figure of issue 14's table, each with its target:
  (a) crypto floor: one core doing a PyNaCl Ed25519 verify of a request plus a sign of a response,
      measured just before (b) and again just before (c), each the measure of the batch after it;
      and the file-I/O floor: the same loop plus reading each request file and creating each
      response file, nothing else (no payload parsing, no database);
  (b)  ``batch --workers 1``, zip in to zip out, 20,000 fresh requests / (a);
  (b') ``batch --workers 1``, folder in to folder out, 10,000 fresh requests / the file-I/O floor
      (10,000 files, measured just before);
  (c)  ``batch`` with every core, zip in to zip out, 20,000 fresh requests / (a) (one core);
  scale: per-request cost of the engine (in process, chunks of 512 as a batch makes them, no file
      I/O) on a database bulk-loaded to 1,000,000 licenses and 1,000,000 activations
      (benchmarks/_bulk.py) / on one of 1,000 licenses, two alternating rounds of 10,000 requests
      on each (10,000 distinct licenses at 1M, each license used 10 times at 1k); medians;
  HTTP: ``python -m benchmarks.http --json`` in a child process (``--no-http`` skips it):
      offline-activate / bare endpoint, median of its paired rounds, and offline-activate's p99
      latency at 8 connections;
  (d) peak RSS of a 100,000-request zip batch with every core, summed over the coordinator and its
      workers (sampled every 10 ms from /proc), and that over the 20,000-request one of (c): flat.
Each batch runs as ``offline-service batch`` in a child process on a fresh data directory with
fresh requests (each from its own machine key), written and synced before it starts; its time is
the batch's own (process start not counted). Whether a zip batch's output came out as a zip or a
folder, and whether a staging folder of response files appeared meanwhile, is reported per run.
With ``--backend postgresql`` (or ``both``), (b), (b') and (c) also run on PostgreSQL, each on a
fresh database ``offline_bench_<random>`` (``OFFLINE_SERVICE_BENCH_DATABASE_URL`` or the local
server, dropped at the end), against the SQLite figure of the same run: target >= 0.7.
``--quick``: tiny counts and 2,000 bulk licenses instead of 1,000,000, to check that it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nacl.bindings

from benchmarks._bulk import activation_requests, build, license_key
from benchmarks._database import fresh_database
from benchmarks._machine import machine
from offline_service._b64 import b64url_decode
from offline_service.fileformat import jws
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as admin
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store.backends import open_store

# Issue 14's targets. "min": the figure must be at least this; "max": at most.
TARGETS: dict[str, tuple[str, float]] = {
    "b": ("min", 0.6),
    "b_prime": ("min", 0.85),
    "c": ("min", 1.2),
    "scale": ("max", 1.2),
    "http_ratio": ("min", 0.65),
    "http_p99_ms": ("max", 20.0),
    "rss_mb": ("max", 150.0),
    "rss_flat": ("max", 1.2),  # peak RSS at 100,000 requests / at 20,000: "flat"
    "postgresql_vs_sqlite": ("min", 0.7),
}
FIGURES = {
    "b": "(b) one core, zip in to zip out, 20,000 fresh requests / crypto floor",
    "b_prime": "(b') one core, folder in to folder out / file-I/O floor of the same run",
    "c": "(c) every core, zip in to zip out, 20,000 fresh requests / one-core crypto floor",
    "scale": "per-request cost at 1M licenses and activations / at 1k",
    "http_ratio": "offline-activate / bare endpoint, median of paired rounds",
    "http_p99_ms": "offline-activate p99 latency at 8 connections, ms",
    "rss_mb": "peak RSS of a 100,000-request batch, summed over processes, MB",
    "rss_flat": "peak RSS of a 100,000-request batch / of a 20,000-request batch (flat)",
}
FULL = {
    "b": 20_000,
    "b_prime": 10_000,
    "c": 20_000,
    "rss_large": 100_000,
    "scale_large": 1_000_000,
    "scale_small": 1_000,
    "scale_round": 10_000,
}
QUICK = {
    "b": 400,
    "b_prime": 300,
    "c": 400,
    "rss_large": 1_200,
    "scale_large": 2_000,
    "scale_small": 100,
    "scale_round": 500,
}
SCALE_ROUNDS = 2
CHUNK = 512  # requests per engine transaction, as a batch's chunk


def _setup(root: Path, database_url: str | None = None) -> tuple[str, str]:
    """A fresh data dir (or database) and keyring with one product and an unlimited license."""
    store = open_store(Settings(data_dir=root / "data", keys_dir=root / "keys", database_url=database_url))
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        product = admin.create_product(store, Keyring(root / "keys"), account, name="Bench", now=now)
        lic = admin.create_license(
            store, account, product_id=product.id, allowed_activations=-1, allowed_deactivations=-1, now=now
        )
        return product.id, lic.key
    finally:
        store.close()


def _requests(count: int, product_id: str, license_key: str, *, first: int = 0) -> list[bytes]:
    """``count`` activation requests for one license, each from its own machine key and
    fingerprint, numbered from ``first`` (the other benchmarks' helper)."""
    return activation_requests(count, product_id, license_key, first=first)


def crypto_floor(seconds: float = 2.0) -> float:
    """Verify a real request and sign a response-sized payload, per second, on one core."""
    _, secret = nacl.bindings.crypto_sign_keypair()
    token = _requests(1, "prod_x", "KEY")[0].strip()
    h, p, s = token.split(b".")
    signed = b64url_decode(s) + h + b"." + p
    request_public = jws.public_key_from_jwk(jws.strict_json(b64url_decode(h))["jwk"])
    response_input = b"x" * 700  # a response's signing input is ~700 bytes
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            nacl.bindings.crypto_sign_open(signed, request_public)
            nacl.bindings.crypto_sign(response_input, secret)
        n += 200
    return n / elapsed


def _settle() -> None:
    """Let the kernel write new files out first, so the timed run does not pay for (or queue
    behind) the writeback of its own input."""
    os.sync()
    time.sleep(2)


def io_floor(root: Path, count: int) -> float:
    """The least any file-to-file engine can do on this disk, one core: read a request file, verify
    its signature, sign a response-sized payload, create the response file. No parsing beyond the
    header, no database. Per second."""
    inbox, outbox = root / "in", root / "out"
    outbox.mkdir(parents=True)
    _write_inputs(inbox, _requests(count, "prod_floor", "KEY"))
    _settle()
    _, secret = nacl.bindings.crypto_sign_keypair()
    body = b"x" * 700
    names = sorted(os.listdir(inbox))
    start = time.perf_counter()
    for name in names:
        fd = os.open(inbox / name, os.O_RDONLY)
        data = os.read(fd, jws.MAX_FILE_BYTES + 1)
        os.close(fd)
        h, p, s = data.strip().split(b".")
        key = jws.public_key_from_jwk(jws.strict_json(b64url_decode(h))["jwk"])
        nacl.bindings.crypto_sign_open(b64url_decode(s) + h + b"." + p, key)
        signature = nacl.bindings.crypto_sign(body, secret)
        fd = os.open(outbox / (name + ".response"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, signature)
        os.close(fd)
    return count / (time.perf_counter() - start)


def _write_inputs(path: Path, datas: list[bytes]) -> None:
    """The requests as files ``m000000.req``... in the folder ``path``, or in the zip ``path``
    (deflated, as a fleet's archive would come)."""
    names = (f"m{i:06d}.req" for i in range(len(datas)))
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in zip(names, datas, strict=False):
                zf.writestr(name, data)
    else:
        path.mkdir(parents=True)
        for name, data in zip(names, datas, strict=False):
            (path / name).write_bytes(data)


def _output_kind(out: Path) -> str:
    if out.is_file() and zipfile.is_zipfile(out):
        return "zip"
    return "folder" if out.is_dir() else "missing"


def run_batch_process(
    root: Path, count: int, workers: int, *, kind: str = "zip", database_url: str | None = None
) -> dict[str, Any]:
    """Generate ``count`` fresh requests as a ``kind`` ("zip" or "folder") input, run
    ``offline-service batch`` in a child process with an output of the same kind, and return its
    summary, the output kind it produced and the peak RSS of its processes."""
    root.mkdir(parents=True, exist_ok=True)
    product_id, key = _setup(root, database_url)
    suffix = ".zip" if kind == "zip" else ""
    inbox, out = root / f"in{suffix}", root / f"out{suffix}"
    _write_inputs(inbox, _requests(count, product_id, key))
    _settle()
    argv = [
        *(sys.executable, "-m", "offline_service.cli", "batch", str(inbox)),
        *("--out", str(out), "--report", str(root / "report.csv")),
        *("--workers", str(workers), "--json"),
        *("--data", str(root / "data"), "--keys", str(root / "keys")),
        *(("--database-url", database_url) if database_url else ()),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = _TreeMemory(proc.pid, watch=out.with_name(out.name + ".partial") if kind == "zip" else None)
    memory.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    memory.stop()
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {stderr[-2000:]}")
    summary = json.loads(stdout)
    if summary["accepted"] != count:
        raise SystemExit(f"batch accepted {summary['accepted']} of {count}: {summary}")
    return {
        "files": count,
        "workers": workers,
        "input": kind,
        "output": _output_kind(out),
        "stagingFolderSeen": memory.watch_seen,
        "seconds": summary["seconds"],
        "wallSeconds": round(wall, 3),
        "perSecond": count / summary["seconds"],
        "peakRssMB": {
            "coordinator": round(memory.hwm_kb.get(proc.pid, 0) / 1024, 1),
            "largestWorker": round(
                max((v for k, v in memory.hwm_kb.items() if k != proc.pid), default=0) / 1024, 1
            ),
            "total": round(memory.peak_total_kb / 1024, 1),
        },
    }


class _TreeMemory(threading.Thread):
    """Samples a process and its children every 10 ms from /proc: the peak of their summed RSS,
    and each one's VmHWM (the kernel's own peak-RSS counter; getrusage's ru_maxrss over-reports
    for a process that forks). With ``watch``, also whether that path was a folder at some sample
    (a zip batch's staging folder of response files; today's ``OUT.zip.partial`` is a file, the
    zip being written, and does not count)."""

    def __init__(self, pid: int, watch: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.watch = watch
        self.watch_seen = False
        self.hwm_kb: dict[int, int] = {}
        self.peak_total_kb = 0
        self._stop_event = threading.Event()

    @staticmethod
    def _status(pid: int) -> tuple[int, int]:
        rss = hwm = 0
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return rss, hwm

    def _tree(self) -> list[int]:
        pids = [self.pid]
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children", encoding="ascii") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = 0
            for pid in self._tree():
                try:
                    rss, hwm = self._status(pid)
                except (OSError, ValueError):
                    continue
                total += rss
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
            self.peak_total_kb = max(self.peak_total_kb, total)
            if self.watch is not None and not self.watch_seen:
                self.watch_seen = self.watch.is_dir()
            self._stop_event.wait(0.01)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _io_counters() -> dict[str, float]:
    """This process's user and system CPU seconds and its read/write syscalls and bytes so far
    (``/proc/self/io``; bytes through the page cache, whether or not they reach the disk)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"user": usage.ru_utime, "sys": usage.ru_stime}
    with open("/proc/self/io", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("rchar", "wchar", "syscr", "syscw"):
                out[key] = float(value)
    return out


def _engine_round(settings: Settings, account_id: str, datas: Sequence[bytes]) -> dict[str, float]:
    """Per request of the engine over ``datas``, in chunks of 512, one transaction each, on a store
    opened for this round: wall-clock microseconds (``us``), user and system CPU microseconds, and
    the read and write syscalls and bytes that went through the page cache (the database pages
    SQLite read and the WAL and checkpoint pages it wrote). Every request must be a fresh accepted
    activation."""
    store = open_store(settings)
    try:
        engine = Engine(store=store, keyring=Keyring(settings.keys_dir), policy=settings.policy)
        now = int(time.time())
        refused = 0
        before = _io_counters()
        start = time.perf_counter()
        for i in range(0, len(datas), CHUNK):
            outcomes = engine.process_many(datas[i : i + CHUNK], account_id=account_id, now=now)
            refused += sum(1 for o in outcomes if not o.ok or o.reissued)
        elapsed = time.perf_counter() - start
        after = _io_counters()
    finally:
        store.close()
    if refused:
        raise SystemExit(f"scale: {refused} of {len(datas)} requests were not fresh accepted activations")
    n = len(datas)
    per = {k: (after[k] - before[k]) / n for k in before}
    return {
        "us": elapsed / n * 1e6,
        "userUs": per["user"] * 1e6,
        "sysUs": per["sys"] * 1e6,
        "readCalls": per.get("syscr", 0.0),
        "readBytes": per.get("rchar", 0.0),
        "writeCalls": per.get("syscw", 0.0),
        "writeBytes": per.get("wchar", 0.0),
    }


def scale(
    root: Path, *, large: int, small: int, per_round: int, rounds: int = SCALE_ROUNDS
) -> dict[str, Any]:
    """Per-request cost of the engine on a bulk-loaded database of ``large`` licenses (each with an
    activation) against one of ``small``, in alternating rounds of ``per_round`` requests each: at
    ``large``, every request of the run for a license of its own (drawn at random); at ``small``,
    each license in turn. The requests of a round are made before it is timed."""
    big = build(root / "large", licenses=large)
    little = build(root / "small", licenses=small)
    draw = random.Random(14).sample(range(large), min(large, per_round * rounds))
    costs: dict[str, list[dict[str, float]]] = {"large": [], "small": []}
    for r in range(rounds):
        # Fingerprints above any bulk activation's, so that no request is a reactivation.
        first = 10**9 + r * per_round
        big_keys = [license_key(i) for i in draw[r * per_round : (r + 1) * per_round]] or [license_key(0)]
        made = {
            "large": activation_requests(per_round, big.product_id, big_keys, first=first),
            "small": activation_requests(
                per_round, little.product_id, [license_key(i) for i in range(small)], first=first
            ),
        }
        order = ("large", "small") if r % 2 == 0 else ("small", "large")
        for which in order:
            store = big if which == "large" else little
            _settle()
            costs[which].append(_engine_round(store.settings, store.account_id, made[which]))
    # The profile beside the wall-clock figure: CPU time split into user and system, and the page
    # reads and writes behind the system time (what a database 1,000 times larger costs).
    median = {k: {f: statistics.median(c[f] for c in v) for f in v[0]} for k, v in costs.items()}
    cpu = {k: m["userUs"] + m["sysUs"] for k, m in median.items()}
    return {
        "licenses": {"large": large, "small": small},
        "activations": {"large": large, "small": small},
        "requestsPerRound": per_round,
        "rounds": rounds,
        "bulkLoadSeconds": round(big.seconds, 1),
        "databaseMB": round(big.bytes / 2**20, 1),
        "microsecondsPerRequest": {k: [round(c["us"], 1) for c in v] for k, v in costs.items()},
        "medianMicroseconds": {k: round(m["us"], 1) for k, m in median.items()},
        "medianPerRequest": {k: {f: round(x, 1) for f, x in m.items()} for k, m in median.items()},
        "ratio": round(median["large"]["us"] / median["small"]["us"], 3),
        "cpuRatio": round(cpu["large"] / cpu["small"], 3),
    }


def http_figures(result: Mapping[str, Any]) -> dict[str, Any]:
    """From ``benchmarks.http --json``'s output: offline-activate (SQLite, one worker) over the bare
    endpoint, the median of the rounds' ratios, and offline-activate's median p99 latency in ms.
    Read defensively (a figure it cannot find is None): the HTTP benchmark changes on its own."""
    ratio = None
    for t in result.get("targets") or []:
        if isinstance(t, dict) and str(t.get("target", "")).startswith("sqlite_w1 / echo"):
            ratio = t.get("ratio")
            break
    config = (result.get("b_offlineActivate") or {}).get("sqlite_w1") or {}
    runs = [r for r in config.get("runs") or [] if isinstance(r, dict)]
    if ratio is None:
        paired = [r["ratioToEcho"] for r in runs if isinstance(r.get("ratioToEcho"), int | float)]
        if paired:
            ratio = statistics.median(paired)
        elif config.get("medianPerSecond") and result.get("a_medianPerSecond"):
            ratio = config["medianPerSecond"] / result["a_medianPerSecond"]
    p99_us = config.get("medianP99us")
    if not isinstance(p99_us, int | float):
        p99s = [r["p99us"] for r in runs if isinstance(r.get("p99us"), int | float)]
        p99_us = statistics.median(p99s) if p99s else None
    return {
        "ratio": round(ratio, 3) if isinstance(ratio, int | float) else None,
        "p99ms": round(p99_us / 1000, 2) if isinstance(p99_us, int | float) else None,
        "offlineActivatePerSecond": config.get("medianPerSecond"),
        "bareEndpointPerSecond": result.get("a_medianPerSecond"),
        "rounds": result.get("rounds"),
        "allFresh": result.get("allFresh"),
    }


def run_http(quick: bool) -> dict[str, Any]:
    """``benchmarks.http --json`` in a child process; its figures, or the error that stopped it."""
    argv = [sys.executable, "-m", "benchmarks.http", "--json", *(("--quick",) if quick else ())]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": f"benchmarks.http exited {done.returncode}: {done.stderr.strip()[-1000:]}"}
    try:
        return http_figures(json.loads(done.stdout))
    except (ValueError, AttributeError, TypeError) as exc:
        return {"error": f"benchmarks.http printed no JSON this benchmark can read: {exc}"}


def target_row(key: str, value: float | None, figure: str | None = None) -> dict[str, Any]:
    """One line of the targets table: the figure, its value, the target, and whether it is met
    (None when the figure was not measured)."""
    sense, bound = TARGETS[key]
    met = None if value is None else (value >= bound if sense == "min" else value <= bound)
    return {
        "id": key,
        "figure": figure or FIGURES[key],
        "value": value,
        "target": f"{'>=' if sense == 'min' else '<='} {bound:g}",
        "met": met,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts and no million licenses, to check that it runs"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP figures (benchmarks.http)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="sqlite (default); postgresql or both: also (b), (b') and (c) on PostgreSQL, with SQLite's"
        " as the reference (the two are the same run)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    cores = os.cpu_count() or 1
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        base = Path(tmp)
        # Each floor is measured just before the batch it is the measure of: this machine's speed
        # drifts within minutes, and figures made next to each other are what it disturbs least.
        floor_seconds = 0.5 if args.quick else 3.0
        file_floor = io_floor(base / "floor", sizes["b_prime"])
        folder_one = run_batch_process(base / "b_prime", sizes["b_prime"], 1, kind="folder")
        floor_b = crypto_floor(floor_seconds)
        zip_one = run_batch_process(base / "b", sizes["b"], 1, kind="zip")
        floor_c = crypto_floor(floor_seconds)
        zip_all = run_batch_process(base / "c", sizes["c"], cores, kind="zip")
        large = run_batch_process(base / "d", sizes["rss_large"], cores, kind="zip")
        pg: dict[str, dict[str, Any]] = {}
        if args.backend != "sqlite":
            for name, size, workers, kind in (
                ("b", sizes["b"], 1, "zip"),
                ("b_prime", sizes["b_prime"], 1, "folder"),
                ("c", sizes["c"], cores, "zip"),
            ):
                with fresh_database() as url:
                    pg[name] = run_batch_process(
                        base / f"pg_{name}", size, workers, kind=kind, database_url=url
                    )
        scaled = scale(
            base / "scale",
            large=sizes["scale_large"],
            small=sizes["scale_small"],
            per_round=sizes["scale_round"],
        )
    http: dict[str, Any] = {"skipped": True}
    if not args.no_http:
        os.sync()
        http = run_http(args.quick)
    load_end = os.getloadavg()

    rss_ratio = round(large["peakRssMB"]["total"] / zip_all["peakRssMB"]["total"], 3)
    targets = [
        target_row("b", round(zip_one["perSecond"] / floor_b, 3)),
        target_row("b_prime", round(folder_one["perSecond"] / file_floor, 3)),
        target_row("c", round(zip_all["perSecond"] / floor_c, 3)),
        target_row("scale", scaled["ratio"]),
        target_row("http_ratio", http.get("ratio")),
        target_row("http_p99_ms", http.get("p99ms")),
        target_row("rss_mb", large["peakRssMB"]["total"]),
        target_row("rss_flat", rss_ratio),
    ]
    result: dict[str, Any] = {
        "benchmark": "engine",
        "quick": args.quick,
        "machine": machine(),
        "loadAverage": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in load_end],
        },
        "targets": targets,
        "allMet": all(t["met"] is True for t in targets),
        "a_cryptoFloorPerSecond": {"b": round(floor_b), "c": round(floor_c)},
        "ioFloorPerSecond": round(file_floor),
        "b_zipOneCorePerSecond": round(zip_one["perSecond"]),
        "bPrime_folderOneCorePerSecond": round(folder_one["perSecond"]),
        "c_zipAllCoresPerSecond": round(zip_all["perSecond"]),
        "d_peakRssMB": {str(zip_all["files"]): zip_all["peakRssMB"], str(large["files"]): large["peakRssMB"]},
        "scale": scaled,
        "http": http,
        "runs": {"b": zip_one, "b_prime": folder_one, "c": zip_all, "d": large},
    }
    if pg:
        refs = {"b": zip_one, "b_prime": folder_one, "c": zip_all}
        result["postgresql"] = {
            "runs": pg,
            "targets": [
                target_row(
                    "postgresql_vs_sqlite",
                    round(pg[k]["perSecond"] / refs[k]["perSecond"], 3),
                    figure=f"{k} on PostgreSQL / {k} on SQLite",
                )
                for k in pg
            ],
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result, cores)
    return 0


def _print(result: dict[str, Any], cores: int) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB, Python {m['python']}")
    print(f"load average at start {result['loadAverage']['start']}, at end {result['loadAverage']['end']}")
    runs = result["runs"]
    floors = result["a_cryptoFloorPerSecond"]
    print(f"(a) crypto floor, one core:       {floors['b']:>8,}/s before (b), {floors['c']:,}/s before (c)")
    print(f"    file-I/O floor, one core:     {result['ioFloorPerSecond']:>8,}/s")
    for key, label in (
        ("b", "(b) zip, one core"),
        ("b_prime", "(b') folder, one core"),
        ("c", f"(c) zip, {cores} cores"),
    ):
        run = runs[key]
        print(
            f"{label + ':':<34}{run['perSecond']:>8,.0f}/s  ({run['files']:,} requests, output {run['output']}"
            f"{', staged in a folder' if run['stagingFolderSeen'] else ''})"
        )
    s = result["scale"]
    print(
        f"scale: {s['medianMicroseconds']['large']} µs/request at {s['licenses']['large']:,} licenses,"
        f" {s['medianMicroseconds']['small']} µs at {s['licenses']['small']:,} (CPU time: {s['cpuRatio']}x)"
    )
    for which in ("large", "small"):
        m = s["medianPerRequest"][which]
        print(
            f"  per request at {s['licenses'][which]:>9,}: user {m['userUs']} µs, system {m['sysUs']} µs,"
            f" {m['readCalls']} reads ({m['readBytes'] / 1024:.1f} KiB), {m['writeCalls']} writes"
            f" ({m['writeBytes'] / 1024:.1f} KiB)"
        )
    if "error" in result["http"]:
        print(f"HTTP: {result['http']['error']}")
    for files, rss in result["d_peakRssMB"].items():
        print(
            f"(d) peak RSS, {int(files):>7,} requests: {rss['total']:>7} MB"
            f" (coordinator {rss['coordinator']}, largest worker {rss['largestWorker']})"
        )
    print()
    for t in [*result["targets"], *result.get("postgresql", {}).get("targets", [])]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        value = "-" if t["value"] is None else f"{t['value']:g}"
        print(f"{t['figure']}: {value} (target {t['target']}: {verdict})")


if __name__ == "__main__":
    raise SystemExit(main())
