"""Events, written inside the transaction that records them: one delivery row per enabled
endpoint of the account that subscribed to the event's type. Nothing here sends (``sender``
does, after commit), so a rolled-back change leaves no delivery and a committed one is never
lost.

The activation path calls ``subscribers`` once per chunk of requests: for an account without
endpoints that one indexed read is the whole cost of webhooks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from offline_service.ids import new_id
from offline_service.licensing.models import Activation
from offline_service.licensing.representations import activation_json
from offline_service.store import Transaction
from offline_service.webhooks.models import EVENT_TYPES, Delivery

__all__ = ["Subscribers", "activation_data", "emit", "payload", "subscribers"]

# event type -> the ids of the endpoints that want it
Subscribers = Mapping[str, Sequence[str]]


def subscribers(tx: Transaction, account_id: str) -> Subscribers:
    """Which of the account's enabled endpoints want which event types (one read)."""
    found: dict[str, list[str]] = {}
    for endpoint_id, events in tx.webhook_subscriptions(account_id):
        for event in events.split():
            found.setdefault(event, []).append(endpoint_id)
    return found


def payload(event_type: str, data: Mapping[str, Any], now: int) -> str:
    """The JSON body of an event, as Standard Webhooks suggests: type, timestamp, data."""
    at = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"type": event_type, "timestamp": at, "data": data}, separators=(",", ":"))


def activation_data(activation: Activation, **extra: Any) -> dict[str, Any]:
    """An activation as events show it (the JSON API's shape, with its product)."""
    return {**activation_json(activation), "productId": activation.product_id, **extra}


def emit(
    tx: Transaction,
    account_id: str,
    events: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    now: int,
    wanted: Subscribers | None = None,
) -> int:
    """Inside the event's transaction: queue one delivery per subscribed enabled endpoint for each
    (type, data) of ``events``; ``wanted`` is ``subscribers`` already read in this transaction.
    How many deliveries were queued."""
    rows: list[Delivery] = []
    for event_type, data in events:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event {event_type}")
        if wanted is None:
            wanted = subscribers(tx, account_id)
        endpoints = wanted.get(event_type)
        if not endpoints:
            continue
        body = payload(event_type, data, now)
        rows += [
            Delivery(
                id=new_id("msg"),
                account_id=account_id,
                endpoint_id=endpoint_id,
                event_type=event_type,
                payload=body,
                created_at=now,
                next_attempt_at=now,
            )
            for endpoint_id in endpoints
        ]
    if rows:
        tx.insert_webhook_deliveries(rows)
    return len(rows)
