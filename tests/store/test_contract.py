"""The store contract, written once and run against every backend of ``contract.BACKENDS``:
each domain's transaction methods (round trips, scoping by account, ordering), the writers' lock,
and rollback. A new backend adds one entry there and must pass all of this unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from offline_service.accounts.models import (
    Account,
    Credential,
    Organization,
    PasswordToken,
    Role,
    User,
    UserGroup,
)
from offline_service.audit import AuditEntry
from offline_service.branding.models import Branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import (
    ActivationFilter,
    BatchFile,
    BatchResult,
    LicenseFilter,
    LicenseStatus,
    Product,
    Trial,
)
from offline_service.releases.models import Release, ReleaseFile
from offline_service.store import Store
from tests import db
from tests.store.contract import BACKENDS, NOW, Seed, new_activation, new_license, seed


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the backend's store on the test's database; each call is a new store object (a new
    connection), as another process would have. Every one is closed after the test."""
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


@pytest.fixture
def s(store: Store) -> Seed:
    return seed(store)


# -- the store ---------------------------------------------------------------------------------


def test_schema_version_is_the_newest_migration_and_survives_reopening(
    store: Store, opener: Callable[[], Store]
) -> None:
    assert store.schema_version > 0
    assert opener().schema_version == store.schema_version


def test_an_opened_store_has_no_pending_migrations_and_upgrading_it_applies_none(store: Store) -> None:
    assert store.pending_migrations() == []
    assert store.upgrade() == []
    assert store.pending_migrations() == []


def test_a_write_commits_and_another_connection_sees_it(s: Seed, opener: Callable[[], Store]) -> None:
    with opener().read() as tx:
        assert tx.account_by_alias("a") == s.account


def test_an_exception_rolls_back_every_domain_write(store: Store, s: Seed) -> None:
    before = {t: db.table(store, t) for t in ("accounts", "licenses", "users", "releases", "audit_log")}
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.insert_account(Account(id="acc_doomed", alias="doomed", name="Doomed", created_at=NOW))
        tx.insert_license(new_license(s, 0))
        tx.insert_activation(new_activation(new_license(s, 0), 1))
        tx.insert_user(User("usr_doomed", s.account.id, "d@a.example", Role.USER, NOW))
        tx.insert_release(Release("rel_doomed", s.account.id, s.product.id, "1.0", "stable", "", NOW), [])
        tx.audit(AuditEntry(at=NOW, actor="t", action="x", code="OK", account_id=s.account.id))
        assert tx.account_by_alias("doomed") is not None  # a transaction reads its own writes
        raise RuntimeError("boom")
    assert {t: db.table(store, t) for t in before} == before
    with store.read() as tx:
        assert tx.account_by_alias("doomed") is None and tx.license_by_id(s.account.id, "lic_0") is None


def test_a_constraint_failure_is_a_storage_error_and_rolls_back(store: Store, s: Seed) -> None:
    with pytest.raises(OfflineServiceError) as info, store.write() as tx:
        tx.insert_license(new_license(s, 0))
        tx.insert_account(Account(id="acc_again", alias="a", name="Same alias", created_at=NOW))
    assert info.value.code is Code.STORAGE_ERROR
    with store.read() as tx:
        assert tx.licenses(s.account.id) == []


def test_write_lock_if_free_is_false_while_another_holder_writes(
    store: Store, opener: Callable[[], Store]
) -> None:
    with store.write_lock_if_free() as free:
        assert free
        with store.write() as tx:  # holding the lock already: does not wait
            tx.audit(AuditEntry(at=NOW, actor="a", action="x", code="OK", account_id="acc"))
    other = opener()
    with other.write(), store.write_lock_if_free() as free:
        assert not free  # answered at once, without waiting for the other holder
    with store.write_lock_if_free() as free:
        assert free


def test_debug_query_reads_and_writes(store: Store, s: Seed) -> None:
    db.execute(store, "UPDATE accounts SET name = ? WHERE id = ?", "Renamed", s.account.id)
    assert db.rows(store, "SELECT name FROM accounts WHERE id = ?", s.account.id) == [("Renamed",)]


# -- licensing ---------------------------------------------------------------------------------


def test_products_round_trip_scoped_and_ordered(store: Store, s: Seed) -> None:
    with store.read() as tx:
        assert tx.product(s.account.id, s.product.id) == s.product
        assert tx.product(s.other.id, s.product.id) is None
        assert tx.product_by_id(s.other_product.id) == s.other_product
        assert tx.product_by_id("prd_none") is None
        assert tx.products(s.account.id) == [s.product]
    with store.write() as tx:
        tx.insert_product(Product("prd_0", s.account.id, "Earlier", False, 0, 60, NOW - 1))
    with store.read() as tx:
        assert [p.id for p in tx.products(s.account.id)] == ["prd_0", s.product.id]


def test_product_settings_are_set_per_product_within_the_account(store: Store, s: Seed) -> None:
    assert s.product.customer_release is False
    changed = replace(
        s.product, customer_release=True, trials_enabled=False, trial_days=0, max_response_validity=7
    )
    with store.write() as tx:
        assert tx.product(s.account.id, s.product.id) == s.product  # read, so cached in the transaction
        tx.set_product_settings(changed)
        assert tx.product(s.account.id, s.product.id) == changed
        # another account's product named with this account: no row
        tx.set_product_settings(replace(s.other_product, account_id=s.account.id, trial_days=99))
    with store.read() as tx:
        assert tx.product(s.account.id, s.product.id) == changed
        assert tx.product_by_id(s.other_product.id) == s.other_product
    with store.write() as tx:
        tx.set_product_settings(s.product)
    with store.read() as tx:
        assert tx.products(s.account.id) == [s.product]


