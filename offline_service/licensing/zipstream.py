"""Zip archives read and written an entry at a time, without zipfile's per-entry objects.

``central_directory`` walks the central directory of an archive with ``os.pread`` and yields one
plain tuple per record; ``read_lean`` reads one entry at its local header, cross-checked against
the central directory, bounded and CRC-checked; ``ZipWriter`` appends STORED entries to
``OUT.zip.partial`` with a journal beside it, so that a run killed at any point resumes after its
last good entry. Every archive read here is hostile: whatever is wrong raises BAD_ARCHIVE.
"""

from __future__ import annotations

import bz2
import contextlib
import json
import lzma
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES

__all__ = ["Entry", "Record", "ZipWriter", "central_directory", "read_lean"]

STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
_ENCRYPTED, _DESCRIPTOR, _UTF8 = 0x1, 0x8, 0x800
_MAX32, _MAX16 = 0xFFFFFFFF, 0xFFFF

_EOCD = struct.Struct("<4s4H2LH")  # signature, disk, CD disk, entries here, entries, CD size, offset, comment
_LOCATOR = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record, without its extension
_CENTRAL = struct.Struct("<4s4B4H3L5H2L")
_LOCAL = struct.Struct("<4s2B4H3L2H")
_SIG_EOCD, _SIG_LOCATOR, _SIG_EOCD64 = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_SIG_CENTRAL, _SIG_LOCAL = b"PK\x01\x02", b"PK\x03\x04"
_ONE_READ = 64 * 1024
_DOS_1980 = (0 << 11, (0 << 9) | (1 << 5) | 1)  # time, date: 1980-01-01 00:00


class Record(NamedTuple):
    """One central directory record, as far as the checks and the reader need it."""

    name: str
    raw_name_length: int
    offset: int
    compress_size: int
    file_size: int
    crc: int
    method: int
    flags: int
    external_attr: int


class Entry(NamedTuple):
    """Where one checked file entry lies: its local header at ``offset``, its data ending at or
    before ``limit`` (the next entry's header or the central directory)."""

    name: str
    offset: int
    compress_size: int
    file_size: int
    crc: int
    method: int
    flags: int
    external_attr: int
    limit: int


def _bad(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.BAD_ARCHIVE, message)


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    while 0 < len(data) < size and (more := os.pread(fd, size - len(data), offset + len(data))):
        data += more  # a short read is allowed by POSIX
    return data


def _decode(raw: bytes, flags: int) -> str:
    try:
        return raw.decode("utf-8") if flags & _UTF8 else raw.decode("cp437")
    except UnicodeDecodeError:
        raise _bad(f"entry name {raw!r} is flagged UTF-8 but is not") from None


def _zip64_extra(extra: bytes, wanted: list[bool], what: str) -> list[int]:
    """The 64-bit values of a ZIP64 extra field, in order, for each ``wanted`` field."""
    need = sum(wanted)
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack_from("<2H", extra, at)
        if tag == 1:
            body = extra[at + 4 : at + 4 + size]
            if len(body) < 8 * need:
                raise _bad(f"{what} has a ZIP64 field too short for its sizes")
            return list(struct.unpack_from(f"<{need}Q", body))
        at += 4 + size
    raise _bad(f"{what} lacks the ZIP64 field its sizes call for")


