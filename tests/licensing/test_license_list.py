"""Finding licenses in the portal: the line that tells licenses apart, the Licenses list's search,
filters, sorting and pages (a GET form whose hostile values fall back to defaults), a license's
linked groups and its activations' search, filter, order and pages, and the dashboard's licenses
that need attention. Always within the licenses the person may see."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Role
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import DAY
from offline_service.licensing.models import Activation, License, LicenseStatus
from offline_service.web.kit import mask_key
from tests import people
from tests.factories import NOW
from tests.web.portal import PASSWORD, Portal, shown_text

ALICE = "alice@example.com"  # admin of Globex: org_linked, org_only and every license made here
BOB = "bob@example.com"  # a user of Globex, in Engineering (linked to org_linked), owns bobs


def _license(
    portal: Portal,
    n: int,
    *,
    name: str | None = None,
    owner: str | None = None,
    allowed: int = 3,
    used: int = 0,
    expires_at: int | None = None,
    status: LicenseStatus | None = None,
    product_id: str | None = None,
    user: str | None = None,
) -> License:
    """A license of Globex (or of ``user``), created at NOW + n, with ``used`` activations counted."""
    store = portal.svc.store
    lic = admin.create_license(
        store,
        portal.acme,
        product_id=product_id or portal.product.id,
        allowed_activations=allowed,
        allowed_deactivations=2,
        now=NOW + n,
        # A license is never created expired: one that has expired since gets its date below.
        expires_at=expires_at if expires_at is None or expires_at > NOW + n else None,
        name=name,
        owner=owner,
        owner_organization=None if user else "Globex",
        owner_user_email=user,
    )
    if used or (expires_at is not None and expires_at <= NOW + n):
        with store.write() as tx:
            tx.update_license_usage(
                lic.id, used_activations=used, used_deactivations=0, expires_at=expires_at
            )
    if status is not None:
        admin.set_license_status(store, portal.acme, lic.key, status, now=NOW)
    return lic


def _ids(html: str) -> list[str]:
    """The licenses a list shows, in its order."""
    return re.findall(r'<th scope="row"><a href="/licenses/(lic_[0-9a-f]+)"', html)


def _globex(portal: Portal) -> list[str]:
    """The fixture's two licenses of Globex, in the list's order: made at the same time, so by id."""
    return sorted([portal.org_linked.id, portal.org_only.id])


def _list(client: TestClient, query: str = "") -> Any:
    response = client.get(f"/licenses{query}")
    assert response.status_code == 200, response.text
    return response


# -- telling licenses apart --------------------------------------------------------------------


def test_a_license_shows_its_name_else_its_owner_note_else_who_holds_it(portal: Portal) -> None:
    named = _license(portal, 1, name="Line 3 readers", owner="Plant manager")
    noted = _license(portal, 2, owner="Night shift")
    alice = portal.login(ALICE)
    page = _list(alice).text
    names = re.findall(r'<td data-label="Name">([^<]*)</td>', page)
    # org_linked and org_only have no name and no note: their organization tells who holds them.
    assert names == ["Globex", "Globex", "Line 3 readers", "Night shift"]
    detail = shown_text(alice.get(f"/licenses/{named.id}").text)
    assert "Line 3 readers" in detail and "Owner Plant manager" in detail and "Held by Globex" in detail
    assert "License for App" in shown_text(alice.get(f"/licenses/{noted.id}").text)  # no name: as before
    bob = portal.login(BOB)
    own = _list(bob, "?q=bob").text  # his own license: his email, as he has no name
    assert _ids(own) == [portal.bobs.id] and '<td data-label="Name">bob@example.com</td>' in own


def test_the_vendor_names_a_license_at_creation_and_later(portal: Portal) -> None:
    lic = _license(portal, 1)
    changed = admin.update_license(portal.svc.store, portal.acme, lic.key, name="  Lab bench  ", now=NOW)
    assert (changed.name, changed.owner) == ("Lab bench", None)
    alice = portal.login(ALICE)
    assert "Lab bench" in shown_text(alice.get(f"/licenses/{lic.id}").text)
    admin.update_license(portal.svc.store, portal.acme, lic.key, name="", owner="Ann", now=NOW)
    text = shown_text(alice.get(f"/licenses/{lic.id}").text)
    assert "Lab bench" not in text and "Owner Ann" in text
    assert "License name or owner changed" in shown_text(alice.get("/").text)


@pytest.mark.parametrize("bad", [{"name": "a\x00b"}, {"owner": "x" * 201}, {}])
def test_a_bad_name_or_owner_is_refused_and_changes_nothing(portal: Portal, bad: dict[str, str]) -> None:
    lic = _license(portal, 1, name="Kept")
    before = portal.snapshot()
    with pytest.raises(OfflineServiceError) as info:
        admin.update_license(portal.svc.store, portal.acme, lic.key, now=NOW, **bad)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert portal.snapshot() == before


# -- the Licenses list -------------------------------------------------------------------------


def test_search_finds_by_key_end_product_name_and_owner(portal: Portal) -> None:
    bench = admin.create_product(
        portal.svc.store, portal.svc.keyring, portal.acme, name="Bench tool", now=NOW
    )
    named = _license(portal, 1, name="Line 3 readers")
    noted = _license(portal, 2, owner="Night shift")
    tool = _license(portal, 3, product_id=bench.id)
    alice = portal.login(ALICE)
    key_end = named.key[-5:].lower()
    assert _ids(_list(alice, f"?q={key_end}").text) == [named.id]
    assert _ids(_list(alice, f"?q={named.key[:5]}").text) == []  # the end of the key only
    assert _ids(_list(alice, "?q=LINE+3").text) == [named.id]
    assert _ids(_list(alice, "?q=night").text) == [noted.id]
    assert _ids(_list(alice, "?q=bench").text) == [tool.id]
    page = _list(alice, "?q=nothing+like+this")
    text = shown_text(page.text)
    assert "0 of 5 licenses" in text and "No license matches" in text
    assert 'value="nothing like this"' in page.text  # the search stays in the form


def test_search_never_reaches_beyond_the_persons_licenses(portal: Portal) -> None:
    secret = _license(portal, 1, name="Secret plant")  # Globex's, not linked to bob's group
    other = admin.create_license(
        portal.svc.store,
        portal.other,
        product_id=portal.other_bobs.product_id,
        allowed_activations=1,
        allowed_deactivations=1,
        now=NOW,
        name="Secret plant too",
        owner_user_email=BOB,
    )
    bob = portal.login(BOB)
    for query in (
        "?q=secret",
        f"?q={secret.key[-5:]}",
        f"?q={portal.carols.key[-5:]}",
        "?q=carol",
        "?q=other",
    ):
        page = _list(bob, query)
        assert _ids(page.text) == [], query
        assert "0 of 2 licenses" in shown_text(page.text)
        for hidden in (secret, other, portal.carols, portal.org_only):
            assert mask_key(hidden.key) not in page.text
    # The other account's bob, with a license named alike, sees only his own two.
    other_bob = portal.login(BOB, account="other", password="another staple 42")
    assert set(_ids(_list(other_bob, "?q=secret").text)) == {other.id}
    assert secret.id not in _list(other_bob, "?attention=any").text


def test_filters_by_status_product_and_attention(portal: Portal) -> None:
    bench = admin.create_product(
        portal.svc.store, portal.svc.keyring, portal.acme, name="Bench tool", now=NOW
    )
    full = _license(portal, 1, allowed=5, used=4)  # 80%: near the limit
    soon = _license(portal, 2, expires_at=NOW + 10 * DAY)
    gone = _license(portal, 3, expires_at=NOW - DAY)
    held = _license(portal, 4, status=LicenseStatus.SUSPENDED)
    dead = _license(portal, 5, allowed=1, used=1, status=LicenseStatus.REVOKED)
    open_ended = _license(portal, 6, allowed=-1, used=50, product_id=bench.id)  # unlimited: never near
    alice = portal.login(ALICE)
    base = _globex(portal)
    assert _ids(_list(alice, "?status=active").text) == [*base, full.id, soon.id, open_ended.id]
    assert _ids(_list(alice, "?status=expired").text) == [gone.id]
    assert _ids(_list(alice, "?status=suspended").text) == [held.id]
    assert _ids(_list(alice, "?status=revoked").text) == [dead.id]
    assert _ids(_list(alice, f"?product={bench.id}").text) == [open_ended.id]
    assert _ids(_list(alice, "?attention=near-limit").text) == [full.id, dead.id]
    assert _ids(_list(alice, "?attention=near-expiry").text) == [soon.id]
    assert _ids(_list(alice, "?attention=any").text) == [full.id, soon.id, held.id]
    assert _ids(_list(alice, "?attention=near-limit&status=active").text) == [full.id]
    page = _list(alice, f"?status=suspended&product={portal.product.id}&attention=any&q=")
    assert _ids(page.text) == [held.id] and "1 of 8 licenses" in shown_text(page.text)
    for kept in (
        '<option value="suspended" selected>',
        f'<option value="{portal.product.id}" selected>',
        '<option value="any" selected>',
    ):
        assert kept in page.text, kept


def test_sorts_by_product_name_expiry_seats_and_creation_both_ways(portal: Portal) -> None:
    bench = admin.create_product(
        portal.svc.store, portal.svc.keyring, portal.acme, name="Bench tool", now=NOW
    )
    a = _license(portal, 1, name="beta-x", used=2, expires_at=NOW + 9 * DAY)
    b = _license(portal, 2, name="Alpha-x", used=1, product_id=bench.id)
    c = _license(portal, 3, owner="gamma-x", used=3, expires_at=NOW + 2 * DAY)
    alice = portal.login(ALICE)
    q = "?q=-x&"  # the three, not org_linked or org_only
    assert _ids(_list(alice, q + "sort=name").text) == [b.id, a.id, c.id]
    assert _ids(_list(alice, q + "sort=name&dir=desc").text) == [c.id, a.id, b.id]
    assert _ids(_list(alice, q + "sort=product").text) == [a.id, c.id, b.id]  # App, then Bench tool
    assert _ids(_list(alice, q + "sort=product&dir=desc").text) == [b.id, c.id, a.id]
    assert _ids(_list(alice, q + "sort=expiry").text) == [c.id, a.id, b.id]  # never: last
    assert _ids(_list(alice, q + "sort=expiry&dir=desc").text) == [a.id, c.id, b.id]
    assert _ids(_list(alice, q + "sort=seats").text) == [b.id, a.id, c.id]
    assert _ids(_list(alice, q + "sort=seats&dir=desc").text) == [c.id, a.id, b.id]
    assert _ids(_list(alice, q + "sort=created&dir=desc").text) == [c.id, b.id, a.id]
    page = _list(alice, q + "sort=seats&dir=desc")
    assert '<option value="seats" selected>' in page.text and '<option value="desc" selected>' in page.text


def test_pages_of_25_with_their_edges(portal: Portal) -> None:
    made = [_license(portal, n, name=f"Fleet {n:02d}") for n in range(1, 31)]
    alice = portal.login(ALICE)
    everything = [*_globex(portal), *(x.id for x in made)]
    first = _list(alice)
    assert _ids(first.text) == everything[:25]
    text = shown_text(first.text)
    assert "32 of 32 licenses" in text and "Page 1 of 2 (1 to 25 of 32)" in text
    assert 'href="/licenses?page=2" rel="next"' in first.text and 'rel="prev"' not in first.text
    second = _list(alice, "?page=2")
    assert _ids(second.text) == everything[25:]
    assert 'href="/licenses" rel="prev"' in second.text and 'rel="next"' not in second.text
    assert _ids(_list(alice, "?page=3").text) == everything[25:]  # past the end: the last page
    assert _ids(_list(alice, "?page=99999999999999999999999").text) == everything[:25]
    for bad in ("abc", "0", "-1", "1.5", "\uff12", ""):
        assert _ids(_list(alice, f"?page={bad}").text) == everything[:25], bad
    # The pages keep the query, and a page of a search holds what the search found.
    fleet = _list(alice, "?q=fleet&sort=name&dir=desc")
    assert 'href="/licenses?q=fleet&amp;sort=name&amp;dir=desc&amp;page=2"' in fleet.text
    assert _ids(_list(alice, "?q=fleet&sort=name&dir=desc&page=2").text) == [x.id for x in made[4::-1]]


@pytest.mark.parametrize(
    "query",
    [
        "?status=bogus&product=../../etc/passwd&attention=everything&sort=;DROP+TABLE+licenses&dir=up",
        "?q=%00%01%7f" + "x" * 5000,
        "?q=%25%5F%5C&status[]=active&unknown=1",
        "?product=prod_000000000000000000000000&sort=NAME&dir=DESC",
        "?q=%ED%A0%80&page=%F0%9F%98%80",
        "?status=active&status=revoked&page=1&page=2",
    ],
)
def test_hostile_and_unknown_parameters_fall_back_to_defaults(portal: Portal, query: str) -> None:
    alice = portal.login(ALICE)
    response = alice.get(f"/licenses{query}")
    assert response.status_code == 200, response.text
    text = shown_text(response.text)
    assert "of 2 licenses" in text
    assert set(_ids(response.text)) <= {portal.org_linked.id, portal.org_only.id}


def test_the_defaults_are_what_the_form_shows_for_an_unknown_value(portal: Portal) -> None:
    alice = portal.login(ALICE)
    page = _list(alice, "?status=bogus&sort=bogus&dir=bogus&attention=bogus&product=bogus")
    assert _ids(page.text) == _globex(portal)
    assert " selected" not in page.text.replace('<option value="asc" selected>', "").replace(
        '<option value="created" selected>', ""
    )
    assert '<option value="asc" selected>' in page.text and '<option value="created" selected>' in page.text


def test_a_person_without_licenses_is_told_so(portal: Portal) -> None:
    people.create_user(
        portal.svc.store, portal.acme, email="dave@example.com", role=Role.USER, password=PASSWORD, now=NOW
    )
    dave = portal.login("dave@example.com")
    for path in ("/licenses", "/licenses?q=a&status=active", "/"):
        assert "You have no licenses yet" in shown_text(dave.get(path).text), path
    assert "Needs attention" not in dave.get("/").text


# -- a license's page: its groups and its activations -----------------------------------------


def test_an_admin_sees_every_linked_group_with_links_and_a_user_only_their_own_names(portal: Portal) -> None:
    store, acme = portal.svc.store, portal.acme
    secret = people.create_group(store, acme, organization="Globex", name="Secret squad", now=NOW)
    people.link_group_license(store, acme, group="Secret squad", license_key=portal.org_linked.key, now=NOW)
    tooling = people.create_group(store, acme, organization="Globex", name="Tooling", now=NOW)
    alice, bob, carol = portal.login(ALICE), portal.login(BOB), portal.login("carol@example.com")

    as_admin = alice.get(f"/licenses/{portal.org_linked.id}").text
    assert f'<a href="/organization/groups/{secret.id}">Secret squad</a>' in as_admin
    assert ">Engineering</a>" in as_admin and tooling.id not in as_admin  # Tooling is not linked
    assert "only the organization's admins may use it" in shown_text(
        alice.get(f"/licenses/{portal.org_only.id}").text
    )

    as_user = bob.get(f"/licenses/{portal.org_linked.id}").text
    assert "Your groups Engineering" in shown_text(as_user)
    assert "Secret squad" not in as_user and "/organization/groups" not in as_user
    own = bob.get(f"/licenses/{portal.bobs.id}").text  # his own license: no group
    assert "Your groups" not in own and "Engineering" not in own
    assert "Engineering" not in carol.get(f"/licenses/{portal.carols.id}").text


def _activations(portal: Portal, lic: License, count: int) -> list[Activation]:
    """``count`` activations of ``lic``, written straight into the store (hostnames m-00...;
    every third deactivated), newest last."""
    made = [
        Activation(
            id=f"act_{lic.id}_{n:02d}",
            license_id=lic.id,
            product_id=lic.product_id,
            fingerprint=f"fingerprint-{n:02d}",
            machine_key=bytes([n]) * 32,
            machine_key_thumbprint="t" * 43,
            created_at=NOW - 1000 + n,
            hostname=f"m-{(count - n):02d}" if n else "",
            deactivated_at=NOW if n % 3 == 1 else None,
        )
        for n in range(count)
    ]
    with portal.svc.store.write() as tx:
        for a in made:
            tx.insert_activation(a)
    return made


def _machines(html: str) -> list[str]:
    """The activations a license's page shows, by number, in its order."""
    return re.findall(r'<code class="fingerprint">fingerprint-(\d\d)</code>', html)