def test_licenses_round_trip_by_key_and_id_scoped_to_the_account(store: Store, s: Seed) -> None:
    first = new_license(s, 0, expires_at=NOW + 99, owner="Ann", owner_user_id=s.user.id, max_version="2")
    with store.write() as tx:
        tx.insert_license(first)
        tx.insert_license(new_license(s, 1, owner_organization_id=s.organization.id))
    with store.read() as tx:
        assert tx.license_by_key(s.account.id, first.key) == first
        assert tx.license_by_key(s.account.id, first.key.lower().replace("-", "")) == first  # normalised
        assert tx.license_by_id(s.account.id, first.id) == first
        assert tx.license_by_key(s.other.id, first.key) is None
        assert tx.license_by_id(s.other.id, first.id) is None
        assert [x.id for x in tx.licenses(s.account.id)] == ["lic_0", "lic_1"]
        assert [x.id for x in tx.licenses(s.account.id, s.other_product.id)] == []
        assert [x.id for x in tx.organization_licenses(s.account.id, s.organization.id)] == ["lic_1"]
        assert tx.organization_licenses(s.other.id, s.organization.id) == []


def test_license_status_usage_and_max_version_are_seen_in_and_after_the_transaction(
    store: Store, s: Seed
) -> None:
    lic = new_license(s, 0)
    with store.write() as tx:
        tx.insert_license(lic)
    with store.write() as tx:
        assert tx.license_by_id(s.account.id, lic.id) == lic  # read first: the update is buffered
        tx.update_license_usage(lic.id, used_activations=2, used_deactivations=1, expires_at=NOW + 5)
        found = tx.license_by_key(s.account.id, lic.key)
        assert found is not None and (found.used_activations, found.expires_at) == (2, NOW + 5)
        tx.set_license_status(lic.id, LicenseStatus.SUSPENDED)
        tx.set_license_max_version(lic.id, "1.5")
        found = tx.license_by_id(s.account.id, lic.id)
        assert found is not None and (found.status, found.max_version) == (LicenseStatus.SUSPENDED, "1.5")
    with store.write() as tx:  # not read first: written through
        tx.update_license_usage(lic.id, used_activations=3, used_deactivations=1, expires_at=None)
    with store.read() as tx:
        found = tx.license_by_id(s.account.id, lic.id)
    assert found is not None
    assert (found.used_activations, found.used_deactivations, found.expires_at) == (3, 1, None)
    assert (found.status, found.max_version) == (LicenseStatus.SUSPENDED, "1.5")


def test_activations_and_nonces_round_trip_scoped_and_ordered(store: Store, s: Seed) -> None:
    lic = new_license(s, 0)
    first, second = new_activation(lic, 2), new_activation(lic, 1)
    with store.write() as tx:
        tx.insert_license(lic)
        tx.insert_activation(first)
        tx.insert_activation(second)
        tx.record_nonce(s.product.id, "n-1", "activation", first.id, NOW)
        # Buffered or written, a transaction reads its own writes.
        assert tx.live_activation(lic.id, first.fingerprint) == first
        assert tx.activation(s.product.id, first.id) == first
        assert tx.nonce_activation(s.product.id, "n-1") == first.id
    with store.read() as tx:
        assert tx.live_activation(lic.id, first.fingerprint) == first
        assert tx.live_activation(lic.id, "fp-none") is None
        assert tx.activation(s.product.id, first.id) == first
        assert tx.activation(s.other_product.id, first.id) is None
        assert tx.activation_in_account(s.account.id, first.id) == first
        assert tx.activation_in_account(s.other.id, first.id) is None
        assert tx.activations(lic.id) == [second, first]  # oldest first
        assert tx.nonce_activation(s.product.id, "n-1") == first.id
        assert tx.nonce_activation(s.other_product.id, "n-1") is None
    with store.write() as tx:
        tx.deactivate(first.id, NOW + 10)
    with store.read() as tx:
        assert tx.live_activation(lic.id, first.fingerprint) is None
        gone = tx.activation(s.product.id, first.id)
        assert gone is not None and gone.deactivated_at == NOW + 10


def test_preload_answers_as_the_single_reads_would(store: Store, s: Seed) -> None:
    lic = new_license(s, 0)
    live = new_activation(lic, 1)
    with store.write() as tx:
        tx.insert_license(lic)
        tx.insert_activation(live)
        tx.record_nonce(s.product.id, "seen", "activation", live.id, NOW)
    with store.write() as tx:
        tx.preload(
            [
                (s.product.id, "seen", live.fingerprint, lic.key),
                (s.product.id, "new", "fp-other", lic.key),
                (s.product.id, "anon", "fp-x", None),
                (s.other_product.id, "theirs", "fp-y", None),  # another account's product
                ("prd_none", "nothing", "fp-z", None),
            ],
            account_id=s.account.id,
        )
        assert tx.product(s.account.id, s.product.id) == s.product
        assert tx.product(s.account.id, s.other_product.id) is None
        assert tx.product(s.account.id, "prd_none") is None
        assert tx.product(s.other.id, s.other_product.id) == s.other_product  # in its own account
        assert tx.license_by_key(s.account.id, lic.key) == lic
        assert tx.nonce_activation(s.product.id, "seen") == live.id
        assert tx.nonce_activation(s.product.id, "new") is None
        assert tx.live_activation(lic.id, live.fingerprint) == live
        assert tx.live_activation(lic.id, "fp-other") is None
        tx.deactivate(live.id, NOW + 1)  # what preload learnt is forgotten
        assert tx.live_activation(lic.id, live.fingerprint) is None