def _end(fd: int, size: int) -> tuple[int, int, int]:
    """(entries, central directory offset, where the central directory must end)."""
    window = min(size, _EOCD.size + _MAX16)
    tail = _pread(fd, window, size - window)
    at = tail.rfind(_SIG_EOCD)
    # A comment may hold the signature: prefer a record whose comment ends the file.
    found = -1
    while at >= 0:
        if at + _EOCD.size <= len(tail):
            if found < 0:
                found = at
            if at + _EOCD.size + struct.unpack_from("<H", tail, at + 20)[0] == len(tail):
                found = at
                break
        at = tail.rfind(_SIG_EOCD, 0, at)
    if found < 0:
        raise _bad("not a zip archive (no end of central directory record)")
    _, disk, cd_disk, here, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, found)
    eocd = size - window + found
    cd_end = eocd
    loc_at = found - _LOCATOR.size
    if loc_at >= 0 and tail[loc_at : loc_at + 4] == _SIG_LOCATOR:
        _, loc_disk, eocd64, disks = _LOCATOR.unpack_from(tail, loc_at)
        if loc_disk != 0 or disks > 1 or eocd64 + _EOCD64.size > eocd - _LOCATOR.size:
            raise _bad("the ZIP64 end record is misplaced or spans several disks")
        rec = _pread(fd, _EOCD64.size, eocd64)
        if len(rec) < _EOCD64.size or rec[:4] != _SIG_EOCD64:
            raise _bad("the ZIP64 end record is missing")
        _, _, _, _, disk, cd_disk, here, count, cd_size, cd_offset = _EOCD64.unpack(rec)
        cd_end = eocd64
    elif _MAX32 in (cd_size, cd_offset) or _MAX16 in (here, count):
        raise _bad("the end record calls for a ZIP64 end record that is missing")
    if disk or cd_disk or here != count:
        raise _bad("archives spanning several disks are not read")
    if cd_offset + cd_size != cd_end:
        raise _bad("the central directory is not where the end record says (data before the archive?)")
    return count, cd_offset, cd_end


class _Buffered:
    """Sequential reads over ``[start, end)`` of a file by pread, 64 KiB at a time."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.pos, self.end = fd, start, end
        self.buf, self.at = b"", 0

    def read(self, n: int) -> bytes:
        if self.at + n > len(self.buf):
            left = self.buf[self.at :]
            want = min(max(n - len(left), 65536), self.end - self.pos)
            self.buf = left + (_pread(self.fd, want, self.pos) if want > 0 else b"")
            self.pos += want
            self.at = 0
            if n > len(self.buf):
                raise _bad("the central directory is truncated")
        data = self.buf[self.at : self.at + n]
        self.at += n
        return data


def central_directory(fd: int, *, max_entries: int) -> tuple[int, Iterator[Record]]:
    """Where the central directory of the archive open at ``fd`` starts, and its records in
    stored order; refuses an archive of more than ``max_entries`` records before reading any."""
    size = os.fstat(fd).st_size
    count, cd_offset, cd_end = _end(fd, size)
    if count > max_entries:
        raise _bad(f"archive has {count} entries; the limit is {max_entries}")
    if count * _CENTRAL.size > cd_end - cd_offset:
        raise _bad("the central directory is shorter than its entries")
    return cd_offset, _records(_Buffered(fd, cd_offset, cd_end), count)


def _records(reader: _Buffered, count: int) -> Iterator[Record]:
    for _ in range(count):
        fields = _CENTRAL.unpack(reader.read(_CENTRAL.size))
        if fields[0] != _SIG_CENTRAL:
            raise _bad("bad central directory record")
        flags, method, crc, csize, usize = fields[5], fields[6], fields[9], fields[10], fields[11]
        name_len, extra_len, comment_len, disk = fields[12], fields[13], fields[14], fields[15]
        external, offset = fields[17], fields[18]
        raw = reader.read(name_len)
        extra = reader.read(extra_len)
        reader.read(comment_len)
        name = _decode(raw, flags)
        wanted = [usize == _MAX32, csize == _MAX32, offset == _MAX32]
        if any(wanted):
            values = iter(_zip64_extra(extra, wanted, f"entry {name!r}"))
            usize = next(values) if wanted[0] else usize
            csize = next(values) if wanted[1] else csize
            offset = next(values) if wanted[2] else offset
        if disk not in (0, _MAX16):
            raise _bad(f"entry {name!r} is on another disk")
        yield Record(name, name_len, offset, csize, usize, crc, method, flags, external)


# -- reading one entry -----------------------------------------------------------------------


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def _lzma(props: bytes) -> lzma.LZMADecompressor:
    """The raw LZMA1 decoder for a zip entry's properties (what zipfile does, by public API)."""
    if len(props) != 5:
        raise ValueError("LZMA properties are not 5 bytes")
    d = props[0]
    pb, d = divmod(d, 45)
    lp, lc = divmod(d, 9)
    dict_size = int.from_bytes(props[1:5], "little")
    filters = [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}]
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)


