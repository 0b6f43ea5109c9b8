"""Admin API tokens: made for an account with scopes and an expiry, shown once, stored only as the
SHA-256 of the secret, revocable; and the check every ``/v1/admin/`` call starts with, which limits failed ones per client
address.

A token's secret starts with ``ofs_admin_`` so that a person (and a secret scanner) can tell it
from a portal person's tokens; it is looked up only among admin tokens, and a person's token only
among people's credentials, so neither opens the other's routes. Nothing here knows about HTTP."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Sequence

from offline_service import audit
from offline_service.accounts.models import Account
from offline_service.admin.models import AdminToken, Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import new_id
from offline_service.licensing.decisions import DAY
from offline_service.licensing.trial_limits import PRUNE_BATCH, RateLimited, client_key, take
from offline_service.store import Store, Transaction

__all__ = [
    "DEFAULT_DAYS",
    "FAILURES",
    "MAX_DAYS",
    "MAX_NAME",
    "PREFIX",
    "TOUCH_EVERY",
    "WINDOW",
    "account_of",
    "authenticate",
    "check_scopes",
    "create_token",
    "failures_key",
    "list_tokens",
    "require",
    "revoke_token",
    "secret_hash",
]

PREFIX = "ofs_admin_"
DEFAULT_DAYS = 90  # a token's life when none is asked for
MAX_DAYS = 366  # the longest: a leaked token stops working within a year whatever was asked
MAX_NAME = 100
# The last use is written at most this often: a write per call would put every read behind the
# writers' lock (as for personal access tokens).
TOUCH_EVERY = 300
_SECRET_LENGTH = len(PREFIX) + 43  # 32 random bytes, base64url
# Failed authentications one client address may make in a window (which starts at its first
# failure) before every call from it is refused, good token or not; settings override both.
FAILURES = 20
WINDOW = 900

log = logging.getLogger("offline_service.admin.tokens")


def secret_hash(secret: str) -> bytes:
    """Tokens are stored and looked up by SHA-256 of the secret, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def check_scopes(names: Collection[str]) -> frozenset[Scope]:
    """The scopes named, or INVALID_ARGUMENT naming the first unknown one."""
    if not names:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "give at least one scope")
    found = set()
    for name in names:
        try:
            found.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, f"unknown scope {name[:64]!r}; the scopes are {known}"
            ) from None
    return frozenset(found)


def create_token(
    store: Store,
    account: Account,
    *,
    scopes: Collection[str],
    now: int,
    name: str = "",
    days: int = DEFAULT_DAYS,
    actor: str = "cli",
) -> tuple[AdminToken, str]:
    """A new admin token of the account and its secret, which is not kept and cannot be shown again."""
    checked = check_scopes(scopes)
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"a token's name is at most {MAX_NAME} characters, without control characters",
        )
    if not 0 < days <= MAX_DAYS:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"a token lasts 1 to {MAX_DAYS} days")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = AdminToken(
        id=new_id("adt"),
        account_id=account.id,
        token_hash=secret_hash(secret),
        name=name,
        scopes=checked,
        created_at=now,
        expires_at=now + days * DAY,
    )
    with store.write() as tx:
        tx.insert_admin_token(token)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="admin_token.create",
            now=now,
            token=token.id,
            scopes=" ".join(sorted(s.value for s in checked)),
        )
    return token, secret


def list_tokens(store: Store, account: Account) -> Sequence[AdminToken]:
    """The account's admin tokens, oldest first, revoked and expired ones too (never a secret)."""
    with store.read() as tx:
        return tx.admin_tokens(account.id)


def revoke_token(store: Store, account: Account, token_id: str, *, now: int, actor: str = "cli") -> None:
    """The token stops working at once. NOT_FOUND for a token of another account or none; CONFLICT
    for one already revoked."""
    with store.write() as tx:
        if not tx.revoke_admin_token(account.id, token_id, now):
            known = any(t.id == token_id for t in tx.admin_tokens(account.id))
            if known:
                raise OfflineServiceError(Code.CONFLICT, f"admin token {token_id} is already revoked")
            raise OfflineServiceError(Code.NOT_FOUND, f"no admin token {token_id} in this account")
        audit.record(
            tx, account_id=account.id, actor=actor, action="admin_token.revoke", now=now, token=token_id
        )


