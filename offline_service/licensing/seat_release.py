"""An organization admin releases the seat of a lost machine, in the portal: what the confirmation
page shows, and the release itself, decided in one write transaction.

The vendor lets customers do this per product (``Product.customer_release``, off by default; the
vendor's own ``activation release`` needs no such setting and counts nothing). A release by an
admin frees the seat exactly as a deactivation does and counts as one: it needs a deactivation
left on the license, and uses it. The machine is not told: its stored response stays valid
offline (FORMAT.md §4.2), which is why the release is the customer's word that it is lost.

Refusals, in the order they are checked (``check_release``): FORBIDDEN (not an enabled
organization admin, or no longer one in the transaction), LICENSE_NOT_FOUND (a license the
admin's organization does not own: never confirmed), RELEASE_NOT_ALLOWED (the product's setting
is off), ACTIVATION_NOT_FOUND (not an activation of this license), CONFLICT (already deactivated
or released), DEACTIVATION_LIMIT (no deactivation left). A refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from offline_service import audit
from offline_service.accounts.models import Role, User
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.decisions import check_deactivations_left
from offline_service.licensing.models import UNLIMITED, Activation, License, Product
from offline_service.store import Store, Transaction
from offline_service.webhooks import events as webhooks

__all__ = ["ACTION", "ReleaseView", "check_release", "offers_release", "release_seat", "release_view"]

ACTION = "activation.release_by_customer"  # in the audit log; the vendor's is "activation.release"

# What the confirmation page shows instead of its button: refusals about the seat, not the person.
_SHOWN_ON_PAGE = frozenset({Code.CONFLICT, Code.DEACTIVATION_LIMIT})


def _admin_of(user: User, license: License) -> bool:
    return (
        user.role is Role.ORGANIZATION_ADMIN
        and not user.disabled
        and user.organization_id is not None
        and license.account_id == user.account_id
        and license.owner_organization_id == user.organization_id
    )


def offers_release(user: User, license: License, product: Product | None) -> bool:
    """Whether a license's page offers ``user`` "Release seat" on its live activations: an enabled
    admin of the organization that owns it, of a product whose vendor allows it."""
    return product is not None and product.customer_release and _admin_of(user, license)


def check_release(
    user: User, license: License, product: Product | None, activation: Activation | None
) -> None:
    """The rules of a release (see the module's docstring for the order); raises the refusal."""
    if user.role is not Role.ORGANIZATION_ADMIN or user.organization_id is None or user.disabled:
        raise OfflineServiceError(Code.FORBIDDEN, "only an organization admin may release a machine's seat")
    if not _admin_of(user, license):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license of your organization")
    if product is None or not product.customer_release:
        raise OfflineServiceError(
            Code.RELEASE_NOT_ALLOWED, "the vendor does not let customers release machines of this product"
        )
    if activation is None or activation.license_id != license.id:
        raise OfflineServiceError(Code.ACTIVATION_NOT_FOUND, "no such activation of this license")
    if activation.deactivated_at is not None:
        raise OfflineServiceError(Code.CONFLICT, "this machine is already deactivated; its seat is free")
    check_deactivations_left(license)


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """What the confirmation page shows: the machine, its license and product, and why the seat
    cannot be released (``refusal``) when that is about the seat rather than the person."""

    activation: Activation
    license: License
    product: Product
    refusal: OfflineServiceError | None = None

    @property
    def deactivations_left(self) -> int | None:
        """Deactivations the license has left before this release; None: unlimited."""
        lic = self.license
        if lic.allowed_deactivations == UNLIMITED:
            return None
        return max(0, lic.allowed_deactivations - lic.used_deactivations)


def _load(
    tx: Transaction, account_id: str, license_id: str, activation_id: str
) -> tuple[License | None, Product | None, Activation | None]:
    license = tx.license_by_id(account_id, license_id)
    if license is None:
        return None, None, None
    product = tx.product(account_id, license.product_id)
    return license, product, tx.activation_in_account(account_id, activation_id)


def _not_found() -> OfflineServiceError:
    return OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license of your organization")


def release_view(store: Store, user: User, license_id: str, activation_id: str) -> ReleaseView:
    """The confirmation page's view for ``user`` (blocking). Raises what the page cannot be shown
    for (FORBIDDEN, LICENSE_NOT_FOUND, RELEASE_NOT_ALLOWED, ACTIVATION_NOT_FOUND); a refusal
    about the seat itself is kept in the view instead."""
    with store.read() as tx:
        license, product, activation = _load(tx, user.account_id, license_id, activation_id)
    if license is None:
        Scope.of_admin(user)  # FORBIDDEN before LICENSE_NOT_FOUND, as in check_release
        raise _not_found()
    try:
        check_release(user, license, product, activation)
        refusal = None
    except OfflineServiceError as exc:
        if exc.code not in _SHOWN_ON_PAGE:
            raise
        refusal = exc
    assert product is not None and activation is not None  # check_release got this far
    return ReleaseView(activation=activation, license=license, product=product, refusal=refusal)


def release_seat(store: Store, user: User, license_id: str, activation_id: str, *, now: int) -> License:
    """Release the seat of ``activation_id`` of ``license_id`` for ``user``, an organization admin;
    every rule is checked again inside the write transaction that records the release, so two
    releases at once count once. Returns the license with its new counts."""
    scope = Scope.of_admin(user)
    with store.write() as tx:
        scope.check(tx)  # still an enabled admin of the organization, now
        current = tx.user(user.account_id, user.id)
        assert current is not None  # scope.check found them
        license, product, activation = _load(tx, user.account_id, license_id, activation_id)
        if license is None:
            raise _not_found()
        check_release(current, license, product, activation)
        assert activation is not None
        tx.deactivate(activation.id, now)
        tx.update_license_usage(
            license.id,
            used_activations=license.used_activations - 1,
            used_deactivations=license.used_deactivations + 1,
            expires_at=license.expires_at,
        )
        audit.record(
            tx,
            account_id=user.account_id,
            actor=scope.actor,
            action=ACTION,
            now=now,
            product_id=license.product_id,
            license_id=license.id,
            activation_id=activation.id,
            fingerprint=activation.fingerprint,
            hostname=activation.hostname,
        )
        released = replace(activation, deactivated_at=now)
        webhooks.emit(
            tx,
            user.account_id,
            [("activation.released", webhooks.activation_data(released, actor=scope.actor))],
            now=now,
        )
        updated = tx.license_by_id(user.account_id, license.id)
    assert updated is not None
    return updated
