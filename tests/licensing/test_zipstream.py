"""The lean zip reader and the journaled zip writer (offline_service/licensing/zipstream.py)."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.archive import checked_entries, read_entry
from offline_service.licensing.zipstream import ZipWriter
from tests.licensing.test_archive import make_zip, memory_file, names, read, refused, unreadable


def unzip_t(path: Path) -> None:
    """Debian's unzip finds the archive sound (``make test`` installs it: the ``unzip`` target)."""
    unzip = shutil.which("unzip")
    assert unzip is not None, "unzip is missing: run `make unzip`"
    done = subprocess.run([unzip, "-tq", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def central_at(data: bytes, n: int) -> int:
    """Where the ``n``-th central directory record starts."""
    at = -1
    for _ in range(n + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    return at


def patched(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


# -- hostile archives the reader refuses ------------------------------------------------------


def test_two_entries_sharing_their_data_are_refused() -> None:
    data = make_zip([("a.req", b"a" * 100), ("b.req", b"b" * 100)], zipfile.ZIP_STORED)
    # b's central record pointed at a's local header: two names for one piece of data.
    assert "entries overlap" in refused(patched(data, central_at(data, 1) + 42, "<L", 0))


def test_an_entry_running_into_the_central_directory_is_refused() -> None:
    data = make_zip([("a.req", b"a" * 100)], zipfile.ZIP_STORED)
    at = central_at(data, 0)
    grown = patched(patched(data, at + 20, "<L", 5000), at + 24, "<L", 5000)
    assert "entries overlap" in refused(grown)


def test_a_local_header_that_names_another_file() -> None:
    data = make_zip([("a.req", b"hello")], zipfile.ZIP_STORED)
    local = data.replace(b"a.req", b"b.req", 1)  # the local header's name only
    assert names(local) == ["a.req"]
    assert "does not match the central directory" in unreadable(local, "a.req")


@pytest.mark.parametrize(("field", "fmt"), [(14, "<L"), (18, "<L"), (22, "<L"), (8, "<H")])
def test_a_local_header_that_disagrees_on_crc_sizes_or_method(field: int, fmt: str) -> None:
    data = make_zip([("a.req", b"hello" * 20)])
    assert "does not match" in unreadable(patched(data, field, fmt, 7), "a.req")


def test_an_entry_whose_data_does_not_match_its_crc() -> None:
    data = make_zip([("a.req", b"hello" * 20)])
    for at in (14, central_at(data, 0) + 16):  # the CRC in both headers, so that they agree
        data = patched(data, at, "<L", 1234)
    assert "bad CRC-32" in unreadable(data, "a.req")


def test_an_entry_longer_than_it_declares() -> None:
    data = make_zip([("a.req", b"hello" * 20)])
    for at in (22, central_at(data, 0) + 24):  # the uncompressed size in both headers
        data = patched(data, at, "<L", 10)
    assert "not the 10 it declares" in unreadable(data, "a.req")


def test_a_zip_bomb_that_lies_about_its_size_is_read_no_further_than_a_request() -> None:
    data = make_zip([("a.req", b"\0" * 5_000_000)])
    for at in (22, central_at(data, 0) + 24):  # declared 1000 bytes: under the ratio check
        data = patched(data, at, "<L", 1000)
    assert len(read(data, "a.req")) == 16 * 1024 + 1


def test_an_unsupported_compression_method_is_refused_per_entry() -> None:
    data = make_zip([("a.req", b"hello")], zipfile.ZIP_STORED)
    for at in (8, central_at(data, 0) + 10):
        data = patched(data, at, "<H", 9)  # deflate64
    assert "method 9 is not supported" in unreadable(data, "a.req")


def test_a_zip64_entry_is_read() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, zf.open("a.req", "w", force_zip64=True) as f:
        f.write(b"hello")
    assert read(buf.getvalue(), "a.req") == b"hello"


def test_an_end_record_that_calls_for_a_missing_zip64_record() -> None:
    data = make_zip([("a.req", b"hello")])
    end = data.rfind(b"PK\x05\x06")
    assert "ZIP64 end record" in refused(patched(data, end + 10, "<H", 0xFFFF))


def test_sizes_that_call_for_a_missing_zip64_field() -> None:
    data = make_zip([("a.req", b"hello")])
    assert "lacks the ZIP64 field" in refused(patched(data, central_at(data, 0) + 20, "<L", 0xFFFFFFFF))


def test_a_zip64_end_record_pointing_nowhere() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.req", b"hello")
    data = buf.getvalue()
    end = data.rfind(b"PK\x05\x06")
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 3, 1)  # a ZIP64 record at offset 3
    assert "ZIP64 end record" in refused(data[:end] + locator + data[end:])


def test_more_entries_declared_than_the_central_directory_holds() -> None:
    data = make_zip([("a.req", b"hello")])
    end = data.rfind(b"PK\x05\x06")
    assert "central directory" in refused(patched(patched(data, end + 8, "<H", 3), end + 10, "<H", 3))


def test_data_before_the_archive_is_refused() -> None:
    assert "data before the archive" in refused(b"#!/bin/sh\n" + make_zip([("a.req", b"x")]))


# -- the writer -------------------------------------------------------------------------------


def written(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def test_written_entries_read_back_with_zipfile_unzip_and_the_lean_reader(tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    writer = ZipWriter.open(out)
    entries = {f"d/r{n}.response": f"body {n}\n".encode() for n in range(5)} | {"caf\u00e9.response": b"x"}
    for name, body in entries.items():
        writer.add(name, body)
    writer.sync()
    (tmp_path / "report.csv").write_bytes(b"file,code\n")
    writer.add_file("report.csv", tmp_path / "report.csv")
    writer.finish()

    assert written(out) == entries | {"report.csv": b"file,code\n"}
    unzip_t(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "report.csv"]
    with memory_file(out.read_bytes()) as fd:
        assert {e.name: read_entry(fd, e) for e in checked_entries(fd)} == written(out)


def test_more_entries_than_a_zip_without_zip64_holds(tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    writer = ZipWriter.open(out)
    for n in range(70_000):
        writer.add(f"r{n}.response", b"%d" % n)
    writer.finish()
    with zipfile.ZipFile(out) as zf:
        assert len(zf.infolist()) == 70_000
        assert zf.read("r69999.response") == b"69999"
    unzip_t(out)
    assert len(checked_entries(out)) == 70_000


def crashed(tmp_path: Path, count: int) -> tuple[Path, dict[str, bytes]]:
    """A writer stopped (as by kill -9) after ``count`` synced entries, and those entries."""
    out = tmp_path / "out.zip"
    writer = ZipWriter.open(out)
    bodies = {f"r{n}.response": f"response {n}\n".encode() * (n + 1) for n in range(count)}
    for name, body in bodies.items():
        writer.add(name, body)
        writer.sync()
    writer.close()
    return out, bodies


def resumed(out: Path) -> tuple[ZipWriter, dict[str, tuple[int, int]]]:
    writer = ZipWriter.open(out)
    return writer, dict(writer.resumed)


def journal_lines(out: Path) -> list[str]:
    return out.with_name("out.zip.journal").read_text().splitlines(keepends=True)


def test_a_resumed_writer_keeps_what_was_synced_and_goes_on(tmp_path: Path) -> None:
    out, bodies = crashed(tmp_path, 4)
    writer, kept = resumed(out)
    assert list(kept) == list(bodies)
    writer.add("r9.response", b"later")
    writer.finish()
    assert written(out) == bodies | {"r9.response": b"later"}
    unzip_t(out)


@pytest.mark.parametrize(
    "damage",
    ["torn journal line", "partial cut mid-entry", "data changed", "journal ahead of the file"],
)
def test_a_resumed_writer_drops_what_is_not_whole_and_everything_after(tmp_path: Path, damage: str) -> None:
    out, bodies = crashed(tmp_path, 4)
    partial, journal = out.with_name("out.zip.partial"), out.with_name("out.zip.journal")
    lines = journal_lines(out)
    offset, size = json.loads(lines[2])[1:3]
    if damage == "torn journal line":
        journal.write_text("".join(lines[:2]) + lines[2][:10])
    elif damage == "partial cut mid-entry":
        with open(partial, "r+b") as f:
            f.truncate(offset + 40)
    elif damage == "data changed":
        data = bytearray(partial.read_bytes())
        data[offset + 30 + len("r2.response") + size // 2] ^= 0xFF
        partial.write_bytes(bytes(data))
    else:
        journal.write_text("".join(lines) + json.dumps(["r7.response", offset * 10, 5, 0]) + "\n")
        with open(partial, "r+b") as f:
            f.truncate(offset)

    writer, kept = resumed(out)

    assert list(kept) == ["r0.response", "r1.response"]
    assert partial.stat().st_size == offset  # cut after the last whole entry
    writer.add("r2.response", b"again")
    writer.finish()
    assert written(out) == {
        "r0.response": bodies["r0.response"],
        "r1.response": bodies["r1.response"],
        "r2.response": b"again",
    }
    unzip_t(out)


def test_a_writer_killed_while_writing_its_central_directory_resumes(tmp_path: Path) -> None:
    out, bodies = crashed(tmp_path, 3)
    partial = out.with_name("out.zip.partial")
    before = partial.stat().st_size
    with open(partial, "ab") as f:
        f.write(b"PK\x01\x02 half a central directory")
    writer, kept = resumed(out)
    assert list(kept) == list(bodies) and partial.stat().st_size == before
    writer.finish()
    assert written(out) == bodies


def test_an_entry_written_again_replaces_the_kept_one(tmp_path: Path) -> None:
    out, _ = crashed(tmp_path, 3)
    writer, _ = resumed(out)
    writer.add("r1.response", b"new")
    writer.sync()
    writer.close()
    writer, kept = resumed(out)  # twice: the journal now holds r1 twice, the later one counts
    assert kept["r1.response"][0] == 3
    writer.add("r1.response", b"newer")
    writer.finish()
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["r0.response", "r2.response", "r1.response"]
        assert zf.read("r1.response") == b"newer"
    unzip_t(out)


def test_the_staging_folder_of_an_earlier_version_is_not_mistaken_for_a_partial_file(tmp_path: Path) -> None:
    (tmp_path / "out.zip.partial").mkdir()
    with pytest.raises(OfflineServiceError) as caught:
        ZipWriter.open(tmp_path / "out.zip")
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert "earlier version" in caught.value.message
