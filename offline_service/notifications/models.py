"""Notification records: the preferences a person ticks, and a mail waiting in the outbox. No
behaviour, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["OutboxMail", "Preference"]


class Preference(enum.StrEnum):
    """The profile's mail preferences, by their column in ``users``."""

    NEAR_LIMIT = "notify_new_activation"  # activations bring a license to NEAR_LIMIT_PERCENT
    EXPIRY = "notify_license_expiry"  # a license expires within NEAR_EXPIRY_SECONDS
    RELEASE = "notify_new_release"  # a release the person may download is published


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A notification to send: written with its event, sent after that commits."""

    id: str
    account_id: str
    event_key: str  # the event and the person: unique per account, so each is mailed once
    recipient: str
    subject: str
    body: str
    created_at: int
    attempts: int = 0
    sent_at: int | None = None
