"""Vendor operations on accounts, products and licenses, shared by the CLI and the web layer."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from offline_service import audit
from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import MAX_COUNT, validate_metadata
from offline_service.ids import check_alias, email_key, new_id, new_license_key
from offline_service.licensing.decisions import DAY
from offline_service.licensing.models import UNLIMITED, License, LicenseStatus, Product
from offline_service.licensing.representations import activation_json, license_json
from offline_service.releases.versions import parse_version
from offline_service.store import Store, Transaction
from offline_service.webhooks import events as webhooks

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_MAX_RESPONSE_VALIDITY",
    "KEEP",
    "MAX_PRODUCT_NAME",
    "MAX_RESPONSE_VALIDITY",
    "MAX_TRIAL_DAYS",
    "account",
    "change_license",
    "create_license",
    "create_license_in",
    "create_product",
    "discard_unstored_key",
    "ensure_account",
    "license_details",
    "new_product",
    "release_activation",
    "set_customer_release",
    "set_license_max_version",
    "set_license_status",
    "store_product",
    "update_license",
    "update_product",
]

DEFAULT_ACCOUNT = "default"
DEFAULT_MAX_RESPONSE_VALIDITY = 30 * DAY
MAX_LICENSE_TEXT = 200  # characters of a license's name or owner note


def _license_text(value: str | None, what: str) -> str | None:
    """A license's name or owner note: trimmed, at most MAX_LICENSE_TEXT characters, no control
    characters; None when absent or empty."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_LICENSE_TEXT or not value.isprintable():
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"a license's {what} is at most {MAX_LICENSE_TEXT} characters, without control characters",
        )
    return value or None


def ensure_account(store: Store, alias: str, *, now: int, name: str | None = None) -> tuple[Account, bool]:
    """The account with this alias, created if missing. Returns (account, created)."""
    check_alias(alias)
    with store.write() as tx:
        found = tx.account_by_alias(alias)
        if found is not None:
            return found, False
        created = Account(id=new_id("acc"), alias=alias, name=name or alias, created_at=now)
        tx.insert_account(created)
        audit.record(tx, account_id=created.id, actor="cli", action="account.create", now=now)
        return created, True


def account(store: Store, alias: str) -> Account:
    with store.read() as tx:
        found = tx.account_by_alias(alias)
    if found is None:
        raise OfflineServiceError(Code.NOT_FOUND, f"no account {alias!r}; run `offline-service init` first")
    return found


MAX_TRIAL_DAYS = 3650
MAX_RESPONSE_VALIDITY = 3650 * DAY  # the longest cap a product may put on a response's validity
MAX_PRODUCT_NAME = 200


def _check_trial_days(trial_days: int) -> None:
    if isinstance(trial_days, bool) or not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"trial days must be between 0 and {MAX_TRIAL_DAYS}")


def _check_max_response_validity(seconds: int) -> None:
    if isinstance(seconds, bool) or not 0 < seconds <= MAX_RESPONSE_VALIDITY:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"maximum response validity must be positive and at most {MAX_RESPONSE_VALIDITY // DAY} days",
        )


def new_product(
    account: Account,
    *,
    name: str,
    now: int,
    trial_days: int = 0,
    max_response_validity: int = DEFAULT_MAX_RESPONSE_VALIDITY,
    customer_release: bool = False,
) -> Product:
    """A product of the account with a new id, its settings checked; not stored yet
    (``store_product``). Trials are on when ``trial_days`` > 0; ``customer_release``: organization
    admins may release lost machines (off by default)."""
    if not name.strip() or len(name) > MAX_PRODUCT_NAME or not name.isprintable():
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"product name must be 1-{MAX_PRODUCT_NAME} characters, without control characters",
        )
    _check_trial_days(trial_days)
    _check_max_response_validity(max_response_validity)
    return Product(
        id=new_id("prod"),
        account_id=account.id,
        name=name.strip(),
        trials_enabled=trial_days > 0,
        trial_days=trial_days,
        max_response_validity=max_response_validity,
        created_at=now,
        customer_release=customer_release,
    )


def store_product(
    tx: Transaction, keyring: Keyring, product: Product, *, now: int, actor: str = "cli"
) -> str:
    """Write ``product`` (from ``new_product``) in the caller's write transaction, with its first
    signing key; returns the key's kid. The key file is written first (mode 0600): a product row
    without a key could not sign, a key without a row signs nothing. Should the transaction not
    commit, the caller removes that key with ``discard_unstored_key``."""
    kid = keyring.create(product.id, now=now)
    tx.insert_product(product)
    audit.record(
        tx,
        account_id=product.account_id,
        actor=actor,
        action="product.create",
        now=now,
        product_id=product.id,
    )
    return kid


