"""Checks on uploaded zip archives, done before any entry is processed. Every archive is hostile."""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from dataclasses import dataclass

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES

__all__ = ["ZIP_ERRORS", "ArchiveLimits", "checked_entries", "read_entry"]


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_entries: int = 200_000
    max_total_bytes: int = 1024 * 1024 * 1024  # uncompressed, as declared
    max_ratio: int = 100  # uncompressed / compressed, per entry above 1 KiB and overall


# What zipfile and its decompressors raise for damaged data, opening the archive or reading an
# entry. Found by the fuzzer (tests/fuzz/archives.py): zlib.error and LZMAError are not OSError; a
# name flagged UTF-8 that is not raises UnicodeDecodeError, and a local header offset that comes
# out negative makes the seek raise ValueError.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)


def _bad(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.BAD_ARCHIVE, message)


def _safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name.split("/")[0]:
        return False
    # Split by hand: PurePosixPath would drop the "." and empty parts this is meant to find.
    return all(part not in ("", ".", "..") for part in name.split("/")) and not name.endswith("/")


def checked_entries(zf: zipfile.ZipFile, limits: ArchiveLimits | None = None) -> list[zipfile.ZipInfo]:
    """The file entries of ``zf`` in name order, after checking count, sizes, compression ratio,
    names (no absolute paths, ``..``, backslashes or drive letters), links, encryption, duplicates."""
    limits = limits or ArchiveLimits()
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _bad(f"archive has {len(infos)} entries; the limit is {limits.max_entries}")
    files: list[zipfile.ZipInfo] = []
    seen: set[str] = set()
    total = compressed = 0
    for info in infos:
        # zipfile cuts a name at its first NUL (to "" if it starts with one), hiding it from the
        # checks below; ZipInfo.is_dir() fails on an empty name.
        if "\x00" in info.orig_filename or not info.filename:
            raise _bad(f"unsafe entry name {info.orig_filename!r}")
        if info.is_dir():
            continue
        name = info.filename
        if not _safe_name(name):
            raise _bad(f"unsafe entry name {name!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _bad(f"entry {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise _bad(f"entry {name!r} is encrypted")
        if name in seen:
            raise _bad(f"entry {name!r} appears twice")
        seen.add(name)
        if info.file_size > 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _bad(f"entry {name!r} is compressed more than {limits.max_ratio}:1")
        total += info.file_size
        compressed += info.compress_size
        if total > limits.max_total_bytes:
            raise _bad(f"archive expands to more than {limits.max_total_bytes} bytes")
        files.append(info)
    if total > 1024 * 1024 and total > limits.max_ratio * max(compressed, 1):
        raise _bad(f"archive is compressed more than {limits.max_ratio}:1")
    return sorted(files, key=lambda i: i.filename)


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of an entry: enough to tell that it is too large, whatever
    size it declares."""
    try:
        with zf.open(info) as f:
            return f.read(MAX_FILE_BYTES + 1)
    except ZIP_ERRORS as exc:
        raise _bad(f"entry {info.filename!r} cannot be read: {exc}") from None
