"""An account's webhook endpoints and their delivery log: the operations the CLI and the admin API
call. Every one is scoped to the account; bad input changes nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from offline_service import audit
from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import ID_PREFIXES, new_id
from offline_service.store import Store, Transaction
from offline_service.webhooks.models import EVENT_TYPES, Delivery, Endpoint
from offline_service.webhooks.sealing import Sealer, SecretUnavailable, endpoint_place
from offline_service.webhooks.signing import new_secret
from offline_service.webhooks.urls import URLPolicy, check_url

__all__ = [
    "CURSOR_PATTERN",
    "MAX_ENDPOINTS",
    "MAX_PAGE",
    "ROTATION_GRACE",
    "add_endpoint",
    "add_endpoint_in",
    "deliveries",
    "delivery_json",
    "delivery_page",
    "endpoint",
    "endpoint_json",
    "endpoints",
    "new_endpoint",
    "redeliver",
    "remove_endpoint",
    "rotate_secret",
    "rotate_secret_in",
    "rotated_json",
    "set_enabled",
]

MAX_ENDPOINTS = 20  # per account: each event is one row per endpoint, written in its transaction
MAX_PAGE = 200  # deliveries a page at most, as every page of the admin API
# How long a rotated secret still signs beside the new one (Standard Webhooks' grace): a day for
# the receivers to take the new secret without rejecting a delivery.
ROTATION_GRACE = 24 * 3600
# A page's cursor: the creation time and id digits of its last delivery. Opaque to callers; its
# shape alone says whether it is one.
CURSOR_PATTERN = "^[0-9]{1,15}[.][0-9a-f]{24,32}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_DELIVERY_PREFIX = ID_PREFIXES["webhook_delivery"] + "_"


def _events(events: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(e.strip() for e in events))
    if not chosen:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "choose at least one event")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"unknown event {unknown[0]!r}; the events are: {', '.join(EVENT_TYPES)}"
        )
    return chosen


def new_endpoint(
    account: Account, *, url: str, events: Sequence[str], policy: URLPolicy, now: int
) -> Endpoint:
    """An endpoint for ``url`` and ``events``, with a new secret, not yet written: the events and the
    URL (``urls.check_url``, which resolves the host) are checked here, outside any transaction."""
    chosen = _events(events)
    check_url(url, policy)
    return Endpoint(
        id=new_id("whk"),
        account_id=account.id,
        url=url,
        events=chosen,
        secret=new_secret(),
        enabled=True,
        created_at=now,
    )


def add_endpoint_in(tx: Transaction, endpoint: Endpoint, *, sealer: Sealer, now: int, actor: str) -> None:
    """Inside the caller's transaction (an idempotent create's): write ``new_endpoint``'s endpoint,
    its secret sealed, within the account's limit, audited."""
    if len(tx.webhook_endpoints(endpoint.account_id)) >= MAX_ENDPOINTS:
        raise OfflineServiceError(Code.CONFLICT, f"an account has at most {MAX_ENDPOINTS} webhook endpoints")
    place = endpoint_place(endpoint.account_id, endpoint.id)
    tx.insert_webhook_endpoint(replace(endpoint, secret=sealer.seal(endpoint.secret, place)))
    audit.record(
        tx,
        account_id=endpoint.account_id,
        actor=actor,
        action="webhook.add",
        now=now,
        endpoint=endpoint.id,
        url=endpoint.url,
    )


def add_endpoint(
    store: Store,
    account: Account,
    *,
    url: str,
    events: Sequence[str],
    policy: URLPolicy,
    sealer: Sealer,
    now: int,
    actor: str = "cli",
) -> Endpoint:
    """Register ``url`` for ``events``; the URL is checked (``urls.check_url``) before anything is
    written. The returned endpoint carries its new secret in clear (the row holds it sealed): show
    it once."""
    endpoint = new_endpoint(account, url=url, events=events, policy=policy, now=now)
    sealer.prepare()
    with store.write() as tx:
        add_endpoint_in(tx, endpoint, sealer=sealer, now=now, actor=actor)
    return endpoint


def rotate_secret_in(
    tx: Transaction,
    account: Account,
    endpoint_id: str,
    *,
    sealer: Sealer,
    now: int,
    actor: str,
    grace: int = ROTATION_GRACE,
) -> Endpoint:
    """Inside the caller's transaction: give the endpoint a new secret, returned in clear (show it
    once) in the endpoint returned. The replaced one signs beside it for ``grace`` seconds, unless
    it cannot be opened here (a lost sealing key: rotating is then the way back) or ``grace`` is
    0; a secret rotated before and still in its grace is dropped. Audited."""
    if not 0 <= grace <= ROTATION_GRACE:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"the grace is 0 to {ROTATION_GRACE} seconds")
    found = _endpoint(tx, account, endpoint_id)
    place = endpoint_place(account.id, endpoint_id)
    previous, until = "", None
    if grace:
        try:
            # Sealed again: a secret written before sealing is sealed as it moves.
            previous, until = sealer.seal(sealer.open(found.secret, place), place), now + grace
        except SecretUnavailable:
            previous, until = "", None
    secret = new_secret()
    tx.set_webhook_endpoint_secret(account.id, endpoint_id, sealer.seal(secret, place), previous, until)
    audit.record(
        tx,
        account_id=account.id,
        actor=actor,
        action="webhook.rotate-secret",
        now=now,
        endpoint=endpoint_id,
        grace=str(until - now if until is not None else 0),
    )
    return replace(found, secret=secret, previous_secret="", previous_until=until)


