"""The trial limits in the database: the pure decisions (with hypothesis: never more than one
process alone would allow), their rows on every store backend, pruning, and two applications on the
same data sharing one budget."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from offline_service.errors import Code
from offline_service.fileformat.messages import Kind
from offline_service.licensing.trial_limits import (
    DAY,
    PRUNE_BATCH,
    RateLimited,
    TrialLimit,
    give_back,
    give_back_trial,
    hit,
    hit_rate,
    take,
    take_trial,
)
from offline_service.store import Store
from offline_service.web.app import create_app
from tests.factories import NOW, Machine
from tests.store.contract import BACKENDS
from tests.web.site import CheckedClient, Site, SiteFactory, error

# -- the decisions ----------------------------------------------------------------------------------


def test_hit_refills_and_says_when_the_next_token_is_back() -> None:
    state = None
    for _ in range(2):
        state, refused = hit(state, "a", 0.0, 2)
        assert refused is None
    state, refused = hit(state, "a", 0.0, 2)
    assert refused == 30 and state.tokens == 0.0
    state, refused = hit(state, "a", 30.0, 2)  # half a minute: one request back
    assert refused is None
    assert hit(None, "b", 30.0, 2)[0] == TrialLimit("b", 1.0, 30.0, 30.0, 0)  # a new address: full
    with pytest.raises(ValueError):
        hit(None, "a", 0.0, 0)


def test_take_counts_a_day_from_its_first_trial_and_give_back_undoes_it() -> None:
    state, _ = hit(None, "a", 50.0, 10)  # a request before the first trial does not start the day
    state, refused = take(state, "a", 100.0, 2)
    assert refused is None and state.day_start == 100.0
    state, refused = take(state, "a", 200.0, 2)
    assert refused is None and (state.day_start, state.day_count) == (100.0, 2)
    capped, refused = take(state, "a", 100.0 + DAY - 0.5, 2)
    assert refused == 1 and capped == state
    back = give_back(state, 100.0)
    assert back is not None and back.day_count == 1
    state, refused = take(back, "a", 300.0, 2)
    assert refused is None and state.day_start == 100.0
    state, refused = take(state, "a", 100.0 + DAY, 2)  # a new day
    assert refused is None and (state.day_start, state.day_count) == (100.0 + DAY, 1)
    assert give_back(state, 100.0) is None  # owed to the day that ended: nothing changes
    back = give_back(state, 100.0 + DAY)
    assert back is not None and back.day_count == 0 and give_back(back, 100.0 + DAY) is None
    state, _ = take(state, "a", 50.0, 2)  # the clock went back: a new day rather than a day that never ends
    assert (state.day_start, state.day_count) == (50.0, 1)
    with pytest.raises(ValueError):
        take(None, "a", 0.0, 0)
    taken, _ = take(None, "b", 0.0, 2)  # a row begun by a trial has a full bucket
    assert hit(taken, "b", 0.0, 2)[0].tokens == 1.0


def test_take_with_a_shorter_window_counts_in_windows_of_that_length() -> None:
    hour = 3600.0
    state, _ = take(None, "k", 100.0, 2, window=hour)
    state, _ = take(state, "k", 200.0, 2, window=hour)
    capped, refused = take(state, "k", 100.0 + hour - 10, 2, window=hour)
    assert refused == 10 and capped == state
    state, refused = take(state, "k", 100.0 + hour, 2, window=hour)  # the next hour
    assert refused is None and (state.day_start, state.day_count) == (100.0 + hour, 1)
    for window in (0.0, -1.0, DAY + 1):  # a row lives a day: a longer window would be pruned early
        with pytest.raises(ValueError):
            take(None, "k", 0.0, 2, window=window)


_gaps = st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), min_size=1, max_size=60)


@given(gaps=_gaps, per_minute=st.integers(min_value=1, max_value=20))
def test_hit_never_allows_more_than_the_bucket(gaps: list[float], per_minute: int) -> None:
    times, now = [], 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    state, allowed = None, []
    for t in times:
        state, refused = hit(state, "a", t, per_minute)
        allowed.append(refused is None)
    for i in range(len(times)):
        for j in range(i, len(times)):
            granted = sum(allowed[i : j + 1])
            assert granted <= per_minute + (times[j] - times[i]) * per_minute / 60.0 + 1e-9


@given(
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=DAY / 3, allow_nan=False), st.booleans()), max_size=60
    ),
    per_day=st.integers(min_value=1, max_value=5),
)
def test_take_never_allows_more_than_the_cap_in_a_day(steps: list[tuple[float, bool]], per_day: int) -> None:
    state, now, kept = None, 0.0, []  # kept: the day start of each counted trial not given back
    for gap, refund in steps:
        now += gap
        state, refused = take(state, "a", now, per_day)
        if refused is not None:
            continue
        assert state.day_start <= now < state.day_start + DAY
        if refund:
            back = give_back(state, state.day_start)
            assert back is not None
            state = back
        else:
            kept.append(state.day_start)
    for start in set(kept):
        assert kept.count(start) <= per_day
    starts = sorted(set(kept))
    assert all(b - a >= DAY for a, b in itertools.pairwise(starts))


# -- in the store ---------------------------------------------------------------------------------


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the backend's store on the test's database; each call is another connection, as
    another process would have. Every one is closed after the test."""
    opened: list[Store] = []

    def open_store() -> Store:
        opened.append(BACKENDS[request.param](tmp_path))
        return opened[-1]

    yield open_store
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(opener: Callable[[], Store]) -> Store:
    return opener()