def discard_unstored_key(store: Store, keyring: Keyring, product: Product) -> None:
    """After a create of ``product`` failed: remove its key files if the store has no such product
    (its transaction rolled back, or never began). A product that did commit (a failure after
    the commit, or a commit whose answer was lost) keeps its key. Its id is new, known to no one
    else, so nothing can store it meanwhile."""
    with store.read() as tx:
        stored = tx.product(product.account_id, product.id)
    if stored is None:
        keyring.discard(product.id)


def create_product(
    store: Store,
    keyring: Keyring,
    account: Account,
    *,
    name: str,
    now: int,
    trial_days: int = 0,
    max_response_validity: int = DEFAULT_MAX_RESPONSE_VALIDITY,
    customer_release: bool = False,
    actor: str = "cli",
) -> Product:
    """A product with its first signing key (``new_product`` then ``store_product`` in one write
    transaction; on failure no key is left behind for it)."""
    product = new_product(
        account,
        name=name,
        now=now,
        trial_days=trial_days,
        max_response_validity=max_response_validity,
        customer_release=customer_release,
    )
    try:
        with store.write() as tx:
            store_product(tx, keyring, product, now=now, actor=actor)
    except BaseException:
        discard_unstored_key(store, keyring, product)
        raise
    return product


def update_product(
    store: Store,
    account: Account,
    product_id: str,
    *,
    now: int,
    trial_days: int | None = None,
    max_response_validity: int | None = None,
    customer_release: bool | None = None,
    actor: str = "cli",
) -> Product:
    """Change a product's trial length (0: no trials), its cap on a response's validity and whether
    organization admins may release lost machines; settings not given stay as they are. Trials
    already granted keep their end, responses already issued their validity. Audited as
    ``product.update`` with each setting given."""
    given: dict[str, str] = {}
    if trial_days is not None:
        _check_trial_days(trial_days)
        given["trialDays"] = str(trial_days)
    if max_response_validity is not None:
        _check_max_response_validity(max_response_validity)
        given["maxResponseValidity"] = str(max_response_validity)
    if customer_release is not None:
        given["customerRelease"] = "on" if customer_release else "off"
    if not given:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "give trial days, a maximum response validity or customer release"
        )
    with store.write() as tx:
        product = tx.product(account.id, product_id)
        if product is None:
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")
        changed = product
        if trial_days is not None:
            changed = replace(changed, trials_enabled=trial_days > 0, trial_days=trial_days)
        if max_response_validity is not None:
            changed = replace(changed, max_response_validity=max_response_validity)
        if customer_release is not None:
            changed = replace(changed, customer_release=customer_release)
        tx.set_product_settings(changed)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="product.update",
            now=now,
            product_id=product.id,
            **given,
        )
    return changed


def set_customer_release(
    store: Store, account: Account, product_id: str, allowed: bool, *, now: int, actor: str = "cli"
) -> Product:
    """Whether organization admins may release, in the portal, the seat of a lost machine of their
    organization's licenses of this product (each release counted as a deactivation)."""
    return update_product(store, account, product_id, now=now, customer_release=allowed, actor=actor)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_license(
    store: Store,
    account: Account,
    *,
    product_id: str,
    allowed_activations: int,
    allowed_deactivations: int,
    now: int,
    expires_at: int | None = None,
    validity_days: int | None = None,
    owner: str | None = None,
    metadata: Mapping[str, str] | None = None,
    owner_user_email: str | None = None,
    owner_organization: str | None = None,
    actor: str = "cli",
    max_version: str | None = None,
    name: str | None = None,
) -> License:
    """A new active license. Expiry is a fixed time or a duration from the first activation;
    ``max_version`` is the newest release it entitles to (None: every release); ``name`` tells it
    apart from the customer's other licenses."""
    with store.write() as tx:
        return create_license_in(
            tx,
            account,
            product_id=product_id,
            allowed_activations=allowed_activations,
            allowed_deactivations=allowed_deactivations,
            now=now,
            expires_at=expires_at,
            validity_days=validity_days,
            owner=owner,
            metadata=metadata,
            owner_user_email=owner_user_email,
            owner_organization=owner_organization,
            actor=actor,
            max_version=max_version,
            name=name,
        )


