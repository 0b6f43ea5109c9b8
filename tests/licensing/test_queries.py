"""licensing.queries: what the licensing routes and verbs read, scoped to a person's licenses or to
the vendor's account. A license outside the scope is LICENSE_NOT_FOUND, exactly like a missing one."""

from __future__ import annotations

import pytest

from offline_service.accounts.models import Role, User
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing import queries
from offline_service.licensing import services as admin
from offline_service.licensing.models import ActivationFilter
from tests.factories import NOW, World


def _viewer(account_id: str) -> User:
    """A plain user of the account, of no group (the license views' groups are tested on the pages)."""
    return User(id="usr_viewer", account_id=account_id, email="v@example.com", role=Role.USER, created_at=NOW)


def _not_found(call: object) -> None:
    with pytest.raises(OfflineServiceError) as info:
        assert callable(call)
        call()
    assert info.value.code is Code.LICENSE_NOT_FOUND


def test_a_person_sees_only_the_licenses_in_scope(world: World) -> None:
    mine, other = world.license(), world.license()
    scope = frozenset({mine.id})
    account = world.account.id
    assert [x.id for x in queries.visible_licenses(world.store, account, scope)] == [mine.id]
    assert queries.visible_license(world.store, account, scope, mine.id).id == mine.id
    for license_id in (other.id, "lic_000000000000000000000000"):
        _not_found(lambda i=license_id: queries.visible_license(world.store, account, scope, i))
        _not_found(lambda i=license_id: queries.license_activations(world.store, account, scope, i))
        _not_found(lambda i=license_id: queries.license_view(world.store, _viewer(account), scope, i))
        query = ActivationFilter(product_id=None, license_id=license_id, live=None, text="")
        _not_found(
            lambda q=query: queries.find_activations(world.store, account, scope, q, limit=10, offset=0)
        )


def test_another_account_sees_nothing_even_with_the_id(world: World) -> None:
    mine = world.license()
    elsewhere, _ = admin.ensure_account(world.store, "elsewhere", now=NOW)
    scope = frozenset({mine.id})  # as if the other account's person named this id
    assert queries.visible_licenses(world.store, elsewhere.id, scope) == []
    _not_found(lambda: queries.visible_license(world.store, elsewhere.id, scope, mine.id))
    _not_found(lambda: queries.license_view(world.store, _viewer(elsewhere.id), scope, mine.id))
    assert queries.product_names(world.store, elsewhere.id) == {}
    assert queries.products(world.store, elsewhere) == []
    assert queries.licenses(world.store, elsewhere) == []
    with pytest.raises(OfflineServiceError) as info:
        queries.check_product(world.store, elsewhere, world.product.id)
    assert info.value.code is Code.PRODUCT_NOT_FOUND


def test_a_license_view_and_the_activations_it_finds(world: World) -> None:
    lic = world.license()
    for name in ("a", "b"):
        request = world.machine(name).request(Kind.ACTIVATION, world.product.id, license_key=lic.key)
        assert world.process(request).ok
    scope, account = frozenset({lic.id}), world.account.id
    view = queries.license_view(world.store, _viewer(account), scope, lic.id)
    assert view.license.id == lic.id and view.product is not None and view.product.name == "App"
    assert len(view.activations) == 2
    assert len(queries.license_activations(world.store, account, scope, lic.id)) == 2
    query = ActivationFilter(product_id=None, license_id=None, live=True, text="")
    page = queries.find_activations(world.store, account, scope, query, limit=1, offset=0)
    assert page.total == 2 and len(page.activations) == 1
    assert page.products == {world.product.id: "App"} and set(page.licenses) == {lic.id}
    assert queries.find_activations(world.store, account, frozenset(), query, limit=10, offset=0).total == 0
    entries = queries.recent_activity(world.store, account, scope, limit=10)
    assert entries and all(e.license_id == lic.id for e in entries)
    assert queries.recent_activity(world.store, account, frozenset(), limit=10) == []


def test_account_of_product(world: World) -> None:
    assert queries.account_of_product(world.store, world.product.id) == world.account.id
    with pytest.raises(OfflineServiceError) as info:
        queries.account_of_product(world.store, "prod_000000000000000000000000")
    assert info.value.code is Code.PRODUCT_NOT_FOUND