def test_find_activations_pages_filters_and_stays_in_its_licenses(store: Store, s: Seed) -> None:
    mine, theirs = new_license(s, 0), new_license(s, 1)
    with store.write() as tx:
        tx.insert_license(mine)
        tx.insert_license(theirs)
        for n in range(5):
            tx.insert_activation(new_activation(mine, n, deactivated_at=NOW + 50 if n == 0 else None))
        tx.insert_activation(new_activation(theirs, 9, hostname="50%_off"))
    with store.read() as tx:
        total, page = tx.find_activations(s.account.id, frozenset({mine.id}), ActivationFilter(), limit=2)
        assert total == 5 and [a.fingerprint for a in page] == ["fp-4", "fp-3"]  # newest first
        _, page = tx.find_activations(
            s.account.id, frozenset({mine.id}), ActivationFilter(), limit=2, offset=4
        )
        assert [a.fingerprint for a in page] == ["fp-0"]
        both = frozenset({mine.id, theirs.id})
        assert tx.find_activations(s.account.id, both, ActivationFilter(live=False), limit=9)[0] == 1
        assert tx.find_activations(s.account.id, both, ActivationFilter(text="HOST-2"), limit=9)[0] == 1
        assert tx.find_activations(s.account.id, both, ActivationFilter(text="0%_"), limit=9)[0] == 1
        assert tx.find_activations(s.account.id, both, ActivationFilter(text="%"), limit=9)[0] == 1
        one = ActivationFilter(license_id=theirs.id, product_id=s.product.id)
        assert tx.find_activations(s.account.id, both, one, limit=9)[0] == 1
        assert tx.find_activations(s.account.id, frozenset({mine.id}), one, limit=9) == (0, [])
        assert tx.find_activations(s.other.id, both, ActivationFilter(), limit=9) == (0, [])


def test_find_activations_by_hostname_puts_machines_without_one_last(store: Store, s: Seed) -> None:
    lic = new_license(s, 0)
    with store.write() as tx:
        tx.insert_license(lic)
        for n, hostname in enumerate(["bravo", "", "Alpha", "charlie", "alpha"]):
            tx.insert_activation(new_activation(lic, n, hostname=hostname))
    with store.read() as tx:
        by_host = ActivationFilter(order="hostname")
        _, page = tx.find_activations(s.account.id, frozenset({lic.id}), by_host, limit=9)
        # case ignored; equal hostnames newest first; no hostname last
        assert [a.fingerprint for a in page] == ["fp-4", "fp-2", "fp-0", "fp-3", "fp-1"]
        _, page = tx.find_activations(s.account.id, frozenset({lic.id}), by_host, limit=2, offset=2)
        assert [a.fingerprint for a in page] == ["fp-0", "fp-3"]


# Licenses of every kind a list tells apart, by their number in ``_listed_licenses``.
LISTED = 5


def _listed_licenses(store: Store, s: Seed) -> frozenset[str]:
    """lic_0: named, 2 of 2 used, expires in 10 days. lic_1: an owner note, another product,
    unlimited, 5 used. lic_2: the organization's, suspended. lic_3: Ann's, expired, 1 of 5 used.
    lic_4: named, revoked, 8 of 10 used. Also, not among the ids returned: lic_5 of the same
    account (named like lic_0) and lic_6 of another account (its id passed all the same)."""
    bench = Product("prd_c", s.account.id, "Bench tool", False, 0, 3600, NOW)
    day = 86400
    licenses = [
        new_license(s, 0, name="Line 3 readers", used_activations=2, expires_at=NOW + 10 * day),
        new_license(s, 1, owner="ACME lab", product_id=bench.id, allowed_activations=-1, used_activations=5),
        new_license(s, 2, owner_organization_id=s.organization.id, status=LicenseStatus.SUSPENDED),
        new_license(s, 3, owner_user_id=s.user.id, allowed_activations=5, used_activations=1, expires_at=NOW - 1),
        new_license(s, 4, name="zeta", status=LicenseStatus.REVOKED, allowed_activations=10, used_activations=8),
        new_license(s, 5, name="Line 3 hidden", used_activations=2),
        new_license(s, 6, account_id=s.other.id, product_id=s.other_product.id, name="Line 3 other"),
    ]  # fmt: skip
    with store.write() as tx:
        tx.insert_product(bench)
        for lic in licenses:
            tx.insert_license(lic)
    return frozenset({*(f"lic_{n}" for n in range(LISTED)), "lic_6"})


def test_find_licenses_searches_filters_and_stays_in_its_licenses(store: Store, s: Seed) -> None:
    mine = _listed_licenses(store, s)

    def found(**query: Any) -> list[str]:
        with store.read() as tx:
            matching, total, rows = tx.find_licenses(
                s.account.id, mine, LicenseFilter(**query), now=NOW, limit=50
            )
        assert total == LISTED and matching == len(rows)
        return [r.license.id.removeprefix("lic_") for r in rows]

    assert found() == ["0", "1", "2", "3", "4"]  # oldest first; never lic_5 or lic_6
    assert found(text="line 3") == ["0"]  # the name, whatever the case
    assert found(text="eeeee") == ["0"] and found(text="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE") == ["0"]
    assert found(text="ccccc") == []  # the end of the key only
    assert found(text="bench") == ["1"] and found(text="acme") == ["1"]  # product, owner note
    assert found(text="org a") == ["2"] and found(text="ANN") == ["3"]  # organization, user
    assert found(text="user@a.example") == ["3"]  # the owning user's email
    assert found(text="%") == [] and found(text="_") == []  # LIKE's wildcards are plain text
    assert found(text="other") == [] and found(text="hidden") == []
    assert found(state="active") == ["0", "1"] and found(state="expired") == ["3"]
    assert found(state="suspended") == ["2"] and found(state="revoked") == ["4"]
    assert found(product_id="prd_c") == ["1"] and found(product_id=s.other_product.id) == []
    assert found(attention="near-limit") == ["0", "4"]  # 2 of 2 and 8 of 10; never unlimited
    assert found(attention="near-expiry") == ["0"]  # lic_3 has expired already
    assert found(attention="any") == ["0", "2"]  # usable and near, or suspended
    assert found(attention="near-limit", state="active") == ["0"]
    assert found(text="line", attention="near-limit", product_id=s.product.id) == ["0"]
    with store.read() as tx:  # the other account's person sees only its own among the same ids
        matching, total, rows = tx.find_licenses(s.other.id, mine, LicenseFilter(), now=NOW, limit=50)
        assert (matching, total, [r.license.id for r in rows]) == (1, 1, ["lic_6"])
        assert tx.find_licenses(s.other.id, mine, LicenseFilter(text="line 3 r"), now=NOW, limit=50)[0] == 0
        # An id that would end the bound list early and name another is one id, matching none.
        for odd in ('x","lic_0', 'x"]', "x,lic_0", "{lic_0}", "lic_0\\"):
            assert tx.find_licenses(s.account.id, frozenset({odd}), LicenseFilter(), now=NOW, limit=9) == (
                0,
                0,
                [],
            )


