"""Hostile zip archives: each is refused with BAD_ARCHIVE before any entry is processed."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline_service.cli import main
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind
from offline_service.licensing.archive import ArchiveLimits, checked_entries, read_entry
from offline_service.licensing.batch import run_batch
from tests.factories import Machine, World, wall_now

Requests = list[bytes]


def make_zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


@contextlib.contextmanager
def memory_file(data: bytes) -> Iterator[int]:
    """A descriptor of a file in memory holding ``data``, as the batch reads its input zip."""
    fd = os.memfd_create("test.zip")
    try:
        os.write(fd, data)
        yield fd
    finally:
        os.close(fd)


def refused(data: bytes, limits: ArchiveLimits | None = None) -> str:
    """checked_entries() refuses the archive; returns the message."""
    with memory_file(data) as fd, pytest.raises(OfflineServiceError) as caught:
        checked_entries(fd, limits)
    assert caught.value.code is Code.BAD_ARCHIVE
    return caught.value.message


def names(data: bytes, limits: ArchiveLimits | None = None) -> list[str]:
    with memory_file(data) as fd:
        return [entry.name for entry in checked_entries(fd, limits)]


def read(data: bytes, name: str) -> bytes:
    """read_entry() of one entry of a checked archive."""
    with memory_file(data) as fd:
        (entry,) = [e for e in checked_entries(fd) if e.name == name]
        return read_entry(fd, entry)


def unreadable(data: bytes, name: str) -> str:
    """read_entry() refuses an entry of an archive that passed its checks; returns the message."""
    with pytest.raises(OfflineServiceError) as caught:
        read(data, name)
    assert caught.value.code is Code.BAD_ARCHIVE
    return caught.value.message


def with_encrypted_flag(data: bytes) -> bytes:
    """Set the "encrypted" bit in the local and central headers (zipfile will not write it)."""
    patched = bytearray(data)
    assert patched[:4] == b"PK\x03\x04"
    patched[6] |= 0x1
    central = patched.rfind(b"PK\x01\x02")
    assert central > 0
    patched[central + 8] |= 0x1
    return bytes(patched)


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def bomb() -> bytes:
    return b"\0" * (5 * 1024 * 1024)


# -- checked_entries --------------------------------------------------------------------------


def test_a_normal_zip_passes_and_lists_its_files_in_name_order() -> None:
    data = make_zip([("b.req", b"b"), ("sub/", b""), ("sub/c.req", b"c"), ("a.req", b"a"), ("A.req", b"A")])
    assert names(data) == ["A.req", "a.req", "b.req", "sub/c.req"]


def test_directory_entries_are_skipped() -> None:
    assert names(make_zip([("d/", b""), ("d/e/", b""), ("d/e/f.req", b"f")])) == ["d/e/f.req"]
    assert names(make_zip([("only/", b"")])) == []
    assert names(make_zip([])) == []


def test_too_many_entries() -> None:
    entries = [(f"{n}.req", b"x") for n in range(4)]
    assert "4 entries" in refused(make_zip(entries), ArchiveLimits(max_entries=3))
    assert len(names(make_zip(entries[:3]), ArchiveLimits(max_entries=3))) == 3


def test_total_declared_size_over_the_limit() -> None:
    entries = [("a.req", os.urandom(600)), ("b.req", os.urandom(600))]
    data = make_zip(entries, compression=zipfile.ZIP_STORED)
    assert "expands to more than 1000 bytes" in refused(data, ArchiveLimits(max_total_bytes=1000))
    assert names(data, ArchiveLimits(max_total_bytes=1200)) == ["a.req", "b.req"]


def test_a_zip_bomb_entry() -> None:
    data = make_zip([("a.req", b"fine"), ("bomb.req", bomb())])
    assert len(data) < 100 * 1024
    assert "'bomb.req' is compressed more than 100:1" in refused(data)


def test_an_archive_compressed_too_much_overall() -> None:
    # No entry is over 1 KiB, so only the whole archive's ratio can catch this.
    data = make_zip([(f"{n}.req", b"\0" * 1024) for n in range(1100)])
    assert "archive is compressed more than 50:1" in refused(data, ArchiveLimits(max_ratio=50))


def test_small_entries_may_compress_well() -> None:
    assert names(make_zip([("a.req", b"\0" * 1024)])) == ["a.req"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil.req",
        "/abs.req",
        "a/../../b.req",
        "a/..",
        "C:/x.req",
        "c:x.req",
        "a\\b.req",
        "..\\evil.req",
        "./a.req",
        "a/./b.req",
        "a//b.req",
    ],
)
def test_unsafe_names(name: str) -> None:
    data = make_zip([("ok.req", b"x"), (name, b"x")])
    with open_zip(data) as zf:
        assert name in zf.namelist()  # zipfile keeps the name as written
    assert "unsafe entry name" in refused(data)


def test_a_symlink_entry() -> None:
    data = make_zip([("ok.req", b"x"), (symlink("link.req"), b"/etc/passwd")])
    assert "'link.req' is a symbolic link" in refused(data)


def test_an_encrypted_entry() -> None:
    data = with_encrypted_flag(make_zip([("secret.req", b"x" * 100)]))
    with open_zip(data) as zf:
        assert zf.infolist()[0].flag_bits & 0x1
    assert "'secret.req' is encrypted" in refused(data)


def test_a_name_twice() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.req", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.req", b"second")
    assert "'a.req' appears twice" in refused(buf.getvalue())


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_read_entry_reads_at_most_one_byte_more_than_a_request(compression: int) -> None:
    data = make_zip([("big.req", os.urandom(100 * 1024)), ("small.req", b"hello")], compression)
    assert len(read(data, "big.req")) == MAX_FILE_BYTES + 1
    assert read(data, "small.req") == b"hello"


def test_read_entry_of_a_corrupt_entry() -> None:
    data = bytearray(make_zip([("a.req", b"hello world")], compression=zipfile.ZIP_STORED))
    at = data.find(b"hello world")
    data[at] ^= 0xFF
    assert "bad CRC-32" in unreadable(bytes(data), "a.req")


@pytest.mark.parametrize(
    ("compression", "whole"),
    [
        (zipfile.ZIP_DEFLATED, True),  # zlib.error
        (zipfile.ZIP_BZIP2, True),  # OSError
        (zipfile.ZIP_LZMA, False),  # lzma.LZMAError
    ],
    ids=["deflate", "bzip2", "lzma"],
)
def test_read_entry_of_corrupt_compressed_data(compression: int, whole: bool) -> None:
    # Found by the fuzzer (tests/fuzz/archives.py): zlib.error and LZMAError are not OSError.
    data = bytearray(make_zip([("a.req", b"hello world" * 100)], compression=compression))
    with open_zip(bytes(data)) as zf:
        info = zf.getinfo("a.req")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = range(start, start + info.compress_size) if whole else [start + info.compress_size // 2]
    for at in damaged:
        data[at] ^= 0xFF
    unreadable(bytes(data), "a.req")


def test_an_end_record_that_misplaces_the_central_directory() -> None:
    # Found by the fuzzer: an end record that puts the central directory further than it is made
    # zipfile compute a negative local header offset; it is refused when the archive is listed.
    data = bytearray(make_zip([("a.req", b"hello")]))
    end = data.rfind(b"PK\x05\x06")
    offset = int.from_bytes(data[end + 16 : end + 20], "little")
    data[end + 16 : end + 20] = (offset + 1000).to_bytes(4, "little")
    assert "central directory is not where" in refused(bytes(data))


# -- the batch command refuses hostile archives before processing anything ---------------------


def requests(world: World, n: int = 3) -> Requests:
    lic = world.license(activations=-1)
    return [
        Machine(f"fp-{i}").request(
            Kind.ACTIVATION, world.product.id, issued_at=wall_now(), license_key=lic.key
        )
        for i in range(n)
    ]


def good_entries(reqs: Requests) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    return [(f"r{n}.req", r) for n, r in enumerate(reqs)]


def _duplicate(reqs: Requests) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in good_entries(reqs):
            zf.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("r0.req", reqs[0])
    return buf.getvalue()


def renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` with an entry's name bytes replaced in its local and central headers."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


HOSTILE: dict[str, Callable[[Requests], bytes]] = {
    # Found by the fuzzer: zipfile raises UnicodeDecodeError for a name flagged UTF-8 that is not,
    # and IndexError (from ZipInfo.is_dir) for a name cut to nothing by a NUL.
    "name not UTF-8": lambda reqs: renamed(
        make_zip([("\u00e9.req", reqs[0])]), b"\xc3\xa9.req", b"\xff\xfe.req"
    ),
    "empty name": lambda reqs: renamed(make_zip([("Xa.req", reqs[0])]), b"Xa.req", b"\x00a.req"),
    "name after a NUL": lambda reqs: renamed(make_zip([("ab.req", reqs[0])]), b"ab.req", b"a\x00.req"),
    "bomb": lambda reqs: make_zip([*good_entries(reqs), ("z.req", bomb())]),
    "traversal": lambda reqs: make_zip([*good_entries(reqs), ("../evil.req", reqs[0])]),
    "absolute": lambda reqs: make_zip([*good_entries(reqs), ("/abs.req", reqs[0])]),
    "backslash": lambda reqs: make_zip([*good_entries(reqs), ("a\\b.req", reqs[0])]),
    "drive": lambda reqs: make_zip([*good_entries(reqs), ("C:/x.req", reqs[0])]),
    "symlink": lambda reqs: make_zip([*good_entries(reqs), (symlink("z.req"), b"r0.req")]),
    "encrypted": lambda reqs: with_encrypted_flag(make_zip(good_entries(reqs))),
    "duplicate": _duplicate,
    "not a zip": lambda reqs: b"\n".join(reqs),
    "empty file": lambda reqs: b"",
    "truncated": lambda reqs: (z := make_zip(good_entries(reqs)))[: len(z) // 2],
    "truncated end": lambda reqs: make_zip(good_entries(reqs))[:-10],
}


def batch_audits(world: World) -> int:
    with world.store.read() as tx:
        return sum(1 for e in tx.audit_entries(world.account.id, 100_000) if e.actor == "batch")


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_batch_command_refuses_a_hostile_zip(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    src = tmp_path / "in.zip"
    src.write_bytes(HOSTILE[kind](requests(world)))
    before = world.snapshot()
    capsys.readouterr()

    status = main(
        [
            "batch", str(src), "--out", str(tmp_path / "out.zip"), "--report", str(tmp_path / "r.csv"),
            "--workers", "1", *world.where(),
        ]
    )  # fmt: skip

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert err.startswith("error: BAD_ARCHIVE: ")
    assert world.snapshot() == before
    assert batch_audits(world) == 0
    leftovers = {p.name for p in tmp_path.iterdir()} - {"in.zip", "data", "keys"}
    assert leftovers == set()  # no output, no staging directory, no report


@pytest.mark.parametrize(
    "limits",
    [ArchiveLimits(max_entries=3), ArchiveLimits(max_total_bytes=2000)],
    ids=["entries", "total size"],
)
def test_run_batch_refuses_an_archive_over_its_limits(
    world: World, tmp_path: Path, limits: ArchiveLimits
) -> None:
    src = tmp_path / "in.zip"
    src.write_bytes(make_zip(good_entries(requests(world, 4))))
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as caught:
        run_batch(
            world.settings(),
            account_id=world.account.id,
            input_path=src,
            output=tmp_path / "out",
            report=tmp_path / "r.json",
            workers=1,
            limits=limits,
        )
    assert caught.value.code is Code.BAD_ARCHIVE
    assert world.snapshot() == before
    assert batch_audits(world) == 0
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "r.json").exists()
