"""What the licensing pages, the API and the CLI read, each in one read transaction.

A person sees only licenses of their account whose ids are in ``license_ids`` (what the store's
``visible_license_ids`` gave for them); a license outside that set is LICENSE_NOT_FOUND, exactly
like one that does not exist, so ids are never confirmed. Vendor reads are scoped to the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from offline_service.accounts.models import Account
from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import Activation, ActivationFilter, License, Product
from offline_service.store import Store

__all__ = [
    "ActivationPage",
    "LicenseView",
    "account_of_product",
    "activation_view",
    "audit_entries",
    "check_product",
    "find_activations",
    "license_activations",
    "license_view",
    "licenses",
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
    """The licenses in ``license_ids`` that exist in the account, by id."""
    with store.read() as tx:
        found = [tx.license_by_id(account_id, i) for i in sorted(license_ids)]
    return [x for x in found if x is not None and x.account_id == account_id]


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
    """A license with its product and its activations, newest first: one page's worth."""

    license: License
    product: Product | None
    activations: list[Activation]


def license_view(store: Store, account_id: str, license_ids: frozenset[str], license_id: str) -> LicenseView:
    """A license the person may see, its product and its activations (LICENSE_NOT_FOUND otherwise)."""
    with store.read() as tx:
        found = tx.license_by_id(account_id, license_id) if license_id in license_ids else None
        if found is None or found.account_id != account_id:
            raise _not_found()
        product = tx.product(account_id, found.product_id)
        activations = sorted(tx.activations(found.id), key=lambda a: (a.created_at, a.id), reverse=True)
    return LicenseView(license=found, product=product, activations=activations)


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
    with store.read() as tx:
        if tx.product(account.id, product_id) is None:
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")


def licenses(store: Store, account: Account, product_id: str | None = None) -> list[License]:
    """The account's licenses, of one product if given."""
    with store.read() as tx:
        return list(tx.licenses(account.id, product_id))


def audit_entries(store: Store, account: Account, limit: int) -> list[AuditEntry]:
    """The account's newest audit entries, newest first."""
    with store.read() as tx:
        return list(tx.audit_entries(account.id, limit))