def _check_limits(allowed_activations: int, allowed_deactivations: int) -> None:
    for what, value in (
        ("allowed activations", allowed_activations),
        ("allowed deactivations", allowed_deactivations),
    ):
        if value < UNLIMITED or value > MAX_COUNT:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{what} must be -1 (unlimited) or a count")


def _check_expiry(expires_at: int | None, now: int) -> None:
    if expires_at is not None and expires_at <= now:
        # A license born expired is a typo (a year, a day and month swapped), never what was meant:
        # every activation would be refused with LICENSE_EXPIRED.
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"the expiry date {_iso(expires_at)} is not in the future (now is {_iso(now)});"
            " give a later date, or a validity counted from the first activation",
        )


def create_license_in(
    tx: Transaction,
    account: Account,
    *,
    product_id: str,
    allowed_activations: int,
    allowed_deactivations: int,
    now: int,
    expires_at: int | None = None,
    validity_days: int | None = None,
    owner: str | None = None,
    metadata: Mapping[str, str] | None = None,
    owner_user_email: str | None = None,
    owner_organization: str | None = None,
    actor: str = "cli",
    max_version: str | None = None,
    name: str | None = None,
) -> License:
    """``create_license`` within the caller's write transaction (the admin API's idempotent create
    keeps its answer in the same one)."""
    name, owner = _license_text(name, "name"), _license_text(owner, "owner")
    _check_limits(allowed_activations, allowed_deactivations)
    if expires_at is not None and validity_days is not None:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "give an expiry date or a validity, not both")
    _check_expiry(expires_at, now)
    if validity_days is not None and not 0 < validity_days <= 36500:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "validity days must be between 1 and 36500")
    try:
        # Metadata goes into every response: hold it to the limits the client will check.
        checked = validate_metadata(dict(metadata or {}))
    except ValueError as exc:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, str(exc)) from None
    if max_version is not None:
        parse_version(max_version)
    if owner_user_email and owner_organization:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "a license belongs to a user or an organization, not both"
        )
    if tx.product(account.id, product_id) is None:
        raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")
    owner_user = owner_org = None
    if owner_user_email:
        owner_user = tx.user_by_email(account.id, email_key(owner_user_email))
        if owner_user is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no user {owner_user_email}")
    if owner_organization:
        owner_org = tx.organization_by_name(account.id, owner_organization)
        if owner_org is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no organization {owner_organization!r}")
    license = License(
        id=new_id("lic"),
        account_id=account.id,
        product_id=product_id,
        key=new_license_key(),
        allowed_activations=allowed_activations,
        allowed_deactivations=allowed_deactivations,
        status=LicenseStatus.ACTIVE,
        created_at=now,
        expires_at=expires_at,
        validity_days=validity_days,
        owner=owner,
        metadata=checked,
        owner_user_id=owner_user.id if owner_user else None,
        owner_organization_id=owner_org.id if owner_org else None,
        max_version=max_version,
        name=name,
    )
    tx.insert_license(license)
    audit.record(
        tx,
        account_id=account.id,
        actor=actor,
        action="license.create",
        now=now,
        product_id=product_id,
        license_id=license.id,
    )
    webhooks.emit(tx, account.id, [("license.created", license_json(license))], now=now)
    return license


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Leave this field of a license as it is (``change_license``; None would clear it)."""


def change_license(
    store: Store,
    account: Account,
    key: str,
    *,
    now: int,
    allowed_activations: int | None = None,
    allowed_deactivations: int | None = None,
    expires_at: int | _Keep | None = KEEP,
    max_version: str | _Keep | None = KEEP,
    actor: str = "cli",
) -> License:
    """Change a license's limits, expiry or maximum version in one transaction; fields not given
    stay as they are. A fixed ``expires_at`` replaces a validity counted from the first activation;
    None: the license never expires. Lowering a limit below what is used frees no seat: further
    activations are refused until usage is under it."""
    changes = {
        "allowedActivations": allowed_activations,
        "allowedDeactivations": allowed_deactivations,
        "expiresAt": expires_at,
        "maxVersion": max_version,
    }
    # What the audit trail records: each field given, "" for one cleared.
    given = {
        k: "" if v is None else str(v)
        for k, v in changes.items()
        if v is not KEEP and not (v is None and k.startswith("allowed"))
    }
    if not given:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "give allowed activations or deactivations, an expiry or a maximum version"
        )
    if not isinstance(expires_at, _Keep):
        _check_expiry(expires_at, now)
    if isinstance(max_version, str):
        parse_version(max_version)
    with store.write() as tx:
        license = tx.license_by_key(account.id, key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        activations = license.allowed_activations if allowed_activations is None else allowed_activations
        deactivations = (
            license.allowed_deactivations if allowed_deactivations is None else allowed_deactivations
        )
        _check_limits(activations, deactivations)
        changed = replace(license, allowed_activations=activations, allowed_deactivations=deactivations)
        if not isinstance(expires_at, _Keep):
            changed = replace(changed, expires_at=expires_at, validity_days=None)
        tx.set_license_terms(
            license.id,
            allowed_activations=changed.allowed_activations,
            allowed_deactivations=changed.allowed_deactivations,
            expires_at=changed.expires_at,
            validity_days=changed.validity_days,
        )
        if not isinstance(max_version, _Keep):
            tx.set_license_max_version(license.id, max_version)
            changed = replace(changed, max_version=max_version)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="license.change",
            now=now,
            product_id=license.product_id,
            license_id=license.id,
            **given,
        )
    return changed


def set_license_status(
    store: Store, account: Account, key: str, status: LicenseStatus, *, now: int, actor: str = "cli"
) -> License:
    with store.write() as tx:
        license = tx.license_by_key(account.id, key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        tx.set_license_status(license.id, status)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action=f"license.{status.value}",
            now=now,
            product_id=license.product_id,
            license_id=license.id,
        )
        changed = replace(license, status=status)
        if status is not LicenseStatus.ACTIVE:  # reinstating has no event of its own
            webhooks.emit(tx, account.id, [(f"license.{status.value}", license_json(changed))], now=now)
    return changed


def update_license(
    store: Store,
    account: Account,
    key: str,
    *,
    now: int,
    name: str | None = None,
    owner: str | None = None,
    actor: str = "cli",
) -> License:
    """Change a license's name or owner note: None leaves one as it is, "" clears it."""
    if name is None and owner is None:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "give a name or an owner to change")
    new_name, new_owner = _license_text(name, "name"), _license_text(owner, "owner")
    with store.write() as tx:
        license = tx.license_by_key(account.id, key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        changed = replace(
            license,
            name=license.name if name is None else new_name,
            owner=license.owner if owner is None else new_owner,
        )
        tx.set_license_name(license.id, name=changed.name, owner=changed.owner)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="license.update",
            now=now,
            product_id=license.product_id,
            license_id=license.id,
            name=changed.name or "",
            owner=changed.owner or "",
        )
    return changed


