"""Webhook records: the event types, an endpoint an account registered, and one delivery of one
event to one endpoint. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EVENT_TYPES", "Delivery", "Endpoint"]

# Every event an endpoint may subscribe to; docs/WEBHOOKS.md describes each one's payload.
EVENT_TYPES = (
    "license.created",
    "license.suspended",
    "license.revoked",
    "license.near_limit",
    "activation.created",
    "activation.reissued",
    "activation.deactivated",
    "activation.released",
    "trial.created",
    "batch.completed",
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL of an account's that wants some events, with the secret its deliveries are signed with
    (``whsec_`` + base64: the shared secret of Standard Webhooks). As read from the store the
    secrets are sealed (``webhooks.sealing``); a new or rotated endpoint's ``secret`` is in clear
    until it is written."""

    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    enabled: bool
    created_at: int
    failing_since: int | None = None  # the first failure of the current run of failures
    disabled_at: int | None = None
    previous_secret: str = ""  # the secret a rotation replaced, still signing until previous_until
    previous_until: int | None = None

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"Endpoint(id={self.id!r}, account_id={self.account_id!r}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint: its id is the ``webhook-id`` header, the same on every attempt."""

    id: str
    account_id: str
    endpoint_id: str
    event_type: str
    payload: str  # the JSON body, exactly as signed and sent
    created_at: int
    next_attempt_at: int
    attempts: int = 0
    delivered_at: int | None = None
    given_up_at: int | None = None
    last_status: int | None = None
    last_latency_ms: int | None = None
    last_error: str = ""
    last_attempt_at: int | None = None
