"""What the licensing pages, the API and the CLI read, each in one read transaction.

A person sees only licenses of their account whose ids are in ``license_ids`` (what the store's
``visible_license_ids`` gave for them); a license outside that set is LICENSE_NOT_FOUND, exactly
like one that does not exist, so ids are never confirmed. Vendor reads are scoped to the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from offline_service.accounts.models import Account, Role, User, UserGroup
from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import (
    Activation,
    ActivationFilter,
    License,
    LicenseFilter,
    LicenseStatus,
    LicenseSummary,
    ListedLicense,
    Product,
)
from offline_service.store import Store, Transaction

__all__ = [
    "ActivationPage",
    "Dashboard",
    "LicensePage",
    "LicenseView",
    "account_activation",
    "account_of_product",
    "activation_page",
    "activation_view",
    "audit_entries",
    "audit_page",
    "check_product",
    "dashboard",
    "find_activations",
    "find_licenses",
    "license_activations",
    "license_by_id",
    "license_choices",
    "license_page",
    "license_summary",
    "license_view",
    "licenses",
    "product",
    "product_names",
    "products",
    "recent_activity",
    "visible_license",
    "visible_licenses",
]


# -- a person's view -------------------------------------------------------------------------


def _not_found() -> OfflineServiceError:
    return OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license")


def visible_licenses(store: Store, account_id: str, license_ids: frozenset[str]) -> list[License]:
    """The licenses in ``license_ids`` that exist in the account, oldest first (one statement)."""
    with store.read() as tx:
        found = tx.licenses_by_ids(account_id, license_ids)
    return [x for x in found if x.account_id == account_id and x.id in license_ids]


@dataclass(frozen=True, slots=True)
class LicensePage:
    """One page of the licenses that match a list's query."""

    matching: int  # how many match
    total: int  # how many the person may see in all
    number: int  # of this page, from 1: the last page when the one asked for is past the end
    pages: int  # at least 1
    rows: list[ListedLicense]


