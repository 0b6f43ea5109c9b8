"""Engine benchmark: ``python -m benchmarks.engine [--json] [--quick] [--backend sqlite|postgresql|both]``.

Measures in one run, on this machine:
  (a) crypto floor: one core doing a PyNaCl Ed25519 verify of a request plus a sign of a response;
  (b) the engine on one core, end to end (``batch --workers 1``: read files, parse, verify, decide
      against SQLite, sign, write responses and the report);
  (c) ``batch`` with every core on 20,000 fresh request files;
  (d) peak RSS of a 100,000-file batch and of a 20,000-file one: the peak of the summed RSS of
      the coordinator and its workers, sampled every 10 ms, with each process's own VmHWM.
Targets (2-core machine): b >= 0.6 a; c >= 1.3 a; d <= 300 MB and flat in the number of files.
Also measured, to put (b) in context: the file I/O floor, the same loop as (a) plus reading each
request file and creating each response file, with nothing else (no parsing, no database).
Each batch runs in its own process on a fresh data directory and fresh files, so nothing is cached.
With ``--backend postgresql`` (or ``both``), (b) and (c) also run on PostgreSQL in the same run, each
batch on a fresh database ``offline_bench_<random>`` (``OFFLINE_SERVICE_BENCH_DATABASE_URL`` or the
local server, dropped at the end), with the ratio of each to the SQLite figure of the run: target
batch on PostgreSQL >= 0.7 x SQLite's. (a) and (d) stay SQLite's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nacl.bindings

from benchmarks._database import fresh_database
from benchmarks._machine import machine
from offline_service._b64 import b64url_decode
from offline_service.fileformat import jws, messages
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.ids import new_nonce
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store.backends import open_store

TARGETS = {"engine_vs_floor": 0.6, "batch_vs_floor": 1.3, "rss_mb": 300, "postgresql_vs_sqlite": 0.7}


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
    """``count`` activation requests, each from its own machine key and fingerprint (numbered from
    ``first``: calls for one license must not overlap, or a machine would activate twice)."""
    now = int(time.time())
    out = []
    for i in range(first, first + count):
        public, secret = nacl.bindings.crypto_sign_keypair()
        header = {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(public)}
        payload = messages.request_payload(
            kind=Kind.ACTIVATION,
            product_id=product_id,
            license_key=license_key,
            fingerprint=f"{i:064x}",
            issued_at=now,
            nonce=new_nonce(),
            hostname=f"ws-{i:06d}.plant.example",
            os="Linux 6.1 x86_64",
            app_version="4.2.0",
        )
        out.append(jws.encode(header, payload, secret).encode() + b"\n")
    return out


def crypto_floor(seconds: float = 2.0) -> float:
    """Verify a real request and sign a response-sized payload, per second, on one core."""
    public, secret = nacl.bindings.crypto_sign_keypair()
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
    del public
    return n / elapsed


def io_floor(root: Path, count: int) -> float:
    """The least any file-to-file engine can do on this disk, one core: read a request file, verify
    its signature, sign a response-sized payload, create the response file. No parsing beyond the
    header, no database. Per second."""
    inbox, outbox = root / "in", root / "out"
    inbox.mkdir(parents=True)
    outbox.mkdir()
    for i, data in enumerate(_requests(count, "prod_floor", "KEY")):
        (inbox / f"m{i:06d}.req").write_bytes(data)
    os.sync()
    time.sleep(2)
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


def run_batch_process(
    root: Path, count: int, workers: int, database_url: str | None = None
) -> dict[str, Any]:
    """Generate ``count`` fresh files, run ``offline-service batch`` in a child process, and return
    its summary plus the peak RSS of the coordinator and of the largest worker."""
    root.mkdir(parents=True, exist_ok=True)
    product_id, key = _setup(root, database_url)
    inbox = root / "in"
    inbox.mkdir()
    for i, data in enumerate(_requests(count, product_id, key)):
        (inbox / f"m{i:06d}.req").write_bytes(data)
    # Let the kernel write the new files out first, so the timed run does not pay for (or queue
    # behind) the writeback of its own input.
    os.sync()
    time.sleep(2)
    argv = [
        sys.executable,
        "-m",
        "offline_service.cli",
        "batch",
        str(inbox),
        "--out",
        str(root / "out"),
        "--report",
        str(root / "report.csv"),
        "--workers",
        str(workers),
        "--json",
        "--data",
        str(root / "data"),
        "--keys",
        str(root / "keys"),
        *(("--database-url", database_url) if database_url else ()),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = _TreeMemory(proc.pid)
    memory.start()
    out, err = proc.communicate()
    memory.stop()
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {err[-2000:]}")
    summary = json.loads(out)
    if summary["accepted"] != count:
        raise SystemExit(f"batch accepted {summary['accepted']} of {count}: {summary}")
    return {
        "files": count,
        "workers": workers,
        "seconds": summary["seconds"],
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
    for a process that forks)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
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
            self._stop_event.wait(0.01)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--quick", action="store_true", help="small counts, to check that it runs (not figures)"
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="sqlite (default); postgresql or both: also (b) and (c) on PostgreSQL, with SQLite's as the"
        " reference (the two are the same run)",
    )
    args = parser.parse_args(argv)
    sizes = {"one_core": 10_000, "all_cores": 20_000, "rss_large": 100_000}
    if args.quick:
        sizes = {"one_core": 300, "all_cores": 600, "rss_large": 1_200}
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        base = Path(tmp)
        floor = crypto_floor(0.5 if args.quick else 3.0)
        file_floor = io_floor(base / "f", sizes["one_core"])
        one = run_batch_process(base / "b", sizes["one_core"], 1)
        allc = run_batch_process(base / "c", sizes["all_cores"], cores)
        large = run_batch_process(base / "d", sizes["rss_large"], cores)
        pg: dict[str, dict[str, Any]] = {}
        if args.backend != "sqlite":
            for name, size, workers in (("b", sizes["one_core"], 1), ("c", sizes["all_cores"], cores)):
                with fresh_database() as url:
                    pg[name] = run_batch_process(base / f"pg_{name}", size, workers, url)
        load = os.getloadavg()
    result: dict[str, Any] = {
        "benchmark": "engine",
        "quick": args.quick,
        "machine": machine(),
        "a_cryptoFloorPerSecond": round(floor),
        "ioFloorPerSecond": round(file_floor),
        "b_engineOneCorePerSecond": round(one["perSecond"]),
        "c_batchAllCoresPerSecond": round(allc["perSecond"]),
        "d_peakRssMB": {str(allc["files"]): allc["peakRssMB"], str(large["files"]): large["peakRssMB"]},
        "ratios": {
            "b_over_a": round(one["perSecond"] / floor, 3),
            "ioFloor_over_a": round(file_floor / floor, 3),
            "b_over_ioFloor": round(one["perSecond"] / file_floor, 3),
            "c_over_a": round(allc["perSecond"] / floor, 3),
            "rss_large_over_small": round(large["peakRssMB"]["total"] / allc["peakRssMB"]["total"], 3),
        },
        "targets": {"b_over_a": ">= 0.6", "c_over_a": ">= 1.3", "peakRssMB": "<= 300, flat"},
        "runs": {"b": one, "c": allc, "d": large},
        "loadAverageAtEnd": [round(x, 2) for x in load],
    }
    if pg:
        ratio_b = round(pg["b"]["perSecond"] / one["perSecond"], 3)
        ratio_c = round(pg["c"]["perSecond"] / allc["perSecond"], 3)
        minimum = TARGETS["postgresql_vs_sqlite"]
        result["postgresql"] = {
            "b_engineOneCorePerSecond": round(pg["b"]["perSecond"]),
            "c_batchAllCoresPerSecond": round(pg["c"]["perSecond"]),
            "runs": pg,
            "targets": [
                {
                    "target": "b on PostgreSQL / b on SQLite",
                    "ratio": ratio_b,
                    "minimum": minimum,
                    "met": ratio_b >= minimum,
                },
                {
                    "target": "c on PostgreSQL / c on SQLite",
                    "ratio": ratio_c,
                    "minimum": minimum,
                    "met": ratio_c >= minimum,
                },
            ],
        }
    result["meetsTargets"] = {
        "b": result["ratios"]["b_over_a"] >= TARGETS["engine_vs_floor"],
        "c": result["ratios"]["c_over_a"] >= TARGETS["batch_vs_floor"],
        "d": max(allc["peakRssMB"]["total"], large["peakRssMB"]["total"]) <= TARGETS["rss_mb"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        m, r = result["machine"], result["ratios"]
        print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB, Python {m['python']}")
        print(f"(a) crypto floor, one core:          {result['a_cryptoFloorPerSecond']:>8,}/s")
        print(
            f"    file I/O floor, one core:        {result['ioFloorPerSecond']:>8,}/s"
            f"  ({r['ioFloor_over_a']:.2f} x a: read, verify, sign, write and nothing else)"
        )
        print(
            f"(b) engine end to end, one core:     {result['b_engineOneCorePerSecond']:>8,}/s"
            f"  ({r['b_over_a']:.2f} x a, target 0.6; {r['b_over_ioFloor']:.2f} x the I/O floor)"
        )
        print(
            f"(c) batch, {cores} cores, {allc['files']:,} files:   {result['c_batchAllCoresPerSecond']:>8,}/s"
            f"  ({r['c_over_a']:.2f} x a, target 1.3)"
        )
        for files, rss in result["d_peakRssMB"].items():
            print(
                f"(d) peak RSS, {int(files):>7,} files:        {rss['total']:>8} MB"
                f" (coordinator {rss['coordinator']}, largest worker {rss['largestWorker']})"
            )
        if pg:
            p = result["postgresql"]
            print(f"(b) on PostgreSQL, one core:         {p['b_engineOneCorePerSecond']:>8,}/s")
            print(f"(c) on PostgreSQL, {cores} cores:          {p['c_batchAllCoresPerSecond']:>8,}/s")
            for t in p["targets"]:
                verdict = "met" if t["met"] else "NOT met"
                print(f"    {t['target']}: {t['ratio']:.2f} (target >= {t['minimum']}: {verdict})")
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in result['loadAverageAtEnd'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