def test_find_licenses_sorts_both_ways_and_pages(store: Store, s: Seed) -> None:
    mine = _listed_licenses(store, s)

    def order(sort: str, descending: bool = False, limit: int = 50, offset: int = 0) -> list[str]:
        query = LicenseFilter(sort=sort, descending=descending)
        with store.read() as tx:
            _, _, rows = tx.find_licenses(s.account.id, mine, query, now=NOW, limit=limit, offset=offset)
        return [r.license.id.removeprefix("lic_") for r in rows]

    assert order("created", descending=True) == ["4", "3", "2", "1", "0"]
    # The line that tells them apart: ACME lab, Ann, Line 3 readers, Org A, zeta (case ignored).
    assert order("name") == ["1", "3", "0", "2", "4"]
    assert order("name", descending=True) == ["4", "2", "0", "3", "1"]
    assert order("product") == ["0", "2", "3", "4", "1"]  # App, then Bench tool; ties by creation
    assert order("product", descending=True) == ["1", "4", "3", "2", "0"]
    # Licenses that never expire come last both ways.
    assert order("expiry") == ["3", "0", "1", "2", "4"]
    assert order("expiry", descending=True) == ["0", "3", "4", "2", "1"]
    assert order("seats") == ["2", "3", "0", "1", "4"]
    assert order("seats", descending=True) == ["4", "1", "0", "3", "2"]
    assert order("created", limit=2, offset=2) == ["2", "3"]
    assert order("created", limit=2, offset=4) == ["4"]
    assert order("created", limit=2, offset=6) == []
    with store.read() as tx:
        listed = tx.find_licenses(s.account.id, mine, LicenseFilter(text="ann"), now=NOW, limit=1)[2]
    assert [(x.product, x.holder) for x in listed] == [("App", "Ann")]


def test_license_summary_products_and_licenses_by_ids_stay_in_their_licenses(store: Store, s: Seed) -> None:
    mine = _listed_licenses(store, s)
    with store.read() as tx:
        summary = tx.license_summary(s.account.id, mine, now=NOW)
        assert dict(summary.states) == {"active": 2, "expired": 1, "suspended": 1, "revoked": 1}
        assert (summary.total, summary.used, summary.allowed) == (5, 16, -1)  # lic_1 is unlimited
        limited = tx.license_summary(s.account.id, mine - {"lic_1"}, now=NOW)
        assert (limited.used, limited.allowed) == (11, 19)
        assert tx.license_summary(s.other.id, frozenset({"lic_0"}), now=NOW).total == 0
        empty = tx.license_summary(s.account.id, frozenset(), now=NOW)
        assert (empty.total, empty.used, empty.allowed) == (0, 0, 0)
        assert [p.name for p in tx.license_products(s.account.id, mine)] == ["App", "Bench tool"]
        assert [p.name for p in tx.license_products(s.account.id, frozenset({"lic_1"}))] == ["Bench tool"]
        assert tx.license_products(s.other.id, frozenset({"lic_0"})) == []
        assert [x.id for x in tx.licenses_by_ids(s.account.id, mine)] == [f"lic_{n}" for n in range(LISTED)]
        assert [x.id for x in tx.licenses_by_ids(s.other.id, mine)] == ["lic_6"]
        assert tx.licenses_by_ids(s.account.id, frozenset()) == []


def test_a_license_name_and_owner_change_and_clear(store: Store, s: Seed) -> None:
    lic = new_license(s, 0, name="Lab", owner="Ann")
    with store.write() as tx:
        tx.insert_license(lic)
    with store.write() as tx:
        assert tx.license_by_id(s.account.id, lic.id) == lic  # read first: the change is seen after
        tx.set_license_name(lic.id, name="Line 4", owner=None)
        found = tx.license_by_id(s.account.id, lic.id)
        assert found is not None and (found.name, found.owner) == ("Line 4", None)
    with store.read() as tx:
        found = tx.license_by_key(s.account.id, lic.key)
        assert found is not None and (found.name, found.owner) == ("Line 4", None)


def test_license_groups_are_the_accounts_and_a_members_own(store: Store, s: Seed) -> None:
    lic, other = new_license(s, 0, owner_organization_id=s.organization.id), new_license(s, 1)
    alpha = UserGroup("grp_alpha", s.account.id, s.organization.id, "Alpha", NOW)
    with store.write() as tx:
        tx.insert_license(lic)
        tx.insert_license(other)
        tx.insert_group(alpha)
        for group in (s.group, alpha):
            tx.link_group_license(group.id, lic.id)
        tx.add_group_member(s.group.id, s.user.id)
    with store.read() as tx:
        assert [g.name for g in tx.license_groups(s.account.id, lic.id)] == ["Alpha", "Team"]  # by name
        assert tx.license_groups(s.account.id, lic.id, member_id=s.user.id) == [s.group]
        assert tx.license_groups(s.account.id, lic.id, member_id=s.admin.id) == []
        assert tx.license_groups(s.account.id, other.id) == []
        assert tx.license_groups(s.other.id, lic.id) == []


