"""Two instances, one deployment: two ``offline-service serve`` processes (A and B) on two ports,
each with a data directory of its own, sharing one PostgreSQL database and one keys folder, as two
machines behind a load balancer would. Everything is asked through HTTP only; what must be shared
(sessions, login back-off, trial limits, the signing key, license seats) is shown to be."""

from __future__ import annotations

import base64
import csv
import json
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from offline_service.accounts import auth
from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from offline_service.web.auth import SESSION_COOKIE
from tests import people
from tests.db import rows
from tests.factories import Machine, wall_now
from tests.pg import database_url
from tests.servers import serve

pytestmark = pytest.mark.slow

EMAIL, PASSWORD = "ann@example.com", "correct horse battery"
TRIAL_RATE, TRIAL_CAP = 4, 2  # per minute and per day, for each client address (all are 127.0.0.1)
ROOT = Path(__file__).resolve().parents[1]  # where ``python -m tests...`` finds the tests package
TIMEOUT = 30.0  # seconds for any one request or wait: the tests are bounded however the servers behave


@dataclass
class Deployment:
    """The two instances (``a``, ``b``), the shared database (through ``store``) and keys."""

    root: Path
    a: str
    b: str
    url: str  # the database's
    keys: Path
    store: Store
    account: Account
    product: Product
    token: str  # Ann's API access token, issued by A

    def argv(self, *args: str, module: str = "offline_service.cli") -> list[str]:
        """``offline-service ARGS`` (or ``module``'s) against the shared database and keys."""
        where = ("--database-url", self.url, "--keys", str(self.keys), "--data", str(self.root / "cli"))
        return [sys.executable, "-m", module, *args, *where]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``offline-service ARGS`` in a process of its own, to its end."""
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=60, check=False)

    def license(self, seats: int) -> License:
        return admin.create_license(
            self.store, self.account, product_id=self.product.id, allowed_activations=seats,
            allowed_deactivations=3, now=wall_now(), owner_user_email=EMAIL,
        )  # fmt: skip


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("multi")
    url = database_url(root)
    store = open_store(Settings(database_url=url))
    keys = root / "keys"
    now = wall_now()
    account, _ = admin.ensure_account(store, "default", now=now)
    product = admin.create_product(store, Keyring(keys), account, name="App", now=now, trial_days=14)
    people.create_user(
        store, account, email=EMAIL, role=Role.USER, password=PASSWORD, cost=Cost.MINIMUM, now=now
    )
    env = {
        "OFFLINE_SERVICE_PASSWORD_COST": "minimum",
        "OFFLINE_SERVICE_TRIAL_RATE": str(TRIAL_RATE),
        "OFFLINE_SERVICE_TRIAL_DAILY_CAP": str(TRIAL_CAP),
    }
    try:
        with ExitStack() as stack:
            urls = []
            for name in ("a", "b"):
                (root / name).mkdir()
                args = ("--data", str(root / name / "data"), "--keys", str(keys), "--database-url", url)
                urls.append(stack.enter_context(serve(root / name, *args, env=env)))
            login = httpx.post(
                f"{urls[0]}/v1/accounts/login",
                json={"accountAlias": "default", "email": EMAIL, "password": PASSWORD},
                timeout=TIMEOUT,
            )
            assert login.status_code == 200, login.text
            yield Deployment(
                root, urls[0], urls[1], url, keys, store, account, product, login.json()["accessToken"]
            )
    finally:
        store.close()


def _csrf(client: httpx.Client, base: str, path: str) -> str:
    page = client.get(f"{base}{path}")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_a_session_made_on_one_instance_works_on_the_other_and_a_logout_there_ends_it(
    deployment: Deployment,
) -> None:
    d = deployment
    # One browser: cookies are per host, not per port, so both instances get the same ones.
    with httpx.Client(follow_redirects=False, timeout=TIMEOUT) as browser:
        assert browser.get(f"{d.b}/profile").status_code == 303  # not logged in yet
        form = {"account": "default", "email": EMAIL, "password": PASSWORD}
        logged_in = browser.post(f"{d.a}/login", data={**form, "csrf": _csrf(browser, d.a, "/login")})
        assert logged_in.status_code == 303, logged_in.text[:500]

        on_b = browser.get(f"{d.b}/profile")
        assert on_b.status_code == 200 and EMAIL in on_b.text, on_b.text[:500]

        logged_out = browser.post(f"{d.b}/logout", data={"csrf": _csrf(browser, d.b, "/profile")})
        assert logged_out.status_code == 303
        # The browser forgot its cookie; the session itself must be over on A too.
        session = {SESSION_COOKIE: logged_in.cookies[SESSION_COOKIE]}
        on_a = httpx.get(f"{d.a}/profile", cookies=session, follow_redirects=False, timeout=TIMEOUT)
        assert on_a.status_code == 303 and on_a.headers["location"].startswith("/login"), on_a.text[:500]


def test_failed_logins_through_both_instances_count_together(deployment: Deployment) -> None:
    d = deployment
    body = {"accountAlias": "default", "email": EMAIL, "password": "wrong password!"}
    statuses = []
    try:
        # Alternately on A and B. Counted apart, each instance would check FREE_FAILURES + 1 wrong
        # passwords before its first lock: 2 * (FREE_FAILURES + 1) answers of 401 in a row.
        for n in range(2 * (auth.FREE_FAILURES + 1)):
            answer = httpx.post(f"{(d.a, d.b)[n % 2]}/v1/accounts/login", json=body, timeout=TIMEOUT)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["code"] == "RATE_LIMITED" and int(answer.headers["retry-after"]) > 0
                break
        checked = statuses.count(401)
        # Counted together, the first lock comes after FREE_FAILURES + 1 failures; one more check
        # each time a lock (2 s, then 4 s, ...) ran out on a slow machine, still short of the sum.
        assert statuses[-1] == 429 and auth.FREE_FAILURES + 1 <= checked < 2 * (auth.FREE_FAILURES + 1)
        assert set(statuses[:-1]) == {401}, statuses
        person = auth.login_subject(d.account.id, EMAIL)
        with d.store.read() as tx:
            assert tx.login_failures(person)[0] == checked
            assert tx.login_failures("addr:127.0.0.1")[0] == checked
    finally:
        # The other tests log in from the same address.
        with d.store.write() as tx:
            tx.clear_login_failures(auth.login_subject(d.account.id, EMAIL))
            tx.clear_login_failures("addr:127.0.0.1")


def test_trial_rate_and_daily_cap_are_shared_by_both_instances(deployment: Deployment) -> None:
    d = deployment
    answers = []
    started = time.monotonic()
    for n in range(2 * TRIAL_RATE):
        request = Machine(f"fp-trial-{n}").request(Kind.TRIAL, d.product.id, issued_at=wall_now())
        body = {"productId": d.product.id, "offlineRequest": request.decode()}
        answer = httpx.post(
            f"{(d.a, d.b)[n % 2]}/v1/trial-activations/offline-activate", json=body, timeout=TIMEOUT
        )
        answers.append((answer.status_code, answer.json().get("code")))
    elapsed = time.monotonic() - started
    # The daily cap is TRIAL_CAP in total, not per instance.
    assert answers.count((200, None)) == TRIAL_CAP, answers
    assert set(answers) <= {(200, None), (429, "TRIAL_DAILY_LIMIT"), (429, "RATE_LIMITED")}, answers
    # The rate: a bucket of TRIAL_RATE, refilled at TRIAL_RATE a minute. Separate buckets would let
    # every request through (2 * TRIAL_RATE); one shared bucket lets TRIAL_RATE through, and one
    # more for each refill the (normally short) run lasted.
    passed = len(answers) - answers.count((429, "RATE_LIMITED"))
    assert TRIAL_RATE <= passed <= TRIAL_RATE + math.ceil(elapsed * TRIAL_RATE / 60), (elapsed, answers)
    assert passed < 2 * TRIAL_RATE, answers
    assert answers[:TRIAL_CAP] == [(200, None)] * TRIAL_CAP
    trials = rows(d.store, "SELECT COUNT(*) FROM trials WHERE product_id = ?", d.product.id)
    assert trials[0][0] == TRIAL_CAP


def _activate(d: Deployment, base: str, machine: Machine, lic: License) -> httpx.Response:
    request = machine.request(Kind.ACTIVATION, d.product.id, license_key=lic.key, issued_at=wall_now())
    return httpx.post(
        f"{base}/v1/activations/offline-activate",
        json={"offlineRequest": request.decode()},
        headers={"authorization": f"Bearer {d.token}"},
        timeout=TIMEOUT,
    )


def _kid(response: httpx.Response) -> str:
    """The kid in the header of the signed response file an answer carries."""
    assert response.status_code == 200, response.text
    header = response.json()["offlineResponse"].split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def test_a_key_rotated_by_the_cli_signs_on_both_instances_within_a_second(deployment: Deployment) -> None:
    d = deployment
    lic = d.license(seats=-1)
    old = Keyring(d.keys).signer(d.product.id).kid
    before = [_kid(_activate(d, base, Machine(f"fp-before-{base}"), lic)) for base in (d.a, d.b)]
    assert before == [old, old]

    rotated = d.cli("keys", "rotate", "--product", d.product.id, "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["kid"]
    assert new != old
    time.sleep(1.1)  # each process looks at the key folder at most once a second

    answers = [_activate(d, base, Machine(f"fp-after-{base}"), lic) for base in (d.a, d.b)]
    assert [_kid(answer) for answer in answers] == [new, new]
    for answer in answers:  # and the files verify with the published keys
        parse_response(answer.json()["offlineResponse"].encode(), Keyring(d.keys).public_keys(d.product.id))


def test_activations_through_both_instances_and_a_batch_at_once_stop_at_the_limit(
    deployment: Deployment,
) -> None:
    d = deployment
    seats, per_thread, threads, batch_files = 30, 10, 4, 40
    lic = d.license(seats=seats)
    src = d.root / "race-in"
    src.mkdir()
    for n in range(batch_files):
        request = Machine(f"fp-batch-{n}").request(
            Kind.ACTIVATION, d.product.id, license_key=lic.key, issued_at=wall_now()
        )
        (src / f"r{n:02}.req").write_bytes(request)
    answers: list[tuple[int, str, str]] = []  # status, code, activation id
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def send(t: int) -> None:
        try:
            start.wait(timeout=TIMEOUT)
            for n in range(per_thread):
                answer = _activate(d, (d.a, d.b)[(t + n) % 2], Machine(f"fp-http-{t}-{n}"), lic)
                body = answer.json()
                with lock:
                    answers.append((answer.status_code, body.get("code", "OK"), body.get("activationId", "")))
        except BaseException as exc:  # handed to the test, which fails with it
            with lock:
                failures.append(repr(exc))

    workers = [threading.Thread(target=send, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    # The batch in transactions of two files (tests/licensing/batch_driver.py), so that they
    # interleave with the single requests; those go out once the batch has begun to process
    # (its output folder exists), as the batch would otherwise still be starting when they end.
    out = d.root / "race-out"
    args = ("2", "none", "batch", str(src), "--out", str(out), "--report", str(d.root / "race.csv"))
    argv = d.argv(*args, "--workers", "2", "--json", module="tests.licensing.batch_driver")
    batch = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not out.exists() and batch.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        start.wait(timeout=TIMEOUT)
        _, err = batch.communicate(timeout=TIMEOUT)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.communicate()
    for worker in workers:
        worker.join(timeout=TIMEOUT)
    assert not any(worker.is_alive() for worker in workers) and not failures, failures
    assert batch.returncode in (0, 3), err  # 3: some files were refused

    with open(d.root / "race.csv", encoding="utf-8", newline="") as f:
        report = list(csv.DictReader(f))
    codes = [code for _, code, _ in answers] + [row["code"] for row in report]
    granted = [aid for status, _, aid in answers if status == 200]
    granted += [row["activation_id"] for row in report if row["code"] == "OK"]
    assert len(codes) == threads * per_thread + batch_files
    assert codes.count("OK") == len(granted) == seats, codes
    assert set(codes) == {"OK", "ACTIVATION_LIMIT"}, codes
    assert all(status in (200, 409) for status, _, _ in answers), answers
    # The database agrees: one live activation per grant, each seat counted once.
    live = rows(
        d.store,
        "SELECT id, fingerprint FROM activations WHERE license_id = ? AND deactivated_at IS NULL",
        lic.id,
    )
    assert sorted(aid for aid, _ in live) == sorted(granted)
    assert len({fingerprint for _, fingerprint in live}) == seats
    with d.store.read() as tx:
        found = tx.license_by_id(d.account.id, lic.id)
    assert found is not None and found.used_activations == seats
