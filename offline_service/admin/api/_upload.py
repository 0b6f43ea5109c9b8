"""A release upload: a ``multipart/form-data`` body read as it arrives, its file parts written
chunk by chunk into the release's staging directory (``releases.services.Staging``), never held in
memory, and never more than the limit read.

The form: the fields ``product`` and ``version`` (required), ``channel`` and ``notes`` (optional),
each at most once, then one to ``MAX_FILES`` parts named ``file``, each with its file name. The
fields come first, so that a wrong product or version is refused before any file is received.
Anything else (another part name, a field after a file, a field twice, a part without a name, too
many parts), and a body that is not a whole multipart form, are refused with INVALID_ARGUMENT (as
every form the service reads), one over the limit with REQUEST_TOO_LARGE; on any refusal, what was
staged is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id, new_id
from offline_service.licensing import queries
from offline_service.releases import services as releases
from offline_service.releases.models import Release
from offline_service.store import Store

__all__ = ["FIELDS", "FILE_PART", "MAX_FIELD_BYTES", "MAX_PARTS", "Upload", "read_upload"]

FIELDS = frozenset({"product", "version", "channel", "notes"})
REQUIRED = ("product", "version")
FILE_PART = "file"
MAX_FIELD_BYTES = 4 * releases.MAX_NOTES  # notes of MAX_NOTES characters, each up to 4 bytes of UTF-8
MAX_PARTS = len(FIELDS) + releases.MAX_FILES


@dataclass
class Upload:
    """What an upload held: the release it asks for, its files staged (not yet published)."""

    release: Release
    staging: releases.Staging
    files: list[releases.StagedFile]

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the upload for its Idempotency-Key: the fields and each file's name,
        size and SHA-256 (not the release id, which each attempt draws anew)."""
        r = self.release
        return {
            "product": r.product_id,
            "version": r.version,
            "channel": r.channel,
            "notes": r.notes,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }


def _invalid(message: str) -> OfflineServiceError:
    return OfflineServiceError(Code.INVALID_ARGUMENT, message)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(f"{what} must be UTF-8 text") from None


@dataclass
class _Reader:
    """The parser's callbacks. They run inside ``parser.write``, on the event loop: they only check
    and queue; the queued file writes run in a thread (``flush``)."""

    begin: Callable[[dict[str, str]], releases.Staging]  # the fields -> the staging directory
    fields: dict[str, str] = field(default_factory=dict)
    files: list[releases.StagedFile] = field(default_factory=list)
    staging: releases.Staging | None = None
    parts: int = 0
    ended: bool = False
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header_name: bytes = b""
    _header_value: bytes = b""
    _field: str | None = None  # the field being read, or None in a file part
    _data: bytearray = field(default_factory=bytearray)
    _names: set[str] = field(default_factory=set)
    _queue: list[tuple[str, Any]] = field(default_factory=list)
    _writer: releases.StagedWriter | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _invalid(
                f"at most {MAX_PARTS} parts: the fields {', '.join(sorted(FIELDS))} and"
                f" 1-{releases.MAX_FILES} files"
            )
        self._headers, self._field, self._data = {}, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        kind, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if kind != b"form-data" or b"name" not in options:
            raise _invalid("each part needs Content-Disposition: form-data with a name")
        name = _text(options[b"name"], "a part's name")
        if b"filename" in options:
            if name != FILE_PART:
                raise _invalid(f"a file goes in a part named {FILE_PART!r}, not {name[:64]!r}")
            filename = releases.check_file_name(_text(options[b"filename"], "a file's name"))
            if filename in self._names:
                raise _invalid("two files of a release cannot have the same name")
            self._names.add(filename)
            self._queue.append(("open", filename))
            return
        if name not in FIELDS:
            raise _invalid(
                f"unknown part {name[:64]!r}: the fields are {', '.join(sorted(FIELDS))},"
                f" and the files go in parts named {FILE_PART!r}"
            )
        if name in self.fields or self._names:
            raise _invalid(f"{name}: each field once, before the files")
        self._field = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is None:
            self._queue.append(("write", data[start:end]))
            return
        if len(self._data) + end - start > MAX_FIELD_BYTES:
            raise _invalid(f"{self._field} is at most {MAX_FIELD_BYTES} bytes")
        self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._field is None:
            self._queue.append(("finish", None))
        else:
            self.fields[self._field] = _text(bytes(self._data), self._field)

    def on_end(self) -> None:
        self.ended = True

    def flush(self) -> None:
        """Run the queued file writes (blocking: in a thread)."""
        queue, self._queue = self._queue, []
        for action, value in queue:
            if action == "open":
                if self.staging is None:
                    self.staging = self.begin(self.fields)
                if len(self.files) >= releases.MAX_FILES:
                    raise _invalid(f"a release has 1-{releases.MAX_FILES} files")
                self._writer = releases.StagedWriter(self.staging, value)
            elif action == "write":
                assert self._writer is not None
                self._writer.write(value)
            else:
                assert self._writer is not None
                self.files.append(self._writer.finish())
                self._writer = None

    def close(self) -> None:
        """On failure: close the open file, remove what was staged."""
        if self._writer is not None:
            self._writer.close()
        if self.staging is not None:
            self.staging.discard()


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise _invalid("send the release as multipart/form-data (curl -F)")
    return options[b"boundary"]


async def read_upload(
    request: Request, store: Store, account: Account, *, root: Path, limit: int, now: int
) -> Upload:
    """Read the request's upload into a new release's staging directory. The fields are checked
    (the product is the account's, the version and channel valid) when the first file begins."""
    boundary = _boundary(request)
    release_id = new_id("rel")

    def release_of(fields: dict[str, str]) -> Release:
        missing = [name for name in REQUIRED if name not in fields]
        if missing:
            raise _invalid(f"{missing[0]} is required, before the files")
        product_id = check_id(fields["product"], "product", "product")
        return releases.new_release(
            account,
            product_id=product_id,
            version=fields["version"],
            channel=fields.get("channel", releases.DEFAULT_CHANNEL),
            notes=fields.get("notes", ""),
            now=now,
        )

    begun: list[Release] = []  # the release the fields make, checked when the first file begins

    def begin(fields: dict[str, str]) -> releases.Staging:
        release = release_of(fields)
        queries.check_product(store, account, release.product_id)
        begun.append(release)
        return releases.Staging(root, release_id)

    reader = _Reader(begin=begin)
    try:
        parser = python_multipart.MultipartParser(boundary, reader.callbacks())
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:  # the app's BodyLimit says so first; this holds without it too
                raise OfflineServiceError(Code.REQUEST_TOO_LARGE, f"the upload is larger than {limit} bytes")
            parser.write(chunk)
            await run_in_threadpool(reader.flush)
        parser.finalize()
        reader.flush()
        if not reader.ended:
            raise _invalid("the multipart body ends before its last boundary")
        if reader.staging is None:
            release_of(reader.fields)  # says what is wrong with the fields, if anything
            raise _invalid(f"a release has 1-{releases.MAX_FILES} files, in parts named {FILE_PART!r}")
        return Upload(release=begun[0], staging=reader.staging, files=reader.files)
    except FormParserError:
        reader.close()
        raise _invalid("the multipart body is malformed") from None
    except ClientDisconnect:  # the client went away: an ordinary refusal, not a server error
        reader.close()
        raise _invalid("the upload ended before its body did (the client disconnected)") from None
    except BaseException:  # cancelled too: removed at once, not in a thread that may not run
        reader.close()
        raise
