"""wrk (Debian's package) driven from Python: one run with a Lua script that takes the next of N
request bodies for every request (or sends one body throughout), its figures from the script's
``done()``, and wrk's own CPU time from the kernel (``wait4``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["CONNECTIONS", "LUA", "THREADS", "wrk"]

THREADS, CONNECTIONS = 1, 8

LUA = """
-- Written by benchmarks/_wrk.py. With OFS_BODIES set, every request takes the next line of that
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
    """One wrk run; its figures from the script's done() callback, plus ``wrkCpuShare``: wrk's
    user + system CPU time over the run's wall time (1.0 = one core)."""
    env = dict(os.environ, OFS_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()))
    env["OFS_BODIES" if cycle else "OFS_BODY"] = str(body)
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"wrk did not finish within {seconds + 60} s") from None
    wall = time.monotonic() - start
    # communicate() reaped wrk: its CPU time is what RUSAGE_CHILDREN gained meanwhile (no other
    # child of the benchmark ends during a run; the servers are reaped at the end).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((x for x in out.splitlines() if x.startswith("OFS_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {out[-1000:]} {err[-1000:]}")
    r: dict[str, Any] = json.loads(line.removeprefix("OFS_RESULT "))
    r["perSecond"] = r["requests"] / (r["microseconds"] / 1e6)
    r["wallSeconds"] = round(wall, 3)
    r["wrkCpuShare"] = round(cpu / wall, 3)
    return r
