"""Checkpoints of SQLite's write-ahead log on a thread of their own, for long-running servers.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: it copies
thousands of pages into the database file and syncs it (tens of milliseconds on this project's
disk) while the committing thread, a server's event loop, waits. Here a background thread does
that work instead. PASSIVE checkpoints copy what has been committed without blocking anyone; when
the log has grown past ``reset_pages``, the thread takes the writers' lock for the moment it takes
to copy the few pages left, so that the next write transaction starts the log from its beginning
again. sqlite3 releases the GIL while it checkpoints, so the copying runs beside the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

__all__ = ["Checkpointer"]

log = logging.getLogger("offline_service.store")


class Checkpointer:
    """Checkpoints the WAL of the database at ``path`` every ``interval`` seconds until closed.

    ``writer_lock`` is the lock every writer of the database takes before it begins."""

    def __init__(
        self,
        path: Path,
        *,
        writer_lock: Callable[[], AbstractContextManager[object]],
        interval: float = 0.2,
        reset_pages: int = 4000,
    ) -> None:
        if interval <= 0 or reset_pages <= 0:
            raise ValueError("the interval and the page count must be positive")
        self.path = path
        self.interval = interval
        self.reset_pages = reset_pages
        self._writer_lock = writer_lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (after the checkpoint in progress, if any)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as exc:
                    # A locked or busy database, a full disk: the next pass tries again, and the
                    # writers' own automatic checkpoint remains as the safety net.
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One pass: copy the log into the database; past ``reset_pages``, finish under the lock."""
        # fetchall: a statement left unfinished would hold a read mark and keep the log from resetting.
        _, log_pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        if log_pages >= self.reset_pages:
            with self._writer_lock():
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
