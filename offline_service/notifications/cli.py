"""``offline-service notify``: queue the expiry reminders that are due and send the outbox. Safe to
run as often as a timer likes (every hour, say): a reminder is queued once, and a sent mail is
never sent again. The server also sends the outbox every minute."""

from __future__ import annotations

from typing import Any

from offline_service.accounts.mail import open_mailer
from offline_service.cli.context import EXIT_OK, Context, emit, now, verb
from offline_service.errors import Code, OfflineServiceError
from offline_service.notifications import events, outbox

__all__ = ["register"]


def _notify(ctx: Context) -> int:
    at = now()
    queued = events.expiry_reminders(ctx.store, now=at)
    if ctx.args.queue_only:
        emit(ctx.args, {"queued": queued}, f"{queued} expiry reminders queued")
        return EXIT_OK
    mailer = open_mailer(smtp=ctx.settings.smtp, data_dir=ctx.settings.data_dir)
    done = outbox.deliver(ctx.store, mailer, sender=ctx.settings.mail_from, now=at)
    emit(
        ctx.args,
        {"queued": queued, "sent": done.sent, "failed": done.failed},
        f"{queued} expiry reminders queued; {done.sent} mails sent, {done.failed} not sent",
    )
    if done.failed:
        raise OfflineServiceError(
            Code.STORAGE_ERROR, f"{done.failed} mails could not be sent; they stay queued and are tried again"
        )
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``notify`` to the command's subparsers."""
    p = verb(
        subparsers,
        "notify",
        _notify,
        "queue due license expiry reminders and send queued notification mails (for a timer)",
    )
    p.add_argument("--queue-only", action="store_true", help="queue the reminders, send nothing")
