"""``offline-service batch`` with small chunks, so that the transactions of several batches
interleave, and optionally killed by SIGKILL mid-run at the worst moment: just after a chunk's
transaction committed, before its response files and journal rows are written.

    python -m tests.licensing.batch_driver CHUNK KILL batch INPUT --out ... [options]

``CHUNK`` files per transaction. ``KILL``: ``none``; ``group:N``, the process that commits its
N-th chunk kills its whole process group (the coordinator and every pool worker, as a power loss
would: start it in a session of its own, ``start_new_session``, so that the group is the batch's
alone); ``worker:N``, a pool worker that commits its N-th chunk kills itself alone (as the
out-of-memory killer would)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any

from offline_service.cli import main
from offline_service.licensing import batch
from offline_service.licensing.engine import Engine


def _kill_after(count: int, kill: Any) -> None:
    """Kill with ``kill()`` once this process has committed ``count`` chunks."""
    committed = 0
    process_many = Engine.process_many

    def then_die(self: Engine, *args: Any, **kw: Any) -> Any:
        nonlocal committed  # per process: each forked worker counts its own chunks
        outcomes = process_many(self, *args, **kw)
        committed += 1
        if committed >= count:
            kill()
        return outcomes

    Engine.process_many = then_die  # type: ignore[method-assign]


def _run(argv: list[str]) -> int:
    chunk, (how, _, count), rest = int(argv[0]), argv[1].partition(":"), argv[2:]
    batch.CHUNK = chunk  # before the pool forks, so that its workers see it too
    if how == "group":
        if os.getpgrp() != os.getpid():
            raise SystemExit("start this in a session of its own: it kills its whole process group")
        _kill_after(int(count), lambda: os.killpg(os.getpgrp(), signal.SIGKILL))
    elif how == "worker":

        def kill_worker() -> None:
            if multiprocessing.parent_process() is not None:  # never the coordinator
                os.kill(os.getpid(), signal.SIGKILL)

        _kill_after(int(count), kill_worker)
    elif how != "none":
        raise SystemExit(f"KILL must be none, group:N or worker:N, not {argv[1]!r}")
    return main(rest)


if __name__ == "__main__":
    sys.exit(_run(sys.argv[1:]))