def test_trials_round_trip_by_product_and_machine(store: Store, s: Seed) -> None:
    trial = Trial("trl_1", s.product.id, "fp-1", "t" * 43, NOW, NOW + 14 * 86400, "host", "linux", "1.0")
    with store.write() as tx:
        tx.insert_trial(trial)
    with store.read() as tx:
        assert tx.trial(s.product.id, "fp-1") == trial
        assert tx.trial(s.other_product.id, "fp-1") is None


# -- accounts ----------------------------------------------------------------------------------


def test_accounts_organizations_and_users_round_trip_scoped(store: Store, s: Seed) -> None:
    with store.read() as tx:
        assert tx.account_by_alias("b") == s.other and tx.account_by_id(s.account.id) == s.account
        assert tx.account_by_alias("none") is None
        assert tx.organization(s.account.id, s.organization.id) == s.organization
        assert tx.organization_by_name(s.account.id, "Org A") == s.organization
        assert tx.organization(s.other.id, s.organization.id) is None
        assert tx.organization_by_name(s.other.id, "Org A") is None
        assert tx.user(s.account.id, s.admin.id) == s.admin
        assert tx.user_by_email(s.account.id, "admin@a.example") == s.admin  # by email key
        assert tx.user(s.other.id, s.admin.id) is None
        assert tx.user_by_email(s.other.id, "admin@a.example") is None
        assert [u.id for u in tx.organization_users(s.account.id, s.organization.id)] == [
            s.admin.id,
            s.user.id,
        ]  # by email
        assert tx.enabled_user_count(s.account.id, s.organization.id) == 2
    changed = User(
        s.user.id, s.account.id, "Zed@A.example", Role.ORGANIZATION_ADMIN, NOW, s.organization.id,
        password_hash="h", first_name="Zed", last_name="Z", disabled=True, time_zone="Europe/Paris",
        notify_new_activation=True, notify_license_expiry=True,
    )  # fmt: skip
    with store.write() as tx:
        tx.update_user(changed)
        tx.insert_organization(Organization("org_b", s.other.id, "Org A", NOW))  # names are per account
    with store.read() as tx:
        assert tx.user(s.account.id, s.user.id) == changed
        assert tx.user_by_email(s.account.id, "zed@a.example") == changed
        assert tx.enabled_user_count(s.account.id, s.organization.id) == 1
        assert [u.id for u in tx.organization_users(s.account.id, s.organization.id)] == [
            s.admin.id,
            s.user.id,
        ]


def test_organization_and_user_pages_and_counts_stay_in_the_account(store: Store, s: Seed) -> None:
    loner = User("usr_loner", s.account.id, "loner@a.example", Role.USER, NOW, disabled=True)
    with store.write() as tx:
        tx.insert_organization(Organization("org_c", s.account.id, "Org C", NOW))
        tx.insert_organization(Organization("org_z", s.other.id, "Org Z", NOW))
        tx.insert_user(loner)
        tx.insert_user(User("usr_z", s.other.id, "z@b.example", Role.USER, NOW))
        tx.insert_license(new_license(s, 1, owner_organization_id=s.organization.id))
    with store.read() as tx:
        assert [o.id for o in tx.organizations_page(s.account.id, limit=10)] == ["org_a", "org_c"]
        assert tx.organizations_page(s.account.id, limit=1) == [s.organization]
        assert [o.id for o in tx.organizations_page(s.account.id, after="org_a", limit=10)] == ["org_c"]
        assert [o.id for o in tx.organizations_page(s.other.id, limit=10)] == ["org_z"]
        assert [u.id for u in tx.users_page(s.account.id, limit=10)] == ["usr_admin", "usr_loner", "usr_user"]
        assert tx.users_page(s.account.id, after="usr_admin", limit=1) == [loner]
        assert [u.id for u in tx.users_page(s.account.id, organization_id="org_a", limit=10)] == [
            "usr_admin",
            "usr_user",
        ]
        assert [
            u.id for u in tx.users_page(s.account.id, organization_id="org_a", after="usr_admin", limit=10)
        ] == ["usr_user"]
        assert tx.users_page(s.other.id, organization_id="org_a", limit=10) == []
        assert tx.organization_counts(s.account.id, "org_a") == (2, 2, 1, 1)
        assert tx.organization_counts(s.account.id, "org_c") == (0, 0, 0, 0)
        assert tx.organization_counts(s.other.id, "org_a") == (0, 0, 0, 0)
    with store.write() as tx:
        tx.add_group_member(s.group.id, s.user.id)
        tx.link_group_license(s.group.id, "lic_1")
    with store.read() as tx:
        assert tx.organization_group_links(s.account.id, "org_a") == (
            [(s.group.id, s.user.id)],
            [(s.group.id, "lic_1")],
        )
        assert tx.organization_group_links(s.other.id, "org_a") == ([], [])
        assert tx.organization_group_links(s.account.id, "org_c") == ([], [])