def test_two_connections_share_one_budget(opener: Callable[[], Store]) -> None:
    one, two = opener(), opener()
    take_trial(one, "a", 0.0, 2)
    take_trial(two, "a", 1.0, 2)
    for store in (one, two):
        with pytest.raises(RateLimited):
            take_trial(store, "a", 2.0, 2)
    hit_rate(two, "b", 0.0, 1)
    with pytest.raises(RateLimited):
        hit_rate(one, "b", 0.0, 1)


def test_limits_round_trip_and_refusals_commit(store: Store) -> None:
    hit_rate(store, "a", 0.0, 1)
    with pytest.raises(RateLimited) as info:
        hit_rate(store, "a", 0.5, 1)
    assert info.value.code is Code.RATE_LIMITED and info.value.retry_after == 60
    with store.read() as tx:
        assert tx.trial_limit("a") == TrialLimit("a", 0.5 / 60.0, 0.5, 0.0, 0)
        assert tx.trial_limit("b") is None
    start = take_trial(store, "a", 10.25, 1)
    with pytest.raises(RateLimited) as info:
        take_trial(store, "a", 11.0, 1)
    assert (
        info.value.code is Code.TRIAL_DAILY_LIMIT and info.value.retry_after == DAY
    )  # ceil(10.25 + DAY - 11.0)
    give_back_trial(store, "a", start)
    assert take_trial(store, "a", 12.0, 1) == 12.0


def test_rows_of_a_day_ago_are_pruned_a_few_at_a_time(store: Store) -> None:
    old = [TrialLimit(f"old{n}", 1.0, 0.0, 0.0, 1) for n in range(PRUNE_BATCH + 3)]
    with store.write() as tx:
        for row in old:
            tx.save_trial_limit(row)
        tx.save_trial_limit(TrialLimit("recent", 1.0, 10.0, 0.0, 1))  # a request in the last day
    take_trial(store, "new", DAY + 5.0, 3)
    with store.read() as tx:
        left = [row for row in old if tx.trial_limit(row.address_key) is not None]
        assert len(left) == 3  # bounded work per call
        assert tx.trial_limit("recent") is not None and tx.trial_limit("new") is not None
    hit_rate(store, "new", DAY + 6.0, 3)
    with store.read() as tx:
        assert all(tx.trial_limit(row.address_key) is None for row in old)


# -- two applications on the same data --------------------------------------------------------------


def _second_app(site: Site) -> TestClient:
    """Another application on the site's data directory: another process's worth of state."""
    client = CheckedClient(create_app(site.svc.settings, clock=site.clock))
    client.__enter__()
    return client


def _both(make_site: SiteFactory, **overrides: int) -> tuple[Site, TestClient, Callable[[int, str], int]]:
    site = make_site(**overrides)
    other = _second_app(site)

    def trial(n: int, fingerprint: str) -> int:
        data = Machine(fingerprint=fingerprint).request(Kind.TRIAL, site.product.id, issued_at=NOW)
        body = {"productId": site.product.id, "offlineRequest": data.decode()}
        client = site.client if n % 2 == 0 else other
        return client.post("/v1/trial-activations/offline-activate", json=body).status_code

    return site, other, trial


def test_two_apps_on_the_same_data_share_one_daily_cap(make_site: SiteFactory) -> None:
    site, other, trial = _both(make_site, trial_daily_cap=3, trial_rate_per_minute=100)
    try:
        answers = [trial(n, f"fp-two-apps-{n}") for n in range(8)]
        assert answers.count(200) == 3 and answers.count(429) == 5
        data = Machine(fingerprint="fp-late").request(Kind.TRIAL, site.product.id, issued_at=NOW)
        assert error(site.trial(data)) == (429, "TRIAL_DAILY_LIMIT")
    finally:
        other.__exit__(None, None, None)


def test_two_apps_on_the_same_data_share_one_rate_limit(make_site: SiteFactory) -> None:
    _site, other, trial = _both(make_site, trial_daily_cap=100, trial_rate_per_minute=4)
    try:
        answers = [trial(n, "fp-same") for n in range(8)]
        assert answers.count(200) == 4 and answers.count(429) == 4
    finally:
        other.__exit__(None, None, None)
