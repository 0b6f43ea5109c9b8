"""The engine's hot path, in process: ``python -m benchmarks.hotpath [--json] [--count N] [--rounds R]
[--callgrind [N]] [--quick]``.

Prepares N fresh activation requests (each from its own machine key) for a fresh SQLite data dir and
keyring, then times them through ``Engine.process_many`` in chunks of ``batch.CHUNK``, as the batch
does, with no file I/O. Beside it, the crypto of the same requests alone (an Ed25519 verify of each
request and a sign of a response-sized payload): the rest is parse, decide, record and encode.
Median of R rounds, each on a fresh data dir.

``--callgrind N`` runs this module twice under valgrind's callgrind on N requests, once only
preparing them and once also processing them, and reports the difference per request in
instructions (setup cancels), split by where they ran: libsodium (PyNaCl's bundled copy), the Python
interpreter (with its C modules), SQLite, libc and the rest. Instruction counts are repeatable on a noisy machine; times are not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import nacl.bindings

from benchmarks._machine import machine
from offline_service._b64 import b64url_decode
from offline_service.fileformat import jws, messages
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.ids import new_nonce
from offline_service.licensing import services as admin
from offline_service.licensing.batch import CHUNK
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store.backends import open_store

# Where an instruction ran, by the shared object that holds it (callgrind's ``ob=``).
_LIBRARIES = (
    ("libsodium", re.compile(r"_sodium|libsodium")),
    ("sqlite", re.compile(r"sqlite")),
    ("python", re.compile(r"python3|libpython|lib-dynload|site-packages")),  # its C modules too
    ("libc", re.compile(r"libc\.so|ld-linux")),
)


class _Bench:
    """A fresh data dir and keyring with one product and an unlimited license, and N requests."""

    def __init__(self, root: Path, count: int) -> None:
        self.settings = Settings(data_dir=root / "data", keys_dir=root / "keys")
        self.store = open_store(self.settings)
        self.keyring = Keyring(self.settings.keys_dir)
        self.now = int(time.time())
        account, _ = admin.ensure_account(self.store, "default", now=self.now)
        product = admin.create_product(self.store, self.keyring, account, name="Bench", now=self.now)
        lic = admin.create_license(
            self.store,
            account,
            product_id=product.id,
            allowed_activations=-1,
            allowed_deactivations=-1,
            now=self.now,
        )
        self.account_id, self.product_id = account.id, product.id
        self.requests = [self._request(i, lic.key) for i in range(count)]
        self.engine = Engine(store=self.store, keyring=self.keyring, policy=self.settings.policy)

    def _request(self, i: int, license_key: str) -> bytes:
        public, secret = nacl.bindings.crypto_sign_keypair()
        header = {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(public)}
        payload = messages.request_payload(
            kind=Kind.ACTIVATION,
            product_id=self.product_id,
            license_key=license_key,
            fingerprint=f"{i:064x}",
            issued_at=self.now,
            nonce=new_nonce(),
            hostname=f"ws-{i:06d}.plant.example",
            os="Linux 6.1 x86_64",
            app_version="4.2.0",
        )
        return jws.encode(header, payload, secret).encode() + b"\n"

    def process(self) -> list[str]:
        """Every request through the engine, chunk by chunk as the batch does; the responses."""
        responses: list[str] = []
        for start in range(0, len(self.requests), CHUNK):
            for outcome in self.engine.process_many(
                self.requests[start : start + CHUNK], account_id=self.account_id, now=self.now
            ):
                if outcome.response is None:
                    raise SystemExit(f"benchmark request refused: {outcome.code} {outcome.message}")
                responses.append(outcome.response)
        return responses

    def crypto(self, responses: list[str]) -> None:
        """The signatures alone: verify each request, sign a payload the size of its response."""
        secret = self.keyring.signer(self.product_id).secret_key
        for data, response in zip(self.requests, responses, strict=True):
            h, p, s = data.strip().split(b".")
            key = jws.public_key_from_jwk(json.loads(b64url_decode(h))["jwk"])
            nacl.bindings.crypto_sign_open(b64url_decode(s) + h + b"." + p, key)
            nacl.bindings.crypto_sign(response.rpartition(".")[0].encode(), secret)

    def close(self) -> None:
        self.store.close()


def _round(count: int) -> dict[str, float]:
    """One round on a fresh data dir: seconds for the engine and for the crypto alone."""
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        bench = _Bench(Path(tmp), count)
        try:
            start = time.perf_counter()
            responses = bench.process()
            engine = time.perf_counter() - start
            start = time.perf_counter()
            bench.crypto(responses)
            crypto = time.perf_counter() - start
        finally:
            bench.close()
    return {"engine": engine, "crypto": crypto}


def measure(count: int, rounds: int) -> dict[str, Any]:
    results = [_round(count) for _ in range(rounds)]
    engine = statistics.median(r["engine"] for r in results) / count * 1e6
    crypto = statistics.median(r["crypto"] for r in results) / count * 1e6
    return {
        "count": count,
        "rounds": rounds,
        "chunk": CHUNK,
        "perRequestUs": round(engine, 1),
        "cryptoUs": round(crypto, 1),
        "restUs": round(engine - crypto, 1),
        "engineVsCrypto": round(crypto / engine, 3),
        "perSecond": round(1e6 / engine),
    }


# -- callgrind -----------------------------------------------------------------------------


def self_cost_by_object(path: Path) -> dict[str, int]:
    """Instructions (Ir) by shared object from a callgrind output file: self cost only (the cost
    line after ``calls=`` is the callee's inclusive cost, counted where the callee runs)."""
    names: dict[str, str] = {}
    totals: dict[str, int] = defaultdict(int)
    current = "?"
    after_call = False
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):  # a name is given where first used, then "(n)"
                ref, _, name = line.partition("=")[2].strip().partition(" ")
                if name:
                    names[ref] = name
                if line.startswith("ob="):
                    current = ref
            elif line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_call:
                    after_call = False
                    continue
                fields = line.split()
                if len(fields) > 1:
                    totals[current] += int(fields[1])
    by_name: dict[str, int] = defaultdict(int)
    for ref, cost in totals.items():
        by_name[names.get(ref, ref)] += cost
    return dict(by_name)