def set_license_max_version(
    store: Store, account: Account, key: str, max_version: str | None, *, now: int, actor: str = "cli"
) -> License:
    """Set (or, with None, clear) the newest release version a license entitles to."""
    if max_version is not None:
        parse_version(max_version)
    with store.write() as tx:
        license = tx.license_by_key(account.id, key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        tx.set_license_max_version(license.id, max_version)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="license.max_version",
            now=now,
            product_id=license.product_id,
            license_id=license.id,
            **{"maxVersion": max_version or ""},
        )
    return replace(license, max_version=max_version)


def release_activation(
    store: Store, account: Account, activation_id: str, *, now: int, actor: str = "cli"
) -> None:
    """The vendor frees a seat whose installation can no longer deactivate (lost machine key,
    dead disk). Not counted against allowed deactivations; the audit log records who did it."""
    with store.write() as tx:
        activation = tx.activation_in_account(account.id, activation_id)
        if activation is None:
            raise OfflineServiceError(
                Code.ACTIVATION_NOT_FOUND, f"no activation {activation_id} in this account"
            )
        if activation.deactivated_at is not None:
            raise OfflineServiceError(Code.CONFLICT, f"activation {activation_id} is already deactivated")
        license = tx.license_by_id(account.id, activation.license_id)
        assert license is not None
        tx.deactivate(activation.id, now)
        tx.update_license_usage(
            license.id,
            used_activations=license.used_activations - 1,
            used_deactivations=license.used_deactivations,
            expires_at=license.expires_at,
        )
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="activation.release",
            now=now,
            product_id=license.product_id,
            license_id=license.id,
            activation_id=activation.id,
        )
        webhooks.emit(
            tx,
            account.id,
            [
                (
                    "activation.released",
                    webhooks.activation_data(replace(activation, deactivated_at=now), actor=actor),
                )
            ],
            now=now,
        )


def license_details(store: Store, account: Account, key: str) -> dict[str, Any]:
    """A license and its activations, as plain JSON-ready data."""
    with store.read() as tx:
        license = tx.license_by_key(account.id, key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        activations = tx.activations(license.id)
    return {
        **license_json(license),
        "owner": license.owner,
        "activations": [activation_json(a) for a in activations],
    }
