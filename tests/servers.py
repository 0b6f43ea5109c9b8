"""A real server for the tests that need one: ``offline-service serve`` in a child process on a
free 127.0.0.1 port, stopped with Ctrl+C at the end (the browser tests, the web concurrency tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["free_port", "serve"]


def free_port() -> int:
    """A port of 127.0.0.1 free now (the OS picks it; a server takes it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url}/healthz within 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def serve(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``offline-service serve ARGS`` in a child process on a free 127.0.0.1 port; yields its URL.
    Its output goes to ``root/banner.txt`` and its log to ``root/server.log``. Stopped with Ctrl+C at
    the end, after which it must have logged no traceback and exited cleanly."""
    log, banner = root / "server.log", root / "banner.txt"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    child_env.update(env or {}, PYTHONUNBUFFERED="1")
    for _attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "offline_service.cli", "serve", *args, "--port", str(port)]
        with open(banner, "wb") as out, open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env)
        try:
            _wait_ready(proc, url, log)
            break
        except RuntimeError:
            proc.kill()
            proc.wait()
            if "address already in use" not in log.read_text().lower():
                raise
    else:
        raise RuntimeError("no free port for the server after 3 attempts")
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Whatever the pages showed, the server must not have failed underneath them.
    assert "Traceback" not in log.read_text(), log.read_text()
    assert proc.returncode == 0, log.read_text()
