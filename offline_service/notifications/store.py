"""What notifications need from a transaction: who wants a mail about a license or a product, and
the outbox. One of the domain parts ``store.Transaction`` is composed of; every lookup is scoped
to one account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from offline_service.accounts.models import User
from offline_service.licensing.models import License
from offline_service.notifications.models import OutboxMail, Preference

__all__ = ["NotificationsTransaction"]


class NotificationsTransaction(Protocol):
    """Notifications' reads and writes."""

    def notified_people(
        self,
        account_id: str,
        preference: Preference,
        *,
        license_id: str | None = None,
        product_id: str | None = None,
        now: int,
    ) -> Sequence[tuple[User, License]]:
        """Enabled people who ticked ``preference`` and may use the license (``license_id``), or
        a license in force of the product (``product_id``), each with that license (a person may
        come once per license). Who may use a license is decided as ``visible_license_ids`` does."""
        ...

    def licenses_expiring(self, after: int, until: int) -> Sequence[License]:
        """Active licenses of every account whose expiry is in (``after``, ``until``]."""
        ...

    def insert_outbox(self, mails: Sequence[OutboxMail]) -> int:
        """Queue ``mails``, skipping those whose event_key the account has already queued; how
        many were new."""
        ...

    def claim_outbox(
        self, claim: str, *, now: int, until: int, limit: int, max_attempts: int
    ) -> Sequence[OutboxMail]:
        """Take up to ``limit`` unsent mails (oldest first) that nobody holds and that were tried
        fewer than ``max_attempts`` times, for ``claim`` until ``until``; counts the attempt."""
        ...

    def mark_outbox_sent(self, mail_id: str, claim: str, now: int) -> None: ...
    def outbox(self, account_id: str) -> Sequence[OutboxMail]:
        """The account's queued and sent mails, oldest first (tests and support)."""
        ...
