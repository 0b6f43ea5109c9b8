"""Notifications' SQL, written once for every backend: who is to be told about a license or a
product (the inverse of ``visible_license_ids``), and the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.accounts.models import Role, User
from offline_service.licensing.models import License
from offline_service.notifications.models import OutboxMail, Preference
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.accounts import USER_COLS, user_from_row
from offline_service.store.sql.dialect import Dialect
from offline_service.store.sql.licensing import LICENSE_COLS, license_from_row

__all__ = ["NotificationsSQL", "NotificationsStatements"]

_OUTBOX_COLS = "id, account_id, event_key, recipient, subject, body, created_at, attempts, sent_at"
_ADMIN = f"(u.role = '{Role.ORGANIZATION_ADMIN.value}' AND u.organization_id IS NOT NULL)"
# The person u may use the license l (as visible_license_ids): an organization admin every license
# of the organization; anyone else those assigned to them and those linked to their groups.
_MAY_USE = (
    f"(({_ADMIN} AND l.owner_organization_id = u.organization_id) OR (NOT {_ADMIN} AND"
    " (l.owner_user_id = u.id OR EXISTS (SELECT 1 FROM group_members gm JOIN group_licenses gl"
    " ON gl.group_id = gm.group_id WHERE gm.user_id = u.id AND gl.license_id = l.id))))"
)


def _people(d: Dialect, preference: Preference, by: str) -> str:
    users = ", ".join(f"u.{c.strip()}" for c in USER_COLS.split(","))
    licenses = ", ".join(f"l.{c.strip()}" for c in LICENSE_COLS.split(","))
    usable = (
        " AND l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > ?)" if by == "product" else ""
    )
    return d.sql(
        f"SELECT {users}, {licenses} FROM licenses l JOIN users u ON u.account_id = l.account_id"
        f" WHERE l.account_id = ? AND l.{'id' if by == 'license' else 'product_id'} = ?{usable} AND u.disabled = 0"
        f" AND u.{preference.value} = 1 AND {_MAY_USE} ORDER BY u.id, l.id"
    )


class NotificationsStatements:
    """Notifications' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.people = {(p, by): _people(d, p, by) for p in Preference for by in ("license", "product")}
        self.licenses_expiring = q(
            f"SELECT {LICENSE_COLS} FROM licenses WHERE status = 'active' AND expires_at > ? AND expires_at <= ?"
            " ORDER BY expires_at, id"
        )
        self.insert_outbox = q(
            "INSERT INTO mail_outbox (id, account_id, event_key, recipient, subject, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, event_key) DO NOTHING"
        )
        self.claim_outbox = q(
            "UPDATE mail_outbox SET claim = ?, claimed_until = ?, attempts = attempts + 1 WHERE id IN"
            " (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND claimed_until <= ? AND attempts < ?"
            " ORDER BY created_at, id LIMIT ?)"
        )
        self.claimed = q(
            f"SELECT {_OUTBOX_COLS} FROM mail_outbox WHERE claim = ? AND sent_at IS NULL ORDER BY created_at, id"
        )
        self.mark_sent = q("UPDATE mail_outbox SET sent_at = ? WHERE id = ? AND claim = ?")
        self.outbox = q(
            f"SELECT {_OUTBOX_COLS} FROM mail_outbox WHERE account_id = ? ORDER BY created_at, id"
        )


def _mail(row: Sequence[Any]) -> OutboxMail:
    return OutboxMail(*row)


class NotificationsSQL(SQLPart):
    """Notifications' part of a transaction."""

    __slots__ = ()
    _nq: NotificationsStatements

    def notified_people(
        self,
        account_id: str,
        preference: Preference,
        *,
        license_id: str | None = None,
        product_id: str | None = None,
        now: int,
    ) -> Sequence[tuple[User, License]]:
        if (license_id is None) == (product_id is None):
            raise ValueError("give a license_id or a product_id")
        if license_id is not None:
            rows = self._c.execute(self._nq.people[(preference, "license")], (account_id, license_id))
        else:
            rows = self._c.execute(self._nq.people[(preference, "product")], (account_id, product_id, now))
        width = len(USER_COLS.split(","))
        return [(user_from_row(r[:width]), license_from_row(r[width:])) for r in rows]

    def licenses_expiring(self, after: int, until: int) -> Sequence[License]:
        return [license_from_row(r) for r in self._c.execute(self._nq.licenses_expiring, (after, until))]

    def insert_outbox(self, mails: Sequence[OutboxMail]) -> int:
        new = 0
        for m in mails:
            args = (m.id, m.account_id, m.event_key, m.recipient, m.subject, m.body, m.created_at)
            new += max(self._c.execute(self._nq.insert_outbox, args).rowcount, 0)
        return new

    def claim_outbox(
        self, claim: str, *, now: int, until: int, limit: int, max_attempts: int
    ) -> Sequence[OutboxMail]:
        self._c.execute(self._nq.claim_outbox, (claim, until, now, max_attempts, limit))
        return [_mail(r) for r in self._c.execute(self._nq.claimed, (claim,))]

    def mark_outbox_sent(self, mail_id: str, claim: str, now: int) -> None:
        self._c.execute(self._nq.mark_sent, (now, mail_id, claim))

    def outbox(self, account_id: str) -> Sequence[OutboxMail]:
        return [_mail(r) for r in self._c.execute(self._nq.outbox, (account_id,))]
