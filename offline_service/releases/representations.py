"""The JSON form of releases and their files, shared by the CLI (``--json``) and the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.releases.models import Release, ReleaseFile

__all__ = ["release_file_json", "release_json"]


def release_file_json(f: ReleaseFile) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "size": f.size, "sha256": f.sha256}


def release_json(release: Release, files: Sequence[ReleaseFile]) -> dict[str, Any]:
    return {
        "id": release.id,
        "productId": release.product_id,
        "version": release.version,
        "channel": release.channel,
        "notes": release.notes,
        "publishedAt": release.published_at,
        "files": [release_file_json(f) for f in files],
    }
