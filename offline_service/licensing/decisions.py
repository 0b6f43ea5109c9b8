"""Pure decision rules: records and a time in, a verdict out. No I/O, no clock, no database.

Each function either raises OfflineServiceError with the rejection code or returns what should
change; the engine loads the records, calls these, and applies the result in one transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Request
from offline_service.licensing.models import UNLIMITED, Activation, License, LicenseStatus, Product, Trial

__all__ = [
    "DAY",
    "ActivationVerdict",
    "Policy",
    "Verdict",
    "check_deactivations_left",
    "check_license",
    "check_request_time",
    "decide_activation",
    "decide_deactivation",
    "decide_trial",
    "response_validity",
]

DAY = 86_400


@dataclass(frozen=True, slots=True)
class Policy:
    """Service-wide limits on requests and responses (seconds)."""

    max_request_age: int = 30 * DAY
    max_future_skew: int = 5 * 60
    default_response_validity: int = 3 * DAY


class Verdict(enum.Enum):
    NEW = "new"  # consume a seat / free a seat / start a trial
    REISSUE = "reissue"  # same machine or same file again: fresh response, nothing counted


@dataclass(frozen=True, slots=True)
class ActivationVerdict:
    verdict: Verdict
    activation: Activation | None  # the existing activation, for REISSUE
    expires_at: int | None  # the license expiry after this activation


def _reject(code: Code, message: str) -> OfflineServiceError:
    return OfflineServiceError(code, message)


def check_request_time(request: Request, now: int, policy: Policy) -> None:
    if request.issued_at > now + policy.max_future_skew:
        raise _reject(
            Code.REQUEST_FROM_FUTURE,
            "the request was issued in the future; check the machine's clock",
        )
    if request.issued_at < now - policy.max_request_age:
        raise _reject(Code.REQUEST_EXPIRED, "the request is too old; make a new one on the machine")


def check_license(license: License, request: Request, now: int) -> None:
    """Product, status and expiry of a license, in that order."""
    if license.product_id != request.product_id:
        raise _reject(Code.PRODUCT_MISMATCH, "the license key belongs to another product")
    if license.status is LicenseStatus.REVOKED:
        raise _reject(Code.LICENSE_REVOKED, "the license has been revoked")
    if license.status is LicenseStatus.SUSPENDED:
        raise _reject(Code.LICENSE_SUSPENDED, "the license is suspended")
    if license.expires_at is not None and now >= license.expires_at:
        raise _reject(Code.LICENSE_EXPIRED, "the license has expired")


def decide_activation(
    license: License,
    request: Request,
    now: int,
    *,
    live: Activation | None,
    replayed: Activation | None,
) -> ActivationVerdict:
    """``live``: the license's live activation for this fingerprint. ``replayed``: the activation
    an earlier request with the same nonce produced, if any."""
    check_license(license, request, now)
    if replayed is not None and replayed.deactivated_at is not None:
        raise _reject(
            Code.REQUEST_REPLAYED,
            "this request was used for an activation that has since been deactivated",
        )
    expires_at = license.expires_at
    if live is not None:
        # The seat of a machine belongs to the installation key that took it. Handing it to another
        # key would let anyone who has the license key and can present the fingerprint take the seat
        # over and then free it while the original machine keeps its response.
        if live.machine_key_thumbprint != request.machine_key_thumbprint:
            raise _reject(
                Code.MACHINE_KEY_MISMATCH,
                f"this machine is already activated ({live.id}) by another installation; deactivate it"
                f" there, or have the vendor run `offline-service activation release {live.id}`",
            )
        return ActivationVerdict(Verdict.REISSUE, live, expires_at)
    if license.allowed_activations != UNLIMITED and license.used_activations >= license.allowed_activations:
        raise _reject(Code.ACTIVATION_LIMIT, "every activation of this license is in use")
    if expires_at is None and license.validity_days is not None:
        expires_at = now + license.validity_days * DAY
    return ActivationVerdict(Verdict.NEW, None, expires_at)


def decide_deactivation(license: License, activation: Activation, request: Request) -> Verdict:
    """NEW frees the seat; REISSUE when this activation was already deactivated."""
    if (
        activation.machine_key_thumbprint != request.machine_key_thumbprint
        or activation.fingerprint != request.fingerprint
    ):
        raise _reject(Code.MACHINE_KEY_MISMATCH, "the request was not signed by the activated machine")
    if activation.deactivated_at is not None:
        return Verdict.REISSUE
    check_deactivations_left(license)
    return Verdict.NEW


def check_deactivations_left(license: License) -> None:
    """DEACTIVATION_LIMIT when the license has used every deactivation it allows: the rule of a
    deactivation request and of an organization admin's release (``licensing.seat_release``)."""
    if (
        license.allowed_deactivations != UNLIMITED
        and license.used_deactivations >= license.allowed_deactivations
    ):
        raise _reject(Code.DEACTIVATION_LIMIT, "no deactivations are left on this license")


def decide_trial(product: Product, existing: Trial | None, now: int) -> tuple[Verdict, int]:
    """Returns the verdict and the trial's end. A trial is never extended by asking again."""
    if not product.trials_enabled or product.trial_days <= 0:
        raise _reject(Code.TRIAL_NOT_ALLOWED, "this product does not offer trials")
    if existing is not None:
        return Verdict.REISSUE, existing.ends_at
    return Verdict.NEW, now + product.trial_days * DAY


def response_validity(requested: int | None, product: Product, policy: Policy) -> int:
    """Seconds a response may be applied for: the request, or the default, capped by the product."""
    wanted = policy.default_response_validity if requested is None else requested
    return max(1, min(wanted, product.max_response_validity))
