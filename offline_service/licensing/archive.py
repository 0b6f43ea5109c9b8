"""Checks on uploaded zip archives, done before any entry is processed. Every archive is hostile.

The central directory is walked record by record (``zipstream.central_directory``) and what passes
is kept in columns, not as one object per entry: a zip of 100,000 requests is listed in a few MB.
"""

from __future__ import annotations

import itertools
import os
import stat
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.zipstream import Entry, central_directory, read_lean

__all__ = ["ArchiveLimits", "Entries", "Entry", "checked_entries", "read_entry"]

_LOCAL_HEADER = 30


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_entries: int = 200_000
    max_total_bytes: int = 1024 * 1024 * 1024  # uncompressed, as declared
    max_ratio: int = 100  # uncompressed / compressed, per entry above 1 KiB and overall


def _bad(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.BAD_ARCHIVE, message)


def _safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name.split("/")[0]:
        return False
    # Split by hand: PurePosixPath would drop the "." and empty parts this is meant to find.
    return all(part not in ("", ".", "..") for part in name.split("/")) and not name.endswith("/")


class Entries(Sequence[Entry]):
    """The checked file entries of an archive in name order, kept as a list of names and columns
    of numbers; an ``Entry`` is made when asked for."""

    __slots__ = ("_cols", "names")

    def __init__(self, names: list[str], cols: tuple[array[int], ...]) -> None:
        self.names = names
        self._cols = cols

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> Entry: ...
    @overload
    def __getitem__(self, i: slice) -> list[Entry]: ...
    def __getitem__(self, i: int | slice) -> Entry | list[Entry]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return Entry(self.names[i], *(col[i] for col in self._cols))


def checked_entries(source: int | str | os.PathLike[str], limits: ArchiveLimits | None = None) -> Entries:
    """The file entries of the zip at ``source`` (a descriptor or a path) in name order, after
    checking count, sizes, compression ratio, names (no absolute paths, ``..``, backslashes or drive
    letters), links, encryption, duplicates, and that no two entries' data overlap."""
    if isinstance(source, int):
        return _checked(source, limits or ArchiveLimits())
    fd = os.open(source, os.O_RDONLY)
    try:
        return _checked(fd, limits or ArchiveLimits())
    finally:
        os.close(fd)


def _checked(fd: int, limits: ArchiveLimits) -> Entries:
    names: list[str] = []
    # Per file entry: offset, compressed size, size, crc, method, flags, external attributes, and
    # its index among all records (directories too) for the overlap check.
    cols = tuple(array("Q") for _ in range(8))
    starts, ends = array("Q"), array("Q")  # every record's local header and least end
    total = compressed = 0
    cd_offset, records = central_directory(fd, max_entries=limits.max_entries)
    for rec in records:
        name = rec.name
        if "\x00" in name or not name:
            raise _bad(f"unsafe entry name {name!r}")
        starts.append(rec.offset)
        ends.append(rec.offset + _LOCAL_HEADER + rec.raw_name_length + rec.compress_size)
        if name.endswith("/"):
            continue
        if not _safe_name(name):
            raise _bad(f"unsafe entry name {name!r}")
        if stat.S_ISLNK(rec.external_attr >> 16):
            raise _bad(f"entry {name!r} is a symbolic link")
        if rec.flags & 0x1:
            raise _bad(f"entry {name!r} is encrypted")
        if rec.file_size > 1024 and rec.file_size > limits.max_ratio * max(rec.compress_size, 1):
            raise _bad(f"entry {name!r} is compressed more than {limits.max_ratio}:1")
        total += rec.file_size
        compressed += rec.compress_size
        if total > limits.max_total_bytes:
            raise _bad(f"archive expands to more than {limits.max_total_bytes} bytes")
        names.append(name)
        for col, value in zip(
            cols,
            (rec.offset, rec.compress_size, rec.file_size, rec.crc, rec.method, rec.flags, rec.external_attr),
            strict=False,
        ):
            col.append(value)
        cols[7].append(len(starts) - 1)
    if total > 1024 * 1024 and total > limits.max_ratio * max(compressed, 1):
        raise _bad(f"archive is compressed more than {limits.max_ratio}:1")
    limit = _limits(starts, ends, cd_offset)
    order = sorted(range(len(names)), key=names.__getitem__)
    for a, b in itertools.pairwise(order):
        if names[a] == names[b]:
            raise _bad(f"entry {names[a]!r} appears twice")
    sorted_names = [names[i] for i in order]
    del names
    out = tuple(array("Q", (col[i] for i in order)) for col in cols[:7])
    limits_col = array("Q", (limit[cols[7][i]] for i in order))
    return Entries(sorted_names, (*out, limits_col))


def _limits(starts: array[int], ends: array[int], cd_offset: int) -> array[int]:
    """Where each record's data must end: the next local header, or the central directory.
    Refuses records whose least extent (header, name, data) overlaps another's or the directory."""
    order = sorted(range(len(starts)), key=starts.__getitem__)
    limit = array("Q", bytes(8 * len(starts)))
    for n, i in enumerate(order):
        nxt = starts[order[n + 1]] if n + 1 < len(order) else cd_offset
        if ends[i] > nxt:
            raise _bad("entries overlap (two entries share data, or one runs into the central directory)")
        limit[i] = nxt
    return limit


def read_entry(source: int | str | os.PathLike[str], entry: Entry) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a checked entry, checked: see ``zipstream.read_lean``."""
    return read_lean(source, entry)
