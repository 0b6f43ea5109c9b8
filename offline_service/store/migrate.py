"""The one migration history of every backend: ``store/migrations/NNNN_name.sql``, written in
portable SQL, where a backend may override a file with its own spelling of the same change
(``store/migrations/<dialect>/NNNN_name.sql``). Which versions a database has is kept in its
``schema_migrations`` table; applying them is the backend's (its transactions and locks differ)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "migrations", "split_statements"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One version of the schema in one dialect's SQL."""

    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """Every migration, oldest first, each in ``dialect``'s override if it has one. An override
    without its portable file is refused: the history must stay one, whatever the backend."""
    root = resources.files("offline_service.store").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found[version] = Migration(version, entry.name, entry.read_text("utf-8"))
    overrides = root.joinpath(dialect)
    if overrides.is_dir():
        for entry in overrides.iterdir():
            if entry.name.endswith(".sql"):
                version = int(entry.name.split("_", 1)[0])
                if version not in found:
                    raise ValueError(f"migration override {dialect}/{entry.name} has no portable file")
                found[version] = Migration(version, entry.name, entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
