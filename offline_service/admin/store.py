"""What the admin API needs from a transaction: its tokens and the kept answers of idempotent
creates. One of the domain parts ``store.Transaction`` is composed of; every lookup but the one by
a secret's hash is scoped to an account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from offline_service.admin.models import AdminToken, IdempotentResult

__all__ = ["AdminTransaction"]


class AdminTransaction(Protocol):
    """Admin tokens and idempotency keys."""

    def insert_admin_token(self, token: AdminToken) -> None: ...
    def admin_token_by_hash(self, token_hash: bytes) -> AdminToken | None:
        """The token whose secret hashes to ``token_hash``, live or not (the caller decides)."""
        ...

    def admin_tokens(self, account_id: str) -> Sequence[AdminToken]:
        """The account's tokens, oldest first."""
        ...

    def revoke_admin_token(self, account_id: str, token_id: str, at: int) -> bool:
        """Revoke the account's token (nothing for another account's); whether it was live."""
        ...

    def touch_admin_token(self, token_id: str, at: int) -> None: ...
    def idempotent_result(
        self, account_id: str, token_id: str, key: str, now: int
    ) -> IdempotentResult | None:
        """The kept answer for this key, unless it has expired by ``now``."""
        ...

    def insert_idempotent_result(self, result: IdempotentResult) -> None:
        """Keep an answer (replacing an expired one of the same key)."""
        ...

    def prune_idempotent_results(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` expired answers; how many went."""
        ...
