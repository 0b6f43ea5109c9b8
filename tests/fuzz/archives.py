"""Uploaded zips: listed as the batch lists them (``archive.checked_entries``, the streaming
central directory parse), then ``archive.read_entry`` (``zipstream.read_lean``) on every entry,
with limits small enough for the fuzzer to reach. The input lives in a memory file (memfd)."""

from __future__ import annotations

import io
import os
import zipfile

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing.archive import ArchiveLimits, checked_entries, read_entry
from tests.fuzz.request_files import seeds as request_seeds

MAX_LEN = 64 * 1024
_LIMITS = ArchiveLimits(max_entries=50, max_total_bytes=256 * 1024, max_ratio=100)


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED, **kw: object) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, content in entries.items():
            if name.endswith("/"):
                zf.mkdir(name)
            else:
                with zf.open(name, "w", **kw) as f:  # type: ignore[arg-type]
                    f.write(content)
        zf.comment = b"fuzz"
    return buffer.getvalue()


def seeds() -> list[bytes]:
    files = [seed[1:] for seed in request_seeds() if seed[0] == 0][:3]
    entries = {"a.req": files[0], "dir/": b"", "dir/b.req": files[1], "c/d/e.req": files[2]}
    return [
        _zip({}),
        _zip(entries),
        _zip(entries, zipfile.ZIP_STORED),
        _zip(entries, zipfile.ZIP_BZIP2),
        _zip(entries, zipfile.ZIP_LZMA),
        _zip({"a.req": files[0]}, force_zip64=True),
        _zip({"big.req": b"x" * (MAX_FILE_BYTES + 10)}, zipfile.ZIP_STORED),
    ]


def one_input(data: bytes) -> None:
    fd = os.memfd_create("fuzz.zip")
    try:
        os.write(fd, data)
        entries = checked_entries(fd, _LIMITS)
        names = [entry.name for entry in entries]
        # What passed is what the checks promise: sorted, unique, plain relative file names, each
        # with its data inside the file and apart from the others'.
        assert names == sorted(set(names)), names
        for entry in entries:
            assert not entry.name.endswith("/") and not entry.name.startswith("/")
            assert ".." not in entry.name.split("/") and "\\" not in entry.name
            assert entry.offset < entry.limit <= len(data)
            try:
                assert len(read_entry(fd, entry)) <= MAX_FILE_BYTES + 1
            except OfflineServiceError as exc:  # one entry refused; the others are still read
                assert exc.code is Code.BAD_ARCHIVE, exc.code
    except OfflineServiceError as exc:
        assert exc.code is Code.BAD_ARCHIVE, exc.code
    finally:
        os.close(fd)
