"""Sending the outbox: mails queued by ``events`` in the transaction of their event, sent after it
committed, never inside a transaction.

``deliver`` claims a few unsent mails in one short write transaction (no other sender takes them
until the claim lapses), sends each with the configured ``Mailer`` with no transaction open, and
marks each sent in another. A mail is never lost: one that fails stays queued and is tried again
once its claim lapses, up to ``MAX_ATTEMPTS`` times. A mail is sent twice only if the process
stops between the relay taking it and the mark (SMTP gives no way to make that atomic).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from offline_service.accounts.mail import Mailer
from offline_service.errors import OfflineServiceError
from offline_service.notifications.models import OutboxMail
from offline_service.store import Store

__all__ = ["BATCH", "CLAIM_SECONDS", "MAX_ATTEMPTS", "Delivery", "deliver", "message"]

BATCH = 50  # mails claimed per transaction
CLAIM_SECONDS = 600  # how long a claim holds; a failed mail is tried again after it
MAX_ATTEMPTS = 10  # then it stays in the outbox, unsent, for a person to look at

log = logging.getLogger("offline_service.notifications.outbox")


@dataclass(frozen=True, slots=True)
class Delivery:
    sent: int
    failed: int


def message(mail: OutboxMail, *, sender: str, now: int) -> EmailMessage:
    """The mail of an outbox row, from ``sender``."""
    built = EmailMessage()
    built["From"] = sender
    built["To"] = mail.recipient
    built["Subject"] = mail.subject
    built["Date"] = formatdate(now, usegmt=True)
    built["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")
    built.set_content(mail.body, cte="7bit" if mail.body.isascii() else "8bit")
    return built


def deliver(store: Store, mailer: Mailer, *, sender: str, now: int, limit: int = 1000) -> Delivery:
    """Send up to ``limit`` queued mails (blocking: call it in a thread). Failures are logged by
    id and recipient, never with the body, and leave the mail queued."""
    sent = failed = 0
    while sent + failed < limit:
        claim = secrets.token_hex(16)
        with store.write() as tx:
            batch = tx.claim_outbox(
                claim,
                now=now,
                until=now + CLAIM_SECONDS,
                limit=min(BATCH, limit - sent - failed),
                max_attempts=MAX_ATTEMPTS,
            )
        if not batch:
            break
        for mail in batch:
            try:
                mailer.send(message(mail, sender=sender, now=now))
            except OfflineServiceError as exc:
                failed += 1
                log.error(
                    "notification %s to %s not sent (attempt %d of %d): %s",
                    mail.id,
                    mail.recipient,
                    mail.attempts,
                    MAX_ATTEMPTS,
                    exc.code.value,
                )
                continue
            with store.write() as tx:
                tx.mark_outbox_sent(mail.id, claim, now)
            sent += 1
    return Delivery(sent=sent, failed=failed)
