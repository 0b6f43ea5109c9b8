"""One error type for the project, each instance carrying a stable machine-readable code."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["Code", "OfflineServiceError"]


class Code(enum.StrEnum):
    """Stable result codes: ``OK`` and the rejection codes. Documented in docs/ERRORS.md; never
    renamed, only added to."""

    # A granted request (the engine's Outcome); never the code of an error
    OK = "OK"
    # Request files (engine)
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    REQUEST_FROM_FUTURE = "REQUEST_FROM_FUTURE"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    REQUEST_REPLAYED = "REQUEST_REPLAYED"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    LICENSE_NOT_FOUND = "LICENSE_NOT_FOUND"
    PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
    LICENSE_SUSPENDED = "LICENSE_SUSPENDED"
    LICENSE_REVOKED = "LICENSE_REVOKED"
    LICENSE_EXPIRED = "LICENSE_EXPIRED"
    ACTIVATION_LIMIT = "ACTIVATION_LIMIT"
    DEACTIVATION_LIMIT = "DEACTIVATION_LIMIT"
    ACTIVATION_NOT_FOUND = "ACTIVATION_NOT_FOUND"
    MACHINE_KEY_MISMATCH = "MACHINE_KEY_MISMATCH"
    TRIAL_NOT_ALLOWED = "TRIAL_NOT_ALLOWED"
    # Response files (client SDK)
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"
    UNKNOWN_SIGNING_KEY = "UNKNOWN_SIGNING_KEY"
    WRONG_PRODUCT = "WRONG_PRODUCT"
    WRONG_MACHINE = "WRONG_MACHINE"
    RESPONSE_EXPIRED = "RESPONSE_EXPIRED"
    CLOCK_ROLLBACK = "CLOCK_ROLLBACK"
    TRIAL_EXPIRED = "TRIAL_EXPIRED"
    NOT_ACTIVATED = "NOT_ACTIVATED"
    UNEXPECTED_RESPONSE = "UNEXPECTED_RESPONSE"
    # People and access (portal, API)
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CSRF_FAILED = "CSRF_FAILED"
    # people administration and profiles (portal, API)
    USER_LIMIT = "USER_LIMIT"
    SELF_LOCKOUT = "SELF_LOCKOUT"
    INVALID_PASSWORD_LINK = "INVALID_PASSWORD_LINK"  # noqa: S105 (a code, not a password)
    WRONG_PASSWORD = "WRONG_PASSWORD"  # noqa: S105 (a code, not a password)
    RATE_LIMITED = "RATE_LIMITED"
    TRIAL_DAILY_LIMIT = "TRIAL_DAILY_LIMIT"
    RELEASE_NOT_ALLOWED = "RELEASE_NOT_ALLOWED"
    # Operations (CLI, keyring, storage, archives)
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    BAD_ARCHIVE = "BAD_ARCHIVE"
    KEY_ERROR = "KEY_ERROR"
    INSECURE_KEY_FILE = "INSECURE_KEY_FILE"
    STORAGE_ERROR = "STORAGE_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # Downloads and customization (portal, API, CLI)
    LINK_EXPIRED = "LINK_EXPIRED"
    LINK_INVALID = "LINK_INVALID"
    RANGE_NOT_SATISFIABLE = "RANGE_NOT_SATISFIABLE"
    BAD_IMAGE = "BAD_IMAGE"
    # Backups (CLI)
    BAD_BACKUP = "BAD_BACKUP"
    # Webhooks (CLI and admin API): a target URL refused, with a stable ``reason``
    WEBHOOK_URL_REFUSED = "WEBHOOK_URL_REFUSED"


class OfflineServiceError(Exception):
    """Base error of the project. ``code`` is stable; ``message`` is for people."""

    def __init__(self, code: Code, message: str | None = None) -> None:
        self.code = Code(code)
        if self.code is Code.OK:
            raise ValueError("OK is the code of a granted request, not of an error")
        self.message = message or self.code.value.replace("_", " ").capitalize()
        super().__init__(f"{self.code.value}: {self.message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses processes (a batch worker's error reaches the coordinator pickled). The default
        # would call __init__ with ``args``, the formatted text, which is no code; rebuilt from
        # its attributes instead, it keeps the code, the message and a subclass's own fields.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(
    cls: type[OfflineServiceError], args: tuple[Any, ...], state: dict[str, Any]
) -> OfflineServiceError:
    """An error unpickled (see ``OfflineServiceError.__reduce__``)."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error
