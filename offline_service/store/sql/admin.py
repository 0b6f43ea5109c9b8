"""The admin API's SQL, written once for every backend: admin tokens and the kept answers of
idempotent creates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.admin.models import AdminToken, IdempotentResult, Scope
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect

__all__ = ["AdminSQL", "AdminStatements"]

_TOKEN_COLS = "id, account_id, token_hash, name, scopes, created_at, expires_at, revoked_at, last_used_at"  # noqa: S105 (column names, not a password)
_RESULT_COLS = "account_id, token_id, idempotency_key, request_hash, status, body, created_at, expires_at"
_KEY = "account_id = ? AND token_id = ? AND idempotency_key = ?"


class AdminStatements:
    """The admin API's statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.insert_token = q(f"INSERT INTO admin_tokens ({_TOKEN_COLS}) VALUES ({', '.join(['?'] * 9)})")
        self.token_by_hash = q(f"SELECT {_TOKEN_COLS} FROM admin_tokens WHERE token_hash = ?")
        self.tokens = q(
            f"SELECT {_TOKEN_COLS} FROM admin_tokens WHERE account_id = ? ORDER BY created_at, id"
        )
        self.revoke = q(
            "UPDATE admin_tokens SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL"
        )
        self.touch = q("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?")
        self.result = q(f"SELECT {_RESULT_COLS} FROM admin_idempotency WHERE {_KEY} AND expires_at > ?")
        self.drop_expired = q(f"DELETE FROM admin_idempotency WHERE {_KEY} AND expires_at <= ?")
        self.insert_result = q(
            f"INSERT INTO admin_idempotency ({_RESULT_COLS}) VALUES ({', '.join(['?'] * 8)})"
        )
        self.prune = q(
            "DELETE FROM admin_idempotency WHERE (account_id, token_id, idempotency_key) IN"
            " (SELECT account_id, token_id, idempotency_key FROM admin_idempotency WHERE expires_at <= ?"
            " ORDER BY expires_at LIMIT ?)"
        )


def _token(row: Sequence[Any]) -> AdminToken:
    return AdminToken(
        id=row[0],
        account_id=row[1],
        token_hash=bytes(row[2]),
        name=row[3],
        scopes=frozenset(Scope(s) for s in row[4].split()),
        created_at=row[5],
        expires_at=row[6],
        revoked_at=row[7],
        last_used_at=row[8],
    )


class AdminSQL(SQLPart):
    """The admin API's part of a transaction."""

    __slots__ = ()
    _dq: AdminStatements

    def insert_admin_token(self, token: AdminToken) -> None:
        scopes = " ".join(sorted(s.value for s in token.scopes))
        self._c.execute(
            self._dq.insert_token,
            (
                token.id,
                token.account_id,
                token.token_hash,
                token.name,
                scopes,
                token.created_at,
                token.expires_at,
                token.revoked_at,
                token.last_used_at,
            ),
        )

    def admin_token_by_hash(self, token_hash: bytes) -> AdminToken | None:
        row = self._one(self._dq.token_by_hash, (token_hash,))
        return _token(row) if row else None

    def admin_tokens(self, account_id: str) -> Sequence[AdminToken]:
        return [_token(r) for r in self._c.execute(self._dq.tokens, (account_id,))]

    def revoke_admin_token(self, account_id: str, token_id: str, at: int) -> bool:
        return self._c.execute(self._dq.revoke, (at, account_id, token_id)).rowcount > 0

    def touch_admin_token(self, token_id: str, at: int) -> None:
        self._c.execute(self._dq.touch, (at, token_id))

    def idempotent_result(
        self, account_id: str, token_id: str, key: str, now: int
    ) -> IdempotentResult | None:
        row = self._one(self._dq.result, (account_id, token_id, key, now))
        if row is None:
            return None
        return IdempotentResult(
            account_id=row[0],
            token_id=row[1],
            key=row[2],
            request_hash=bytes(row[3]),
            status=row[4],
            body=row[5],
            created_at=row[6],
            expires_at=row[7],
        )

    def insert_idempotent_result(self, result: IdempotentResult) -> None:
        key = (result.account_id, result.token_id, result.key)
        self._c.execute(self._dq.drop_expired, (*key, result.created_at))
        self._c.execute(
            self._dq.insert_result,
            (*key, result.request_hash, result.status, result.body, result.created_at, result.expires_at),
        )

    def prune_idempotent_results(self, now: int, limit: int) -> int:
        return max(self._c.execute(self._dq.prune, (now, limit)).rowcount, 0)
