"""Organizations, users, groups, passwords, logins and credentials (no HTTP)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline_service.accounts import passwords, people
from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost, check_strength, hash_password, verify_password
from offline_service.cli import main
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from tests.bursts import PasswordGate, burst
from tests.db import rows
from tests.factories import NOW, World, make_world

PASSWORD = "correct horse battery"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = make_world(tmp_path)
    people.create_organization(world.store, world.account, name="Org A", now=NOW)
    people.create_organization(world.store, world.account, name="Org B", now=NOW)
    yield world
    world.store.close()


def user(
    w: World, email: str, role: Role = Role.USER, org: str | None = "Org A", account: Account | None = None
) -> None:
    people.create_user(
        w.store,
        account or w.account,
        email=email,
        role=role,
        organization=org,
        password=PASSWORD,
        cost=Cost.MINIMUM,
        now=NOW,
    )


def login(
    w: World,
    email: str,
    password: str = PASSWORD,
    *,
    address: str = "10.0.0.1",
    now: int = NOW,
    alias: str = "default",
):  # type: ignore[no-untyped-def]
    return people.authenticate(
        w.store,
        account_alias=alias,
        email=email,
        password=password,
        address=address,
        now=now,
        cost=Cost.MINIMUM,
    )


# -- passwords ---------------------------------------------------------------------------------


def test_argon2id_hash_verifies_and_rejects() -> None:
    encoded = hash_password(PASSWORD, Cost.MINIMUM)
    assert encoded.startswith("$argon2id$")
    assert verify_password(PASSWORD, encoded, Cost.MINIMUM)
    assert not verify_password(PASSWORD + "x", encoded, Cost.MINIMUM)
    assert not verify_password(PASSWORD, None, Cost.MINIMUM)  # unknown person: dummy hash, False
    assert not verify_password(PASSWORD, "not a hash", Cost.MINIMUM)


@pytest.mark.parametrize("cost", list(Cost))
def test_unknown_person_costs_as_much_as_a_wrong_password(cost: Cost) -> None:
    # Each dummy hash is of its cost: the same parameters appear in both encodings.
    real = hash_password(PASSWORD, cost)
    dummy = passwords._DUMMIES[cost]
    assert dummy.split("$")[3] == real.split("$")[3]  # the same m=..,t=..,p=..
    assert not verify_password("x", None, cost)


def test_no_module_state_is_written_by_a_check() -> None:
    # The dummies are constants: a check of an unknown person writes nothing shared.
    with pytest.raises(TypeError):
        passwords._DUMMIES[Cost.MINIMUM] = "x"  # type: ignore[index]


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaaaaaa", "x" * 1025, "ab@example.com"])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        check_strength(password, email="ab@example.com")
    assert info.value.code is Code.INVALID_ARGUMENT


# -- people -------------------------------------------------------------------------------------


def test_organization_admin_needs_an_organization(w: World) -> None:
    with pytest.raises(OfflineServiceError) as info:
        user(w, "admin@example.com", Role.ORGANIZATION_ADMIN, org=None)
    assert info.value.code is Code.INVALID_ARGUMENT


@pytest.mark.parametrize("email", ["no-at-sign", "two@@example.com", "a b@example.com", "a@nodot", ""])
def test_bad_emails_are_refused(w: World, email: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        user(w, email)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_one_email_per_account_but_the_same_email_in_two_accounts(w: World) -> None:
    user(w, "Ann@Example.com")
    with pytest.raises(OfflineServiceError) as info:
        user(w, "ann@example.COM")
    assert info.value.code is Code.CONFLICT
    other, _ = admin.ensure_account(w.store, "other", now=NOW)
    user(w, "ann@example.com", org=None, account=other)
    assert login(w, "ann@example.com").account_id == w.account.id
    assert login(w, "ANN@example.com", alias="other").account_id == other.id


def test_group_rules(w: World) -> None:
    user(w, "a1@example.com")
    user(w, "b1@example.com", org="Org B")
    people.create_group(w.store, w.account, organization="Org A", name="Engineering", now=NOW)
    people.add_user_to_group(w.store, w.account, group="Engineering", email="a1@example.com", now=NOW)
    with pytest.raises(OfflineServiceError) as info:
        people.add_user_to_group(w.store, w.account, group="Engineering", email="b1@example.com", now=NOW)
    assert info.value.code is Code.FORBIDDEN
    theirs = w.license(owner_organization="Org B")
    with pytest.raises(OfflineServiceError) as info:
        people.link_group_license(w.store, w.account, group="Engineering", license_key=theirs.key, now=NOW)
    assert info.value.code is Code.FORBIDDEN
    ours = w.license(owner_organization="Org A")
    people.link_group_license(w.store, w.account, group="Engineering", license_key=ours.key, now=NOW)
    with w.store.read() as tx:
        member = tx.user_by_email(w.account.id, "a1@example.com")
        assert member is not None
        assert tx.visible_license_ids(w.account.id, member) == {ours.id}


def test_who_sees_which_license(w: World) -> None:
    user(w, "admin@example.com", Role.ORGANIZATION_ADMIN)
    user(w, "u1@example.com")
    user(w, "u2@example.com")
    org_a = w.license(owner_organization="Org A")
    org_b = w.license(owner_organization="Org B")
    own = w.license(owner_user_email="u1@example.com")
    w.license()  # nobody's
    with w.store.read() as tx:
        seen = {
            e: tx.visible_license_ids(w.account.id, tx.user_by_email(w.account.id, e))  # type: ignore[arg-type]
            for e in ("admin@example.com", "u1@example.com", "u2@example.com")
        }
    assert seen["admin@example.com"] == {org_a.id}
    assert org_b.id not in seen["admin@example.com"]
    assert seen["u1@example.com"] == {own.id}
    assert seen["u2@example.com"] == frozenset()


# -- logins and credentials --------------------------------------------------------------------


def test_login_failures_back_off_per_account_email_and_per_address(w: World) -> None:
    user(w, "ann@example.com")
    for _ in range(people.FREE_FAILURES):
        with pytest.raises(OfflineServiceError) as info:
            login(w, "ann@example.com", "wrong password!")
        assert info.value.code is Code.INVALID_CREDENTIALS
    with pytest.raises(OfflineServiceError) as info:
        login(w, "ann@example.com", "wrong password!")
    assert info.value.code is Code.INVALID_CREDENTIALS
    # Now locked for this account+email, even with the right password and from another address.
    with pytest.raises(people.LoginThrottled) as throttled:
        login(w, "ann@example.com", address="10.9.9.9")
    assert throttled.value.code is Code.RATE_LIMITED and throttled.value.retry_after == 2
    assert login(w, "ann@example.com", address="10.9.9.9", now=NOW + 2).email == "ann@example.com"


SEQUENTIAL_ALLOWANCE = people.FREE_FAILURES + 1  # checks before the first lock, one at a time


def _wrong(w: World, *, now: int = NOW) -> Callable[[], object]:
    return lambda: login(w, "ann@example.com", "wrong password!", now=now)


def test_a_concurrent_burst_gets_no_more_password_checks_than_sequential_attempts(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    user(w, "ann@example.com")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(people, "verify_password", gate)
    with burst(gate, 20, _wrong(w)) as b:
        b.wait_until_decided()
        assert gate.checks == SEQUENTIAL_ALLOWANCE
        # A right password inside the burst is refused too: the counter is already locked.
        with pytest.raises(people.LoginThrottled):
            login(w, "ann@example.com", address="10.9.9.9")
    assert sorted(b.codes, key=str) == sorted(
        [Code.INVALID_CREDENTIALS] * SEQUENTIAL_ALLOWANCE + [Code.RATE_LIMITED] * (20 - SEQUENTIAL_ALLOWANCE),
        key=str,
    )
    assert gate.checks == SEQUENTIAL_ALLOWANCE


def test_a_right_password_inside_a_burst_is_refused(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    user(w, "ann@example.com")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(people, "verify_password", gate)
    with burst(gate, SEQUENTIAL_ALLOWANCE, _wrong(w)) as b:
        b.wait_until_decided()  # all still being checked
        with pytest.raises(people.LoginThrottled):
            login(w, "ann@example.com", address="10.9.9.9")
    assert b.codes == [Code.INVALID_CREDENTIALS] * SEQUENTIAL_ALLOWANCE


def test_a_burst_just_after_a_lock_expires_gets_one_check(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    user(w, "ann@example.com")
    for _ in range(SEQUENTIAL_ALLOWANCE):
        with pytest.raises(OfflineServiceError):
            login(w, "ann@example.com", "wrong password!")
    with pytest.raises(people.LoginThrottled) as throttled:
        login(w, "ann@example.com", "wrong password!")
    gate = PasswordGate(PASSWORD)
    monkeypatch.setattr(people, "verify_password", gate)
    with burst(gate, 12, _wrong(w, now=NOW + throttled.value.retry_after)) as b:
        b.wait_until_decided()
        assert gate.checks == 1
    assert b.codes.count(Code.INVALID_CREDENTIALS) == 1 and b.codes.count(Code.RATE_LIMITED) == 11


def test_a_right_password_while_locked_is_refused_and_counts_nothing(w: World) -> None:
    user(w, "ann@example.com")
    for _ in range(SEQUENTIAL_ALLOWANCE):
        with pytest.raises(OfflineServiceError):
            login(w, "ann@example.com", "wrong password!")
    with pytest.raises(people.LoginThrottled) as throttled:
        login(w, "ann@example.com")
    assert throttled.value.retry_after == 2  # refused attempts do not lengthen the wait
    assert login(w, "ann@example.com", now=NOW + 2).email == "ann@example.com"


def test_successful_logins_never_throttle_their_address(w: World) -> None:
    # Each attempt is counted up front; a success gives its count back, so an office behind one
    # address can log in all day, and its failures before and after still add up.
    user(w, "ann@example.com")
    user(w, "bob@example.com")
    for _ in range(people.FREE_FAILURES):
        with pytest.raises(OfflineServiceError) as info:
            login(w, "nobody@example.com", "wrong password!")
        assert info.value.code is Code.INVALID_CREDENTIALS
    for _ in range(3 * SEQUENTIAL_ALLOWANCE):
        assert login(w, "ann@example.com").email == "ann@example.com"
    with pytest.raises(OfflineServiceError) as info:
        login(w, "bob@example.com", "wrong password!")
    assert info.value.code is Code.INVALID_CREDENTIALS  # the address's sixth failure: now locked
    with pytest.raises(people.LoginThrottled):
        login(w, "ann@example.com")


def test_unknown_account_and_unknown_email_fail_like_a_wrong_password(w: World) -> None:
    user(w, "ann@example.com")
    for alias, email in (("nope", "ann@example.com"), ("default", "nobody@example.com")):
        with pytest.raises(OfflineServiceError) as info:
            login(w, email, alias=alias, address="10.0.0.2")
        assert (info.value.code, info.value.message) == (
            Code.INVALID_CREDENTIALS,
            "invalid email or password",
        )


def test_credentials_expire_are_revocable_and_are_stored_hashed(w: World) -> None:
    user(w, "ann@example.com")
    ann = login(w, "ann@example.com")
    token = people.issue_credential(w.store, ann, kind="session", lifetime=60, now=NOW)
    assert people.resolve_credential(w.store, token, kind="session", now=NOW + 59)[0].id == ann.id
    for kind, now in (("access", NOW), ("session", NOW + 60)):
        with pytest.raises(OfflineServiceError) as info:
            people.resolve_credential(w.store, token, kind=kind, now=now)
        assert info.value.code is Code.UNAUTHENTICATED
    stored = rows(w.store, "SELECT token_hash FROM credentials")
    assert all(token.encode() not in row[0] for row in stored)
    people.revoke_credential(w.store, token, now=NOW + 1)
    with pytest.raises(OfflineServiceError):
        people.resolve_credential(w.store, token, kind="session", now=NOW + 2)


# -- CLI ----------------------------------------------------------------------------------------


def test_people_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    where = ["--data", str(tmp_path / "d"), "--keys", str(tmp_path / "k")]

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, *where])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("init")[0] == 0
    product = json.loads(run("product", "create", "--name", "App", "--json")[1])["id"]
    assert run("org", "create", "--name", "Org A")[0] == 0
    code, out, err = run(
        "user",
        "create",
        "--email",
        "ann@example.com",
        "--role",
        "organization-admin",
        "--organization",
        "Org A",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0 and PASSWORD not in out + err
    assert (
        run("user", "create", "--email", "bob@example.com", "--role", "user", "--organization", "Org A")[0]
        == 0
    )
    license = json.loads(
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "2",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org A",
            "--json",
        )[1]
    )
    assert run("group", "create", "--organization", "Org A", "--name", "Ops")[0] == 0
    assert run("group", "add-user", "Ops", "bob@example.com")[0] == 0
    assert run("group", "link", "Ops", license["key"])[0] == 0

    code, _, err = run("user", "create", "--email", "ann@example.com", "--role", "user")
    assert code == 1 and "CONFLICT" in err
    code, _, err = run("group", "add-user", "Ops", "nobody@example.com")
    assert code == 1 and "NOT_FOUND" in err
    with pytest.raises(SystemExit) as usage:  # a license belongs to a user or an organization
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--user",
            "bob@example.com",
            "--organization",
            "Org A",
        )
    assert usage.value.code == 2


def test_people_admin_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """user disable / enable / password-link and group remove-user / unlink: the organization
    admin's operations for the vendor, with the same rules (cap, mails, audit under "cli")."""
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    monkeypatch.delenv("OFFLINE_SERVICE_PUBLIC_URL", raising=False)
    data = tmp_path / "d"
    where = ["--data", str(data), "--keys", str(tmp_path / "k")]

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, *where])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("init")[0] == 0
    product = json.loads(run("product", "create", "--name", "App", "--json")[1])["id"]
    assert run("org", "create", "--name", "Org A", "--allowed-users", "2")[0] == 0
    for email in ("ann@example.com", "bob@example.com"):
        assert run("user", "create", "--email", email, "--role", "user", "--organization", "Org A")[0] == 0
    code, _, err = run(
        "user", "create", "--email", "cat@example.com", "--role", "user", "--organization", "Org A"
    )
    assert code == 1 and "USER_LIMIT" in err
    assert run("org", "create", "--name", "Bad", "--allowed-users", "-1")[0] == 1

    # Disabling frees a place; enabling again is held to the cap.
    code, out, _ = run("user", "disable", "bob@example.com", "--json")
    assert code == 0 and json.loads(out)["disabled"] is True
    assert (
        run("user", "create", "--email", "cat@example.com", "--role", "user", "--organization", "Org A")[0]
        == 0
    )
    code, _, err = run("user", "enable", "bob@example.com")
    assert code == 1 and "USER_LIMIT" in err
    code, _, err = run("user", "disable", "nobody@example.com")
    assert code == 1 and "NOT_FOUND" in err

    # A set-password link goes into a mail file, never to the terminal.
    code, _, err = run("user", "password-link", "ann@example.com")
    assert code == 1 and "INVALID_ARGUMENT" in err and "--base-url" in err
    code, out, err = run("user", "password-link", "ann@example.com", "--base-url", "https://portal.example")
    assert code == 0 and "mailed" in out
    [mail] = list((data / "mail").glob("*.eml"))
    found = re.search(r"https://portal\.example/set-password\?token=(\S+)", mail.read_text())
    assert found and found.group(1) not in out + err
    code, _, err = run("user", "password-link", "bob@example.com", "--base-url", "https://portal.example")
    assert code == 1 and "CONFLICT" in err  # disabled
    # An account with a custom domain: its links are on that domain, unless --base-url says otherwise.
    assert run("account", "customize", "--custom-domain", "licenses.acme.example")[0] == 0
    for args, base in (
        ([], "https://licenses.acme.example"),
        (["--base-url", "https://x.example"], "https://x.example"),
    ):
        for old in (data / "mail").glob("*.eml"):
            old.unlink()
        assert run("user", "password-link", "ann@example.com", *args)[0] == 0
        [mail] = list((data / "mail").glob("*.eml"))
        assert f"{base}/set-password?token=" in mail.read_text()

    # Groups: remove a member, unlink a license.
    key = json.loads(
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org A",
            "--json",
        )[1]
    )["key"]
    assert run("group", "create", "--organization", "Org A", "--name", "Ops")[0] == 0
    assert run("group", "add-user", "Ops", "ann@example.com")[0] == 0
    assert run("group", "link", "Ops", key)[0] == 0
    assert run("group", "remove-user", "Ops", "ann@example.com")[0] == 0
    code, _, err = run("group", "remove-user", "Ops", "ann@example.com")
    assert code == 1 and "NOT_FOUND" in err
    assert run("group", "unlink", "Ops", key)[0] == 0
    code, _, err = run("group", "unlink", "Ops", key)
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = run("group", "unlink", "Nope", key)
    assert code == 1 and "NOT_FOUND" in err
    code, out, _ = run("audit", "--json")
    actions = [(e["actor"], e["action"]) for e in json.loads(out)]
    for action in ("user.disable", "user.password_link", "group.remove_user", "group.unlink_license"):
        assert ("cli", action) in actions
    # The help of each new verb.
    for verb in (
        ["user", "disable"],
        ["user", "enable"],
        ["user", "password-link"],
        ["group", "remove-user"],
        ["group", "unlink"],
    ):
        with pytest.raises(SystemExit) as shown:
            main([*verb, "--help"])
        assert shown.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: offline-service {' '.join(verb)}")
