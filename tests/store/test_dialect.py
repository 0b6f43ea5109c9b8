"""The shared SQL is written once against ``Dialect``: every statement comes out in the dialect's
own placeholder style and forms, built once and reused."""

from __future__ import annotations

from collections.abc import Sequence

from offline_service.licensing.models import ATTENTION, LICENSE_SORTS, LICENSE_STATES, LicenseFilter
from offline_service.store.postgresql import POSTGRESQL
from offline_service.store.sql import Dialect, Statements
from offline_service.store.sql._base import Lookup, RowsInsert, SizedStatement
from offline_service.store.sqlite import SQLITE


def _listed(items: Sequence[str]) -> object:
    return list(items)


FORMAT = Dialect(
    name="format-style",
    placeholder="%s",
    insert_ignore_prefix="INSERT INTO",
    insert_ignore_suffix=" ON CONFLICT DO NOTHING",
    is_not="IS DISTINCT FROM",
    in_bound_list="= ANY(?)",
    bound_list=_listed,
    max_list=1000,
    array_rows=True,
)


def _every_statement(statements: Statements) -> list[str]:
    found: list[str] = []
    for part in (statements.licensing, statements.accounts, statements.releases, statements.branding):
        found += [v for v in vars(part).values() if isinstance(v, str)]
        found += [v(3) for v in vars(part).values() if isinstance(v, SizedStatement)]
        found += [v.sql for v in vars(part).values() if isinstance(v, RowsInsert | Lookup)]
    found += [statements.audit.insert.sql, statements.audit.entries, statements.audit.entries_for_licenses(2)]
    for live in (None, True, False):
        found += statements.licensing.find_activations(product=True, license=True, live=live, text=True)
    found += statements.licensing.find_activations(
        product=False, license=True, live=None, text=True, order="hostname"
    )
    for state in (None, *LICENSE_STATES):
        for attention in (None, *ATTENTION):
            query = LicenseFilter(text="x", state=state, product_id="p", attention=attention)
            found += statements.licensing.find_licenses(query)
    for sort in LICENSE_SORTS:
        found += statements.licensing.find_licenses(LicenseFilter(sort=sort, descending=True))
    return found


def test_every_statement_is_in_the_dialects_own_forms() -> None:
    statements = Statements.for_dialect(FORMAT)
    every = _every_statement(statements)
    assert len(every) > 60
    for sql in every:
        assert "?" not in sql and "OR IGNORE" not in sql and "json_each" not in sql, sql
    accounts = statements.accounts
    assert accounts.add_group_member == (
        "INSERT INTO group_members (group_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    )
    assert accounts.revoke_user_credentials.endswith("AND token_hash IS DISTINCT FROM %s")
    count, _ = statements.licensing.find_activations(product=False, license=False, live=None, text=True)
    assert "a.license_id = ANY(%s)" in count and "ESCAPE '\\'" in count


def test_many_rows_go_in_one_statement_of_arrays_or_one_statement_per_row() -> None:
    format_style, sqlite = Statements.for_dialect(FORMAT), Statements.for_dialect(SQLITE)
    assert format_style.licensing.insert_nonces.sql == (
        "INSERT INTO request_nonces (product_id, nonce, kind, activation_id, processed_at)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])"
    )
    assert sqlite.licensing.insert_nonces.sql == (
        "INSERT INTO request_nonces (product_id, nonce, kind, activation_id, processed_at) VALUES (?, ?, ?, ?, ?)"
    )

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, object]] = []

        def execute(self, sql: str, parameters: object = ()) -> None:
            self.calls.append(("execute", sql, parameters))

        def executemany(self, sql: str, parameters: object) -> None:
            self.calls.append(("executemany", sql, list(parameters)))  # type: ignore[call-overload]

    rows = [("p", "n1", "activation", "a1", 1), ("p", "n2", "activation", None, 2)]
    arrays, per_row = Recorder(), Recorder()
    format_style.licensing.insert_nonces.run(arrays, rows)  # type: ignore[arg-type]
    sqlite.licensing.insert_nonces.run(per_row, rows)  # type: ignore[arg-type]
    format_style.licensing.insert_nonces.run(arrays, [])  # type: ignore[arg-type]  # nothing to send
    assert arrays.calls == [
        (
            "execute",
            format_style.licensing.insert_nonces.sql,
            [["p", "p"], ["n1", "n2"], ["activation"] * 2, ["a1", None], [1, 2]],
        )
    ]
    assert per_row.calls == [("executemany", sqlite.licensing.insert_nonces.sql, rows)]


