"""Uploaded zips: opened as the batch opens them, then ``archive.checked_entries`` and
``archive.read_entry`` on every entry, with limits small enough for the fuzzer to reach."""

from __future__ import annotations

import io
import zipfile

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing.archive import ZIP_ERRORS, ArchiveLimits, checked_entries, read_entry
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


def open_zip(data: bytes) -> zipfile.ZipFile:
    """As the batch does, refusing what zipfile cannot read as BAD_ARCHIVE."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise OfflineServiceError(Code.BAD_ARCHIVE, f"not a readable zip: {exc}") from None


def one_input(data: bytes) -> None:
    try:
        with open_zip(data) as zf:
            entries = checked_entries(zf, _LIMITS)
            names = [info.filename for info in entries]
            # What passed is what the checks promise: sorted, unique, plain relative file names.
            assert names == sorted(set(names)), names
            for info in entries:
                assert not info.is_dir() and not info.filename.startswith("/")
                assert ".." not in info.filename.split("/") and "\\" not in info.filename
                assert len(read_entry(zf, info)) <= MAX_FILE_BYTES + 1
    except OfflineServiceError as exc:
        assert exc.code is Code.BAD_ARCHIVE, exc.code