def test_a_licenses_activations_are_searched_filtered_sorted_and_paged(portal: Portal) -> None:
    made = _activations(portal, portal.bobs, 30)
    bob = portal.login(BOB)
    path = f"/licenses/{portal.bobs.id}"

    def shown(query: str = "") -> list[str]:
        response = bob.get(path + query)
        assert response.status_code == 200, response.text
        return _machines(response.text)

    newest = [f"{n:02d}" for n in range(29, -1, -1)]
    assert shown() == newest[:25]
    first = bob.get(path).text
    assert "30 of 30 activations" in shown_text(first) and "Page 1 of 2 (1 to 25 of 30)" in shown_text(first)
    assert f'href="{path}?page=2#activations" rel="next">Older</a>' in first
    assert shown("?page=2") == newest[25:]
    assert shown("?page=7") == newest[25:] and shown("?page=abc") == newest[:25]
    assert shown("?q=m-07") == ["23"] and shown("?q=FINGERPRINT-1") == [f"{n}" for n in range(19, 9, -1)]
    dead = [f"{n:02d}" for n in range(28, 0, -1) if n % 3 == 1]
    assert shown("?status=deactivated") == dead
    assert len(shown("?status=live")) == 20
    # By hostname: m-01 (29) ... m-25 (5) on the first page, the machine without one last.
    assert shown("?sort=hostname") == [f"{n:02d}" for n in range(29, 4, -1)]
    assert shown("?sort=hostname&page=2") == ["04", "03", "02", "01", "00"]
    filtered = bob.get(path + "?q=m-0&status=live&sort=hostname").text
    assert 'value="m-0"' in filtered and '<option value="live" selected>' in filtered
    assert '<option value="hostname" selected>' in filtered
    assert "No activation of this license matches" in bob.get(path + "?q=zzz").text
    for hostile in ("?status=x&sort=%00&q=%00" + "y" * 3000, "?page=-5&sort[]=1"):
        assert bob.get(path + hostile).status_code == 200
    assert len(made) == 30


