"""Password hashing with Argon2id (libsodium through PyNaCl), and the rules a new password meets."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import nacl.exceptions
import nacl.pwhash

from offline_service.errors import Code, OfflineServiceError

__all__ = ["MIN_LENGTH", "Cost", "check_strength", "hash_password", "verify_password"]

MIN_LENGTH = 12
MAX_LENGTH = 1024  # Argon2 takes any length; a bound keeps a hostile request from costing more


class Cost(enum.Enum):
    """Argon2id cost. INTERACTIVE (64 MiB, 2 passes, about 70 ms here) is the default; MINIMUM
    exists so that tests run fast and must never be configured in production."""

    MODERATE = (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE * 2)
    INTERACTIVE = (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)
    MINIMUM = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def check_strength(password: str, *, email: str = "") -> None:
    """At least 12 characters, not only one kind of character, and not the email address."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"a password must be {MIN_LENGTH} to {MAX_LENGTH} characters long"
        )
    if len(set(password)) < 5:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a password needs at least 5 different characters")
    if email and password.casefold() in (email.casefold(), email.split("@")[0].casefold()):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "a password must not be the email address")


def hash_password(password: str, cost: Cost = Cost.INTERACTIVE) -> str:
    """An Argon2id hash in the standard encoded form (``$argon2id$v=19$m=...``)."""
    ops, mem = cost.value
    return nacl.pwhash.argon2id.str(password.encode("utf-8"), opslimit=ops, memlimit=mem).decode("ascii")


# Verified when the email is unknown, so an unknown email costs as much as a wrong password: one
# hash per cost of a throw-away password, written out rather than made on first use so that no
# request ever writes module state (tests check each against its cost's parameters).
_DUMMIES: Mapping[Cost, str] = MappingProxyType(
    {
        Cost.MODERATE: "$argon2id$v=19$m=131072,t=3,p=1$ynJHaaUjeuUHZh6ZE/LSjQ$iKe8EGGVkx0U1mabRDlVLL2a3HkJ+Wt26qgoH1amtGU",
        Cost.INTERACTIVE: "$argon2id$v=19$m=65536,t=2,p=1$ruT673RLUFu92oYPmqSSAw$774kbu7RRT6pgKfWwzkYcGQ94Yepa2LgSfQ08t4qvVA",
        Cost.MINIMUM: "$argon2id$v=19$m=8,t=1,p=1$C68Kc6TZ9vaDHSlM6r9UeQ$z3Z7hEO/aJUOJRr8gr1EcNKFIJZ9XW5lYwM9oM3hHL8",
    }
)


def verify_password(password: str, encoded: str | None, cost: Cost = Cost.INTERACTIVE) -> bool:
    """Constant-time verification (libsodium). With no hash (unknown person), a dummy hash of the
    same cost is verified so that the answer takes as long; the result is then False."""
    if encoded is None:
        encoded = _DUMMIES[cost]
        known = False
    else:
        known = True
    if len(password) > MAX_LENGTH:
        return False
    try:
        ok = nacl.pwhash.verify(encoded.encode("ascii"), password.encode("utf-8"))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError, UnicodeError):
        return False
    return bool(ok) and known
