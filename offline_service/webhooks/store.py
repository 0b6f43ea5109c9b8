"""What webhooks need from a transaction: an account's endpoints, and the deliveries outbox. One
of the domain parts ``store.Transaction`` is composed of; every read an adapter makes is scoped to
one account (the sender's claims span accounts: each delivery carries its own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from offline_service.webhooks.models import Delivery, Endpoint

__all__ = ["WebhooksTransaction"]


class WebhooksTransaction(Protocol):
    """Webhooks' reads and writes."""

    def insert_webhook_endpoint(self, endpoint: Endpoint) -> None: ...
    def webhook_endpoints(self, account_id: str) -> Sequence[Endpoint]:
        """The account's endpoints, oldest first."""
        ...

    def webhook_endpoint(self, account_id: str, endpoint_id: str) -> Endpoint | None: ...
    def delete_webhook_endpoint(self, account_id: str, endpoint_id: str) -> bool:
        """Remove the endpoint and its deliveries; whether it existed."""
        ...

    def set_webhook_endpoint_enabled(
        self, account_id: str, endpoint_id: str, enabled: bool, now: int
    ) -> None:
        """Enable (its run of failures forgotten) or disable an endpoint."""
        ...

    def set_webhook_endpoint_secret(
        self, account_id: str, endpoint_id: str, secret: str, previous_secret: str, previous_until: int | None
    ) -> None:
        """Replace an endpoint's (sealed) secret, keeping ``previous_secret`` until ``previous_until``."""
        ...

    def webhook_subscriptions(self, account_id: str) -> Sequence[tuple[str, str]]:
        """(endpoint id, subscribed events separated by spaces) of the account's enabled
        endpoints: one indexed read, the only cost an event has for an account without any."""
        ...

    def insert_webhook_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...
    def claim_webhook_deliveries(self, claim: str, *, now: int, until: int, limit: int) -> Sequence[Delivery]:
        """Take up to ``limit`` due deliveries of enabled endpoints that nobody holds, for ``claim``
        until ``until``; counts the attempt."""
        ...

    def record_webhook_attempt(
        self,
        delivery_id: str,
        claim: str,
        *,
        now: int,
        delivered: bool,
        status: int | None,
        latency_ms: int | None,
        error: str,
        next_attempt_at: int,
        give_up: bool,
    ) -> bool:
        """Record one attempt of a delivery still held by ``claim`` and release it; whether the
        claim still held (a lapsed claim records nothing)."""
        ...

    def webhook_endpoint_result(self, endpoint_id: str, *, ok: bool, now: int) -> int | None:
        """After an attempt: a success ends the endpoint's run of failures, a failure starts one if
        none is running. Returns when the current run began (None: no run)."""
        ...

    def webhook_deliveries(
        self, account_id: str, endpoint_id: str, limit: int = 100, *, before: tuple[int, str] | None = None
    ) -> Sequence[Delivery]:
        """The endpoint's deliveries, newest first (by creation time, then id); with ``before``
        (a delivery's creation time and id), only those after it in that order."""
        ...

    def webhook_delivery(self, account_id: str, delivery_id: str) -> Delivery | None: ...
    def requeue_webhook_delivery(self, account_id: str, delivery_id: str, now: int) -> None:
        """Send a delivery again from now, with a fresh schedule of attempts."""
        ...
