"""Releases' SQL, written once for every backend: published releases, their files, and each
license's maximum version (plain statements, nothing buffered)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from offline_service.releases.models import Release, ReleaseFile
from offline_service.store.sql._base import SizedStatement, SQLPart, groups
from offline_service.store.sql.dialect import Dialect

__all__ = ["ReleasesSQL", "ReleasesStatements"]

_RELEASE_COLS = "id, account_id, product_id, version, channel, notes, published_at"
_RELEASE_FILE_COLS = "id, release_id, name, size, sha256, path"


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


class ReleasesStatements:
    """Releases' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.max_list = d.max_list
        self.set_license_max_version = q("UPDATE licenses SET max_version = ? WHERE id = ?")
        self.insert_release = q(f"INSERT INTO releases ({_RELEASE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)")
        self.insert_release_file = q(
            f"INSERT INTO release_files ({_RELEASE_FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
        )
        releases = f"SELECT {_RELEASE_COLS} FROM releases WHERE account_id = ?"
        self.releases = q(releases + " ORDER BY published_at, id")
        self.product_releases = q(releases + " AND product_id = ? ORDER BY published_at, id")
        # releases_page, by which filters it has: (product, channel, after)
        self.releases_page = {
            (product, channel, after): q(
                releases
                + (" AND product_id = ?" if product else "")
                + (" AND channel = ?" if channel else "")
                + (" AND id > ?" if after else "")
                + " ORDER BY id LIMIT ?"
            )
            for product in (False, True)
            for channel in (False, True)
            for after in (False, True)
        }
        self.release = q(releases + " AND id = ?")
        self.release_files = SizedStatement(
            d,
            f"SELECT {_RELEASE_FILE_COLS} FROM release_files WHERE release_id IN {{in}} ORDER BY release_id, name",
        )
        self.release_file = q(
            f"SELECT {_prefixed('r', _RELEASE_COLS)}, {_prefixed('f', _RELEASE_FILE_COLS)}"
            " FROM release_files f JOIN releases r ON r.id = f.release_id WHERE f.id = ? AND r.account_id = ?"
        )
        self.delete_release_files = q("DELETE FROM release_files WHERE release_id = ?")
        self.delete_release = q("DELETE FROM releases WHERE id = ?")


class ReleasesSQL(SQLPart):
    """Releases' part of a transaction."""

    __slots__ = ()
    _rq: ReleasesStatements

    if TYPE_CHECKING:  # from the licensing part: a license's cached copy must not outlive a change

        def flush(self) -> None: ...
        def _forget_license(self, license_id: str) -> None: ...

    def set_license_max_version(self, license_id: str, max_version: str | None) -> None:
        self.flush()
        self._forget_license(license_id)
        self._c.execute(self._rq.set_license_max_version, (max_version, license_id))

    def insert_release(self, release: Release, files: Sequence[ReleaseFile]) -> None:
        r = release
        self._c.execute(
            self._rq.insert_release,
            (r.id, r.account_id, r.product_id, r.version, r.channel, r.notes, r.published_at),
        )
        self._c.executemany(
            self._rq.insert_release_file,
            [(f.id, f.release_id, f.name, f.size, f.sha256, f.path) for f in files],
        )

    def releases(self, account_id: str, product_id: str | None = None) -> Sequence[Release]:
        if product_id is None:
            rows = self._c.execute(self._rq.releases, (account_id,))
        else:
            rows = self._c.execute(self._rq.product_releases, (account_id, product_id))
        return [Release(*r) for r in rows]

    def releases_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        channel: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[Release]:
        sql = self._rq.releases_page[(product_id is not None, channel is not None, after is not None)]
        args = [account_id, *(x for x in (product_id, channel, after) if x is not None), limit]
        return [Release(*r) for r in self._c.execute(sql, args)]

    def release(self, account_id: str, release_id: str) -> Release | None:
        row = self._one(self._rq.release, (account_id, release_id))
        return Release(*row) if row else None

    def release_files(self, release_ids: Sequence[str]) -> Sequence[ReleaseFile]:
        found: list[ReleaseFile] = []
        for group in groups(sorted(set(release_ids)), self._rq.max_list):
            found += [
                ReleaseFile(*r) for r in self._c.execute(self._rq.release_files(len(group)), tuple(group))
            ]
        return found

    def release_file(self, account_id: str, file_id: str) -> tuple[Release, ReleaseFile] | None:
        row = self._one(self._rq.release_file, (file_id, account_id))
        return (Release(*row[:7]), ReleaseFile(*row[7:])) if row else None

    def delete_release(self, release_id: str) -> None:
        self._c.execute(self._rq.delete_release_files, (release_id,))
        self._c.execute(self._rq.delete_release, (release_id,))
