"""Concurrent bursts of password checks, held in flight so a test decides when they end.

``PasswordGate`` stands in for ``verify_password`` in the module under test: it counts every check
and holds each check of a wrong password until the burst ends, so a whole burst is in flight at
once whatever the threads' timing (no sleeps, no wall clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from offline_service.accounts.passwords import Cost, verify_password
from offline_service.errors import Code, OfflineServiceError

__all__ = ["Burst", "PasswordGate", "burst"]

TIMEOUT = 30  # seconds any wait here may take before the test fails instead of hanging


class PasswordGate:
    """Counts password checks; holds every check of a password other than ``right``."""

    def __init__(self, right: str) -> None:
        self.right = right
        self.checks = 0
        self.held = 0
        self._open = False
        self.cond = threading.Condition()

    def __call__(self, password: str, encoded: str | None, cost: Cost = Cost.INTERACTIVE) -> bool:
        with self.cond:
            self.checks += 1
            if password != self.right:
                self.held += 1
                self.cond.notify_all()
                self.cond.wait_for(lambda: self._open, timeout=TIMEOUT)
        return verify_password(password, encoded, cost)

    def release(self) -> None:
        with self.cond:
            self._open = True
            self.cond.notify_all()


@dataclass
class Burst:
    gate: PasswordGate
    size: int
    codes: list[Code] = field(default_factory=list)  # of the attempts that ended, as they end

    def wait_until_decided(self) -> None:
        """Until every attempt is either held in a password check or already refused."""
        with self.gate.cond:
            decided = self.gate.cond.wait_for(
                lambda: self.gate.held + len(self.codes) >= self.size, timeout=TIMEOUT
            )
        assert decided, "the burst did not arrive"


@contextmanager
def burst(gate: PasswordGate, size: int, attempt: Callable[[], object]) -> Iterator[Burst]:
    """``size`` threads each making ``attempt`` (which must raise OfflineServiceError) at once;
    on leaving, the held checks go on and every thread has ended."""
    result = Burst(gate, size)

    def one() -> None:
        try:
            attempt()
        except OfflineServiceError as exc:
            with gate.cond:
                result.codes.append(exc.code)
                gate.cond.notify_all()

    threads = [threading.Thread(target=one) for _ in range(size)]
    for t in threads:
        t.start()
    try:
        yield result
    finally:
        gate.release()
        for t in threads:
            t.join(timeout=TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a burst thread did not end"
    assert len(result.codes) == size, "an attempt of the burst did not fail as expected"
