"""The admin API's list of an account's activations and its one activation, in-process, on both
backends: each route with its scope (and 403 without), no, a person's or a made-up token (401),
another account's token (404 or an empty list, nothing of this account's in the answer, nothing
changed), the filters (product, license, state), bad queries, and cursor paging while machines
activate between pages."""

from __future__ import annotations

from collections.abc import Callable

import httpx2 as httpx
import pytest

from offline_service.admin.models import Scope
from offline_service.fileformat.messages import Kind
from tests.factories import NOW, Machine
from tests.web.site import EMAILS, Site, error

Call = Callable[[Site, str], tuple[str, str]]

ROUTES: dict[str, tuple[Scope, Call]] = {
    "list": (Scope.ACTIVATIONS_READ, lambda site, a: ("GET", "/v1/admin/activations")),
    "list a product's": (
        Scope.ACTIVATIONS_READ,
        lambda site, a: ("GET", f"/v1/admin/activations?product={site.product.id}&state=live&limit=5"),
    ),
    "show": (Scope.ACTIVATIONS_READ, lambda site, a: ("GET", f"/v1/admin/activations/{a}")),
}


def _activate(site: Site, n: int, *, product_id: str | None = None, key: str | None = None) -> str:
    """Machine ``n`` activates (user1's license, or the key given, of the product given); its
    activation id."""
    machine = Machine(fingerprint=f"fp-admin-{n}")
    request = machine.request(
        Kind.ACTIVATION,
        product_id or site.product.id,
        license_key=key or site.licenses["user1"].key,
        issued_at=NOW,
    )
    granted = site.activate("user1", request)
    assert granted.status_code == 200, granted.text
    return str(granted.json()["activationId"])


def _unlimited(site: Site) -> None:
    lid = site.licenses["user1"].id
    answer = site.client.patch(
        f"/v1/admin/licenses/{lid}",
        json={"allowedActivations": -1, "allowedDeactivations": -1},
        headers=site.admin_auth(Scope.LICENSES_WRITE.value),
    )
    assert answer.status_code == 200, answer.text


def _send(site: Site, name: str, headers: dict[str, str], activation_id: str) -> httpx.Response:
    method, path = ROUTES[name][1](site, activation_id)
    return site.client.request(method, path, headers=headers)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_an_activation_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    activation_id = _activate(site, 1)
    scope = ROUTES[name][0]
    allowed = _send(site, name, site.admin_auth(scope.value), activation_id)
    assert allowed.status_code == 200, allowed.text
    assert activation_id in allowed.text
    others = [s.value for s in Scope if s is not scope]
    assert error(_send(site, name, site.admin_auth(*others), activation_id)) == (403, "FORBIDDEN")
    for headers in (
        {},
        site.auth("user1"),
        {"authorization": "Bearer ofs_admin_" + "A" * 43},
        {"authorization": "Basic x"},
    ):
        assert error(_send(site, name, headers, activation_id)) == (401, "UNAUTHENTICATED"), headers


def test_another_accounts_token_finds_none_of_this_accounts_activations(site: Site) -> None:
    activation_id = _activate(site, 1)
    headers = site.admin_auth(account="other")
    before = site.state()
    shown = site.client.get(f"/v1/admin/activations/{activation_id}", headers=headers)
    assert error(shown) == (404, "ACTIVATION_NOT_FOUND")
    lid = site.licenses["user1"].id
    for query in (
        "",
        f"product={site.product.id}",
        f"license={lid}",
        f"product={site.product.id}&license={lid}",
    ):
        listed = site.client.get(f"/v1/admin/activations?{query}", headers=headers)
        assert listed.json() == {"activations": [], "nextCursor": None}, query
    assert site.state() == before
    missing = "act_" + "0" * 32
    mine = site.admin_auth(Scope.ACTIVATIONS_READ.value)
    assert error(site.client.get(f"/v1/admin/activations/{missing}", headers=mine)) == (
        404,
        "ACTIVATION_NOT_FOUND",
    )


