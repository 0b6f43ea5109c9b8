"""The kept results of portal batches, written once for every backend: one row per batch, its
files as JSON text and its zip of responses as bytes. Every read names the account, the person and
the time, so a row is found only by the person who uploaded it, and only until it expires."""

from __future__ import annotations

import json

from offline_service.licensing.models import BatchFile, BatchResult
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect

__all__ = ["BatchResultsSQL", "BatchResultsStatements", "files_from_json", "files_json"]

_COLS = "id, account_id, user_id, created_at, expires_at, files"
_MINE = "id = ? AND account_id = ? AND user_id = ? AND expires_at > ?"


def files_json(files: tuple[BatchFile, ...]) -> str:
    """The files as JSON text: one array per file, in BatchFile's field order (compact: a batch
    may hold many thousands)."""
    return json.dumps(
        [
            [
                f.file,
                f.kind,
                f.code,
                int(f.reissued),
                f.activation_id,
                f.license_id,
                f.hostname,
                f.fingerprint,
                f.message,
            ]
            for f in files
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def files_from_json(text: str) -> tuple[BatchFile, ...]:
    """What ``files_json`` wrote."""
    return tuple(
        BatchFile(
            file=str(f[0]),
            kind=str(f[1]),
            code=str(f[2]),
            reissued=bool(f[3]),
            activation_id=str(f[4]),
            license_id=str(f[5]),
            hostname=str(f[6]),
            fingerprint=str(f[7]),
            message=str(f[8]),
        )
        for f in json.loads(text)
    )


class BatchResultsStatements:
    """The batch results' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.insert_batch_result = q(
            f"INSERT INTO batch_results ({_COLS}, archive) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.batch_result = q(f"SELECT {_COLS} FROM batch_results WHERE {_MINE}")
        self.batch_result_archive = q(f"SELECT created_at, archive FROM batch_results WHERE {_MINE}")
        # Bounded work per call: at most ``limit`` rows, found through the expires_at index.
        self.prune_batch_results = q(
            "DELETE FROM batch_results WHERE id IN"
            " (SELECT id FROM batch_results WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
        )


class BatchResultsSQL(SQLPart):
    """The batch results' part of a transaction."""

    __slots__ = ()
    _tq: BatchResultsStatements

    def insert_batch_result(self, result: BatchResult, archive: bytes) -> None:
        self._c.execute(
            self._tq.insert_batch_result,
            (
                result.id,
                result.account_id,
                result.user_id,
                result.created_at,
                result.expires_at,
                files_json(result.files),
                archive,
            ),
        )

    def batch_result(self, account_id: str, user_id: str, result_id: str, now: int) -> BatchResult | None:
        row = self._one(self._tq.batch_result, (result_id, account_id, user_id, now))
        if row is None:
            return None
        return BatchResult(
            id=row[0],
            account_id=row[1],
            user_id=row[2],
            created_at=int(row[3]),
            expires_at=int(row[4]),
            files=files_from_json(row[5]),
        )

    def batch_result_archive(
        self, account_id: str, user_id: str, result_id: str, now: int
    ) -> tuple[int, bytes] | None:
        row = self._one(self._tq.batch_result_archive, (result_id, account_id, user_id, now))
        return None if row is None else (int(row[0]), bytes(row[1]))

    def prune_batch_results(self, now: int, limit: int) -> int:
        return self._c.execute(self._tq.prune_batch_results, (now, limit)).rowcount
