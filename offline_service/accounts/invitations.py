"""Mailing a person a set-password link: at creation (an invitation) or later (a new link, a
reset). One path for the vendor's ``user password-link`` and the admin API's invitations, so
that the link, its mail and its audit entry are made the same way.

The link's secret goes into the mail only: these functions return the person and when the link
stops working, never the secret."""

from __future__ import annotations

from offline_service.accounts import membership, password_links
from offline_service.accounts.mail import Mailer
from offline_service.accounts.models import User
from offline_service.accounts.scope import Scope
from offline_service.errors import OfflineServiceError
from offline_service.store import Store

__all__ = ["NotMailed", "mail_link", "send_link"]


class NotMailed(OfflineServiceError):
    """A link was issued but its mail could not be sent: the mailer's code and message, and the
    person (the link stays valid; asking again issues another)."""

    def __init__(self, user: User, error: OfflineServiceError) -> None:
        super().__init__(error.code, error.message)
        self.user = user


def mail_link(
    store: Store, mailer: Mailer, user: User, token: str, *, sender: str, base: str, expires_at: int, now: int
) -> None:
    """Mail ``user`` the link of ``token``, which starts with ``base`` (blocking, no transaction
    held); the mailer's OfflineServiceError when it cannot be sent (the link stays issued)."""
    mailer.send(
        password_links.mail(store, user, token, sender=sender, base=base, expires_at=expires_at, now=now)
    )


def send_link(
    store: Store,
    scope: Scope,
    user_id: str,
    *,
    mailer: Mailer,
    sender: str,
    base: str,
    lifetime: int,
    now: int,
) -> tuple[User, int]:
    """Issue the person a new set-password link (earlier ones end; audited as ``user.password_link``)
    and mail it; the person and when the link stops working. NotMailed when the mail fails. ``base``: ``password_links.link_base``,
    asked before, so that a service without an address changes nothing."""
    user, token = membership.send_password_link(store, scope, user_id, now=now, link_lifetime=lifetime)
    try:
        mail_link(store, mailer, user, token, sender=sender, base=base, expires_at=now + lifetime, now=now)
    except OfflineServiceError as exc:
        raise NotMailed(user, exc) from exc
    return user, now + lifetime
