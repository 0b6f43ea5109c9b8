"""What licensing needs from a transaction: products, licenses, activations, request nonces,
trials, the trial endpoint's limits and the kept results of portal batches. One of the domain
parts ``store.Transaction`` is composed of; backends implement them all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from offline_service.licensing.models import (
    Activation,
    ActivationFilter,
    BatchResult,
    License,
    LicenseFilter,
    LicenseStatus,
    LicenseSummary,
    ListedLicense,
    Product,
    Trial,
)
from offline_service.licensing.trial_limits import TrialLimit

__all__ = ["LicensingTransaction"]


class LicensingTransaction(Protocol):
    """Licensing's reads and writes; every lookup by account is scoped to it."""

    # products
    def product(self, account_id: str, product_id: str) -> Product | None: ...
    def product_by_id(self, product_id: str) -> Product | None:
        """A product of any account (product ids are unique across accounts): for endpoints that
        know the product before they know the account, such as anonymous trials."""
        ...

    def products(self, account_id: str) -> Sequence[Product]: ...
    def insert_product(self, product: Product) -> None: ...
    def set_product_settings(self, product: Product) -> None:
        """Write a product's settings (trials, response validity cap, customer release) as given;
        the row is the one of ``product.id`` in ``product.account_id``."""
        ...

    # licenses
    def license_by_key(self, account_id: str, key: str) -> License | None: ...
    def license_by_id(self, account_id: str, license_id: str) -> License | None: ...
    def licenses(self, account_id: str, product_id: str | None = None) -> Sequence[License]: ...
    def licenses_by_ids(self, account_id: str, license_ids: frozenset[str]) -> Sequence[License]:
        """The account's licenses among these ids, oldest first: one statement for any number."""
        ...

    def insert_license(self, license: License) -> None: ...
    def set_license_status(self, license_id: str, status: LicenseStatus) -> None: ...
    def set_license_name(self, license_id: str, *, name: str | None, owner: str | None) -> None: ...
    def set_license_terms(
        self,
        license_id: str,
        *,
        allowed_activations: int,
        allowed_deactivations: int,
        expires_at: int | None,
        validity_days: int | None,
    ) -> None:
        """Write a license's limits and expiry (the vendor changed them)."""
        ...

    def licenses_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        status: LicenseStatus | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[License]:
        """Up to ``limit`` of the account's licenses (of the product, in the status) whose id sorts
        after ``after``, by id: a page of a list that licenses created meanwhile never shift."""
        ...

    def update_license_usage(
        self,
        license_id: str,
        *,
        used_activations: int,
        used_deactivations: int,
        expires_at: int | None,
    ) -> None: ...
    def organization_licenses(self, account_id: str, organization_id: str) -> Sequence[License]: ...
    def find_licenses(
        self,
        account_id: str,
        license_ids: frozenset[str],
        query: LicenseFilter,
        *,
        now: int,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, int, Sequence[ListedLicense]]:
        """How many of these licenses match ``query`` (its states and "near expiry" as of
        ``now``), how many there are in all, and one page of the matching ones in its order."""
        ...

    def license_summary(self, account_id: str, license_ids: frozenset[str], *, now: int) -> LicenseSummary:
        """These licenses counted by state (as of ``now``) with their activations used and allowed."""
        ...

    def license_products(self, account_id: str, license_ids: frozenset[str]) -> Sequence[Product]:
        """The products of these licenses, by name."""
        ...

    # activations and request nonces
    def preload(
        self, requests: Sequence[tuple[str, str, str, str | None]], *, account_id: str | None = None
    ) -> None:
        """A hint before many decisions: (product_id, nonce, fingerprint, license_key or None) of
        each request, so a backend can fetch licenses, nonces and live activations in bulk
        instead of one query each (the difference between one and many round trips); with
        ``account_id``, the requests' products in that account too."""
        ...

    def live_activation(self, license_id: str, fingerprint: str) -> Activation | None: ...
    def activation(self, product_id: str, activation_id: str) -> Activation | None: ...
    def activations(self, license_id: str) -> Sequence[Activation]: ...
    def activation_in_account(self, account_id: str, activation_id: str) -> Activation | None: ...
    def activations_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        license_id: str | None = None,
        live: bool | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[Activation]:
        """Up to ``limit`` of the account's activations (of the product, of the license, live or
        deactivated) whose id sorts after ``after``, by id: a page of a list that activations
        made meanwhile never shift."""
        ...

    def insert_activation(self, activation: Activation) -> None: ...
    def deactivate(self, activation_id: str, at: int) -> None: ...
    def nonce_activation(self, product_id: str, nonce: str) -> str | None: ...
    def record_nonce(self, product_id: str, nonce: str, kind: str, activation_id: str, at: int) -> None: ...
    def find_activations(
        self,
        account_id: str,
        license_ids: frozenset[str],
        query: ActivationFilter,
        *,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, Sequence[Activation]]:
        """One page of the activations of these licenses that match, in the query's order (newest
        first, or by hostname), and how many match in all."""
        ...

    # trials
    def trial(self, product_id: str, fingerprint: str) -> Trial | None: ...
    def insert_trial(self, trial: Trial) -> None: ...

    # the trial endpoint's limits per client address (``licensing.trial_limits``)
    def trial_limit(self, address_key: str) -> TrialLimit | None: ...
    def save_trial_limit(self, limit: TrialLimit) -> None: ...
    def prune_trial_limits(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` rows untouched since ``before`` (their bucket full, their day
        over: the same as no row); returns how many were deleted."""
        ...

    # the kept results of portal batches (``licensing.batch_results``)
    def insert_batch_result(self, result: BatchResult, archive: bytes) -> None: ...
    def batch_result(self, account_id: str, user_id: str, result_id: str, now: int) -> BatchResult | None:
        """The result if it is this person's (account and user) and has not expired at ``now``."""
        ...

    def batch_result_archive(
        self, account_id: str, user_id: str, result_id: str, now: int
    ) -> tuple[int, bytes] | None:
        """(created_at, the zip of responses) of ``batch_result``'s result, under the same
        conditions, without reading its files."""
        ...

    def prune_batch_results(self, now: int, limit: int) -> int:
        """Delete at most ``limit`` results expired at ``now``; returns how many were deleted."""
        ...
