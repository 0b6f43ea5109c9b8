"""What a person changes about themselves: names, email, password, time zone and mail preferences;
their sessions and API tokens, and their personal access tokens.

Changing the email or the password needs the current password, checked with the same back-off as
a login. A new password ends every other session and token of the person. Every change is one
write transaction and is audited under the person.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace

from offline_service import audit
from offline_service.accounts import time_zones
from offline_service.accounts.auth import (
    check_email,
    login_subject,
    refund_attempt,
    reserve_attempt,
    token_hash,
)
from offline_service.accounts.membership import check_person_name
from offline_service.accounts.models import Credential, User
from offline_service.accounts.passwords import Cost, check_strength, hash_password, verify_password
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id
from offline_service.store import Store, Transaction

__all__ = [
    "MAX_PERSONAL_TOKENS",
    "PERSONAL_TOKEN_PREFIX",
    "TOKEN_DAYS",
    "Credentials",
    "change_email",
    "change_password",
    "create_personal_token",
    "credentials",
    "revoke",
    "update_name",
    "update_preferences",
]

TOKEN_DAYS = (7, 30, 90, 365)  # the lifetimes a personal access token may have
MAX_PERSONAL_TOKENS = 20  # live ones per person
MAX_TOKEN_NAME = 100
# Recognisable in a leaked file or a log (secret scanners look for such prefixes); the rest is 256
# random bits, and only the SHA-256 of the whole is stored.
PERSONAL_TOKEN_PREFIX = "ofs_pat_"  # noqa: S105 (a prefix, not a secret)
SIGN_IN_KINDS = frozenset({"session", "access"})


def _audit(tx: Transaction, user: User, action: str, now: int, code: str = "OK", **detail: str) -> None:
    audit.record(
        tx, account_id=user.account_id, actor=f"user:{user.id}", action=action, now=now, code=code, **detail
    )


def _current(tx: Transaction, user: User) -> User:
    """The person as stored now; UNAUTHENTICATED if they were disabled or removed meanwhile."""
    found = tx.user(user.account_id, user.id)
    if found is None or found.disabled:
        raise OfflineServiceError(Code.UNAUTHENTICATED, "this user is disabled")
    return found


def _check_password(store: Store, user: User, password: str, *, address: str, now: int, cost: Cost) -> None:
    """WRONG_PASSWORD unless ``password`` is the person's; each check counts toward the login
    back-off of the person and of the address before it is made (a right one is given back, as at
    a login), so a stolen session cannot be used to guess the password, even by many at once."""
    person = login_subject(user.account_id, user.email)
    attempt = reserve_attempt(store, [f"addr:{address}", person], now=now)
    if verify_password(password, user.password_hash, cost):  # slow: no lock held
        with store.write() as tx:
            refund_attempt(tx, attempt, clear=person)
        return
    with store.write() as tx:
        _audit(tx, user, "profile.password_check", now, code=Code.WRONG_PASSWORD.value)
    raise OfflineServiceError(Code.WRONG_PASSWORD, "the current password is not right")


def _unchanged_password(tx: Transaction, user: User) -> User:
    """The person, provided their password did not change since it was checked."""
    found = _current(tx, user)
    if not hmac.compare_digest((found.password_hash or "").encode(), (user.password_hash or "").encode()):
        raise OfflineServiceError(Code.CONFLICT, "the password was changed meanwhile; reload the page")
    return found


def update_name(store: Store, user: User, *, first_name: str, last_name: str, now: int) -> User:
    first, last = check_person_name(first_name, "first name"), check_person_name(last_name, "last name")
    with store.write() as tx:
        current = _current(tx, user)
        updated = replace(current, first_name=first, last_name=last)
        if updated != current:
            tx.update_user(updated)
            _audit(tx, current, "profile.name", now)
    return updated


def change_email(
    store: Store,
    user: User,
    *,
    email: str,
    password: str,
    address: str,
    now: int,
    cost: Cost = Cost.INTERACTIVE,
) -> User:
    """A new login email, unique in the account; needs the current password."""
    email = check_email(email)
    if email_key(email) == email_key(user.email):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "that is already your email")
    _check_password(store, user, password, address=address, now=now, cost=cost)
    with store.write() as tx:
        current = _unchanged_password(tx, user)
        if tx.user_by_email(current.account_id, email_key(email)) is not None:
            raise OfflineServiceError(Code.CONFLICT, f"another user already has the email {email}")
        updated = replace(current, email=email)
        tx.update_user(updated)
        _audit(tx, current, "profile.email", now, old=current.email, new=email)
    return updated


def change_password(
    store: Store,
    user: User,
    *,
    current_password: str,
    new_password: str,
    keep: str,
    address: str,
    now: int,
    cost: Cost = Cost.INTERACTIVE,
) -> int:
    """A new password; every other session and token of the person ends, ``keep`` (the secret of
    the session asking) stays. How many ended."""
    check_strength(new_password, email=user.email)
    _check_password(store, user, current_password, address=address, now=now, cost=cost)
    if verify_password(new_password, user.password_hash, cost):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the new password must differ from the current one")
    hashed = hash_password(new_password, cost)  # slow: outside the write lock
    with store.write() as tx:
        current = _unchanged_password(tx, user)
        tx.update_user(replace(current, password_hash=hashed))
        tx.delete_password_tokens(current.id)
        ended = tx.revoke_user_credentials(current.id, now, keep=token_hash(keep))
        _audit(tx, current, "profile.password", now, revoked=str(ended))
    return ended


def update_preferences(
    store: Store,
    user: User,
    *,
    time_zone: str,
    notify_new_activation: bool,
    notify_license_expiry: bool,
    now: int,
    notify_new_release: bool = False,
) -> User:
    """The time zone (a name or a label of ``time_zones``; INVALID_ARGUMENT for anything else)
    and the mail preferences (``offline_service.notifications`` sends what they ask for)."""
    time_zone = time_zones.parse(time_zone, now=now, keep=user.time_zone)
    with store.write() as tx:
        current = _current(tx, user)
        updated = replace(
            current,
            time_zone=time_zone,
            notify_new_activation=notify_new_activation,
            notify_license_expiry=notify_license_expiry,
            notify_new_release=notify_new_release,
        )
        if updated != current:
            tx.update_user(updated)
            _audit(
                tx,
                current,
                "profile.preferences",
                now,
                time_zone=time_zone,
                notify_new_activation=str(notify_new_activation).lower(),
                notify_license_expiry=str(notify_license_expiry).lower(),
                notify_new_release=str(notify_new_release).lower(),
            )
    return updated


# -- sessions and tokens -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A person's live credentials: browser sessions and API logins; personal access tokens."""

    sign_ins: list[Credential]  # newest first
    personal: list[Credential]  # newest first


