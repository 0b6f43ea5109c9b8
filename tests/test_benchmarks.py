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
