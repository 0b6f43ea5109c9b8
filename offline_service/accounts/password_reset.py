"""Forgot password: anyone may ask for a set-password link by account and email; an enabled person
of that account with that email gets one (``password_links``), anybody else nothing, and the asker
is never told which.

Requests are capped in the database, so that every server process shares one budget: PER_EMAIL an
hour per account+email (so at most that many mails reach a person) and PER_ADDRESS an hour per
client address (so one address cannot probe or mail many people). The counters are rows of the
trial limits (``licensing.trial_limits.take`` with a window of an hour), under keys of their own;
the email in a key is hashed. A request counts against both only when both allow it, and the check,
the count, the new link and the audit entry are one write transaction.

A new link ends the person's earlier link (``password_links.issue``) but no session or token: only
setting the password through it does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from offline_service import audit
from offline_service.accounts import password_links
from offline_service.accounts.models import User
from offline_service.errors import Code
from offline_service.ids import email_key
from offline_service.licensing.trial_limits import DAY, PRUNE_BATCH, client_key, take
from offline_service.store import Store

__all__ = ["ACTION", "HOUR", "PER_ADDRESS", "PER_EMAIL", "Reset", "request_link"]

HOUR = 3600
PER_EMAIL = 3  # links asked for one account+email an hour
PER_ADDRESS = 10  # links asked for from one client address an hour, whoever they are for
ACTION = "user.password_reset_requested"


@dataclass(frozen=True, slots=True)
class Reset:
    """A link to mail: its person, its secret, when it expires and where links of its account start."""

    user: User
    token: str
    expires_at: int
    base: str


def _email_counter(account: str, email: str) -> str:
    """The key of one account+email's counter; the email hashed, as it may be nobody's."""
    digest = hashlib.sha256(f"{account}\0{email_key(email)}".encode()).hexdigest()
    return f"pwreset:email:{digest[:32]}"


def _address_counter(key: str) -> str:
    return f"pwreset:addr:{key}"


def request_link(
    store: Store,
    *,
    account_alias: str,
    email: str,
    address: str,
    now: int,
    lifetime: int,
    public_url: str | None,
) -> Reset | None:
    """A new set-password link when ``email`` is an enabled person's of the account ``account_alias``
    and neither cap is reached; None otherwise, for whatever reason (audited when the account
    exists, without the email of someone it does not have). ``address``: the client's (an IPv6
    address counts as its /64, as for trials). INVALID_ARGUMENT, nothing counted, when the
    account's links have no address to start with (``password_links.base_url``): the same for
    every email of the account."""
    with store.read() as tx:
        account = tx.account_by_alias(account_alias)
        found = tx.user_by_email(account.id, email_key(email)) if account else None
    if account is not None:
        base = password_links.link_base(store, account.id, public_url=public_url)
    else:
        base = password_links.base_url(public_url=public_url, custom_domain=None)
    keys = (
        _email_counter(account.id if account else f"alias:{account_alias}", email),
        _address_counter(client_key(address)),
    )
    caps = (PER_EMAIL, PER_ADDRESS)
    reset = None
    with store.write() as tx:
        decided = [
            take(tx.trial_limit(k), k, now, cap, window=HOUR) for k, cap in zip(keys, caps, strict=True)
        ]
        allowed = all(retry is None for _, retry in decided)
        if allowed:
            for state, _ in decided:
                tx.save_trial_limit(state)
        tx.prune_trial_limits(now - DAY, PRUNE_BATCH)
        # Read again under the write lock: the person may have been disabled or removed meanwhile.
        user = tx.user(found.account_id, found.id) if found is not None else None
        if allowed and user is not None and not user.disabled:
            token = password_links.issue(tx, user, now=now, lifetime=lifetime)
            reset = Reset(user=user, token=token, expires_at=now + lifetime, base=base)
        if account is not None:
            person = "unknown" if user is None else "disabled" if user.disabled else "enabled"
            detail = {"user": user.id} if user is not None else {}
            audit.record(
                tx,
                account_id=account.id,
                actor="forgot-password",
                action=ACTION,
                now=now,
                code="OK" if allowed else Code.RATE_LIMITED,
                person=person,
                address=address[:64],
                **detail,
            )
    return reset