def test_another_persons_activations_never_show_through_the_license_page(portal: Portal) -> None:
    _activations(portal, portal.carols, 3)
    bob = portal.login(BOB)
    for query in ("", "?q=fingerprint", "?sort=hostname&status=live"):
        response = bob.get(f"/licenses/{portal.carols.id}{query}")
        assert response.status_code == 404 and "fingerprint-" not in response.text


# -- the dashboard -----------------------------------------------------------------------------


def test_the_dashboard_shows_the_few_licenses_that_need_attention(portal: Portal) -> None:
    full = _license(portal, 1, name="Full one", allowed=5, used=5)
    soon = _license(portal, 2, name="Soon one", expires_at=NOW + 3 * DAY)
    held = _license(portal, 3, name="Held one", status=LicenseStatus.SUSPENDED)
    _license(portal, 4, name="Revoked full", allowed=1, used=1, status=LicenseStatus.REVOKED)
    _license(portal, 5, name="Expired one", expires_at=NOW - DAY)
    _license(portal, 6, name="Healthy one", allowed=10, used=7, expires_at=NOW + 31 * DAY)
    _license(portal, 7, name="Carols full", allowed=1, used=1, user="carol@example.com")
    alice = portal.login(ALICE)
    page = alice.get("/")
    text = shown_text(page.text)
    # Soonest expiry first, then those that never expire, oldest first.
    assert _ids(page.text) == [soon.id, full.id, held.id]
    assert "Expires in 3 days" in text and "5 of 5 activations used" in text and "Suspended" in text
    for quiet in ("Revoked full", "Expired one", "Healthy one", "Carols full"):
        assert quiet not in text, quiet
    assert "Every license that needs attention (3)" in text and "more." not in text
    assert "8 licenses in all" in text  # the counts over every license of hers, as before
    listed = _list(alice, "?attention=any&sort=expiry")
    assert _ids(listed.text) == [soon.id, full.id, held.id]


def test_the_dashboard_shows_five_and_links_to_the_rest(portal: Portal) -> None:
    near = [_license(portal, n, allowed=2, used=2, expires_at=NOW + n * DAY) for n in range(1, 8)]
    alice = portal.login(ALICE)
    page = alice.get("/")
    assert _ids(page.text) == [x.id for x in near[:5]]
    text = shown_text(page.text)
    assert "2 more." in text and "Every license that needs attention (7)" in text
    assert 'href="/licenses?attention=any&amp;sort=expiry"' in page.text
    assert _ids(_list(alice, "?attention=any&sort=expiry").text) == [x.id for x in near]


def test_the_dashboard_says_when_nothing_needs_attention(portal: Portal) -> None:
    text = shown_text(portal.login(ALICE).get("/").text)
    assert "Nothing needs attention" in text and "2 licenses in all" in text
