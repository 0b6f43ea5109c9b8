"""Release records: published versions and their files. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Release", "ReleaseFile"]


@dataclass(frozen=True, slots=True)
class Release:
    """A version of a product, published by the vendor for download in the portal."""

    id: str
    account_id: str
    product_id: str
    version: str
    channel: str
    notes: str
    published_at: int


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    id: str
    release_id: str
    name: str  # the published file's name, as offered for download
    size: int
    sha256: str  # hex
    path: str  # relative to the releases directory
