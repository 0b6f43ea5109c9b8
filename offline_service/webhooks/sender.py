"""Sending the deliveries outbox: rows queued by ``events`` in the transaction of their event,
sent after it committed, never inside a transaction.

``send_due`` claims a few due deliveries in one short write transaction (no other sender takes
them until the claim lapses), checks each endpoint's URL again (its name may resolve elsewhere
now), posts the signed body to the checked address with no transaction open, and records the
attempt in another. A delivery is never lost: one whose sender dies between the claim and the
record is sent again once the claim lapses (receivers deduplicate on ``webhook-id``). A failed
attempt is tried again after an exponential back-off with jitter (``retry_delay``), up to
``MAX_ATTEMPTS``; an endpoint whose attempts have all failed for ``disable_after`` seconds is
disabled. Redirects are not followed: a 3xx is a failure. An endpoint whose secret cannot be
opened (``sealing``: the keys directory's sealing key missing or another) fails its deliveries
with that reason, the others go on.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from offline_service.errors import OfflineServiceError
from offline_service.settings import Settings
from offline_service.store import Store
from offline_service.webhooks.models import Delivery, Endpoint
from offline_service.webhooks.sealing import Sealer, SecretUnavailable, endpoint_place
from offline_service.webhooks.signing import headers
from offline_service.webhooks.urls import Target, URLPolicy, URLRefused, check_url

__all__ = [
    "BATCH",
    "FIRST_RETRY",
    "MAX_ATTEMPTS",
    "MAX_RETRY",
    "Post",
    "Report",
    "SenderConfig",
    "post",
    "retry_delay",
    "send_due",
    "signing_secrets",
]

BATCH = 10  # deliveries claimed per transaction
# Then the delivery is given up (kept in the log; `webhook redeliver` sends it again). 26 attempts
# span 3.1 to 4.1 days: longer than the default OFFLINE_SERVICE_WEBHOOK_DISABLE_DAYS (3), so one
# event failing throughout disables its endpoint before it is given up.
MAX_ATTEMPTS = 26
FIRST_RETRY = 30  # seconds before the second attempt; doubling after each failure ...
MAX_RETRY = 6 * 3600  # ... up to this
USER_AGENT = "offline-service-webhooks/1"

log = logging.getLogger("offline_service.webhooks.sender")

# (target, body, headers, timeout) -> HTTP status; raises OSError or HTTPException
Post = Callable[[Target, bytes, Mapping[str, str], float], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderConfig:
    """How the sender checks URLs, how long an attempt may take, when an endpoint is disabled, and
    what opens the endpoints' secrets."""

    sealer: Sealer
    policy: URLPolicy = field(default_factory=URLPolicy)
    timeout: float = 10.0
    disable_after: int = 3 * 86400

    @classmethod
    def from_settings(cls, settings: Settings, *, sealer: Sealer | None = None) -> SenderConfig:
        """``sealer``: a long-lived one (a server's), else one for this command."""
        return cls(
            sealer=sealer or Sealer.for_settings(settings),
            policy=URLPolicy(
                allow_private=settings.webhook_allow_private, allow_loopback=settings.webhook_allow_loopback
            ),
            timeout=float(settings.webhook_timeout),
            disable_after=settings.webhook_disable_days * 86400,
        )

    @property
    def claim_seconds(self) -> int:
        """How long a claim holds: long enough for a whole batch to time out."""
        return int(BATCH * (self.timeout + 5)) + 60


@dataclass(frozen=True, slots=True)
class Report:
    sent: int
    failed: int
    disabled: int


