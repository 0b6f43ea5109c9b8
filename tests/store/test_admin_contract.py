"""The store contract of the admin API's part, and of the license reads and writes it added, run
against every backend (as tests/store/test_contract.py): admin tokens by hash and by account,
revocation, kept idempotent answers and their expiry, license terms, and license pages by id."""

from __future__ import annotations

from dataclasses import replace

import pytest

from offline_service.admin.models import AdminToken, IdempotentResult, Scope
from offline_service.audit import AuditEntry
from offline_service.errors import OfflineServiceError
from offline_service.licensing.models import LicenseStatus, Product
from offline_service.store import Store
from tests.store.contract import NOW, Seed, new_activation, new_license
from tests.store.test_contract import opener, s, store

__all__ = ["opener", "s", "store"]  # the shared fixtures, found by pytest through this module


def _token(n: int, account_id: str, **fields: object) -> AdminToken:
    values: dict[str, object] = {
        "id": f"adt_{n}",
        "account_id": account_id,
        "token_hash": bytes([n]) * 32,
        "name": f"token {n}",
        "scopes": frozenset({Scope.LICENSES_READ, Scope.LICENSES_WRITE}),
        "created_at": NOW + n,
        "expires_at": NOW + 1000,
    }
    values.update(fields)
    return AdminToken(**values)  # type: ignore[arg-type]


def test_admin_tokens_round_trip_by_hash_and_by_account(store: Store, s: Seed) -> None:
    mine, other = _token(1, s.account.id), _token(2, s.other.id, scopes=frozenset(Scope))
    with store.write() as tx:
        tx.insert_admin_token(other)
        tx.insert_admin_token(mine)
        tx.insert_admin_token(_token(3, s.account.id, name=""))
    with store.read() as tx:
        assert tx.admin_token_by_hash(mine.token_hash) == mine
        assert tx.admin_token_by_hash(other.token_hash) == other
        assert tx.admin_token_by_hash(b"\0" * 32) is None
        assert [t.id for t in tx.admin_tokens(s.account.id)] == ["adt_1", "adt_3"]
        assert [t.id for t in tx.admin_tokens(s.other.id)] == ["adt_2"]


def test_a_token_hash_is_unique(store: Store, s: Seed) -> None:
    with store.write() as tx:
        tx.insert_admin_token(_token(1, s.account.id))
    with pytest.raises(OfflineServiceError), store.write() as tx:
        tx.insert_admin_token(_token(2, s.other.id, token_hash=bytes([1]) * 32))


def test_revoking_is_scoped_to_the_account_and_happens_once(store: Store, s: Seed) -> None:
    with store.write() as tx:
        tx.insert_admin_token(_token(1, s.account.id))
    with store.write() as tx:
        assert tx.revoke_admin_token(s.other.id, "adt_1", NOW + 5) is False  # another account's
        assert tx.revoke_admin_token(s.account.id, "adt_1", NOW + 5) is True
        assert tx.revoke_admin_token(s.account.id, "adt_1", NOW + 6) is False  # already revoked
        tx.touch_admin_token("adt_1", NOW + 7)
    with store.read() as tx:
        found = tx.admin_token_by_hash(bytes([1]) * 32)
    assert found is not None and (found.revoked_at, found.last_used_at) == (NOW + 5, NOW + 7)


def _result(token_id: str, account_id: str, key: str, **fields: object) -> IdempotentResult:
    values: dict[str, object] = {
        "account_id": account_id,
        "token_id": token_id,
        "key": key,
        "request_hash": b"h" * 32,
        "status": 201,
        "body": '{"id": "lic_1"}',
        "created_at": NOW,
        "expires_at": NOW + 100,
    }
    values.update(fields)
    return IdempotentResult(**values)  # type: ignore[arg-type]


