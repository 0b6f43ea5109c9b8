"""The trial endpoint's limits per client address, kept in the database so that every server
process and instance shares one budget: N processes together allow exactly what one would.

The decisions are pure functions of the stored state and the time (``hit``, ``take``,
``give_back``); ``hit_rate``, ``take_trial`` and ``give_back_trial`` each read, decide and write in
one write transaction, which the store serialises across processes, so two requests can never
both spend the last allowance. Rows untouched for a day equal no row and are pruned in the same
transactions, a few at a time.

The rows also hold other caps under keys of their own (a prefix no address has):
``accounts.password_reset`` counts forgot-password requests with ``take`` in windows of an hour,
and ``admin.tokens`` an address's failed admin token authentications in windows of its setting."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from offline_service.errors import Code, OfflineServiceError

if TYPE_CHECKING:
    from offline_service.store.base import Store

__all__ = [
    "DAY",
    "PRUNE_BATCH",
    "RateLimited",
    "TrialLimit",
    "client_key",
    "give_back",
    "give_back_trial",
    "hit",
    "hit_rate",
    "take",
    "take_trial",
]

DAY = 86_400
PRUNE_BATCH = 16  # stale rows deleted per decision at most: bounded work, yet faster than they come


class RateLimited(OfflineServiceError):
    """Too many requests from one address; ``retry_after`` seconds until the next is accepted."""

    def __init__(
        self, retry_after: int, *, code: Code = Code.RATE_LIMITED, what: str = "too many trial requests"
    ) -> None:
        super().__init__(code, f"{what}; try again in {retry_after} s")
        self.retry_after = retry_after


def client_key(address: str) -> str:
    """What the limits count by: the address, except that an IPv6 address counts as its /64, the
    block one subscriber usually gets (else each could take 2**64 fresh allowances)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP address (a Unix socket, a test client): count it as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class TrialLimit:
    """One address's state: a token bucket (``tokens`` at ``updated_at``) and its day of new
    trials (``day_count`` since ``day_start``; a count of 0 means no day has begun)."""

    address_key: str
    tokens: float
    updated_at: float
    day_start: float
    day_count: int


def _fresh(key: str, now: float, capacity: float | None = None) -> TrialLimit:
    """An address with no row: a full bucket (``capacity``, or an empty one last touched a day
    ago, which refills to full whatever the rate) and no day begun."""
    if capacity is None:
        return TrialLimit(key, 0.0, now - DAY, now, 0)
    return TrialLimit(key, capacity, now, now, 0)


def hit(state: TrialLimit | None, key: str, now: float, per_minute: int) -> tuple[TrialLimit, int | None]:
    """Take one request's token: ``per_minute`` a minute, in bursts of up to ``per_minute``.
    Returns the new state and None, or the state to keep and the seconds until a token is back."""
    if per_minute <= 0:
        raise ValueError("the rate must be positive")
    capacity, per_second = float(per_minute), per_minute / 60.0
    state = state or _fresh(key, now, capacity)
    tokens = min(capacity, state.tokens + max(0.0, now - state.updated_at) * per_second)
    if tokens < 1:
        return replace(state, tokens=tokens, updated_at=now), max(1, math.ceil((1 - tokens) / per_second))
    return replace(state, tokens=tokens - 1, updated_at=now), None


def take(
    state: TrialLimit | None, key: str, now: float, per_day: int, *, window: float = DAY
) -> tuple[TrialLimit, int | None]:
    """Count one new trial in the address's day, which starts at the first trial it counts.
    Returns the new state and None, or the state and the seconds until that day ends. ``window``:
    a shorter "day" for other caps kept in the same rows (``accounts.password_reset``: an hour)."""
    if per_day <= 0:
        raise ValueError("the cap must be positive")
    if not 0 < window <= DAY:
        raise ValueError("the window must be positive and at most a day")  # rows live a day
    state = state or _fresh(key, now)
    start, count = state.day_start, state.day_count
    if count == 0 or not start <= now < start + window:  # a new day (or the clock went back)
        start, count = now, 0
    if count >= per_day:
        return state, max(1, math.ceil(start + window - now))
    return replace(state, day_start=start, day_count=count + 1), None


def give_back(state: TrialLimit | None, start: float) -> TrialLimit | None:
    """Undo one ``take`` made in the day that began at ``start`` (a later day owes nothing).
    None when there is nothing to change."""
    if state is None or state.day_start != start or state.day_count <= 0:
        return None
    return replace(state, day_count=state.day_count - 1)


def hit_rate(store: Store, key: str, now: float, per_minute: int) -> None:
    """``hit`` in one write transaction; raises RateLimited (after committing the refill)."""
    with store.write() as tx:
        state, retry_after = hit(tx.trial_limit(key), key, now, per_minute)
        tx.save_trial_limit(state)
        tx.prune_trial_limits(now - DAY, PRUNE_BATCH)
    if retry_after is not None:
        raise RateLimited(retry_after)


def take_trial(store: Store, key: str, now: float, per_day: int) -> float:
    """``take`` in one write transaction: the start of the day, for ``give_back_trial``; or
    raises RateLimited (TRIAL_DAILY_LIMIT)."""
    with store.write() as tx:
        state, retry_after = take(tx.trial_limit(key), key, now, per_day)
        if retry_after is None:
            tx.save_trial_limit(state)
        tx.prune_trial_limits(now - DAY, PRUNE_BATCH)
    if retry_after is not None:
        raise RateLimited(
            retry_after,
            code=Code.TRIAL_DAILY_LIMIT,
            what=f"this address has had its {per_day} new trials for the day",
        )
    return state.day_start


def give_back_trial(store: Store, key: str, start: float) -> None:
    """``give_back`` in one write transaction."""
    with store.write() as tx:
        state = give_back(tx.trial_limit(key), start)
        if state is not None:
            tx.save_trial_limit(state)
