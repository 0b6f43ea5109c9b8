"""Webhooks' SQL, written once for every backend: endpoints and the deliveries outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect
from offline_service.webhooks.models import Delivery, Endpoint

__all__ = ["WebhooksSQL", "WebhooksStatements"]

_ENDPOINT_COLS = (
    "id, account_id, url, events, secret, enabled, created_at, failing_since, disabled_at,"
    " previous_secret, previous_until"
)
_DELIVERY_COLS = (
    "id, account_id, endpoint_id, event_type, payload, created_at, next_attempt_at, attempts,"
    " delivered_at, given_up_at, last_status, last_latency_ms, last_error, last_attempt_at"
)


class WebhooksStatements:
    """Webhooks' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.insert_endpoint = q(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.endpoints = q(
            f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE account_id = ? ORDER BY created_at, id"
        )
        self.endpoint = q(f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE account_id = ? AND id = ?")
        self.delete_deliveries = q("DELETE FROM webhook_deliveries WHERE account_id = ? AND endpoint_id = ?")
        self.delete_endpoint = q("DELETE FROM webhook_endpoints WHERE account_id = ? AND id = ?")
        self.enable = q(
            "UPDATE webhook_endpoints SET enabled = 1, disabled_at = NULL, failing_since = NULL"
            " WHERE account_id = ? AND id = ?"
        )
        self.disable_in = q(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ? WHERE account_id = ? AND id = ?"
        )
        self.set_secret = q(
            "UPDATE webhook_endpoints SET secret = ?, previous_secret = ?, previous_until = ?"
            " WHERE account_id = ? AND id = ?"
        )
        self.subscriptions = q(
            "SELECT id, events FROM webhook_endpoints WHERE account_id = ? AND enabled = 1"
        )
        self.insert_delivery = q(
            "INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_type, payload, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.claim = q(
            "UPDATE webhook_deliveries SET claim = ?, claimed_until = ?, attempts = attempts + 1 WHERE id IN"
            " (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            " WHERE d.delivered_at IS NULL AND d.given_up_at IS NULL AND d.next_attempt_at <= ?"
            " AND d.claimed_until <= ? AND e.enabled = 1 ORDER BY d.next_attempt_at, d.id LIMIT ?)"
        )
        self.claimed = q(
            f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE claim = ? AND delivered_at IS NULL"
            " AND given_up_at IS NULL ORDER BY next_attempt_at, id"
        )
        self.attempt = q(
            "UPDATE webhook_deliveries SET delivered_at = ?, given_up_at = ?, last_status = ?,"
            " last_latency_ms = ?, last_error = ?, last_attempt_at = ?, next_attempt_at = ?,"
            " claim = '', claimed_until = 0 WHERE id = ? AND claim = ?"
        )
        self.failing = q(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ?"
        )
        self.healthy = q("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?")
        self.failing_since = q("SELECT failing_since FROM webhook_endpoints WHERE id = ?")
        self.deliveries = q(
            f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE account_id = ? AND endpoint_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        # The next page: the rows after (older than) the last one shown, in the same order.
        self.deliveries_before = q(
            f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE account_id = ? AND endpoint_id = ?"
            " AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        self.delivery = q(f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE account_id = ? AND id = ?")
        self.requeue = q(
            "UPDATE webhook_deliveries SET delivered_at = NULL, given_up_at = NULL, next_attempt_at = ?,"
            " attempts = 0, claim = '', claimed_until = 0 WHERE account_id = ? AND id = ?"
        )


def _endpoint(row: Sequence[Any]) -> Endpoint:
    return Endpoint(
        id=row[0],
        account_id=row[1],
        url=row[2],
        events=tuple(row[3].split()),
        secret=row[4],
        enabled=bool(row[5]),
        created_at=row[6],
        failing_since=row[7],
        disabled_at=row[8],
        previous_secret=row[9],
        previous_until=row[10],
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(*row)


class WebhooksSQL(SQLPart):
    """Webhooks' part of a transaction."""

    __slots__ = ()
    _wq: WebhooksStatements

    def insert_webhook_endpoint(self, endpoint: Endpoint) -> None:
        e = endpoint
        self._c.execute(
            self._wq.insert_endpoint,
            (e.id, e.account_id, e.url, " ".join(e.events), e.secret, int(e.enabled), e.created_at,
             e.failing_since, e.disabled_at, e.previous_secret, e.previous_until),
        )  # fmt: skip

    def webhook_endpoints(self, account_id: str) -> Sequence[Endpoint]:
        return [_endpoint(r) for r in self._c.execute(self._wq.endpoints, (account_id,))]

    def webhook_endpoint(self, account_id: str, endpoint_id: str) -> Endpoint | None:
        row = self._one(self._wq.endpoint, (account_id, endpoint_id))
        return _endpoint(row) if row else None

    def delete_webhook_endpoint(self, account_id: str, endpoint_id: str) -> bool:
        self._c.execute(self._wq.delete_deliveries, (account_id, endpoint_id))
        return self._c.execute(self._wq.delete_endpoint, (account_id, endpoint_id)).rowcount > 0

    def set_webhook_endpoint_enabled(
        self, account_id: str, endpoint_id: str, enabled: bool, now: int
    ) -> None:
        if enabled:
            self._c.execute(self._wq.enable, (account_id, endpoint_id))
        else:
            self._c.execute(self._wq.disable_in, (now, account_id, endpoint_id))

    def set_webhook_endpoint_secret(
        self, account_id: str, endpoint_id: str, secret: str, previous_secret: str, previous_until: int | None
    ) -> None:
        self._c.execute(
            self._wq.set_secret, (secret, previous_secret, previous_until, account_id, endpoint_id)
        )

    def webhook_subscriptions(self, account_id: str) -> Sequence[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._c.execute(self._wq.subscriptions, (account_id,))]

    def insert_webhook_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        self._c.executemany(
            self._wq.insert_delivery,
            [(d.id, d.account_id, d.endpoint_id, d.event_type, d.payload, d.created_at, d.next_attempt_at)
             for d in deliveries],
        )  # fmt: skip

    def claim_webhook_deliveries(self, claim: str, *, now: int, until: int, limit: int) -> Sequence[Delivery]:
        self._c.execute(self._wq.claim, (claim, until, now, now, limit))
        return [_delivery(r) for r in self._c.execute(self._wq.claimed, (claim,))]

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
        args = (
            now if delivered else None,
            now if give_up and not delivered else None,
            status,
            latency_ms,
            error[:500],
            now,
            next_attempt_at,
            delivery_id,
            claim,
        )
        return self._c.execute(self._wq.attempt, args).rowcount > 0

    def webhook_endpoint_result(self, endpoint_id: str, *, ok: bool, now: int) -> int | None:
        if ok:
            self._c.execute(self._wq.healthy, (endpoint_id,))
            return None
        self._c.execute(self._wq.failing, (now, endpoint_id))
        row = self._one(self._wq.failing_since, (endpoint_id,))
        return row[0] if row else None

    def webhook_deliveries(
        self, account_id: str, endpoint_id: str, limit: int = 100, *, before: tuple[int, str] | None = None
    ) -> Sequence[Delivery]:
        if before is None:
            found = self._c.execute(self._wq.deliveries, (account_id, endpoint_id, limit))
        else:
            at, delivery_id = before
            found = self._c.execute(
                self._wq.deliveries_before, (account_id, endpoint_id, at, at, delivery_id, limit)
            )
        return [_delivery(r) for r in found]

    def webhook_delivery(self, account_id: str, delivery_id: str) -> Delivery | None:
        row = self._one(self._wq.delivery, (account_id, delivery_id))
        return _delivery(row) if row else None

    def requeue_webhook_delivery(self, account_id: str, delivery_id: str, now: int) -> None:
        self._c.execute(self._wq.requeue, (now, account_id, delivery_id))
