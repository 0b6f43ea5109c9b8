"""The benchmarks' ``--quick`` modes on both backends: they run, clean up their PostgreSQL
databases, and print well-formed ``--json`` (figures present, targets listed). No figure is judged
here: a test never asserts a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.pg import server_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _bench_databases() -> set[str]:
    with psycopg.connect(server_url(), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, 'offline_bench_')")
        return {str(r[0]) for r in rows}


def _run(module: str, *args: str) -> dict[str, Any]:
    before = _bench_databases()
    env = dict(os.environ, OFFLINE_SERVICE_BENCH_DATABASE_URL=server_url())
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert _bench_databases() <= before, "the benchmark left its database behind"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def test_http_benchmark_quick_on_both_backends() -> None:
    r = _run("benchmarks.http", "--backend", "both", "--workers", "1,2")
    assert r["benchmark"] == "http" and r["quick"] is True
    assert set(r["b_offlineActivate"]) == {"sqlite_w1", "sqlite_w2", "postgresql_w1", "postgresql_w2"}
    for key, config in r["b_offlineActivate"].items():
        assert config["medianPerSecond"] > 0, key
        for field in ("medianP50us", "medianP99us", "medianWrkCpuShare", "medianServerCpuShare"):
            assert _number(config[field]), (key, field)
        assert _number(config["medianPostgresqlCpuShare"]) == (config["backend"] == "postgresql")
        for run in config["runs"]:
            assert run["non2xx"] == 0 and run["allFresh"], run
    targets = {t["target"].split(" ")[0]: t for t in r["targets"]}
    assert set(targets) == {"sqlite_w1", "postgresql_w1", "postgresql_w2"}
    for t in targets.values():
        assert _number(t["ratio"]) and _number(t["minimum"]) and isinstance(t["met"], bool), t
    assert len(r["machine"]["loadAverageAtEnd"]) == 3


def test_engine_benchmark_quick_on_both_backends() -> None:
    r = _run("benchmarks.engine", "--backend", "both")
    assert r["benchmark"] == "engine" and r["quick"] is True
    assert r["b_engineOneCorePerSecond"] > 0 and r["c_batchAllCoresPerSecond"] > 0
    pg = r["postgresql"]
    assert pg["b_engineOneCorePerSecond"] > 0 and pg["c_batchAllCoresPerSecond"] > 0
    assert [t["target"] for t in pg["targets"]] == [
        "b on PostgreSQL / b on SQLite",
        "c on PostgreSQL / c on SQLite",
    ]
    for t in pg["targets"]:
        assert _number(t["ratio"]) and t["minimum"] == 0.7 and isinstance(t["met"], bool), t
    assert set(r["meetsTargets"]) == {"b", "c", "d"}


def test_hotpath_benchmark_quick() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hotpath", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout)
    assert r["benchmark"] == "hotpath" and r["quick"] is True and r["count"] == 200
    for field in ("perRequestUs", "cryptoUs", "perSecond", "engineVsCrypto"):
        assert _number(r[field]) and r[field] > 0, field
    assert isinstance(r["restUs"], int | float) and "callgrind" not in r


def test_hotpath_callgrind_self_cost_by_object(tmp_path: Path) -> None:
    """Names are given once and then referred to as (n); a call's inclusive cost (the line after
    ``calls=``) belongs to the callee, not to the caller's object."""
    from benchmarks.hotpath import self_cost_by_object

    out = tmp_path / "callgrind.out"
    out.write_text(
        "events: Ir\n"
        "ob=(1) /usr/lib/libpython3.11.so\nfn=(1) main\n"
        "10 100\n+1 5\n"
        "cob=(2) /site-packages/nacl/_sodium.abi3.so\ncfn=(2) sign\ncalls=1 0\n12 900\n"
        "ob=(2)\nfn=(2)\n0 900\n"
        "ob=(1)\nfn=(1)\n* 7\n"
    )
    assert self_cost_by_object(out) == {
        "/usr/lib/libpython3.11.so": 112,
        "/site-packages/nacl/_sodium.abi3.so": 900,
    }