def test_groups_members_and_licenses(store: Store, s: Seed) -> None:
    owned, grouped, other = new_license(s, 0, owner_user_id=s.user.id), new_license(s, 1), new_license(s, 2)
    with store.write() as tx:
        for lic in (owned, grouped, other):
            tx.insert_license(lic)
        tx.insert_group(UserGroup("grp_b", s.account.id, s.organization.id, "Alpha", NOW + 1))
        for _ in range(2):  # twice: no error, one row
            tx.add_group_member(s.group.id, s.user.id)
            tx.link_group_license(s.group.id, grouped.id)
        tx.add_group_member(s.group.id, s.admin.id)
        tx.link_group_license(s.group.id, other.id)
    with store.write() as tx:
        assert tx.group(s.account.id, s.group.id) == s.group and tx.group(s.other.id, s.group.id) is None
        assert [g.id for g in tx.groups_by_name(s.account.id, "Team")] == [s.group.id]
        assert [g.name for g in tx.organization_groups(s.account.id, s.organization.id)] == ["Alpha", "Team"]
        assert tx.group_member_ids(s.group.id) == {s.user.id, s.admin.id}
        assert tx.group_license_ids(s.group.id) == {grouped.id, other.id}
        assert tx.visible_license_ids(s.account.id, s.user) == {owned.id, grouped.id, other.id}
        assert tx.visible_license_ids(s.other.id, s.user) == frozenset()
        tx.remove_group_member(s.group.id, s.admin.id)
        tx.unlink_group_license(s.group.id, other.id)
        tx.rename_group(s.group.id, "Zulu")
    with store.read() as tx:
        assert tx.group_member_ids(s.group.id) == {s.user.id}
        assert tx.group_license_ids(s.group.id) == {grouped.id}
        assert tx.visible_license_ids(s.account.id, s.user) == {owned.id, grouped.id}
        assert [g.name for g in tx.organization_groups(s.account.id, s.organization.id)] == ["Alpha", "Zulu"]
        # An organization admin sees the organization's licenses, not the groups'.
        assert tx.visible_license_ids(s.account.id, s.admin) == frozenset()


def test_deleting_a_group_takes_its_members_and_license_links_with_it(store: Store, s: Seed) -> None:
    grouped, shared = new_license(s, 0), new_license(s, 1)
    alpha = UserGroup("grp_b", s.account.id, s.organization.id, "Alpha", NOW + 1)
    with store.write() as tx:
        for lic in (grouped, shared):
            tx.insert_license(lic)
        tx.insert_group(alpha)
        for group in (s.group, alpha):
            tx.add_group_member(group.id, s.user.id)
            tx.link_group_license(group.id, shared.id)
        tx.add_group_member(s.group.id, s.admin.id)
        tx.link_group_license(s.group.id, grouped.id)
    with store.write() as tx:
        # Another account's id finds nothing and deletes nothing.
        assert tx.delete_group(s.other.id, s.group.id) == (0, 0)
        assert tx.group(s.account.id, s.group.id) == s.group
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.delete_group(s.account.id, s.group.id)
        raise RuntimeError("rolled back")
    with store.read() as tx:
        assert tx.group_member_ids(s.group.id) == {s.user.id, s.admin.id}
        assert tx.group_license_ids(s.group.id) == {grouped.id, shared.id}
    with store.write() as tx:
        assert tx.delete_group(s.account.id, s.group.id) == (2, 2)
    with store.read() as tx:
        assert tx.group(s.account.id, s.group.id) is None
        assert [g.id for g in tx.organization_groups(s.account.id, s.organization.id)] == [alpha.id]
        assert tx.group_member_ids(s.group.id) == frozenset()
        assert tx.group_license_ids(s.group.id) == frozenset()
        # The license seen only through the deleted group is gone; the one another group links stays.
        assert tx.visible_license_ids(s.account.id, s.user) == {shared.id}
        assert tx.group_member_ids(alpha.id) == {s.user.id} and tx.group_license_ids(alpha.id) == {shared.id}
    with store.write() as tx:
        assert tx.delete_group(s.account.id, s.group.id) == (0, 0)  # already gone


def test_credential_holder_is_the_credential_its_person_and_their_licenses_in_one_statement(
    store: Store, s: Seed
) -> None:
    owned = new_license(s, 0, owner_user_id=s.user.id)
    grouped = new_license(s, 1)
    org_owned = new_license(s, 2, owner_organization_id=s.organization.id)
    # In the other account, owned by ids of this one: never seen through this account's people.
    foreign = new_license(s, 3, account_id=s.other.id, product_id=s.other_product.id, owner_user_id=s.user.id)
    foreign_org = new_license(
        s, 4, account_id=s.other.id, product_id=s.other_product.id, owner_organization_id=s.organization.id
    )
    user_cred = Credential(b"\x01" * 32, "access", s.user.id, s.account.id, NOW, NOW + 100, id="crd_u")
    admin_cred = Credential(b"\x02" * 32, "session", s.admin.id, s.account.id, NOW, NOW + 100, id="crd_a")
    with store.write() as tx:
        for lic in (owned, grouped, org_owned, foreign, foreign_org):
            tx.insert_license(lic)
        tx.add_group_member(s.group.id, s.user.id)
        tx.add_group_member(s.group.id, s.admin.id)  # an organization admin sees the organization's
        tx.link_group_license(s.group.id, grouped.id)
        tx.link_group_license(s.group.id, owned.id)  # seen twice, listed once
        tx.link_group_license(s.group.id, foreign.id)  # a link across accounts leads nowhere
        tx.insert_credential(user_cred)
        tx.insert_credential(admin_cred)
    for one_statement in (True, False):
        with store.read(one_statement=one_statement) as tx:
            assert tx.credential_holder(user_cred.token_hash) == (user_cred, s.user, {owned.id, grouped.id})
        with store.read(one_statement=one_statement) as tx:
            assert tx.credential_holder(admin_cred.token_hash) == (admin_cred, s.admin, {org_owned.id})
        with store.read(one_statement=one_statement) as tx:
            assert tx.credential_holder(b"\x03" * 32) is None
    with store.read() as tx:  # the same as the separate reads
        for cred, user in ((user_cred, s.user), (admin_cred, s.admin)):
            found = tx.credential_holder(cred.token_hash)
            assert found is not None
            assert found[2] == tx.visible_license_ids(s.account.id, user)
            assert found[:2] == (tx.credential(cred.token_hash), tx.user(s.account.id, user.id))
    loner = User("usr_loner", s.account.id, "loner@a.example", Role.USER, NOW, None)
    loner_cred = Credential(b"\x04" * 32, "personal", loner.id, s.account.id, NOW, NOW + 100, id="crd_l")
    with store.write() as tx:  # no license at all: the person still comes back
        tx.insert_user(loner)
        tx.insert_credential(loner_cred)
        tx.unlink_group_license(s.group.id, grouped.id)
    with store.read(one_statement=True) as tx:
        assert tx.credential_holder(loner_cred.token_hash) == (loner_cred, loner, frozenset())
    with store.read(one_statement=True) as tx:
        assert tx.credential_holder(user_cred.token_hash) == (user_cred, s.user, {owned.id})