def _library(obj: str) -> str:
    for name, pattern in _LIBRARIES:
        if pattern.search(obj):
            return name
    return "other"


def _callgrind_run(count: int, process: bool, out: Path) -> dict[str, int]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.hotpath",
            "--child",
            "process" if process else "prepare",
            "--count",
            str(count),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    by_library: dict[str, int] = defaultdict(int)
    for obj, cost in self_cost_by_object(out).items():
        by_library[_library(obj)] += cost
    return dict(by_library)


def callgrind(count: int) -> dict[str, Any]:
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="hotpath-cg-") as tmp:
        prepare = _callgrind_run(count, False, Path(tmp) / "prepare.out")
        process = _callgrind_run(count, True, Path(tmp) / "process.out")
    libraries = sorted(set(prepare) | set(process))
    per = {lib: (process.get(lib, 0) - prepare.get(lib, 0)) / count for lib in libraries}
    total = sum(per.values())
    return {
        "count": count,
        "instructionsPerRequest": round(total),
        "byLibrary": {lib: round(per[lib]) for lib in libraries},
        "nonCryptoPerRequest": round(total - per.get("libsodium", 0)),
    }


def _child(mode: str, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        bench = _Bench(Path(tmp), count)
        try:
            if mode == "process":
                bench.process()
        finally:
            bench.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a small run (200 requests, 1 round)")
    parser.add_argument("--count", type=int, default=5000, help="requests per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is kept (default 3)")
    parser.add_argument(
        "--callgrind",
        type=int,
        nargs="?",
        const=1024,
        metavar="N",
        help="also count instructions per request under valgrind on N requests (default 1024)",
    )
    parser.add_argument("--child", choices=("prepare", "process"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or (args.callgrind is not None and args.callgrind < 1):
        parser.error("--count, --rounds and --callgrind must be positive")
    if args.child:
        _child(args.child, args.count)
        return
    count, rounds = (200, 1) if args.quick else (args.count, args.rounds)
    result: dict[str, Any] = {"benchmark": "hotpath", "quick": args.quick, **measure(count, rounds)}
    if args.callgrind is not None:
        result["callgrind"] = callgrind(args.callgrind)
    result["machine"] = machine()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"engine, one core, {count} requests in chunks of {CHUNK}, median of {rounds} round(s):")
    print(f"  {result['perRequestUs']} us/request ({result['perSecond']}/s)")
    print(f"  crypto alone {result['cryptoUs']} us, the rest {result['restUs']} us")
    print(f"  crypto / engine = {result['engineVsCrypto']}")
    if "callgrind" in result:
        cg = result["callgrind"]
        print(f"callgrind, {cg['count']} requests: {cg['instructionsPerRequest']} instructions/request")
        for lib, n in cg["byLibrary"].items():
            print(f"  {lib:10} {n:>10}")
        print(f"  non-crypto {cg['nonCryptoPerRequest']:>10}")


if __name__ == "__main__":
    main()
