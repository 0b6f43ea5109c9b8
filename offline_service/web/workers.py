"""``serve --workers N``: N uvicorn servers in worker processes, each accepting on a listening socket
of its own on the same address (``SO_REUSEPORT``), under a small supervisor that restarts a worker
that dies and stops them all on SIGINT or SIGTERM.

Why not uvicorn's own ``workers=N``: it binds one socket that every worker accepts from, and an
event loop woken by a new connection accepts every connection waiting at that moment. A burst of
connections (a load balancer's keep-alive pool after a restart, a load test's) lands in the worker
that woke first and stays there. Measured (``benchmarks.http``, two workers, wrk's eight
connections): one worker used 0.99 of a core and the other 0.02. With a socket per worker, the
kernel hands each new connection to one of the sockets by a hash of its addresses, so each worker
gets a share of them from the start.

Where ``SO_REUSEPORT`` is missing (not Linux), ``serve`` keeps uvicorn's own workers."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

__all__ = ["Workers", "port_sharing"]

logger = logging.getLogger("uvicorn.error")
_spawn = multiprocessing.get_context("spawn")
# How long a stopping worker may take to finish its requests before it is killed.
STOP_SECONDS = 30


def port_sharing() -> bool:
    """Whether this system spreads connections over sockets bound to one port (Linux 3.9 on)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _claim(host: str, port: int) -> int:
    """The port to share (the one the system picks for 0), checked free: a socket without
    ``SO_REUSEPORT`` cannot bind it while anything listens on it, even a server sharing its port,
    which the workers' sockets would otherwise join without a word (two servers, one port)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no user
        probe.bind((host, port))
        claimed: int = probe.getsockname()[1]
        return claimed


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = _family(host)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        # Listening from here on: a connection the kernel gives this socket before its worker
        # has started waits in the queue instead of being refused.
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def _serve(config: uvicorn.Config, sock: socket.socket) -> None:
    """A worker process: one uvicorn server on its own socket (uvicorn handles SIGINT/SIGTERM)."""
    config.configure_logging()
    # Ctrl+C reaches the worker too, and the supervisor stops it: nothing to report.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Workers:
    """The supervisor: ``run()`` binds ``count`` sockets, starts a worker on each, restarts one
    that exits (unless it failed to start: then every worker is stopped, as the same failure would
    recur), and on SIGINT or SIGTERM stops them all, each given STOP_SECONDS to finish."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        if count < 2:
            raise ValueError("Workers is for two or more worker processes")
        self.config, self.count = config, count
        self._stop = threading.Event()

    def run(self) -> int:
        """Serve until stopped; the exit status (STARTUP_FAILURE when a worker could not start)."""
        config = self.config
        sockets: list[socket.socket] = []
        try:
            port = _claim(config.host, config.port)
            sockets.extend(_listen(config.host, port, config.backlog) for _ in range(self.count))
        except OSError as exc:
            logger.error("cannot listen on %s port %s: %s", config.host, config.port, exc)
            for sock in sockets:
                sock.close()
            return STARTUP_FAILURE
        shown = f"[{config.host}]" if ":" in config.host else config.host
        logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)
        logger.info("Started parent process [%d]: %d workers, a socket each", os.getpid(), self.count)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        processes = [self._start(sock) for sock in sockets]
        failed = False
        try:
            while not self._stop.wait(0.5):
                for i, process in enumerate(processes):
                    if process.is_alive():
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        logger.error("worker [%s] failed to start; stopping", process.pid)
                        failed = True
                        self._stop.set()
                        break
                    logger.warning("worker [%s] exited (%s); starting another", process.pid, process.exitcode)
                    processes[i] = self._start(sockets[i])
        finally:
            self._stop_all(processes)
            for sock in sockets:
                sock.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("Stopping parent process [%d]", os.getpid())
        return STARTUP_FAILURE if failed else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self, sock: socket.socket) -> SpawnProcess:
        process = _spawn.Process(target=_serve, args=(self.config, sock), daemon=False)
        process.start()
        return process

    @staticmethod
    def _stop_all(processes: list[SpawnProcess]) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn finishes its requests, then exits
        for process in processes:
            process.join(STOP_SECONDS)
            if process.is_alive():
                logger.warning("worker [%s] did not stop in %d s; killing it", process.pid, STOP_SECONDS)
                process.kill()
                process.join()
