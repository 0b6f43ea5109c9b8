"""``serve --workers N``'s supervisor (offline_service/web/workers.py), on Linux: a listening socket
per worker on one port, so that connections opened at once are spread over the workers (with one
shared socket, the first worker to wake took them all); a worker that dies is replaced; a port in
use, or an app that cannot start, stops it with uvicorn's startup-failure status."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from uvicorn.config import STARTUP_FAILURE

from offline_service.web.workers import port_sharing
from tests.servers import free_port

pytestmark = pytest.mark.skipif(
    not port_sharing(), reason="SO_REUSEPORT is Linux's; elsewhere uvicorn's workers"
)

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 32  # all on one of two workers by chance: 2 x 2**-32


def _supervisor(port: int, app: str = "tests.web.pid_app:app", workers: int = 2) -> list[str]:
    code = (
        "import sys, uvicorn; from offline_service.web.workers import Workers;"
        f" sys.exit(Workers(uvicorn.Config({app!r}, host='127.0.0.1', port={port}, lifespan='off',"
        f" log_level='info'), {workers}).run())"
    )
    return [sys.executable, "-c", code]


@contextlib.contextmanager
def _running(tmp_path: Path, workers: int = 2) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port, log = free_port(), tmp_path / "supervisor.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(_supervisor(port, workers=workers), cwd=ROOT, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while len(_pids(port, 4, timeout=1)) == 0:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _pids(port: int, count: int, timeout: float = 10) -> list[int]:
    """Open ``count`` connections at once, then ask each which process serves it."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) for _ in range(count)]
    pids = []
    try:
        for conn in conns:
            conn.connect()
        for conn in conns:
            conn.request("GET", "/")
            pids.append(int(conn.getresponse().read()))
    except OSError:
        return []
    finally:
        for conn in conns:
            conn.close()
    return pids


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    with _running(tmp_path) as (proc, port, log):
        served = set(_pids(port, CONNECTIONS))
        assert len(served) == 2, (served, log.read_text())
        assert served <= _children(proc.pid)
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_killed_worker_is_replaced_and_every_worker_stops_with_the_supervisor(tmp_path: Path) -> None:
    with _running(tmp_path) as (proc, port, log):
        first = set(_pids(port, CONNECTIONS))
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            served = set(_pids(port, CONNECTIONS))
            if len(served) == 2 and victim not in served:
                break
            assert time.monotonic() < deadline, (served, log.read_text())
            time.sleep(0.2)
        assert served - first and "exited" in log.read_text()
    assert proc.returncode == 0, log.read_text()
    for pid in served:  # the workers stopped with it
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", pid


@pytest.mark.parametrize("share", [False, True], ids=["plain listener", "port-sharing listener"])
def test_a_port_something_listens_on_is_refused(tmp_path: Path, share: bool) -> None:
    """Even a listener that shares its port (another `serve --workers`) is not joined silently."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(_supervisor(port), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == STARTUP_FAILURE, done.stderr
    assert "address already in use" in done.stderr.lower()


def test_an_app_that_cannot_start_stops_every_worker(tmp_path: Path) -> None:
    done = subprocess.run(
        _supervisor(free_port(), app="tests.web.no_such_module:app"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == STARTUP_FAILURE, done.stderr
    assert "failed to start" in done.stderr
