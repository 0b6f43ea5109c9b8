"""``GET /v1/admin/audit/export``, on both backends: every entry the filters keep, across more than
one internal page, as CSV (a header row, formula-looking cells made inert) or JSON lines (the
audit log's entries), the token's account only, with the list's filter checks and scope."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from offline_service import audit
from offline_service.admin.api import audit as api
from offline_service.admin.models import Scope
from tests.web.site import Site, error

URL = "/v1/admin/audit/export"


def _record(site: Site, account: Any, actor: str, *, at: int, **detail: str) -> None:
    with site.svc.store.write() as tx:
        audit.record(tx, account_id=account.id, actor=actor, action="test.export", now=at, **detail)


def _jsonl(site: Site, query: str = "") -> list[dict[str, Any]]:
    answer = site.client.get(f"{URL}?format=jsonl{query}", headers=site.admin_auth(Scope.AUDIT_READ.value))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert answer.headers["content-disposition"].startswith('attachment; filename="audit-')
    assert answer.headers["content-disposition"].endswith('.jsonl"')
    return [json.loads(line) for line in answer.text.splitlines()]


def _csv(site: Site, query: str = "") -> list[dict[str, str]]:
    answer = site.client.get(f"{URL}?format=csv{query}", headers=site.admin_auth(Scope.AUDIT_READ.value))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].endswith('.csv"')
    return list(csv.DictReader(io.StringIO(answer.text, newline="")))


def test_every_entry_across_pages_in_the_lists_shape_and_never_another_accounts(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "EXPORT_PAGE", 3)
    for i in range(8):
        _record(site, site.acme, f"exporter{i}", at=1000 + i)
        _record(site, site.other, "theirs", at=1000 + i)
    headers = site.admin_auth(Scope.AUDIT_READ.value)
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = site.client.get(
            "/v1/admin/audit?limit=200" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        ).json()
        listed += page["entries"]
        if (cursor := page["nextCursor"]) is None:
            break
    exported = _jsonl(site)
    assert exported == listed  # every entry, newest first, the same shape
    assert len([e for e in exported if e["action"] == "test.export"]) == 8
    assert all(e["actor"] != "theirs" for e in exported)
    rows = _csv(site)
    assert [int(r["id"]) for r in rows] == [e["id"] for e in exported]
    assert list(rows[0]) == [
        "id",
        "at",
        "actor",
        "action",
        "code",
        "productId",
        "licenseId",
        "activationId",
        "detail",
    ]


def test_filters_are_the_lists(site: Site) -> None:
    for i in range(4):
        _record(site, site.acme, "alice" if i % 2 else "bob", at=2000 + i)
    assert [e["at"] for e in _jsonl(site, "&actor=alice")] == [2003, 2001]
    assert [e["at"] for e in _jsonl(site, "&actor=bob&since=2001&until=2003")] == [2002]
    assert _jsonl(site, "&code=NO_SUCH_CODE") == []
    lid = site.licenses["nobody"].id
    assert all(e["licenseId"] == lid for e in _jsonl(site, f"&license={lid}"))
    headers = site.admin_auth(Scope.AUDIT_READ.value)
    for query in ("since=-1", "until=x", "license=x", "actor=a%20b", "format=xlsx"):
        assert error(site.client.get(f"{URL}?{query}", headers=headers)) == (400, "INVALID_ARGUMENT"), query


def test_formula_looking_cells_are_inert_in_the_csv(site: Site) -> None:
    _record(site, site.acme, '=HYPERLINK("http://x")', at=3000, note="@SUM(1+1)")
    _record(site, site.acme, "+cmd", at=3001)
    rows = _csv(site, "&since=3000&until=3002")
    assert [r["actor"] for r in rows] == ["'+cmd", '\'=HYPERLINK("http://x")']
    assert json.loads(rows[1]["detail"]) == {"note": "@SUM(1+1)"}  # inside JSON text: starts with {
    # JSON lines keep the values as they are: they are data, not a spreadsheet
    assert [e["actor"] for e in _jsonl(site, "&since=3000&until=3002")] == ["+cmd", '=HYPERLINK("http://x")']


def test_a_formula_detail_is_inert_in_its_cell(site: Site) -> None:
    row = api._csv_line({**dict.fromkeys(api._CSV_COLUMNS, "=1+1"), "detail": {}})
    cells = next(csv.reader(io.StringIO(row)))
    assert cells[:-1] == ["'=1+1"] * 8 and cells[-1] == "{}"


def test_without_the_scope_or_a_token(site: Site) -> None:
    assert error(site.client.get(URL, headers=site.admin_auth(Scope.LICENSES_READ.value))) == (
        403,
        "FORBIDDEN",
    )
    assert error(site.client.get(URL))[0] == 401
