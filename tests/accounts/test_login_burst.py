"""A burst of wrong logins at once through a real server (``offline-service serve`` in a child
process, tests/servers.py), the requests from threads. The back-off holds across them."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from offline_service.accounts import auth
from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import open_store
from tests import people, servers
from tests.factories import database_for, database_options

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
EMAIL = "ann@example.com"
BURST = 40
TIMEOUT = 60  # seconds for any one wait; the test fails rather than hang
Answer = tuple[int, dict[str, str], dict[str, object]]  # status, headers (lower case), JSON body


def _post(url: str, body: dict[str, str]) -> Answer:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(exc.read())


@contextmanager
def serve(tmp_path: Path, backend: str, *, earlier_failures: int = 0) -> Iterator[str]:
    """One account with one person, served by ``offline-service serve`` (tests/servers.py).
    With ``earlier_failures``, the person's counter holds that many failures whose lock has just
    expired."""
    data, keys = tmp_path / "data", tmp_path / "keys"
    url, database = database_for(tmp_path, backend), database_options(tmp_path, backend)
    store = open_store(Settings(data_dir=data, database_url=url))
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, "default", now=now)
        # The production cost: each check takes long enough for the burst to overlap.
        people.create_user(
            store, account, email=EMAIL, role=Role.USER, password=PASSWORD, cost=Cost.INTERACTIVE, now=now
        )
        if earlier_failures:
            with store.write() as tx:
                subject = auth.login_subject(account.id, EMAIL)
                tx.record_login_failure(subject, earlier_failures, now - 1, now - 1)
    finally:
        store.close()
    with servers.serve(tmp_path, "--data", str(data), "--keys", str(keys), *database) as url:
        yield url


def _burst(url: str) -> list[Answer]:
    """BURST wrong logins at once, each from its own thread; the answers."""
    body = {"accountAlias": "default", "email": EMAIL, "password": "wrong password!"}
    start = threading.Barrier(BURST)

    def attempt(_: int) -> Answer:
        start.wait(timeout=TIMEOUT)
        return _post(f"{url}/v1/accounts/login", body)

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        answers = list(pool.map(attempt, range(BURST)))
    assert {status for status, _, _ in answers} <= {401, 429}, answers
    for status, headers, body in answers:
        if status == 429:
            assert body["code"] == "RATE_LIMITED" and int(headers["retry-after"]) > 0
    return answers


def _sequential_allowance(seconds: int) -> int:
    """How many wrong passwords attempts made one at a time get checked within ``seconds`` from a
    fresh counter: FREE_FAILURES + 1 at once, then one more each time the lock runs out (2 s, 4 s,
    8 s, ... after the previous one)."""
    allowed, waited, lock = auth.FREE_FAILURES + 1, 0, 2
    while waited + lock <= seconds:
        allowed, waited, lock = allowed + 1, waited + lock, lock * 2
    return allowed


def test_a_burst_of_wrong_logins_gets_no_more_checks_than_one_at_a_time(tmp_path: Path, backend: str) -> None:
    with serve(tmp_path, backend) as url:
        started = int(time.time())  # the server's clock, in whole seconds as it counts them
        answers = _burst(url)
        seconds = int(time.time()) + 1 - started
    # One at a time, FREE_FAILURES + 1 wrong passwords are checked before the first lock, and one
    # more each time a lock runs out while the burst lasts (on a busy machine it may last seconds).
    checked = [status for status, _, _ in answers if status != 429]
    assert 0 < len(checked) <= _sequential_allowance(seconds), (seconds, answers)


def test_a_burst_just_after_a_lock_expires_gets_one_check_and_locks_out_the_right_password(
    tmp_path: Path, backend: str
) -> None:
    # Twelve failures: the next one locks the person out for 2 ** 8 s, far longer than this test.
    with serve(tmp_path, backend, earlier_failures=12) as url:
        answers = _burst(url)
        checked = [status for status, _, _ in answers if status != 429]
        assert checked == [401], answers
        status, headers, body = _post(
            f"{url}/v1/accounts/login", {"accountAlias": "default", "email": EMAIL, "password": PASSWORD}
        )
    assert status == 429 and body["code"] == "RATE_LIMITED", body
    assert int(headers["retry-after"]) > 2**7
