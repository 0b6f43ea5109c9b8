"""The trial endpoint's limits, written once for every backend: one row per client address (its
token bucket and its day of new trials), read and written inside the transaction that decides.
Forgot-password requests are counted in the same rows, under keys starting "pwreset:", and failed
admin token authentications under keys starting "adminauth:"."""

from __future__ import annotations

from offline_service.licensing.trial_limits import TrialLimit
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect

__all__ = ["LimitsSQL", "LimitsStatements"]

_COLS = "address_key, tokens, updated_at, day_start, day_count"


class LimitsStatements:
    """The limits' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.trial_limit = q(f"SELECT {_COLS} FROM trial_limits WHERE address_key = ?")
        self.save_trial_limit = q(
            f"INSERT INTO trial_limits ({_COLS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (address_key) DO UPDATE SET tokens = excluded.tokens,"
            " updated_at = excluded.updated_at, day_start = excluded.day_start,"
            " day_count = excluded.day_count"
        )
        # Bounded work per call: at most ``limit`` rows, found through the updated_at index.
        self.prune_trial_limits = q(
            "DELETE FROM trial_limits WHERE address_key IN (SELECT address_key FROM trial_limits"
            " WHERE updated_at < ? AND day_start < ? LIMIT ?)"
        )


class LimitsSQL(SQLPart):
    """The limits' part of a transaction."""

    __slots__ = ()
    _mq: LimitsStatements

    def trial_limit(self, address_key: str) -> TrialLimit | None:
        row = self._one(self._mq.trial_limit, (address_key,))
        if row is None:
            return None
        return TrialLimit(row[0], float(row[1]), float(row[2]), float(row[3]), int(row[4]))

    def save_trial_limit(self, limit: TrialLimit) -> None:
        self._c.execute(
            self._mq.save_trial_limit,
            (limit.address_key, limit.tokens, limit.updated_at, limit.day_start, limit.day_count),
        )

    def prune_trial_limits(self, before: float, limit: int) -> int:
        return self._c.execute(self._mq.prune_trial_limits, (before, before, limit)).rowcount
