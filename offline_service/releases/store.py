"""What releases need from a transaction: published releases, their files, and each license's
maximum version. One of the domain parts ``store.Transaction`` is composed of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from offline_service.releases.models import Release, ReleaseFile

__all__ = ["ReleasesTransaction"]


class ReleasesTransaction(Protocol):
    """Releases' reads and writes; every lookup by account is scoped to it."""

    def set_license_max_version(self, license_id: str, max_version: str | None) -> None: ...
    def insert_release(self, release: Release, files: Sequence[ReleaseFile]) -> None: ...
    def releases(self, account_id: str, product_id: str | None = None) -> Sequence[Release]: ...
    def releases_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        channel: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[Release]:
        """At most ``limit`` of the account's releases by id, after the release ``after``."""
        ...

    def release(self, account_id: str, release_id: str) -> Release | None: ...
    def release_files(self, release_ids: Sequence[str]) -> Sequence[ReleaseFile]: ...
    def release_file(self, account_id: str, file_id: str) -> tuple[Release, ReleaseFile] | None: ...
    def delete_release(self, release_id: str) -> None: ...
