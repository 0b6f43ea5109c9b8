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


ENGINE_ROWS = ["b", "b_prime", "c", "scale", "http_ratio", "http_p99_ms", "rss_mb", "rss_flat"]


def test_engine_benchmark_quick_on_both_backends() -> None:
    r = _run("benchmarks.engine", "--backend", "both", "--no-http")
    assert r["benchmark"] == "engine" and r["quick"] is True
    assert len(r["loadAverage"]["start"]) == 3 and len(r["loadAverage"]["end"]) == 3
    assert r["machine"]["cores"] >= 1
    # One row per line of issue 14's table (peak RSS as MB and as flatness), each with its target.
    assert [t["id"] for t in r["targets"]] == ENGINE_ROWS
    for t in r["targets"]:
        assert set(t) == {"id", "figure", "value", "target", "met"}, t
        assert t["target"].startswith((">= ", "<= ")), t
        if t["id"].startswith("http_"):
            assert t["value"] is None and t["met"] is None, t  # --no-http: not measured
        else:
            assert _number(t["value"]) and isinstance(t["met"], bool), t
    assert r["http"] == {"skipped": True}
    for key in ("b", "b_prime", "c", "d"):
        run = r["runs"][key]
        assert run["perSecond"] > 0 and run["peakRssMB"]["total"] > 0, run
        assert run["output"] == ("folder" if key == "b_prime" else "zip"), run
    scale = r["scale"]
    assert scale["licenses"]["large"] > scale["licenses"]["small"]
    assert all(len(v) == scale["rounds"] for v in scale["microsecondsPerRequest"].values())
    # The profile beside the figure: CPU split and page I/O per request, on both databases.
    for which in ("large", "small"):
        profile = scale["medianPerRequest"][which]
        assert set(profile) >= {"us", "userUs", "sysUs", "readCalls", "readBytes", "writeCalls", "writeBytes"}
        assert profile["userUs"] > 0 and profile["writeBytes"] > 0
    assert scale["cpuRatio"] > 0
    pg = r["postgresql"]
    assert [t["figure"] for t in pg["targets"]] == [
        "b on PostgreSQL / b on SQLite",
        "b_prime on PostgreSQL / b_prime on SQLite",
        "c on PostgreSQL / c on SQLite",
    ]
    for t in pg["targets"]:
        assert _number(t["value"]) and t["target"] == ">= 0.7" and isinstance(t["met"], bool), t


def test_engine_benchmark_reads_the_http_figures() -> None:
    """The HTTP figures are read from benchmarks.http's JSON as it is today, and from what it may
    become: a figure missing is None, never an error."""
    from benchmarks.engine import http_figures

    today = {
        "targets": [{"target": "sqlite_w1 / echo (b over a)", "ratio": 0.61, "minimum": 0.5, "met": True}],
        "a_medianPerSecond": 2000.0,
        "b_offlineActivate": {"sqlite_w1": {"medianPerSecond": 1200.0, "medianP99us": 15400, "runs": []}},
        "rounds": 5,
        "allFresh": True,
    }
    got = http_figures(today)
    assert (got["ratio"], got["p99ms"], got["allFresh"]) == (0.61, 15.4, True)
    runs_only = {
        "b_offlineActivate": {
            "sqlite_w1": {
                "runs": [
                    {"ratioToEcho": 0.5, "p99us": 9000},
                    {"ratioToEcho": 0.7, "p99us": 11000},
                    {"ratioToEcho": 0.6},
                ]
            }
        }
    }
    assert (http_figures(runs_only)["ratio"], http_figures(runs_only)["p99ms"]) == (0.6, 10.0)
    assert (http_figures({})["ratio"], http_figures({})["p99ms"]) == (None, None)


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