def test_one_activation_is_shown_as_its_license_lists_it(site: Site) -> None:
    activation_id = _activate(site, 1)
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value)
    shown = site.client.get(f"/v1/admin/activations/{activation_id}", headers=headers).json()
    (listed,) = site.client.get(
        f"/v1/admin/licenses/{site.licenses['user1'].id}/activations", headers=headers
    ).json()["activations"]
    assert shown == listed
    assert (shown["id"], shown["licenseId"], shown["fingerprint"], shown["deactivatedAt"]) == (
        activation_id,
        site.licenses["user1"].id,
        "fp-admin-1",
        None,
    )


def test_the_filters_keep_a_products_a_licenses_and_a_states_activations(site: Site) -> None:
    _unlimited(site)
    first, second, released = (_activate(site, n) for n in (1, 2, 3))
    writer = site.admin_auth(Scope.LICENSES_WRITE.value, Scope.ACTIVATIONS_WRITE.value)
    assert site.client.post(f"/v1/admin/activations/{released}/release", headers=writer).status_code == 200
    # a license of the account's other product, owned by user1
    created = site.client.post(
        "/v1/admin/licenses",
        json={
            "productId": site.no_trials.id,
            "allowedActivations": 2,
            "allowedDeactivations": 0,
            "ownerUserEmail": EMAILS["user1"],
        },
        headers=writer,
    ).json()
    elsewhere = _activate(site, 4, product_id=site.no_trials.id, key=created["key"])
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value)

    def ids(query: str) -> list[str]:
        answer = site.client.get(f"/v1/admin/activations?{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["nextCursor"] is None
        return [a["id"] for a in answer.json()["activations"]]

    everything = sorted([first, second, released, elsewhere])
    assert ids("") == everything
    assert ids(f"product={site.product.id}") == sorted([first, second, released])
    assert ids(f"product={site.no_trials.id}") == [elsewhere]
    assert ids(f"license={created['id']}") == [elsewhere]
    assert ids(f"license={created['id']}&product={site.product.id}") == []
    assert ids("state=live") == sorted([first, second, elsewhere])
    assert ids("state=deactivated") == [released]
    assert ids(f"state=live&license={site.licenses['user1'].id}") == sorted([first, second])
    assert ids("state=&product=&license=") == everything  # empty: no filter


@pytest.mark.parametrize(
    "query",
    [
        "cursor=abc",
        "cursor=" + "A" * 32,
        "cursor=act_" + "0" * 32,
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=1e3",
        "state=expired",
        "state=LIVE",
        "product=lic_" + "0" * 32,
        "product=x%00",
        "license=prod_" + "0" * 32,
        "license=" + "l" * 5000,
    ],
)
def test_a_bad_query_is_refused(site: Site, query: str) -> None:
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value)
    assert error(site.client.get(f"/v1/admin/activations?{query}", headers=headers)) == (
        400,
        "INVALID_ARGUMENT",
    ), query


def test_cursor_pages_miss_and_repeat_nothing_while_machines_activate(site: Site) -> None:
    _unlimited(site)
    existing = [_activate(site, n) for n in range(5)]
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value)
    created: list[str] = []
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/admin/activations?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = site.client.get(url, headers=headers).json()
        pages += 1
        assert len(page["activations"]) <= 2
        seen += [a["id"] for a in page["activations"]]
        created.append(_activate(site, 100 + pages))  # an activation made between pages
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(existing) <= set(seen)  # nothing older skipped
    assert set(seen) <= set(existing) | set(created)
    assert seen == sorted(seen)
    # paged by product too, each page in order, the same rows
    again: list[str] = []
    cursor = None
    while True:
        url = f"/v1/admin/activations?limit=3&product={site.product.id}" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = site.client.get(url, headers=headers).json()
        again += [a["id"] for a in page["activations"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert again == sorted(set(existing) | set(created))


def test_a_page_that_ends_exactly_at_the_last_activation_says_so(site: Site) -> None:
    first, second = _activate(site, 1), _activate(site, 2)
    headers = site.admin_auth(Scope.ACTIVATIONS_READ.value)
    page = site.client.get("/v1/admin/activations?limit=1", headers=headers).json()
    assert [a["id"] for a in page["activations"]] == [min(first, second)]
    last = site.client.get(
        f"/v1/admin/activations?limit=1&cursor={page['nextCursor']}", headers=headers
    ).json()
    assert last == {"activations": last["activations"], "nextCursor": None}
    assert [a["id"] for a in last["activations"]] == [max(first, second)]