def test_credentials_round_trip_revoke_and_touch(store: Store, s: Seed) -> None:
    def credential(n: int, kind: str = "session") -> Credential:
        return Credential(bytes([n]) * 32, kind, s.user.id, s.account.id, NOW + n, NOW + 100, id=f"crd_{n}")

    with store.write() as tx:
        for n in range(3):
            tx.insert_credential(credential(n))
        tx.insert_credential(Credential(b"\xff" * 32, "access", s.admin.id, s.account.id, NOW, NOW + 1))
    with store.write() as tx:
        assert tx.credential(bytes([1]) * 32) == credential(1)
        generated = tx.credential(b"\xff" * 32)
        assert generated is not None and generated.id.startswith("crd_")  # an id is given if none is
        assert tx.credential_by_id(s.account.id, s.user.id, "crd_1") == credential(1)
        assert tx.credential_by_id(s.other.id, s.user.id, "crd_1") is None
        assert [c.id for c in tx.user_credentials(s.account.id, s.user.id)] == ["crd_2", "crd_1", "crd_0"]
        tx.revoke_credential(bytes([2]) * 32, NOW + 5)
        tx.revoke_credential(bytes([2]) * 32, NOW + 6)  # revoked once: the first time stays
        tx.touch_credential(bytes([0]) * 32, NOW + 7)
        assert tx.revoke_user_credentials(s.user.id, NOW + 8, keep=bytes([0]) * 32) == 1
    with store.read() as tx:
        assert [c.id for c in tx.user_credentials(s.account.id, s.user.id)] == ["crd_0"]
        kept = tx.credential(bytes([0]) * 32)
        assert kept is not None and (kept.revoked_at, kept.last_used_at) == (None, NOW + 7)
        gone = tx.credential(bytes([2]) * 32)
        assert gone is not None and gone.revoked_at == NOW + 5
    with store.write() as tx:
        assert tx.revoke_user_credentials(s.user.id, NOW + 9) == 1  # keep=None: every live one


def test_login_failures_and_password_links(store: Store, s: Seed) -> None:
    link = PasswordToken(b"\x01" * 32, s.user.id, s.account.id, NOW, NOW + 60)
    with store.write() as tx:
        assert tx.login_failures("a:ann") == (0, 0)
        tx.record_login_failure("a:ann", 1, 0, NOW)
        tx.record_login_failure("a:ann", 2, NOW + 30, NOW + 1)  # replaces
        tx.insert_password_token(link)
    with store.write() as tx:
        assert tx.login_failures("a:ann") == (2, NOW + 30)
        assert tx.password_token(link.token_hash) == link
        tx.clear_login_failures("a:ann")
        tx.delete_password_tokens(s.user.id)
    with store.read() as tx:
        assert tx.login_failures("a:ann") == (0, 0)
        assert tx.password_token(link.token_hash) is None


# -- releases, branding, audit -----------------------------------------------------------------


def test_releases_and_files_round_trip_scoped_and_ordered(store: Store, s: Seed) -> None:
    new = Release("rel_2", s.account.id, s.product.id, "2.0", "stable", "notes", NOW + 2)
    old = Release("rel_1", s.account.id, s.product.id, "1.0", "beta", "", NOW + 1)
    files = [
        ReleaseFile("fil_b", new.id, "b.zip", 2, "b" * 64, "p/b"),
        ReleaseFile("fil_a", new.id, "a.zip", 1, "a" * 64, "p/a"),
    ]
    with store.write() as tx:
        tx.insert_release(new, files)
        tx.insert_release(old, [ReleaseFile("fil_c", old.id, "c.zip", 3, "c" * 64, "p/c")])
    with store.read() as tx:
        assert tx.releases(s.account.id) == [old, new]
        assert tx.releases(s.account.id, s.other_product.id) == []
        assert tx.releases(s.other.id) == []
        assert [f.id for f in tx.release_files([new.id, old.id, new.id])] == ["fil_c", "fil_a", "fil_b"]
        assert tx.release_file(s.account.id, "fil_a") == (new, files[1])
        assert tx.release_file(s.other.id, "fil_a") is None
    with store.write() as tx:
        tx.delete_release(new.id)
    with store.read() as tx:
        assert tx.releases(s.account.id) == [old] and tx.release_file(s.account.id, "fil_a") is None


def test_branding_saves_replaces_and_finds_by_domain(store: Store, s: Seed) -> None:
    first = Branding(s.account.id, NOW, "Acme", "#112233", "logo.png", "image/png", "portal.acme.example")
    with store.write() as tx:
        assert tx.branding(s.account.id) is None
        tx.save_branding(first)
    replaced = Branding(s.account.id, NOW + 1, portal_name="Acme 2")
    with store.write() as tx:
        assert tx.branding(s.account.id) == first
        assert tx.branding_by_domain("portal.acme.example") == first
        tx.save_branding(replaced)
    with store.read() as tx:
        assert tx.branding(s.account.id) == replaced and tx.branding(s.other.id) is None
        assert tx.branding_by_domain("portal.acme.example") is None