def failures_key(address: str) -> str:
    """The counter of an address's failed authentications: a row of the trial limits' table under
    a prefix of its own (an IPv6 address counts as its /64, as for trials), pruned with them."""
    return f"adminauth:{client_key(address)}"


def authenticate(
    store: Store, secret: str, *, now: int, address: str, failures: int = FAILURES, window: int = WINDOW
) -> AdminToken:
    """The live admin token behind a secret; UNAUTHENTICATED when it is not an admin token's shape,
    unknown, expired or revoked (the same answer for each, so none can be told apart).

    Each failure counts against the client ``address``; once it has had ``failures`` in the
    ``window`` that began with its first, every call from it is RATE_LIMITED (with the seconds
    left) until the window ends, without the secret being looked up: a right token from there is
    refused too, so a refusal tells nothing of the secret. Whether a call is answered at all is
    decided in the write transaction that counts it, so concurrent guesses from any number of
    processes and instances get no more answers than guesses made one after another. A success
    counts nothing and clears nothing (an address cannot wipe its failures with a token of its own)."""
    key = failures_key(address)
    # Blocked already: a count never falls within its window, so a read may refuse without
    # taking the writers' lock (a flood from a blocked address costs one read a call).
    with store.read(one_statement=True) as tx:
        _, retry_after = take(tx.trial_limit(key), key, now, failures, window=window)
    if retry_after is not None:
        raise _throttled(retry_after)
    with store.write() as tx:
        counted, retry_after = take(tx.trial_limit(key), key, now, failures, window=window)
        token = None if retry_after is not None else _live(tx, secret, now)
        if retry_after is None and token is None:
            tx.save_trial_limit(counted)
            tx.prune_trial_limits(now - DAY, PRUNE_BATCH)
        elif token is not None and (token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY):
            tx.touch_admin_token(token.id, now)
    if retry_after is not None:
        raise _throttled(retry_after)
    if token is None:
        if counted.day_count == failures:
            log.warning(
                "admin token authentication: %d failures from %s; its calls are refused for %d s",
                failures,
                client_key(address),
                counted.day_start + window - now,
            )
        raise OfflineServiceError(
            Code.UNAUTHENTICATED, "not a valid admin token (unknown, expired or revoked)"
        )
    return token


def _live(tx: Transaction, secret: str, now: int) -> AdminToken | None:
    """The live admin token behind ``secret``, or None."""
    if len(secret) != _SECRET_LENGTH or not secret.startswith(PREFIX):
        return None
    digest = secret_hash(secret)
    token = tx.admin_token_by_hash(digest)
    # The row was found by the digest; comparing again in constant time costs nothing and keeps a
    # lookup that a database might answer loosely (a collation, a prefix index) from letting one in.
    if token is None or not hmac.compare_digest(token.token_hash, digest) or not token.live(now):
        return None
    return token


def _throttled(retry_after: int) -> RateLimited:
    return RateLimited(retry_after, what="too many failed admin token authentications from this address")


def account_of(store: Store, token: AdminToken) -> Account:
    """The account a token belongs to (every query of its call is scoped to it)."""
    with store.read(one_statement=True) as tx:
        found = tx.account_by_id(token.account_id)
    if found is None:  # an account is never deleted while it has tokens (a foreign key)
        raise OfflineServiceError(Code.UNAUTHENTICATED, "not a valid admin token")
    return found


def require(token: AdminToken, scope: Scope) -> None:
    """FORBIDDEN unless the token has ``scope``."""
    if scope not in token.scopes:
        raise OfflineServiceError(Code.FORBIDDEN, f"this admin token does not have the scope {scope.value}")
