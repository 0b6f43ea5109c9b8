"""The notification mails of three events, queued in the outbox inside the transaction that
records the event (or, for expiry, that looks for it), for the people who may use the license and
ticked the matching preference (``Preference``):

- near the limit: an activation brings a limited license from under ``NEAR_LIMIT_PERCENT`` of its
  allowed activations to at least that share; once per crossing (falling back under it after a
  deactivation and crossing again mails again), never on the activations after it;
- near expiry: an active license expires within ``NEAR_EXPIRY_SECONDS``; once per license, expiry
  date and person, however often ``expiry_reminders`` runs;
- a new release: published for a product, to those with a license in force of that product that
  entitles them to this version.

Each mail's ``event_key`` names the event and the person, and the outbox keeps one row per key, so
a repeated look never queues a mail twice. Nothing here sends: ``outbox.deliver`` does, after commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from offline_service.accounts.models import User
from offline_service.ids import new_id
from offline_service.licensing.models import NEAR_EXPIRY_SECONDS, NEAR_LIMIT_PERCENT, UNLIMITED, License
from offline_service.notifications.models import OutboxMail, Preference
from offline_service.releases.versions import parse_version
from offline_service.store import Store, Transaction

__all__ = ["crossed_near_limit", "expiry_reminders", "near_limit", "new_release"]

_FOOTER = (
    "\n\nYou get this mail because of your mail preferences in the license portal; change them on"
    " your profile page.\n"
)


def crossed_near_limit(allowed: int, before: int, after: int) -> bool:
    """Whether going from ``before`` to ``after`` used activations reaches NEAR_LIMIT_PERCENT of
    ``allowed`` from under it (never for an unlimited license)."""
    if allowed == UNLIMITED or allowed <= 0:
        return False
    return before * 100 < allowed * NEAR_LIMIT_PERCENT <= after * 100


def _name(user: User) -> str:
    return f"{user.first_name} {user.last_name}".strip() or user.email


def _label(license: License) -> str:
    """How the mail names a license: its name or owner, and the last characters of its key (the
    whole key is a secret of sorts: it activates machines)."""
    label = license.name or license.owner or "license"
    return f"{label} (key ending {license.key.replace('-', '')[-5:]})"


def _day(at: int) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d")


def _queue(tx: Transaction, mails: Iterable[OutboxMail]) -> int:
    found = list(mails)
    return tx.insert_outbox(found) if found else 0


def _product_name(tx: Transaction, license: License) -> str:
    product = tx.product(license.account_id, license.product_id)
    return product.name if product else license.product_id


def near_limit(tx: Transaction, license: License, *, before: int, activation_id: str, now: int) -> int:
    """Inside the activation's transaction: queue the near-limit mails if this activation (which
    brought ``license`` from ``before`` to ``license.used_activations``) crossed the line. How
    many were queued."""
    after, allowed = license.used_activations, license.allowed_activations
    if not crossed_near_limit(allowed, before, after):
        return 0
    people = tx.notified_people(license.account_id, Preference.NEAR_LIMIT, license_id=license.id, now=now)
    if not people:
        return 0
    product = _product_name(tx, license)
    subject = f"{product}: a license is at {after * 100 // allowed}% of its activations"
    return _queue(
        tx,
        (
            OutboxMail(
                id=new_id("mail"),
                account_id=license.account_id,
                event_key=f"near-limit:{license.id}:{activation_id}:{user.id}",
                recipient=user.email,
                subject=subject,
                body=(
                    f"Hello {_name(user)},\n\n"
                    f"the license {_label(license)} of {product} now has {after} of its {allowed}"
                    f" activations in use. When all are used, no more machines can be activated"
                    " with it: deactivate machines that are no longer used, or ask for more"
                    " activations." + _FOOTER
                ),
                created_at=now,
            )
            for user, _ in people
        ),
    )


def new_release(
    tx: Transaction, *, account_id: str, product_id: str, release_id: str, version: str, now: int
) -> int:
    """Inside the publishing transaction: queue a mail for each person who ticked new releases and
    may download this one (a license in force of the product whose maximum version allows it)."""
    wanted = parse_version(version)
    people: dict[str, User] = {}
    for user, license in tx.notified_people(account_id, Preference.RELEASE, product_id=product_id, now=now):
        if license.max_version is None or parse_version(license.max_version) >= wanted:
            people.setdefault(user.id, user)
    if not people:
        return 0
    product = tx.product(account_id, product_id)
    name = product.name if product else product_id
    return _queue(
        tx,
        (
            OutboxMail(
                id=new_id("mail"),
                account_id=account_id,
                event_key=f"release:{release_id}:{user.id}",
                recipient=user.email,
                subject=f"{name} {version} is available",
                body=(
                    f"Hello {_name(user)},\n\n{name} {version} has been published, and your license"
                    " entitles you to it. Download it from the Downloads page of the license portal."
                    + _FOOTER
                ),
                created_at=now,
            )
            for user in people.values()
        ),
    )


def expiry_reminders(store: Store, *, now: int) -> int:
    """Queue a reminder for each person who ticked expiry reminders and may use an active license
    that expires within NEAR_EXPIRY_SECONDS; one transaction. Idempotent: a license, expiry date
    and person are reminded once (a new expiry date reminds again). How many were queued."""
    queued = 0
    with store.write() as tx:
        for license in tx.licenses_expiring(now, now + NEAR_EXPIRY_SECONDS):
            assert license.expires_at is not None
            people = tx.notified_people(license.account_id, Preference.EXPIRY, license_id=license.id, now=now)
            if not people:
                continue
            product = _product_name(tx, license)
            day = _day(license.expires_at)
            queued += _queue(
                tx,
                (
                    OutboxMail(
                        id=new_id("mail"),
                        account_id=license.account_id,
                        event_key=f"expiry:{license.id}:{license.expires_at}:{user.id}",
                        recipient=user.email,
                        subject=f"{product}: a license expires on {day}",
                        body=(
                            f"Hello {_name(user)},\n\nthe license {_label(license)} of {product}"
                            f" expires on {day} (UTC). After that day it activates no machine and"
                            " entitles to no download; ask your vendor to renew it in time." + _FOOTER
                        ),
                        created_at=now,
                    )
                    for user, _ in people
                ),
            )
    return queued
