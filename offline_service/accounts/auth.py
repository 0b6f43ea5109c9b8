"""Logins and credentials: who a person is (email and password, with growing back-off per address
and per account+email), and the secrets that stand for a logged-in person afterwards (browser
sessions, API access tokens, personal access tokens), stored only as their SHA-256.

Shared by the portal, the API and the profile; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from offline_service import audit
from offline_service.accounts.models import Credential, User
from offline_service.accounts.passwords import Cost, verify_password
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id
from offline_service.store import Store, Transaction

__all__ = [
    "FREE_FAILURES",
    "MAX_LOCK_SECONDS",
    "TOUCH_EVERY",
    "Attempt",
    "LoginThrottled",
    "authenticate",
    "check_email",
    "issue_credential",
    "login_subject",
    "refund_attempt",
    "reserve_attempt",
    "resolve_credential",
    "resolve_holder",
    "revoke_credential",
    "token_hash",
    "visible_license_ids",
]

# An address or an account+email may fail this many logins before back-off starts; then each
# further failure doubles the wait, up to 15 minutes.
FREE_FAILURES = 5
MAX_LOCK_SECONDS = 15 * 60
_EMAIL = re.compile(r"\A[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}\Z")


def check_email(email: str) -> str:
    """The address trimmed, or INVALID_ARGUMENT when it is not one."""
    email = email.strip()
    if not _EMAIL.match(email) or "." not in email.split("@")[1]:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{email!r} is not an email address")
    return email


def token_hash(token: str) -> bytes:
    """Credentials are stored and looked up by SHA-256 of the secret, never the secret itself."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class LoginThrottled(OfflineServiceError):
    """Too many failed logins; ``retry_after`` seconds until the next attempt is considered."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(Code.RATE_LIMITED, f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def login_subject(account_id: str, email: str) -> str:
    """The back-off counter of one account+email (shared by logins and password re-checks)."""
    return f"acct:{account_id}:{email_key(email)}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """A password check counted as a failure before it is made (see ``reserve_attempt``): what
    each counter held before it, and what this attempt set."""

    subjects: tuple[str, ...]
    before: tuple[tuple[int, int], ...]  # (failures, locked_until) of each subject
    after: tuple[tuple[int, int], ...]
    now: int


def _failed(failures: int, now: int) -> tuple[int, int]:
    """A counter after one more failure: past FREE_FAILURES each doubles the wait."""
    failures += 1
    wait = 0 if failures <= FREE_FAILURES else min(2 ** (failures - FREE_FAILURES), MAX_LOCK_SECONDS)
    return failures, now + wait


def reserve_attempt(store: Store, subjects: Collection[str], *, now: int) -> Attempt:
    """LoginThrottled while any of these counters is in back-off; otherwise the attempt counts as
    a failure on each at once, in the same write transaction, before the (slow) password check.
    Concurrent attempts are decided one after another, so a burst gets no more checks than
    attempts made one at a time, and a right password is refused while a counter is locked."""
    with store.write() as tx:
        before = tuple(tx.login_failures(s) for s in subjects)
        locked = max(lock for _, lock in before)
        if locked > now:
            raise LoginThrottled(locked - now)
        after = tuple(_failed(failures, now) for failures, _ in before)
        for subject, (failures, lock) in zip(subjects, after, strict=True):
            tx.record_login_failure(subject, failures, lock, now)
    return Attempt(subjects=tuple(subjects), before=before, after=after, now=now)


def refund_attempt(tx: Transaction, attempt: Attempt, *, clear: str) -> None:
    """After a right password: the ``clear`` counter (the person's) starts again from nothing; the
    others (the address's) get this attempt back. Where other attempts were counted meanwhile,
    their failures and the lock they set stay."""
    for subject, before, after in zip(attempt.subjects, attempt.before, attempt.after, strict=True):
        current = tx.login_failures(subject)
        if subject == clear:
            tx.clear_login_failures(subject)
        elif current == after:  # nothing counted since: as it was before this attempt
            if before == (0, 0):
                tx.clear_login_failures(subject)
            else:
                tx.record_login_failure(subject, *before, attempt.now)
        elif current[0] > 1:
            tx.record_login_failure(subject, current[0] - 1, current[1], attempt.now)
        else:
            tx.clear_login_failures(subject)


def authenticate(
    store: Store,
    *,
    account_alias: str,
    email: str,
    password: str,
    address: str,
    now: int,
    cost: Cost = Cost.INTERACTIVE,
) -> User:
    """The person these credentials belong to. Every failure says only "invalid credentials", takes
    as long as a wrong password, and counts toward back-off for the account+email and the address;
    LoginThrottled while either is locked, whatever the password."""
    with store.read() as tx:
        account = tx.account_by_alias(account_alias)
        user = tx.user_by_email(account.id, email_key(email)) if account else None
    person = login_subject(account.id if account else account_alias, email)
    attempt = reserve_attempt(store, [f"addr:{address}", person], now=now)
    valid = verify_password(password, user.password_hash if user else None, cost)  # slow: no lock held
    if valid and user is not None and not user.disabled:
        assert account is not None
        with store.write() as tx:
            refund_attempt(tx, attempt, clear=person)
            audit.record(
                tx,
                account_id=account.id,
                actor=f"user:{user.id}",
                action="login",
                now=now,
                address=address[:64],
            )
        return user
    if account is not None:  # the failure was counted by reserve_attempt
        with store.write() as tx:
            audit.record(
                tx,
                account_id=account.id,
                actor="login",
                action="login",
                now=now,
                code=Code.INVALID_CREDENTIALS,
                address=address[:64],
            )
    raise OfflineServiceError(Code.INVALID_CREDENTIALS, "invalid email or password")


def issue_credential(
    store: Store, user: User, *, kind: str, lifetime: int, now: int, user_agent: str = "", address: str = ""
) -> str:
    """A new random secret for ``user`` (a session cookie or an API access token)."""
    token = secrets.token_urlsafe(32)
    with store.write() as tx:
        tx.insert_credential(
            Credential(
                token_hash=token_hash(token),
                kind=kind,
                user_id=user.id,
                account_id=user.account_id,
                created_at=now,
                expires_at=now + lifetime,
                user_agent=user_agent[:200],
                address=address[:64],
                id=new_id("crd"),
            )
        )
    return token


# A personal access token's last use is recorded at most this often: a write per API call would
# put every read behind the write lock.
TOUCH_EVERY = 300


def resolve_credential(
    store: Store, token: str, *, kind: str | Collection[str], now: int
) -> tuple[User, Credential]:
    """The person and credential behind a secret; UNAUTHENTICATED when unknown, of another kind
    (``kind`` is one kind or several), expired, revoked, or its person is disabled."""
    _check_token(token)
    with store.read() as tx:
        cred = tx.credential(token_hash(token))
        user = tx.user(cred.account_id, cred.user_id) if cred else None
    return _checked(store, cred, user, kind, now)


def resolve_holder(
    store: Store, token: str, *, kind: str | Collection[str], now: int
) -> tuple[User, Credential, frozenset[str]]:
    """``resolve_credential`` and ``visible_license_ids`` in one read of one statement (on
    PostgreSQL one round trip: every API call and portal page starts here)."""
    _check_token(token)
    with store.read(one_statement=True) as tx:
        found = tx.credential_holder(token_hash(token))
    cred, user, ids = found if found is not None else (None, None, frozenset[str]())
    user, cred = _checked(store, cred, user, kind, now)
    return user, cred, ids


def _check_token(token: str) -> None:
    if not token or len(token) > 200:
        raise OfflineServiceError(Code.UNAUTHENTICATED, "not logged in")


def _checked(
    store: Store, cred: Credential | None, user: User | None, kind: str | Collection[str], now: int
) -> tuple[User, Credential]:
    kinds = (kind,) if isinstance(kind, str) else kind
    if (
        cred is None
        or user is None
        or cred.kind not in kinds
        or cred.revoked_at is not None
        or cred.expires_at <= now
    ):
        raise OfflineServiceError(Code.UNAUTHENTICATED, "not logged in, or the session has expired")
    if user.disabled:
        raise OfflineServiceError(Code.UNAUTHENTICATED, "this user is disabled")
    if cred.kind == "personal" and (cred.last_used_at is None or now - cred.last_used_at >= TOUCH_EVERY):
        with store.write() as tx:
            tx.touch_credential(cred.token_hash, now)
    return user, cred


def visible_license_ids(store: Store, user: User) -> frozenset[str]:
    """The ids of the licenses ``user`` may see and use: every scoped query of theirs starts here."""
    with store.read() as tx:
        return tx.visible_license_ids(user.account_id, user)


def revoke_credential(store: Store, token: str, *, now: int) -> None:
    """Log out: the credential stops working at once. Audited as "logout" when it was live."""
    digest = token_hash(token)
    with store.write() as tx:
        cred = tx.credential(digest)
        tx.revoke_credential(digest, now)
        if cred is not None and cred.revoked_at is None:
            audit.record(
                tx,
                account_id=cred.account_id,
                actor=f"user:{cred.user_id}",
                action="logout",
                now=now,
                kind=cred.kind,
            )