def test_idempotent_results_are_the_account_and_tokens_own_until_they_expire(store: Store, s: Seed) -> None:
    with store.write() as tx:
        tx.insert_admin_token(_token(1, s.account.id))
        tx.insert_admin_token(_token(2, s.account.id))
        tx.insert_admin_token(_token(3, s.other.id))
        kept = _result("adt_1", s.account.id, "k")
        tx.insert_idempotent_result(kept)
        tx.insert_idempotent_result(_result("adt_3", s.other.id, "k", body="other"))
    with store.read() as tx:
        assert tx.idempotent_result(s.account.id, "adt_1", "k", NOW + 99) == kept
        assert tx.idempotent_result(s.account.id, "adt_1", "k", NOW + 100) is None  # expired
        assert tx.idempotent_result(s.account.id, "adt_2", "k", NOW) is None  # another token
        assert tx.idempotent_result(s.account.id, "adt_1", "K", NOW) is None
        other = tx.idempotent_result(s.other.id, "adt_3", "k", NOW)
        assert other is not None and other.body == "other"
    # An expired answer gives way to a new one of the same key; a live one does not.
    with store.write() as tx:
        tx.insert_idempotent_result(
            _result("adt_1", s.account.id, "k", created_at=NOW + 200, expires_at=NOW + 300, body="new")
        )
    with pytest.raises(OfflineServiceError), store.write() as tx:
        tx.insert_idempotent_result(_result("adt_1", s.account.id, "k", created_at=NOW + 201))
    with store.write() as tx:
        assert tx.prune_idempotent_results(NOW + 250, 10) == 1  # the other account's, expired
    with store.read() as tx:
        found = tx.idempotent_result(s.account.id, "adt_1", "k", NOW + 200)
        assert found is not None and found.body == "new"


def test_license_terms_change_and_are_seen_in_and_after_the_transaction(store: Store, s: Seed) -> None:
    license = new_license(s, 1, validity_days=30)
    with store.write() as tx:
        tx.insert_license(license)
    with store.write() as tx:
        assert tx.license_by_id(s.account.id, license.id) is not None  # cached in the transaction
        tx.set_license_terms(
            license.id,
            allowed_activations=-1,
            allowed_deactivations=7,
            expires_at=NOW + 50,
            validity_days=None,
        )
        seen = tx.license_by_id(s.account.id, license.id)
    with store.read() as tx:
        after = tx.license_by_id(s.account.id, license.id)
    expected = replace(
        license, allowed_activations=-1, allowed_deactivations=7, expires_at=NOW + 50, validity_days=None
    )
    assert seen == after == expected


def test_license_pages_go_by_id_filter_and_stay_in_the_account(store: Store, s: Seed) -> None:
    with store.write() as tx:
        for n in (3, 1, 4, 2):
            tx.insert_license(
                new_license(s, n, status=LicenseStatus.SUSPENDED if n == 2 else LicenseStatus.ACTIVE)
            )
        tx.insert_license(
            new_license(s, 5, account_id=s.other.id, product_id=s.other_product.id, key="other-key")
        )
    with store.read() as tx:
        ids = lambda **kw: [x.id for x in tx.licenses_page(s.account.id, **kw)]  # noqa: E731
        assert ids(limit=10) == ["lic_1", "lic_2", "lic_3", "lic_4"]
        assert ids(limit=2) == ["lic_1", "lic_2"]
        assert ids(limit=2, after="lic_2") == ["lic_3", "lic_4"]
        assert ids(limit=2, after="lic_4") == []
        assert ids(limit=10, status=LicenseStatus.SUSPENDED) == ["lic_2"]
        assert ids(limit=10, status=LicenseStatus.ACTIVE, after="lic_1") == ["lic_3", "lic_4"]
        assert ids(limit=10, product_id=s.other_product.id) == []
        assert ids(limit=10, product_id=s.product.id, status=LicenseStatus.ACTIVE, after="lic_3") == ["lic_4"]
        assert [x.id for x in tx.licenses_page(s.other.id, limit=10)] == ["lic_5"]


