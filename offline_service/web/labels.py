"""The one word the portal shows for each state and role: the templates' ``state`` macro and the
``state_word`` and ``role_word`` filters read them, so a state never has two names on two pages."""

from __future__ import annotations

from collections.abc import Mapping

from offline_service.accounts.models import Role
from offline_service.licensing.models import LicenseStatus

__all__ = ["ROLE_WORDS", "STATE_WORDS", "role_word", "state_word"]

STATE_WORDS: Mapping[str, str] = {
    # licenses: their status, or "expired" for an active one past its end
    LicenseStatus.ACTIVE.value: "Active",
    LicenseStatus.SUSPENDED.value: "Suspended",
    LicenseStatus.REVOKED.value: "Revoked",
    "expired": "Expired",
    # activations ("live" is the activations filter's name for an active one)
    "live": "Active",
    "deactivated": "Deactivated",
    # users
    "enabled": "Enabled",
    "disabled": "Disabled",
    # the files of a batch (licensing.batch_results.outcome)
    "accepted": "Accepted",
    "reissued": "Reissued",
    "refused": "Refused",
}

ROLE_WORDS: Mapping[str, str] = {
    Role.ORGANIZATION_ADMIN.value: "Organization admin",
    Role.USER.value: "User",
}


def _fallback(value: str) -> str:
    return value.replace("-", " ").replace("_", " ").capitalize()


def state_word(value: str) -> str:
    """The word for a state value ("suspended" -> "Suspended")."""
    return STATE_WORDS.get(str(value), _fallback(str(value)))


def role_word(value: str) -> str:
    """The words for a role value ("organization-admin" -> "Organization admin")."""
    return ROLE_WORDS.get(str(value), _fallback(str(value)))