def _inflate(fd: int, method: int, start: int, end: int) -> tuple[bytes, bool]:
    """At most MAX_FILE_BYTES + 1 bytes of the compressed data in ``[start, end)``, and whether
    its stream ended (all of it was decompressed)."""
    out = bytearray()
    pos = start
    dec: _Decompressor
    if method == LZMA:
        head = _pread(fd, 4, pos)
        if len(head) < 4:
            raise ValueError("LZMA header is truncated")
        plen = int.from_bytes(head[2:4], "little")
        dec = _lzma(_pread(fd, plen, pos + 4))
        pos += 4 + plen
    elif method == BZIP2:
        dec = bz2.BZ2Decompressor()
    else:
        dec = zlib.decompressobj(-15)
    limit = MAX_FILE_BYTES + 1
    # Below the limit, each decoder has handed out all it could: more output needs more input.
    while len(out) < limit and not dec.eof and pos < end:
        chunk = _pread(fd, min(65536, end - pos), pos)
        if not chunk:
            raise ValueError("compressed data is truncated")
        pos += len(chunk)
        out += dec.decompress(chunk, limit - len(out))
    return bytes(out), dec.eof


def read_lean(source: int | str | os.PathLike[str], entry: Entry) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a checked entry (enough to tell that it is too large,
    whatever size it declares), its local header checked against the central directory and,
    when read whole, its size and CRC. ``source``: an open file descriptor or a path."""
    if isinstance(source, int):
        return _read(source, entry)
    fd = os.open(source, os.O_RDONLY)
    try:
        return _read(fd, entry)
    finally:
        os.close(fd)


def _read(fd: int, entry: Entry) -> bytes:
    name = entry.name
    try:
        # One read for a request-sized entry: its header, name, extra field and data all lie before
        # the next entry (checked when the archive was listed).
        buf = _pread(fd, min(entry.limit - entry.offset, _ONE_READ), entry.offset)
        if len(buf) < _LOCAL.size or buf[:4] != _SIG_LOCAL:
            raise _bad(f"entry {name!r} has no local header where the central directory says")
        _, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL.unpack_from(buf)
        var = buf[_LOCAL.size : _LOCAL.size + name_len + extra_len]
        if len(var) < name_len + extra_len:
            var = _pread(fd, name_len + extra_len, entry.offset + _LOCAL.size)
        if _decode(var[:name_len], flags) != name or method != entry.method:
            raise _bad(f"entry {name!r}: its local header does not match the central directory")
        if flags & _ENCRYPTED:
            raise _bad(f"entry {name!r} is encrypted")
        if csize == _MAX32 or usize == _MAX32:
            wanted = [usize == _MAX32, csize == _MAX32]
            values = iter(_zip64_extra(var[name_len:], wanted, f"entry {name!r}"))
            usize = next(values) if wanted[0] else usize
            csize = next(values) if wanted[1] else csize
        declared = (crc, csize, usize)
        central = (entry.crc, entry.compress_size, entry.file_size)
        # With a data descriptor, the local header may leave them zero; what it states must agree.
        if declared != central and not (flags & _DESCRIPTOR and declared == (0, 0, 0)):
            raise _bad(f"entry {name!r}: its local header does not match the central directory")
        start = entry.offset + _LOCAL.size + name_len + extra_len
        end = start + entry.compress_size
        if end > entry.limit:
            raise _bad(f"entry {name!r} overlaps the next entry or the central directory")
        inside = slice(start - entry.offset, end - entry.offset) if end - entry.offset <= len(buf) else None
        if method == STORED:
            if entry.compress_size != entry.file_size:
                raise _bad(f"entry {name!r} is stored with two different sizes")
            want = min(entry.file_size, MAX_FILE_BYTES + 1)
            data = buf[inside][:want] if inside is not None else _pread(fd, want, start)
            whole = entry.file_size <= MAX_FILE_BYTES
            if len(data) < min(entry.file_size, MAX_FILE_BYTES + 1):
                raise _bad(f"entry {name!r} is truncated")
        elif method == DEFLATED and inside is not None:
            dec = zlib.decompressobj(-15)
            data = dec.decompress(buf[inside], MAX_FILE_BYTES + 1)
            whole = len(data) <= MAX_FILE_BYTES
            if whole and not dec.eof:
                raise _bad(f"entry {name!r} cannot be read: its compressed data is cut short")
        elif method in (DEFLATED, BZIP2, LZMA):
            data, ended = _inflate(fd, method, start, end)
            whole = len(data) <= MAX_FILE_BYTES
            if whole and not ended:
                raise _bad(f"entry {name!r} cannot be read: its compressed data is cut short")
        else:
            raise _bad(f"entry {name!r} cannot be read: compression method {method} is not supported")
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
        # Found by the fuzzer: zlib.error and LZMAError are not OSError; bz2 raises OSError.
        raise _bad(f"entry {name!r} cannot be read: {exc}") from None
    if whole:
        if len(data) != entry.file_size:
            raise _bad(f"entry {name!r} is {len(data)} bytes, not the {entry.file_size} it declares")
        if zlib.crc32(data) != entry.crc:
            raise _bad(f"entry {name!r} cannot be read: bad CRC-32")
    return data


# -- writing ---------------------------------------------------------------------------------


def _local_header(raw: bytes, size: int, crc: int) -> bytes:
    return _LOCAL.pack(_SIG_LOCAL, 20, 0, _UTF8, STORED, *_DOS_1980, crc, size, size, len(raw), 0)


class ZipWriter:
    """Appends STORED entries to ``OUT.zip.partial``; each entry's (name, offset, size, crc) goes
    to ``OUT.zip.journal``, made durable by ``sync``. Opened again after a crash, it keeps the
    journaled entries whose data is intact, cuts the file after the last of them and goes on.
    ``finish`` writes the central directory from the journal and renames the file to OUT.zip."""

    def __init__(self, output: Path, partial: Path, journal: Path) -> None:
        self.output, self.partial, self.journal_path = output, partial, journal
        self.resumed: dict[str, tuple[int, int]] = {}  # name: (size, crc) of entries kept
        self._replaced: dict[str, int] = {}  # name: journal lines of it that are superseded
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._fd = fd
        try:
            self._offset = self._recover()
            self._journal = open(journal, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except BaseException:
            os.close(fd)
            raise
        self._buf: list[bytes] = []
        self._lines: list[str] = []

    @classmethod
    def open(cls, output: Path) -> ZipWriter:
        """The writer of ``output``, resuming what a crashed run left beside it."""
        partial = output.with_name(output.name + ".partial")
        if partial.is_dir():
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT,
                f"{partial} is a folder left by a batch run of an earlier version that did not finish;"
                " delete it and run the batch again (requests it decided are answered again with"
                " the same activations: no seat is counted twice)",
            )
        return cls(output, partial, output.with_name(output.name + ".journal"))

    def _recover(self) -> int:
        """Keep the journaled entries that are whole; returns where the next entry goes."""
        kept: list[tuple[str, int, int, int]] = []
        end = 0
        if self.journal_path.exists():
            with open(self.journal_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        name, offset, size, crc = json.loads(line)
                    except ValueError:
                        break  # a torn last line
                    if offset != end or not self._intact(name, offset, size, crc):
                        break
                    kept.append((name, offset, size, crc))
                    end = offset + _LOCAL.size + len(name.encode()) + size
        os.ftruncate(self._fd, end)
        tmp = self.journal_path.with_name(self.journal_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(k) + "\n" for k in kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.journal_path)
        for name, _, size, crc in kept:
            if name in self.resumed:
                self._replaced[name] = self._replaced.get(name, 0) + 1
            self.resumed[name] = (size, crc)
        return end

    def _intact(self, name: str, offset: int, size: int, crc: int) -> bool:
        raw = name.encode()
        want = _local_header(raw, size, crc) + raw
        data = _pread(self._fd, len(want) + size, offset)
        return (
            data[: len(want)] == want
            and len(data) == len(want) + size
            and zlib.crc32(data[len(want) :]) == crc
        )

    def add(self, name: str, data: bytes) -> None:
        """Append an entry (buffered until ``sync``); a name kept from an earlier run is replaced."""
        raw = name.encode()
        crc = zlib.crc32(data)
        if name in self.resumed:
            self._replaced[name] = self._replaced.get(name, 0) + 1
            del self.resumed[name]
        self._buf += (_local_header(raw, len(data), crc), raw, data)
        self._lines.append(f"[{json.dumps(name)}, {self._offset}, {len(data)}, {crc}]\n")
        self._offset += _LOCAL.size + len(raw) + len(data)

    def add_file(self, name: str, path: Path) -> None:
        """Append a file as an entry, read twice in pieces (its CRC first) rather than held whole."""
        crc = size = 0
        with open(path, "rb") as f:
            while piece := f.read(1 << 20):
                crc, size = zlib.crc32(piece, crc), size + len(piece)
            self.sync()
            raw = name.encode()
            if name in self.resumed:
                self._replaced[name] = self._replaced.get(name, 0) + 1
                del self.resumed[name]
            pos = self._offset
            self._write([_local_header(raw, size, crc), raw], pos)
            pos += _LOCAL.size + len(raw)
            f.seek(0)
            while piece := f.read(1 << 20):
                self._write([piece], pos)
                pos += len(piece)
        self._lines.append(json.dumps([name, self._offset, size, crc]) + "\n")
        self._offset = pos

    def _write(self, parts: list[bytes], pos: int) -> None:
        data = b"".join(parts)
        while data:
            written = os.pwrite(self._fd, data, pos)
            data, pos = data[written:], pos + written

    def sync(self) -> None:
        """Write what was added, then make it and its journal lines durable, in that order."""
        if self._buf:
            first = self._offset - sum(len(b) for b in self._buf)
            self._write(self._buf, first)
            self._buf = []
        if self._lines:
            os.fdatasync(self._fd)
            self._journal.writelines(self._lines)
            self._journal.flush()
            os.fdatasync(self._journal.fileno())
            self._lines = []

    def finish(self) -> None:
        """Write the central directory (streamed from the journal) and the end records, then
        rename the archive into place and remove the journal."""
        self.sync()
        self._journal.close()
        cd_start = pos = self._offset
        count = 0
        skip = dict(self._replaced)
        chunk: list[bytes] = []
        with open(self.journal_path, encoding="utf-8") as f:
            for line in f:
                name, offset, size, crc = json.loads(line)
                if skip.get(name):
                    skip[name] -= 1  # superseded by a later line for the same name
                    continue
                raw = name.encode()
                extra = b""
                if offset >= _MAX32:
                    extra = struct.pack("<2HQ", 1, 8, offset)
                    offset = _MAX32
                version = 45 if extra else 20
                record = _CENTRAL.pack(
                    _SIG_CENTRAL, version, 3, version, 0, _UTF8, STORED, *_DOS_1980, crc, size, size,
                    len(raw), len(extra), 0, 0, 0, 0o100644 << 16, offset,
                )  # fmt: skip
                chunk.append(record + raw + extra)
                count += 1
                if len(chunk) >= 4096:
                    block = b"".join(chunk)
                    self._write([block], pos)
                    pos, chunk = pos + len(block), []
        tail = b"".join(chunk)
        cd_size = pos + len(tail) - cd_start
        end = pos + len(tail)
        if count >= _MAX16 or cd_start >= _MAX32 or cd_size >= _MAX32:
            tail += _EOCD64.pack(
                _SIG_EOCD64, _EOCD64.size - 12, 45, 45, 0, 0, count, count, cd_size, cd_start
            )
            tail += _LOCATOR.pack(_SIG_LOCATOR, 0, end, 1)
        tail += _EOCD.pack(
            _SIG_EOCD, 0, 0, min(count, _MAX16), min(count, _MAX16), min(cd_size, _MAX32),
            min(cd_start, _MAX32), 0,
        )  # fmt: skip
        self._write([tail], pos)
        os.ftruncate(self._fd, pos + len(tail))
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.replace(self.partial, self.output)
        self.journal_path.unlink()
        with contextlib.suppress(OSError):  # the renames made durable, where the platform can
            dfd = os.open(self.output.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def close(self) -> None:
        """Stop without finishing: what was synced stays for the next run to resume."""
        if self._fd >= 0:
            self._journal.close()
            os.close(self._fd)
            self._fd = -1
