"""What the SDK concludes from the stored state, its witness and a response: the checks a response
must pass before it is applied or trusted, the two copies of the counts and the clock mark read
together, and the status document ``offline-client status`` prints. Pure: no files, no clock."""

from __future__ import annotations

import json
from typing import Any

import nacl.bindings

from offline_service._b64 import b64url_decode
from offline_service.client._text import utc as _utc
from offline_service.client.state import State
from offline_service.client.witness import Witness
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Response

__all__ = [
    "check_answers",
    "check_license",
    "check_request",
    "counts",
    "high_water_mark",
    "peek",
    "stale",
    "status_doc",
    "witness_of",
]


def _fail(code: Code, message: str) -> OfflineServiceError:
    return OfflineServiceError(code, message)


def peek(token: str) -> dict[str, Any]:
    """The payload of one of our own stored tokens, unverified; only for choosing what to check."""
    try:
        value = json.loads(b64url_decode(token.split(".")[1]))
    except (IndexError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def stale(state: State, witness: Witness | None) -> bool:
    """True when the witness has counted an activation or deactivation that the state has not:
    the state directory was restored from a copy made before it."""
    return witness is not None and (
        witness.activations > state.activations or witness.deactivations > state.deactivations
    )


def high_water_mark(state: State, witness: Witness | None) -> int:
    """The clock high-water mark: the larger of the two copies."""
    return max(state.last_seen, witness.last_seen if witness is not None else 0)


def counts(state: State, witness: Witness | None) -> tuple[int, int]:
    """Activations and deactivations: the larger of the two copies of each."""
    if witness is None:
        return state.activations, state.deactivations
    return max(state.activations, witness.activations), max(state.deactivations, witness.deactivations)


def witness_of(state: State) -> Witness:
    return Witness(
        last_seen=state.last_seen, activations=state.activations, deactivations=state.deactivations
    )


def check_request(token: str) -> messages.Request:
    """Parse our own request as the service will, so a bad argument fails here, not at the vendor."""
    try:
        return messages.parse_request(token.encode("ascii"))
    except OfflineServiceError as exc:
        raise _fail(Code.INVALID_ARGUMENT, exc.message) from None


def check_answers(resp: Response, state: State) -> None:
    """A response must answer an open request of ours, or re-answer the one already applied.

    This is what stops an activation response from being applied again after a deactivation.
    """
    if any(p.nonce == resp.request_nonce and p.kind is resp.kind for p in state.pending):
        return
    if state.response is not None:
        applied = peek(state.response)
        if applied.get("requestNonce") == resp.request_nonce and applied.get("kind") == resp.kind.value:
            return
    raise _fail(
        Code.UNEXPECTED_RESPONSE,
        "the response does not answer an open request of this installation (it was superseded or"
        " deactivated); make a new request",
    )


def check_license(resp: Response, now: int) -> None:
    if resp.status == "suspended":
        raise _fail(Code.LICENSE_SUSPENDED, "the license is suspended")
    if resp.status == "revoked":
        raise _fail(Code.LICENSE_REVOKED, "the license has been revoked")
    if resp.expires_at is not None and now >= resp.expires_at:
        raise _fail(Code.LICENSE_EXPIRED, f"the license expired at {_utc(resp.expires_at)}")
    if resp.trial_ends_at is not None and now >= resp.trial_ends_at:
        raise _fail(Code.TRIAL_EXPIRED, f"the trial ended at {_utc(resp.trial_ends_at)}")


def status_doc(
    state: State, seed: bytes | None, resp: Response | None, now: int, code: str, message: str
) -> dict[str, Any]:
    thumbprint = jws.jwk_thumbprint(nacl.bindings.crypto_sign_seed_keypair(seed)[0]) if seed else None
    return {
        "activated": state.response is not None,
        "valid": code == "OK",
        "code": code,
        "message": message,
        "kind": resp.kind.value if resp else None,
        "productId": resp.product_id if resp else state.product_id,
        "licenseId": resp.license_id if resp else None,
        "activationId": resp.activation_id if resp else None,
        "status": resp.status if resp else None,
        "expiresAt": resp.expires_at if resp else None,
        "trialEndsAt": resp.trial_ends_at if resp else None,
        "fingerprint": resp.fingerprint if resp else state.fingerprint,
        "machineKeyThumbprint": thumbprint,
        "allowedActivations": resp.allowed_activations if resp else None,
        "usedActivations": resp.used_activations if resp else None,
        "allowedDeactivations": resp.allowed_deactivations if resp else None,
        "usedDeactivations": resp.used_deactivations if resp else None,
        "metadata": dict(resp.metadata) if resp else {},
        "issuedAt": resp.issued_at if resp else None,
        "checkedAt": now,
        "lastSeen": max(state.last_seen, now) if code == "OK" else state.last_seen,
        "pending": [{"kind": p.kind.value, "issuedAt": p.issued_at} for p in state.pending],
    }