def retry_delay(attempts: int, jitter: float) -> int:
    """Seconds before the next attempt after ``attempts`` failed ones: FIRST_RETRY doubled per
    failure, at most MAX_RETRY, times a factor from 0.75 to 1 (``jitter`` in [0, 1)) so that the
    deliveries of one outage do not all come back at once."""
    if attempts < 1:
        raise ValueError("at least one attempt failed")
    base = min(FIRST_RETRY * 2 ** min(attempts - 1, 30), MAX_RETRY)
    return max(1, int(base * (0.75 + jitter / 4)))


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to the checked address, verifying the certificate against the name in the URL."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, body: bytes, sent_headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` to the checked target; the response's status (its body is read, at most
    64 KiB, and dropped). No redirect is followed."""
    conn: http.client.HTTPConnection = (
        _PinnedHTTPS(target, timeout) if target.scheme == "https" else _PinnedHTTP(target, timeout)
    )
    try:
        conn.request("POST", target.path, body=body, headers={**sent_headers, "user-agent": USER_AGENT})
        response = conn.getresponse()
        response.read(65536)
        return response.status
    finally:
        conn.close()


def signing_secrets(sealer: Sealer, endpoint: Endpoint, now: int) -> list[str]:
    """The secrets a delivery to ``endpoint`` is signed with at ``now``, opened: its own, and the one
    a rotation replaced while its grace lasts. SecretUnavailable when its own cannot be opened."""
    place = endpoint_place(endpoint.account_id, endpoint.id)
    signing = [sealer.open(endpoint.secret, place)]
    if endpoint.previous_secret and endpoint.previous_until is not None and now < endpoint.previous_until:
        # Should it not open, the new secret alone signs: the one the receiver is asked to use.
        with contextlib.suppress(SecretUnavailable):
            signing.append(sealer.open(endpoint.previous_secret, place))
    return signing


def _attempt(
    d: Delivery, url: str, signing: list[str], config: SenderConfig, now: int, send: Post
) -> tuple[int | None, int | None, str]:
    """One attempt: (status, latency in ms, error: empty when delivered). Never raises for the
    receiver's faults; the error says what went wrong, never the secret or the body."""
    try:
        target = check_url(url, config.policy)
    except URLRefused as exc:
        return None, None, f"{exc.code.value} ({exc.reason}): {exc.message}"
    body = d.payload.encode()
    started = time.monotonic()
    try:
        status: int | None = send(target, body, headers(signing, d.id, now, body), config.timeout)
        error = ""
    except (OSError, http.client.HTTPException) as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:300]
    latency = int((time.monotonic() - started) * 1000)
    if status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
    return status, latency, error


def _outcome(
    d: Delivery, endpoint: Endpoint | None, config: SenderConfig, now: int, send: Post
) -> tuple[int | None, int | None, str]:
    """The delivery's attempt to its endpoint, as ``_attempt`` answers; an endpoint removed or
    disabled meanwhile, or whose secret cannot be opened (this endpoint only; the message names no
    secret), is a failure without an attempt."""
    if endpoint is None or not endpoint.enabled:
        return None, None, "the endpoint is disabled"
    try:
        signing = signing_secrets(config.sealer, endpoint, now)
    except SecretUnavailable as exc:
        return None, None, f"{exc.code.value}: its secret cannot be opened ({exc.message})"
    return _attempt(d, endpoint.url, signing, config, now, send)


def send_due(
    store: Store,
    config: SenderConfig,
    *,
    now: int,
    limit: int = 1000,
    send: Post = post,
    jitter: Callable[[], float] = random.random,
) -> Report:
    """Send up to ``limit`` due deliveries (blocking: call it in a thread). Failures are logged by
    delivery and endpoint id, with the status or error, never with the secret."""
    sent = failed = disabled = 0
    while sent + failed < limit:
        claim = secrets.token_hex(16)
        with store.write() as tx:
            batch = tx.claim_webhook_deliveries(
                claim, now=now, until=now + config.claim_seconds, limit=min(BATCH, limit - sent - failed)
            )
        if not batch:
            break
        for d in batch:
            with store.read() as tx:
                endpoint = tx.webhook_endpoint(d.account_id, d.endpoint_id)
            status, latency, error = _outcome(d, endpoint, config, now, send)
            ok = not error
            give_up = not ok and d.attempts >= MAX_ATTEMPTS
            with store.write() as tx:
                recorded = tx.record_webhook_attempt(
                    d.id,
                    claim,
                    now=now,
                    delivered=ok,
                    status=status,
                    latency_ms=latency,
                    error=error,
                    next_attempt_at=now if ok else now + retry_delay(d.attempts, jitter()),
                    give_up=give_up,
                )
                since = tx.webhook_endpoint_result(d.endpoint_id, ok=ok, now=now) if recorded else None
                if (
                    since is not None
                    and endpoint is not None
                    and endpoint.enabled
                    and now - since >= config.disable_after
                ):
                    tx.set_webhook_endpoint_enabled(d.account_id, d.endpoint_id, False, now)
                    disabled += 1
                    log.warning("webhook endpoint %s disabled: failing since %d", d.endpoint_id, since)
            if ok:
                sent += 1
            else:
                failed += 1
                log.error(
                    "webhook %s to endpoint %s not delivered (attempt %d of %d): %s",
                    d.id,
                    d.endpoint_id,
                    d.attempts,
                    MAX_ATTEMPTS,
                    error,
                )
    return Report(sent=sent, failed=failed, disabled=disabled)


def send_logged(store: Store, config: SenderConfig, *, now: int) -> Report | None:
    """``send_due`` for a background loop: a database error is logged and the next round tries
    again."""
    try:
        return send_due(store, config, now=now)
    except OfflineServiceError as exc:
        log.error("webhooks not sent this round: %s", exc.code.value)
        return None