def rotate_secret(
    store: Store,
    account: Account,
    endpoint_id: str,
    *,
    sealer: Sealer,
    now: int,
    actor: str = "cli",
    grace: int = ROTATION_GRACE,
) -> Endpoint:
    """``rotate_secret_in`` in a transaction of its own."""
    sealer.prepare()
    with store.write() as tx:
        return rotate_secret_in(tx, account, endpoint_id, sealer=sealer, now=now, actor=actor, grace=grace)


def endpoints(store: Store, account: Account) -> Sequence[Endpoint]:
    with store.read() as tx:
        return tx.webhook_endpoints(account.id)


def endpoint(store: Store, account: Account, endpoint_id: str) -> Endpoint:
    """One of the account's endpoints, or NOT_FOUND (another account's too)."""
    with store.read() as tx:
        return _endpoint(tx, account, endpoint_id)


def _endpoint(tx: Transaction, account: Account, endpoint_id: str) -> Endpoint:
    found = tx.webhook_endpoint(account.id, endpoint_id)
    if found is None:
        raise OfflineServiceError(Code.NOT_FOUND, f"no webhook endpoint {endpoint_id} in this account")
    return found


def remove_endpoint(
    store: Store, account: Account, endpoint_id: str, *, now: int, actor: str = "cli"
) -> None:
    """Remove an endpoint and its delivery log; undelivered events for it are dropped."""
    with store.write() as tx:
        _endpoint(tx, account, endpoint_id)
        tx.delete_webhook_endpoint(account.id, endpoint_id)
        audit.record(
            tx, account_id=account.id, actor=actor, action="webhook.remove", now=now, endpoint=endpoint_id
        )


def set_enabled(
    store: Store, account: Account, endpoint_id: str, enabled: bool, *, now: int, actor: str = "cli"
) -> Endpoint:
    """Enable (its run of failures forgotten; its waiting deliveries go out) or disable an endpoint."""
    with store.write() as tx:
        found = _endpoint(tx, account, endpoint_id)
        tx.set_webhook_endpoint_enabled(account.id, endpoint_id, enabled, now)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="webhook.enable" if enabled else "webhook.disable",
            now=now,
            endpoint=endpoint_id,
        )
    return replace(found, enabled=enabled, disabled_at=None if enabled else now, failing_since=None)


def deliveries(store: Store, account: Account, endpoint_id: str, *, limit: int = 100) -> Sequence[Delivery]:
    """The newest ``limit`` deliveries of the endpoint's log, newest first (``delivery_page``'s first)."""
    return delivery_page(store, account, endpoint_id, limit=limit)[0]


def delivery_page(
    store: Store, account: Account, endpoint_id: str, *, limit: int, cursor: str | None = None
) -> tuple[list[Delivery], str | None]:
    """One page of the endpoint's delivery log, newest first, after the page whose ``cursor`` is
    given, and the cursor of the next page (None on the last). Deliveries written while a caller
    pages are newer than every page read, so they shift none: nothing is skipped or repeated.
    INVALID_ARGUMENT for a limit outside 1 to MAX_PAGE or a cursor no page gave."""
    if not 0 < limit <= MAX_PAGE:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"limit must be 1 to {MAX_PAGE}")
    before = None
    if cursor is not None:
        if not _CURSOR.fullmatch(cursor):
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, "cursor must be the nextCursor of a previous page"
            )
        at, digits = cursor.split(".")
        before = (int(at), _DELIVERY_PREFIX + digits)
    with store.read() as tx:
        _endpoint(tx, account, endpoint_id)
        found = list(tx.webhook_deliveries(account.id, endpoint_id, limit + 1, before=before))
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], f"{last.created_at}.{last.id.removeprefix(_DELIVERY_PREFIX)}"


def redeliver(store: Store, account: Account, delivery_id: str, *, now: int, actor: str = "cli") -> Delivery:
    """Send a delivery again (delivered, given up or waiting), from now, with a fresh schedule."""
    with store.write() as tx:
        found = tx.webhook_delivery(account.id, delivery_id)
        if found is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no webhook delivery {delivery_id} in this account")
        tx.requeue_webhook_delivery(account.id, delivery_id, now)
        audit.record(
            tx, account_id=account.id, actor=actor, action="webhook.redeliver", now=now, delivery=delivery_id
        )
    return replace(found, delivered_at=None, given_up_at=None, next_attempt_at=now, attempts=0)


def endpoint_json(e: Endpoint) -> dict[str, Any]:
    """An endpoint as the CLI and API show it: never its secret."""
    return {
        "id": e.id,
        "url": e.url,
        "events": list(e.events),
        "enabled": e.enabled,
        "createdAt": e.created_at,
        "failingSince": e.failing_since,
        "disabledAt": e.disabled_at,
    }


def rotated_json(e: Endpoint) -> dict[str, Any]:
    """A rotation's answer: the endpoint, its new secret (shown once) and until when the replaced
    one still signs (None: it stopped at once)."""
    return {**endpoint_json(e), "secret": e.secret, "previousSecretUntil": e.previous_until}


def delivery_json(d: Delivery) -> dict[str, Any]:
    """A delivery log row (the body is left out: it may be long; the status says what happened)."""
    state = "delivered" if d.delivered_at else "given up" if d.given_up_at else "pending"
    return {
        "id": d.id,
        "endpointId": d.endpoint_id,
        "event": d.event_type,
        "state": state,
        "createdAt": d.created_at,
        "attempts": d.attempts,
        "nextAttemptAt": None if d.delivered_at or d.given_up_at else d.next_attempt_at,
        "lastAttemptAt": d.last_attempt_at,
        "lastStatus": d.last_status,
        "lastLatencyMs": d.last_latency_ms,
        "lastError": d.last_error or None,
        "deliveredAt": d.delivered_at,
    }
