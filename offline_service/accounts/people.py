"""People and access: organizations, users and groups of an account, logins with growing back-off,
and the credentials (browser sessions, API tokens) that stand for a logged-in person.

Shared by the CLI and the web layer; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from offline_service.accounts.models import Account, Credential, Organization, Role, User, UserGroup
from offline_service.accounts.passwords import Cost, check_strength, hash_password, verify_password
from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id
from offline_service.store import Store, Transaction

__all__ = [
    "FREE_FAILURES",
    "MAX_LOCK_SECONDS",
    "Attempt",
    "LoginThrottled",
    "add_user_to_group",
    "authenticate",
    "check_email",
    "check_user_cap",
    "create_group",
    "create_organization",
    "create_user",
    "find_group",
    "issue_credential",
    "link_group_license",
    "login_subject",
    "refund_attempt",
    "reserve_attempt",
    "resolve_credential",
    "revoke_credential",
    "token_hash",
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


def _audit(tx: Transaction, account: Account, action: str, now: int, actor: str, **detail: str) -> None:
    tx.audit(AuditEntry(at=now, actor=actor, action=action, code="OK", account_id=account.id, detail=detail))


def check_user_cap(tx: Transaction, org: Organization) -> None:
    """USER_LIMIT when the organization has as many enabled users as it may. Disabled users do not
    count: disabling someone frees their place."""
    if org.allowed_users is not None and tx.enabled_user_count(org.account_id, org.id) >= org.allowed_users:
        raise OfflineServiceError(
            Code.USER_LIMIT,
            f"{org.name} has its {org.allowed_users} allowed users; disable one or ask the vendor for more",
        )


def create_organization(
    store: Store,
    account: Account,
    *,
    name: str,
    now: int,
    allowed_users: int | None = None,
    actor: str = "cli",
) -> Organization:
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "an organization name must be 1-200 characters")
    if allowed_users is not None and allowed_users < 0:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the allowed users must be 0 or more")
    with store.write() as tx:
        if tx.organization_by_name(account.id, name) is not None:
            raise OfflineServiceError(Code.CONFLICT, f"organization {name!r} already exists")
        org = Organization(
            id=new_id("org"), account_id=account.id, name=name, created_at=now, allowed_users=allowed_users
        )
        tx.insert_organization(org)
        _audit(tx, account, "organization.create", now, actor, organization=org.id)
    return org


def create_user(
    store: Store,
    account: Account,
    *,
    email: str,
    role: Role,
    now: int,
    organization: str | None = None,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    cost: Cost = Cost.INTERACTIVE,
    actor: str = "cli",
) -> User:
    """A person of the account. An organization admin must belong to an organization."""
    email = check_email(email)
    if role is Role.ORGANIZATION_ADMIN and not organization:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "an organization-admin needs --organization")
    if password is not None:
        check_strength(password, email=email)
    hashed = hash_password(password, cost) if password is not None else None  # slow: outside the lock
    with store.write() as tx:
        org = None
        if organization:
            org = tx.organization_by_name(account.id, organization)
            if org is None:
                raise OfflineServiceError(Code.NOT_FOUND, f"no organization {organization!r}")
        if tx.user_by_email(account.id, email_key(email)) is not None:
            raise OfflineServiceError(Code.CONFLICT, f"a user with email {email} already exists")
        if org is not None:
            check_user_cap(tx, org)
        user = User(
            id=new_id("usr"),
            account_id=account.id,
            email=email,
            role=role,
            created_at=now,
            organization_id=org.id if org else None,
            password_hash=hashed,
            first_name=first_name.strip()[:100],
            last_name=last_name.strip()[:100],
        )
        tx.insert_user(user)
        _audit(tx, account, "user.create", now, actor, user=user.id, role=role.value)
    return user


def create_group(
    store: Store, account: Account, *, organization: str, name: str, now: int, actor: str = "cli"
) -> UserGroup:
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a group name must be 1-200 characters")
    with store.write() as tx:
        org = tx.organization_by_name(account.id, organization)
        if org is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no organization {organization!r}")
        if any(g.organization_id == org.id for g in tx.groups_by_name(account.id, name)):
            raise OfflineServiceError(Code.CONFLICT, f"group {name!r} already exists in {organization!r}")
        group = UserGroup(
            id=new_id("grp"), account_id=account.id, organization_id=org.id, name=name, created_at=now
        )
        tx.insert_group(group)
        _audit(tx, account, "group.create", now, actor, group=group.id)
    return group


def _one_group(tx: Transaction, account: Account, name: str) -> UserGroup:
    groups = tx.groups_by_name(account.id, name)
    if not groups:
        raise OfflineServiceError(Code.NOT_FOUND, f"no group {name!r}")
    if len(groups) > 1:
        raise OfflineServiceError(Code.CONFLICT, f"several organizations have a group {name!r}")
    return groups[0]


def find_group(store: Store, account: Account, name: str) -> UserGroup:
    """The group of this name; NOT_FOUND, or CONFLICT when several organizations have one."""
    with store.read() as tx:
        return _one_group(tx, account, name)


def add_user_to_group(
    store: Store, account: Account, *, group: str, email: str, now: int, actor: str = "cli"
) -> None:
    """Members must belong to the group's organization."""
    with store.write() as tx:
        g = _one_group(tx, account, group)
        user = tx.user_by_email(account.id, email_key(email))
        if user is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no user {email}")
        if user.organization_id != g.organization_id:
            raise OfflineServiceError(Code.FORBIDDEN, f"{email} is not in the group's organization")
        tx.add_group_member(g.id, user.id)
        _audit(tx, account, "group.add_user", now, actor, group=g.id, user=user.id)


def link_group_license(
    store: Store, account: Account, *, group: str, license_key: str, now: int, actor: str = "cli"
) -> None:
    """Only licenses owned by the group's organization can be linked to it."""
    with store.write() as tx:
        g = _one_group(tx, account, group)
        license = tx.license_by_key(account.id, license_key)
        if license is None:
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
        if license.owner_organization_id != g.organization_id:
            raise OfflineServiceError(
                Code.FORBIDDEN, "the license does not belong to the group's organization"
            )
        tx.link_group_license(g.id, license.id)
        _audit(tx, account, "group.link_license", now, actor, group=g.id, license=license.id)


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
            _audit(tx, account, "login", now, f"user:{user.id}", address=address[:64])
        return user
    if account is not None:  # the failure was counted by reserve_attempt
        with store.write() as tx:
            tx.audit(
                AuditEntry(
                    at=now,
                    actor="login",
                    action="login",
                    code=Code.INVALID_CREDENTIALS.value,
                    account_id=account.id,
                    detail={"address": address[:64]},
                )
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
    kinds = (kind,) if isinstance(kind, str) else kind
    if not token or len(token) > 200:
        raise OfflineServiceError(Code.UNAUTHENTICATED, "not logged in")
    with store.read() as tx:
        cred = tx.credential(token_hash(token))
        user = tx.user(cred.account_id, cred.user_id) if cred else None
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


def revoke_credential(store: Store, token: str, *, now: int) -> None:
    """Log out: the credential stops working at once. Audited as "logout" when it was live."""
    digest = token_hash(token)
    with store.write() as tx:
        cred = tx.credential(digest)
        tx.revoke_credential(digest, now)
        if cred is not None and cred.revoked_at is None:
            tx.audit(
                AuditEntry(
                    at=now,
                    actor=f"user:{cred.user_id}",
                    action="logout",
                    code="OK",
                    account_id=cred.account_id,
                    detail={"kind": cred.kind},
                )
            )