def _pages(count: int, size: int) -> int:
    return max(1, -(-count // size))


def find_licenses(
    store: Store,
    account_id: str,
    license_ids: frozenset[str],
    query: LicenseFilter,
    *,
    now: int,
    page: int,
    size: int,
) -> LicensePage:
    """Page ``page`` (from 1; past the end: the last) of the licenses in ``license_ids`` that match,
    with how many match and how many there are, in one read."""
    with store.read() as tx:
        matching, total, rows = tx.find_licenses(
            account_id, license_ids, query, now=now, limit=size, offset=(page - 1) * size
        )
        pages = _pages(matching, size)
        if page > pages:
            page = pages
            matching, total, rows = tx.find_licenses(
                account_id, license_ids, query, now=now, limit=size, offset=(page - 1) * size
            )
            pages = _pages(matching, size)
    shown = [r for r in rows if r.license.account_id == account_id and r.license.id in license_ids]
    return LicensePage(matching=matching, total=total, number=page, pages=pages, rows=shown)


def license_summary(
    store: Store, account_id: str, license_ids: frozenset[str], *, now: int
) -> LicenseSummary:
    """The person's licenses counted by state, with the activations they use and allow."""
    with store.read() as tx:
        return tx.license_summary(account_id, license_ids, now=now)


def license_choices(store: Store, account_id: str, license_ids: frozenset[str]) -> list[Product]:
    """The products of the person's licenses, by name: what a list's product filter offers."""
    with store.read() as tx:
        return list(tx.license_products(account_id, license_ids))


def visible_license(store: Store, account_id: str, license_ids: frozenset[str], license_id: str) -> License:
    """A license the person may see, or LICENSE_NOT_FOUND (never FORBIDDEN: ids are not confirmed)."""
    with store.read() as tx:
        found = tx.license_by_id(account_id, license_id)
    if found is None or found.account_id != account_id or found.id not in license_ids:
        raise _not_found()
    return found


def license_activations(
    store: Store, account_id: str, license_ids: frozenset[str], license_id: str
) -> list[Activation]:
    """Every activation of a license the person may see (LICENSE_NOT_FOUND otherwise)."""
    found = visible_license(store, account_id, license_ids, license_id)
    with store.read() as tx:
        return list(tx.activations(found.id))


def activation_view(
    store: Store, account_id: str, license_ids: frozenset[str], activation_id: str
) -> tuple[Activation, License, Product | None]:
    """An activation of a license the person may see, with its license and product, in one read
    (LICENSE_NOT_FOUND otherwise, as for a license of theirs that does not exist)."""
    with store.read() as tx:
        activation = tx.activation_in_account(account_id, activation_id)
        found = (
            tx.license_by_id(account_id, activation.license_id)
            if activation is not None and activation.license_id in license_ids
            else None
        )
        product = tx.product(account_id, found.product_id) if found is not None else None
    if activation is None or found is None or found.account_id != account_id:
        raise _not_found()
    return activation, found, product


@dataclass(frozen=True, slots=True)
class LicenseView:
    """A license with its product, the groups the viewer may see it linked to, and one page of
    its activations that match."""

    license: License
    product: Product | None
    holder: str  # the owning organization's name, or the owning user's name or email; "" if none
    groups: list[UserGroup]  # by name
    groups_managed: bool  # the viewer administers these groups (the page links to them)
    activations: list[Activation]
    matching: int  # activations that match the query
    total: int  # activations of the license in all
    number: int  # of this page of activations, from 1: the last when the one asked for is past the end
    pages: int  # at least 1


def _holder(tx: Transaction, license: License) -> str:
    if license.owner_organization_id is not None:
        org = tx.organization(license.account_id, license.owner_organization_id)
        return org.name if org else ""
    if license.owner_user_id is not None:
        user = tx.user(license.account_id, license.owner_user_id)
        if user is None:
            return ""
        return " ".join(x for x in (user.first_name, user.last_name) if x) or user.email
    return ""


def _viewer_groups(tx: Transaction, viewer: User, license: License) -> tuple[list[UserGroup], bool]:
    """The groups linked to ``license`` that ``viewer`` may see: every one for an admin of the
    organization that owns it (who manages them); otherwise only the viewer's own."""
    if (
        viewer.role is Role.ORGANIZATION_ADMIN
        and viewer.organization_id is not None
        and viewer.organization_id == license.owner_organization_id
    ):
        return list(tx.license_groups(viewer.account_id, license.id)), True
    return list(tx.license_groups(viewer.account_id, license.id, member_id=viewer.id)), False


def license_view(
    store: Store,
    viewer: User,
    license_ids: frozenset[str],
    license_id: str,
    query: ActivationFilter | None = None,
    *,
    page: int = 1,
    size: int = 1000,
) -> LicenseView:
    """A license ``viewer`` may see, with its product, holder and linked groups, and page ``page``
    (from 1; past the end: the last) of its activations that match ``query``, in one read
    (LICENSE_NOT_FOUND for a license the viewer may not see)."""
    account_id = viewer.account_id
    wanted = replace(query or ActivationFilter(), license_id=license_id, product_id=None)
    with store.read() as tx:
        found = tx.license_by_id(account_id, license_id) if license_id in license_ids else None
        if found is None or found.account_id != account_id:
            raise _not_found()
        product = tx.product(account_id, found.product_id)
        groups, managed = _viewer_groups(tx, viewer, found)
        scope = frozenset({found.id})
        matching, activations = tx.find_activations(
            account_id, scope, wanted, limit=size, offset=(page - 1) * size
        )
        pages = _pages(matching, size)
        if page > pages:
            page = pages
            matching, activations = tx.find_activations(
                account_id, scope, wanted, limit=size, offset=(page - 1) * size
            )
        total = (
            matching
            if wanted == ActivationFilter(license_id=license_id, order=wanted.order)
            else tx.find_activations(account_id, scope, ActivationFilter(), limit=0)[0]
        )
        holder = _holder(tx, found)
    return LicenseView(
        license=found,
        product=product,
        holder=holder,
        groups=groups,
        groups_managed=managed,
        activations=list(activations),
        matching=matching,
        total=total,
        number=page,
        pages=pages,
    )


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the dashboard shows of a person's licenses, read at once."""

    summary: LicenseSummary
    attention: LicensePage  # the first few licenses that need attention
    activity: list[AuditEntry]  # newest first
    licenses: dict[str, License]  # the licenses the activity is about, by id
    products: dict[str, str]  # product names by id


def dashboard(
    store: Store, account_id: str, license_ids: frozenset[str], *, now: int, attention: int, activity: int
) -> Dashboard:
    """A person's licenses summed up, the first ``attention`` that need attention (soonest expiry
    first) and the newest ``activity`` audit entries about them (never another's), in one read."""
    wanted = LicenseFilter(attention="any", sort="expiry")
    with store.read() as tx:
        summary = tx.license_summary(account_id, license_ids, now=now)
        matching, total, rows = tx.find_licenses(account_id, license_ids, wanted, now=now, limit=attention)
        entries = list(tx.audit_entries_for_licenses(account_id, license_ids, limit=activity))
        about = frozenset(e.license_id for e in entries if e.license_id and e.license_id in license_ids)
        licenses = {x.id: x for x in tx.licenses_by_ids(account_id, about) if x.id in license_ids}
        products = {p.id: p.name for p in tx.products(account_id)}
    return Dashboard(
        summary=summary,
        attention=LicensePage(matching=matching, total=total, number=1, pages=1, rows=list(rows)),
        activity=entries,
        licenses=licenses,
        products=products,
    )


def product_names(store: Store, account_id: str) -> dict[str, str]:
    """Product id -> name, for the account."""
    with store.read() as tx:
        return {p.id: p.name for p in tx.products(account_id)}


def recent_activity(
    store: Store, account_id: str, license_ids: frozenset[str], *, limit: int
) -> list[AuditEntry]:
    """The newest audit entries about these licenses only: never another customer's activity."""
    with store.read() as tx:
        return list(tx.audit_entries_for_licenses(account_id, license_ids, limit=limit))


@dataclass(frozen=True, slots=True)
class ActivationPage:
    """One page of matching activations, with what a row shows beside each."""

    total: int
    activations: list[Activation]
    products: Mapping[str, str]  # id -> name
    licenses: Mapping[str, License | None]  # id -> license, for the activations shown


def find_activations(
    store: Store,
    account_id: str,
    license_ids: frozenset[str],
    query: ActivationFilter,
    *,
    limit: int,
    offset: int,
) -> ActivationPage:
    """Matching activations, only ever of the licenses in ``license_ids``. A license id outside
    them is LICENSE_NOT_FOUND, like one that does not exist."""
    if query.license_id is not None and query.license_id not in license_ids:
        raise _not_found()
    with store.read() as tx:
        total, found = tx.find_activations(account_id, license_ids, query, limit=limit, offset=offset)
        products = {p.id: p.name for p in tx.products(account_id)}
        licenses = {i: tx.license_by_id(account_id, i) for i in {a.license_id for a in found}}
    return ActivationPage(total=total, activations=list(found), products=products, licenses=licenses)


def account_of_product(store: Store, product_id: str) -> str:
    """The account a product belongs to, for a request that names only the product (trials)."""
    with store.read() as tx:
        product = tx.product_by_id(product_id)
    if product is None:
        raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, "no such product")
    return product.account_id


# -- the vendor's view -----------------------------------------------------------------------


def products(store: Store, account: Account) -> list[Product]:
    """The account's products."""
    with store.read() as tx:
        return list(tx.products(account.id))


def check_product(store: Store, account: Account, product_id: str) -> None:
    """PRODUCT_NOT_FOUND unless the product is the account's."""
    product(store, account, product_id)


def licenses(store: Store, account: Account, product_id: str | None = None) -> list[License]:
    """The account's licenses, of one product if given."""
    with store.read() as tx:
        return list(tx.licenses(account.id, product_id))


def audit_entries(store: Store, account: Account, limit: int) -> list[AuditEntry]:
    """The account's newest audit entries, newest first."""
    with store.read() as tx:
        return list(tx.audit_entries(account.id, limit))


def license_by_id(store: Store, account: Account, license_id: str) -> License:
    """The account's license with this id; LICENSE_NOT_FOUND for another account's or none."""
    with store.read() as tx:
        found = tx.license_by_id(account.id, license_id)
    if found is None:
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this id")
    return found


def license_page(
    store: Store,
    account: Account,
    *,
    product_id: str | None = None,
    status: LicenseStatus | None = None,
    after: str | None = None,
    limit: int,
) -> tuple[list[License], str | None]:
    """One page of the account's licenses by id, after the license ``after``, and the id to ask
    the next page after (None on the last page). Licenses created meanwhile shift no page."""
    with store.read() as tx:
        found = list(
            tx.licenses_page(account.id, product_id=product_id, status=status, after=after, limit=limit + 1)
        )
    more = len(found) > limit
    return found[:limit], found[limit - 1].id if more else None


def product(store: Store, account: Account, product_id: str) -> Product:
    """The account's product with this id; PRODUCT_NOT_FOUND for another account's or none."""
    with store.read() as tx:
        found = tx.product(account.id, product_id)
    if found is None:
        raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")
    return found


def activation_page(
    store: Store,
    account: Account,
    *,
    product_id: str | None = None,
    license_id: str | None = None,
    live: bool | None = None,
    after: str | None = None,
    limit: int,
) -> tuple[list[Activation], str | None]:
    """One page of the account's activations by id, after the activation ``after``, and the id to
    ask the next page after (None on the last page). Activations made meanwhile shift no page."""
    with store.read() as tx:
        found = list(
            tx.activations_page(
                account.id,
                product_id=product_id,
                license_id=license_id,
                live=live,
                after=after,
                limit=limit + 1,
            )
        )
    more = len(found) > limit
    return found[:limit], found[limit - 1].id if more else None


def account_activation(store: Store, account: Account, activation_id: str) -> Activation:
    """The account's activation with this id; ACTIVATION_NOT_FOUND for another account's or none."""
    with store.read() as tx:
        found = tx.activation_in_account(account.id, activation_id)
    if found is None:
        raise OfflineServiceError(Code.ACTIVATION_NOT_FOUND, f"no activation {activation_id} in this account")
    return found


def audit_page(
    store: Store, account: Account, *, limit: int, before: int | None = None, **filters: Any
) -> tuple[list[tuple[int, AuditEntry]], int | None]:
    """One page of the account's audit entries, newest first, with their ids, and the id to ask
    the next page before (None on the last page). ``filters``: since, until, actor, license_id,
    code (see ``Transaction.audit_page``)."""
    with store.read() as tx:
        found = list(tx.audit_page(account.id, limit=limit + 1, before=before, **filters))
    more = len(found) > limit
    return found[:limit], found[limit - 1][0] if more else None