def test_batch_results_are_found_by_their_person_only_until_they_expire(store: Store, s: Seed) -> None:
    files = (
        BatchFile("a.request", "activation", "OK", True, "act_1", "lic_1", "höst-1", "fp-1", ""),
        BatchFile('b/ü "q".request', "", "MALFORMED_REQUEST", message="cannot read: \\x00\n"),
    )
    result = BatchResult("bat_1", s.account.id, s.user.id, NOW, NOW + 10, files)
    archive = bytes(range(256)) * 64  # every byte value, NUL included
    with store.write() as tx:
        tx.insert_batch_result(result, archive)
        assert tx.batch_result(s.account.id, s.user.id, "bat_1", NOW) == result  # its own write
    with store.read() as tx:
        assert tx.batch_result(s.account.id, s.user.id, "bat_1", NOW + 9) == result
        assert tx.batch_result_archive(s.account.id, s.user.id, "bat_1", NOW + 9) == (NOW, archive)
        for account, user, result_id, at in (
            (s.account.id, s.admin.id, "bat_1", NOW),  # another person of the account
            (s.other.id, s.user.id, "bat_1", NOW),  # another account
            (s.account.id, s.user.id, "bat_2", NOW),  # another id
            (s.account.id, s.user.id, "bat_1", NOW + 10),  # expired
        ):
            assert tx.batch_result(account, user, result_id, at) is None
            assert tx.batch_result_archive(account, user, result_id, at) is None


def test_pruning_batch_results_deletes_expired_ones_only_and_at_most_the_limit(store: Store, s: Seed) -> None:
    with store.write() as tx:
        for n in range(6):
            tx.insert_batch_result(BatchResult(f"bat_{n}", s.account.id, s.user.id, NOW, NOW + n, ()), b"z")
    with store.write() as tx:
        assert tx.prune_batch_results(NOW + 3, 2) == 2  # four have expired; the two oldest go
    assert sorted(r[0] for r in db.rows(store, "SELECT id FROM batch_results")) == [
        "bat_2",
        "bat_3",
        "bat_4",
        "bat_5",
    ]
    with store.write() as tx:
        assert tx.prune_batch_results(NOW + 3, 16) == 2
        assert tx.prune_batch_results(NOW + 3, 16) == 0
    with store.read() as tx:
        assert tx.batch_result(s.account.id, s.user.id, "bat_4", NOW + 3) is not None


def test_audit_entries_are_newest_first_limited_and_scoped(store: Store) -> None:
    def entry(n: int, account: str = "acc", license_id: str | None = None) -> AuditEntry:
        return AuditEntry(
            at=n, actor="a", action="x", code="OK", account_id=account, license_id=license_id,
            detail={"n": str(n)} if n % 2 else {},
        )  # fmt: skip

    with store.write() as tx:
        for n in range(5):
            tx.audit(entry(n, license_id="lic_1" if n % 2 else "lic_2"))
        tx.audit(entry(9, account="other", license_id="lic_1"))
        assert [e.at for e in tx.audit_entries("acc", limit=2)] == [4, 3]  # sees its own buffered entries
    with store.read() as tx:
        assert tx.audit_entries("acc") == [
            entry(n, license_id="lic_1" if n % 2 else "lic_2") for n in (4, 3, 2, 1, 0)
        ]
        assert [e.at for e in tx.audit_entries_for_licenses("acc", frozenset({"lic_1"}))] == [3, 1]
        assert [
            e.at for e in tx.audit_entries_for_licenses("acc", frozenset({"lic_1", "lic_2"}), limit=3)
        ] == [
            4,
            3,
            2,
        ]
        assert tx.audit_entries_for_licenses("acc", frozenset()) == []


def test_audit_entries_for_licenses_finds_a_quiet_persons_entries_on_a_busy_account(store: Store) -> None:
    with store.write() as tx:
        tx.audit(
            AuditEntry(at=1, actor="a", action="activation", code="OK", account_id="acc", license_id="mine")
        )
        for i in range(3000):  # somebody else's busy license, newer than the quiet person's entry
            tx.audit(
                AuditEntry(
                    at=2 + i,
                    actor="b",
                    action="activation",
                    code="OK",
                    account_id="acc",
                    license_id="theirs",
                )
            )
        tx.audit(
            AuditEntry(
                at=9999, actor="a", action="activation", code="OK", account_id="other", license_id="mine"
            )
        )
    with store.read() as tx:
        found = tx.audit_entries_for_licenses("acc", frozenset({"mine"}), limit=10)
        assert [(e.at, e.license_id, e.account_id) for e in found] == [(1, "mine", "acc")]
        assert tx.audit_entries_for_licenses("acc", frozenset(), limit=10) == []


def test_every_migration_is_recorded_once(store: Store) -> None:
    from offline_service.store.migrate import migrations

    versions = [m.version for m in migrations("sqlite")]
    assert sorted(v for (v,) in db.rows(store, "SELECT version FROM schema_migrations")) == versions
    assert store.schema_version == versions[-1]


def test_times_after_2038_round_trip(store: Store, s: Seed) -> None:
    late = 2**40  # epoch seconds do not fit 32 bits after 2038-01-19
    with store.write() as tx:
        tx.insert_license(new_license(s, 0, expires_at=late))
    with store.read() as tx:
        found = tx.license_by_id(s.account.id, "lic_0")
    assert found is not None and found.expires_at == late