def test_activation_pages_go_by_id_across_products_filter_and_stay_in_the_account(
    store: Store, s: Seed
) -> None:
    second = Product("prd_c", s.account.id, "Second", False, 0, 60, NOW)
    first, other_license = (
        new_license(s, 1),
        new_license(s, 2, account_id=s.other.id, product_id=s.other_product.id),
    )
    third = new_license(s, 3, product_id=second.id)
    with store.write() as tx:
        tx.insert_product(second)
        for license in (first, other_license, third):
            tx.insert_license(license)
        # ids interleaved across the two products; act_5 deactivated; act_9 another account's
        for n, license in ((4, first), (1, third), (5, first), (2, first), (6, third), (9, other_license)):
            tx.insert_activation(new_activation(license, n, id=f"act_{n}", fingerprint=f"fp-{n}"))
        tx.deactivate("act_5", NOW + 10)
    with store.read() as tx:
        ids = lambda **kw: [a.id for a in tx.activations_page(s.account.id, **kw)]  # noqa: E731
        assert ids(limit=10) == ["act_1", "act_2", "act_4", "act_5", "act_6"]
        assert ids(limit=2) == ["act_1", "act_2"]
        assert ids(limit=2, after="act_2") == ["act_4", "act_5"]
        assert ids(limit=2, after="act_6") == []
        assert ids(limit=10, product_id=s.product.id) == ["act_2", "act_4", "act_5"]
        assert ids(limit=10, license_id=third.id, after="act_1") == ["act_6"]
        assert ids(limit=10, license_id=third.id, product_id=s.product.id) == []
        assert ids(limit=10, live=False) == ["act_5"]
        assert ids(limit=10, live=True, product_id=s.product.id, after="act_2") == ["act_4"]
        # another account's product, license or activation: nothing
        assert ids(limit=10, product_id=s.other_product.id) == []
        assert ids(limit=10, license_id=other_license.id) == []
        assert [a.id for a in tx.activations_page(s.other.id, limit=10)] == ["act_9"]
        assert [a.id for a in tx.activations_page(s.other.id, limit=10, license_id=first.id)] == []
    with store.write() as tx:  # an insert of this transaction is seen (the buffer is flushed)
        tx.insert_activation(new_activation(first, 7, id="act_7", fingerprint="fp-7"))
        assert [a.id for a in tx.activations_page(s.account.id, limit=10, after="act_6")] == ["act_7"]


def test_audit_pages_go_newest_first_by_id_with_filters_in_the_account(store: Store, s: Seed) -> None:
    with store.write() as tx:
        for n in range(6):
            tx.audit(
                AuditEntry(
                    at=NOW + n,
                    actor="cli" if n % 2 else "admin_token:adt_1",
                    action=f"a{n}",
                    code="OK" if n != 3 else "FORBIDDEN",
                    account_id=s.account.id,
                    license_id="lic_1" if n < 3 else None,
                )
            )
        tx.audit(AuditEntry(at=NOW, actor="cli", action="other", code="OK", account_id=s.other.id))
    with store.read() as tx:
        page = lambda **kw: [e.action for _, e in tx.audit_page(s.account.id, **kw)]  # noqa: E731
        everything = tx.audit_page(s.account.id, limit=10)
        assert [e.action for _, e in everything] == ["a5", "a4", "a3", "a2", "a1", "a0"]
        ids = [i for i, _ in everything]
        assert ids == sorted(ids, reverse=True)
        assert page(limit=2, before=ids[1]) == ["a3", "a2"]
        assert page(limit=10, since=NOW + 2, until=NOW + 5) == ["a4", "a3", "a2"]
        assert page(limit=10, actor="cli") == ["a5", "a3", "a1"]
        assert page(limit=10, license_id="lic_1", before=ids[4]) == ["a0"]
        assert page(limit=10, code="FORBIDDEN") == ["a3"]
        assert [e.action for _, e in tx.audit_page(s.other.id, limit=10)] == ["other"]
