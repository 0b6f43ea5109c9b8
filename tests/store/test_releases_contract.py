"""The store contract of the admin API's release reads, run against every backend (as
tests/store/test_contract.py): release pages by id, filtered by product and channel and kept to the
account, and one release by id, found only in its own account."""

from __future__ import annotations

from offline_service.releases.models import Release, ReleaseFile
from offline_service.store import Store
from tests.store.contract import NOW, Seed
from tests.store.test_contract import opener, s, store

__all__ = ["opener", "s", "store"]  # the shared fixtures, found by pytest through this module


def _release(s: Seed, n: int, channel: str = "stable", *, other: bool = False) -> Release:
    account, product = (s.other, s.other_product) if other else (s.account, s.product)
    return Release(f"rel_{n}", account.id, product.id, f"{10 - n}.0", channel, "", NOW + n)


def test_release_pages_go_by_id_filter_and_stay_in_the_account(store: Store, s: Seed) -> None:
    with store.write() as tx:
        for n in (3, 1, 4, 2):
            tx.insert_release(_release(s, n, "beta" if n == 2 else "stable"), [])
        tx.insert_release(_release(s, 5, other=True), [])
    with store.read() as tx:
        ids = lambda **kw: [x.id for x in tx.releases_page(s.account.id, **kw)]  # noqa: E731
        assert ids(limit=10) == ["rel_1", "rel_2", "rel_3", "rel_4"]
        assert ids(limit=2) == ["rel_1", "rel_2"]
        assert ids(limit=2, after="rel_2") == ["rel_3", "rel_4"]
        assert ids(limit=2, after="rel_4") == []
        assert ids(limit=10, after="rel_5") == []
        assert ids(limit=10, channel="beta") == ["rel_2"]
        assert ids(limit=10, channel="stable", after="rel_1") == ["rel_3", "rel_4"]
        assert ids(limit=10, product_id=s.other_product.id) == []
        assert ids(limit=10, product_id=s.product.id, channel="stable", after="rel_3") == ["rel_4"]
        assert tx.releases_page(s.other.id, limit=10) == [_release(s, 5, other=True)]
        assert tx.releases_page(s.other.id, limit=10, after="rel_1") == [_release(s, 5, other=True)]


def test_a_release_by_id_is_found_only_in_its_account(store: Store, s: Seed) -> None:
    mine, theirs = _release(s, 1), _release(s, 2, other=True)
    with store.write() as tx:
        tx.insert_release(mine, [ReleaseFile("fil_a", mine.id, "a.zip", 1, "a" * 64, "p/a")])
        tx.insert_release(theirs, [])
    with store.read() as tx:
        assert tx.release(s.account.id, mine.id) == mine
        assert tx.release(s.other.id, theirs.id) == theirs
        assert tx.release(s.other.id, mine.id) is None
        assert tx.release(s.account.id, theirs.id) is None
        assert tx.release(s.account.id, "rel_none") is None
