"""Idempotent creates: a create sent with an ``Idempotency-Key`` keeps its first answer, in the same
transaction as what it created, so that a retry (a timeout, a crash of the caller's script) gets
that answer again and creates nothing. Keys are the account's and the token's own, and kept for
``KEEP_SECONDS``; the same key with another request is refused (IDEMPOTENCY_KEY_REUSED)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offline_service.admin.models import AdminToken, IdempotentResult
from offline_service.errors import Code, OfflineServiceError
from offline_service.store import Store, Transaction

__all__ = ["KEEP_SECONDS", "KEY_PATTERN", "PRUNE_BATCH", "Answer", "check_key", "once", "request_hash"]

KEEP_SECONDS = 24 * 3600
PRUNE_BATCH = 100  # expired answers deleted by each keyed create: the table stays about a day's size
KEY_PATTERN = "^[\\x21-\\x7e]{1,255}$"  # printable ASCII without spaces, as Stripe's and IETF's drafts
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class Answer:
    """What a create answers: its status and JSON body; ``replayed`` when it is a kept one."""

    status: int
    body: str
    replayed: bool = False


def check_key(key: str) -> str:
    """The header's value, or INVALID_ARGUMENT when it is not 1 to 255 printable ASCII characters."""
    if not _KEY.fullmatch(key):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "Idempotency-Key is 1 to 255 printable ASCII characters, no spaces"
        )
    return key


def request_hash(method: str, path: str, body: Any) -> bytes:
    """What identifies a request for its key: method, path and the body as parsed (so the same JSON
    written with other spacing or member order is the same request)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).digest()


def once(
    store: Store,
    token: AdminToken,
    key: str | None,
    fingerprint: bytes,
    create: Callable[[Transaction], Answer],
    *,
    now: int,
    keep: Callable[[str], str] | None = None,
    reopen: Callable[[str], str] | None = None,
) -> Answer:
    """Run ``create`` in a write transaction, unless the key already has an answer: then that one
    (or IDEMPOTENCY_KEY_REUSED when it was given for another request). Writers are serialised, so
    of two creates racing with one key, the second finds the first's answer. ``keep`` turns the
    answer's body into what the table keeps (sealed, for an answer that carries a secret), and
    ``reopen`` a kept body back into the answer."""
    with store.write() as tx:
        if key is not None:
            kept = tx.idempotent_result(token.account_id, token.id, key, now)
            if kept is not None:
                if kept.request_hash != fingerprint:
                    raise OfflineServiceError(
                        Code.IDEMPOTENCY_KEY_REUSED,
                        "this Idempotency-Key was used for another request; use a new key for a new request",
                    )
                body = reopen(kept.body) if reopen is not None else kept.body
                return Answer(kept.status, body, replayed=True)
        answer = create(tx)
        if key is not None:
            tx.prune_idempotent_results(now, PRUNE_BATCH)
            tx.insert_idempotent_result(
                IdempotentResult(
                    account_id=token.account_id,
                    token_id=token.id,
                    key=key,
                    request_hash=fingerprint,
                    status=answer.status,
                    body=keep(answer.body) if keep is not None else answer.body,
                    created_at=now,
                    expires_at=now + KEEP_SECONDS,
                )
            )
        return answer