def credentials(store: Store, user: User, *, now: int) -> Credentials:
    with store.read() as tx:
        live = [c for c in tx.user_credentials(user.account_id, user.id) if c.expires_at > now]
    return Credentials(
        sign_ins=[c for c in live if c.kind in SIGN_IN_KINDS],
        personal=[c for c in live if c.kind == "personal"],
    )


def revoke(store: Store, user: User, credential_id: str, *, personal: bool, now: int) -> Credential:
    """End one of the person's own sessions (``personal`` False) or personal access tokens;
    NOT_FOUND for anything else, including another person's."""
    with store.write() as tx:
        _current(tx, user)
        found = tx.credential_by_id(user.account_id, user.id, credential_id) if credential_id else None
        kinds = {"personal"} if personal else SIGN_IN_KINDS
        if (
            found is None
            or found.kind not in kinds
            or found.revoked_at is not None
            or found.expires_at <= now
        ):
            raise OfflineServiceError(Code.NOT_FOUND, "no such session or token of yours")
        tx.revoke_credential(found.token_hash, now)
        _audit(
            tx,
            user,
            "token.revoke" if personal else "session.revoke",
            now,
            credential=found.id,
            kind=found.kind,
        )
    return found


def create_personal_token(
    store: Store, user: User, *, name: str, days: int, now: int
) -> tuple[Credential, str]:
    """A named token for the JSON API, valid ``days`` (one of TOKEN_DAYS); the secret is returned
    once and never stored."""
    name = name.strip()
    if not 0 < len(name) <= MAX_TOKEN_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"a token name must be 1-{MAX_TOKEN_NAME} characters, without control characters",
        )
    if days not in TOKEN_DAYS:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"a token lasts {', '.join(map(str, TOKEN_DAYS))} days"
        )
    token = PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.write() as tx:
        current = _current(tx, user)
        live = [
            c
            for c in tx.user_credentials(current.account_id, current.id)
            if c.kind == "personal" and c.expires_at > now
        ]
        if len(live) >= MAX_PERSONAL_TOKENS:
            raise OfflineServiceError(
                Code.CONFLICT, f"you have {MAX_PERSONAL_TOKENS} tokens; revoke one before making another"
            )
        credential = Credential(
            token_hash=token_hash(token),
            kind="personal",
            user_id=current.id,
            account_id=current.account_id,
            created_at=now,
            expires_at=now + days * 86400,
            id=new_id("crd"),
            name=name,
        )
        tx.insert_credential(credential)
        _audit(tx, current, "token.create", now, credential=credential.id, days=str(days))
    return credential, token
