"""The audit trail's SQL, written once for every backend. Entries are buffered within a write
transaction and written with one executemany when it flushes (a batch audits every decision)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offline_service.audit import AuditEntry
from offline_service.store.sql._base import RowsInsert, SizedStatement, SQLPart, groups, text_map_json
from offline_service.store.sql.dialect import Dialect

__all__ = ["AuditSQL", "AuditStatements"]

_AUDIT_COLS = "at, actor, action, code, account_id, product_id, license_id, activation_id, detail"


def _audit_entry(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        at=r[0],
        actor=r[1],
        action=r[2],
        code=r[3],
        account_id=r[4],
        product_id=r[5],
        license_id=r[6],
        activation_id=r[7],
        detail=json.loads(r[8]),
    )


class AuditStatements:
    """The audit trail's statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.max_list = d.max_list
        self.insert = RowsInsert(
            d,
            "audit_log",
            [
                ("at", "bigint"),
                ("account_id", "text"),
                ("actor", "text"),
                ("action", "text"),
                ("code", "text"),
                ("product_id", "text"),
                ("license_id", "text"),
                ("activation_id", "text"),
                ("detail", "text"),
            ],
        )
        self.entries = q(f"SELECT {_AUDIT_COLS} FROM audit_log WHERE account_id = ? ORDER BY id DESC LIMIT ?")
        self._dialect = d
        self._pages: dict[tuple[str, ...], str] = {}
        self.entries_for_licenses = SizedStatement(
            d,
            f"SELECT {_AUDIT_COLS}, id FROM audit_log WHERE account_id = ?"
            " AND license_id IN {in} ORDER BY id DESC LIMIT ?",
        )

    def page(self, filters: tuple[str, ...]) -> str:
        """``audit_page``'s statement for the filters it has (each a condition with one
        parameter), built on first use of each set and reused."""
        found = self._pages.get(filters)
        if found is None:
            where = "".join(f" AND {_PAGE_FILTERS[f]}" for f in filters)
            found = self._pages[filters] = self._dialect.sql(
                f"SELECT {_AUDIT_COLS}, id FROM audit_log WHERE account_id = ?{where} ORDER BY id DESC LIMIT ?"
            )
        return found


# audit_page's filters, in the order their parameters are bound.
_PAGE_FILTERS = {
    "before": "id < ?",
    "since": "at >= ?",
    "until": "at < ?",
    "actor": "actor = ?",
    "license_id": "license_id = ?",
    "code": "code = ?",
}


class AuditSQL(SQLPart):
    """The audit trail's part of a transaction."""

    __slots__ = ()
    _aq: AuditStatements
    _audits: list[tuple[object, ...]]

    if TYPE_CHECKING:

        def flush(self) -> None: ...

    def _flush_audit(self) -> None:
        if self._audits:
            self._aq.insert.run(self._c, self._audits)
            self._audits.clear()

    def audit(self, e: AuditEntry) -> None:
        self._audits.append(
            (
                e.at,
                e.account_id,
                e.actor,
                e.action,
                e.code,
                e.product_id,
                e.license_id,
                e.activation_id,
                text_map_json(e.detail),
            )
        )

    def audit_entries(self, account_id: str, limit: int = 100) -> Sequence[AuditEntry]:
        self.flush()
        return [_audit_entry(r) for r in self._c.execute(self._aq.entries, (account_id, limit))]

    def audit_page(
        self,
        account_id: str,
        *,
        limit: int,
        before: int | None = None,
        since: int | None = None,
        until: int | None = None,
        actor: str | None = None,
        license_id: str | None = None,
        code: str | None = None,
    ) -> Sequence[tuple[int, AuditEntry]]:
        self.flush()
        given = {
            "before": before,
            "since": since,
            "until": until,
            "actor": actor,
            "license_id": license_id,
            "code": code,
        }
        filters = tuple(name for name in _PAGE_FILTERS if given[name] is not None)
        args = [account_id, *(given[name] for name in filters), limit]
        return [(int(r[9]), _audit_entry(r)) for r in self._c.execute(self._aq.page(filters), args)]

    def audit_entries_for_licenses(
        self, account_id: str, license_ids: frozenset[str], limit: int = 100
    ) -> Sequence[AuditEntry]:
        """The newest entries about these licenses (the portal shows a person only their own)."""
        self.flush()
        found: list[tuple[int, AuditEntry]] = []
        for group in groups(sorted(license_ids), self._aq.max_list):
            rows = self._c.execute(self._aq.entries_for_licenses(len(group)), (account_id, *group, limit))
            found += [(r[9], _audit_entry(r)) for r in rows]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [entry for _, entry in found[:limit]]
