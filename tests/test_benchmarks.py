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
    ratios = {t["target"].split(" ")[0]: t for t in r["targets"] if "ratio" in t}
    assert set(ratios) == {"sqlite_w1", "postgresql_w1", "postgresql_w2"}
    for t in ratios.values():
        assert _number(t["ratio"]) and _number(t["minimum"]) and isinstance(t["met"], bool), t
    assert (
        ratios["sqlite_w1"]["target"].startswith("sqlite_w1 / echo")
        and ratios["sqlite_w1"]["minimum"] == 0.65
    )
    [latency] = [t for t in r["targets"] if "maximum" in t]
    assert latency["target"].startswith("sqlite_w1 p99") and latency["maximum"] == 20
    assert _number(latency["value"]) and isinstance(latency["met"], bool)
    assert len(r["machine"]["loadAverageAtEnd"]) == 3
    assert r["allFresh"] is True and r["rounds"] == 1 and r["machine"]["wrk"].startswith("-t1 -c8")
    # One server, the one serve runs: its figures are the top-level ones.
    assert r["servers"] == [r["server"]] == ["uvloop/httptools"] and r["overFirst"] == {}
    assert _number(r["a_medianPerSecond"]) and _number(r["a_medianP99us"])


def test_http_benchmark_pairs_the_servers_it_is_given() -> None:
    r = _run("benchmarks.http", "--server", "asyncio/h11,uvloop/httptools")
    assert r["servers"] == ["asyncio/h11", "uvloop/httptools"]
    # The top-level figures are those of what serve runs by default, whichever is listed first.
    assert r["server"] == "uvloop/httptools"
    assert r["b_offlineActivate"] == r["byServer"]["uvloop/httptools"]["b_offlineActivate"]
    for server, figures in r["byServer"].items():
        assert _number(figures["a_medianPerSecond"]) and _number(figures["a_medianP99us"]), server
        [(key, b)] = figures["b_offlineActivate"].items()
        assert key == "sqlite_w1" and b["server"] == server and _number(b["medianP99us"])
        assert all(run["allFresh"] and run["requests"] < run["bodies"] for run in b["runs"]), server
    over = r["overFirst"]["uvloop/httptools"]
    assert _number(over["a_perSecond"]) and _number(over["b_offlineActivate"]["sqlite_w1"]["perSecond"])
    assert set(r["overFirst"]) == {"uvloop/httptools"} and r["allFresh"] is True


def test_http_benchmark_refuses_an_unknown_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.http", "--server", "uvloop/h2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "must be LOOP/HTTP" in done.stderr


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
