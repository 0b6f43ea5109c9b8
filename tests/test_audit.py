"""audit.record: the one way every domain writes an audit entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_service import audit
from offline_service.audit import AuditEntry
from offline_service.errors import Code
from tests.factories import NOW, make_world


class _Log:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def test_record_writes_one_entry_with_its_ids_and_detail() -> None:
    log = _Log()
    entry = audit.record(
        log,
        account_id="acc",
        actor="user:u",
        action="activation",
        now=NOW,
        product_id="p",
        license_id="l",
        activation_id="a",
        fingerprint="fp",
        message="m",
    )
    assert log.entries == [entry]
    assert entry == AuditEntry(
        at=NOW,
        actor="user:u",
        action="activation",
        code="OK",
        account_id="acc",
        product_id="p",
        license_id="l",
        activation_id="a",
        detail={"fingerprint": "fp", "message": "m"},
    )


@pytest.mark.parametrize(
    ("code", "stored"), [(Code.INVALID_CREDENTIALS, "INVALID_CREDENTIALS"), ("OK", "OK")]
)
def test_a_code_is_stored_as_its_text(code: Code | str, stored: str) -> None:
    log = _Log()
    audit.record(log, account_id=None, actor="login", action="login", now=NOW, code=code)
    assert log.entries[0].code == stored and type(log.entries[0].code) is str
    assert log.entries[0].detail == {}


@pytest.mark.parametrize("value", [1, None, b"x", ["x"]])
def test_detail_that_is_not_text_is_a_type_error_and_writes_nothing(value: object) -> None:
    log = _Log()
    with pytest.raises(TypeError):
        audit.record(log, account_id="acc", actor="cli", action="x", now=NOW, user=value)  # type: ignore[arg-type]
    assert log.entries == []


def test_a_store_transaction_is_an_audit_log(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    try:
        with w.store.write() as tx:
            audit.record(
                tx, account_id=w.account.id, actor="cli", action="test.record", now=NOW + 1, what="it"
            )
        with w.store.read() as tx:
            [found] = [e for e in tx.audit_entries(w.account.id, limit=10) if e.action == "test.record"]
        assert (found.at, found.actor, found.code, dict(found.detail)) == (
            NOW + 1,
            "cli",
            "OK",
            {"what": "it"},
        )
    finally:
        w.store.close()
