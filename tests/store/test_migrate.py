"""One migration history for every backend: a dialect only overrides versions that exist."""

from __future__ import annotations

from offline_service.store.migrate import migrations, split_statements


def test_every_dialect_has_the_same_versions_in_order() -> None:
    portable = [m.version for m in migrations("sqlite")]
    assert portable == sorted(portable) and portable[0] == 1
    assert [m.version for m in migrations("postgresql")] == portable


def test_postgresql_overrides_spell_sqlite_types_its_way() -> None:
    for m in migrations("postgresql"):
        sql = ";".join(split_statements(m.sql))
        assert "BLOB" not in sql and "WITHOUT ROWID" not in sql and "randomblob" not in sql, m.name


def test_statements_are_split_without_comments() -> None:
    assert split_statements("-- a; comment\nCREATE TABLE t (a INT);\n\nDROP TABLE t;") == [
        "CREATE TABLE t (a INT)",
        "DROP TABLE t",
    ]