def test_lookups_are_one_statement_of_arrays_or_a_union_of_whole_index_equalities() -> None:
    format_style, sqlite = Statements.for_dialect(FORMAT), Statements.for_dialect(SQLITE)
    keys = [("p1", "n1"), ("p1", "n2"), ("p2", "n3")]
    [(sql, args)] = format_style.licensing.nonces.statements(keys)
    assert sql == (
        "SELECT x.* FROM unnest(%s::text[], %s::text[]) AS f(k0, k1) CROSS JOIN LATERAL"
        " (SELECT n.product_id, n.nonce, n.activation_id FROM request_nonces n"
        " WHERE n.product_id = f.k0 AND n.nonce = f.k1 OFFSET 0) AS x"
    )
    assert args == [["p1", "p1", "p2"], ["n1", "n2", "n3"]]
    [(sql, args)] = sqlite.licensing.nonces.statements(keys)
    one = (
        "SELECT n.product_id, n.nonce, n.activation_id FROM request_nonces n"
        " WHERE n.product_id = ? AND n.nonce = ?"
    )
    assert sql == " UNION ALL ".join([one] * 3) and args == ["p1", "n1", "p1", "n2", "p2", "n3"]
    many = [("p", f"n{i}") for i in range(Lookup.UNION_MAX + 1)]
    assert [len(a) for _, a in sqlite.licensing.nonces.statements(many)] == [2 * Lookup.UNION_MAX, 2]
    assert sqlite.licensing.nonces.statements([]) == [] == format_style.licensing.nonces.statements([])


def test_a_literal_percent_is_doubled_for_format_placeholders() -> None:
    assert FORMAT.sql("SELECT '%' WHERE a = ?") == "SELECT '%%' WHERE a = %s"
    assert SQLITE.sql("SELECT '%' WHERE a = ?") == "SELECT '%' WHERE a = ?"


def test_statements_are_built_once_per_dialect_and_lists_once_per_length() -> None:
    assert Statements.for_dialect(SQLITE) is Statements.for_dialect(SQLITE)
    assert Statements.for_dialect(SQLITE) is not Statements.for_dialect(FORMAT)
    sized = Statements.for_dialect(SQLITE).licensing.licenses_by_hashes
    assert sized(3) is sized(3) and sized(3).endswith("IN (?, ?, ?)")
    licensing = Statements.for_dialect(SQLITE).licensing
    first = licensing.find_activations(product=True, license=False, live=True, text=False)
    assert licensing.find_activations(product=True, license=False, live=True, text=False) is first
    listed = licensing.find_licenses(LicenseFilter(text="a", attention="any", sort="name"))
    assert licensing.find_licenses(LicenseFilter(text="b", attention="any", sort="name")) is listed


def test_postgresqls_bound_list_is_one_text_array_literal_whatever_the_items() -> None:
    """Quoted and escaped, so that no item can end the literal or split into two (the statement
    casts it: ``= ANY(%s::text[])``); the contract tests run it against the server."""
    assert POSTGRESQL.in_bound_list == "= ANY(?::text[])"
    assert POSTGRESQL.bound_list(["lic_1", "lic_2"]) == '{"lic_1","lic_2"}'
    assert POSTGRESQL.bound_list(['a"b', "c\\d", "e,f", "{}", ""]) == '{"a\\"b","c\\\\d","e,f","{}",""}'
    assert POSTGRESQL.bound_list([]) == "{}"
