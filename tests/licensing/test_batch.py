"""Batch runs: directories and zips in and out, reports, limits across workers, re-runs and resumption."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from offline_service.cli import main
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing import batch
from offline_service.licensing.batch import DETAIL_FIELDS, REPORT_FIELDS, BatchSummary, run_batch
from offline_service.licensing.batch_names import check_batch_names, response_name
from offline_service.licensing.models import License
from offline_service.settings import Settings
from tests.factories import Machine, World, make_world, wall_now

JOURNAL = ".batch-journal.jsonl"


def settings_of(world: World) -> Settings:
    return world.settings()


def run(world: World, input_path: Path, output: Path, report: Path, **kw: Any) -> BatchSummary:
    kw.setdefault("workers", 1)
    return run_batch(
        settings_of(world),
        account_id=world.account.id,
        input_path=input_path,
        output=output,
        report=report,
        **kw,
    )


def activation(world: World, lic: License, name: str, **kw: Any) -> bytes:
    kw.setdefault("issued_at", wall_now())
    return Machine(f"fp-{name}").request(Kind.ACTIVATION, world.product.id, license_key=lic.key, **kw)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".json":
        rows: list[dict[str, str]] = json.loads(path.read_text())
        return rows
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def outcomes(rows: list[dict[str, str]]) -> dict[str, tuple[str, str, str, str]]:
    """file -> (kind, code, activation_id, response_file): what a re-run must reproduce."""
    return {r["file"]: (r["kind"], r["code"], r["activation_id"], r["response_file"]) for r in rows}


def batch_audits(world: World) -> int:
    with world.store.read() as tx:
        return sum(1 for e in tx.audit_entries(world.account.id, 1_000_000) if e.actor == "batch")


def verified(world: World, data: bytes) -> Any:
    return parse_response(data, world.keyring.public_keys())


# -- inputs and outputs -----------------------------------------------------------------------


def test_response_name() -> None:
    assert response_name("a.req") == "a.response"
    assert response_name("sub/dir/b.txt") == "sub/dir/b.response"
    assert response_name("noext") == "noext.response"
    assert response_name("a.b/c") == "a.b/c.response"


def test_directory_in_directory_out_mirrors_subdirectories(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    write(src / "sub" / "b.req", activation(world, lic, "b"))
    write(src / "sub" / "deeper" / "c.jws", activation(world, lic, "c"))
    write(src / "sub" / "bad.txt", b"garbage")
    write(src / ".hidden.req", activation(world, lic, "hidden"))  # hidden files and folders are skipped
    write(src / ".git" / "x.req", activation(world, lic, "git"))
    out, report = tmp_path / "out", tmp_path / "report.json"

    summary = run(world, src, out, report)

    assert (summary.total, summary.accepted, summary.rejected, summary.skipped) == (4, 3, 1, 0)
    rows = read_report(report)
    assert [r["file"] for r in rows] == ["a.req", "sub/b.req", "sub/bad.txt", "sub/deeper/c.jws"]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.response", "sub/b.response", "sub/deeper/c.response"]  # no journal left
    for row in rows:
        if row["code"] == "OK":
            assert row["response_file"] == response_name(row["file"])
            response = verified(world, (out / row["response_file"]).read_bytes())
            assert response.activation_id == row["activation_id"]
            assert response.kind is Kind.ACTIVATION
        else:
            assert row["response_file"] == ""
    assert world.reload_license(lic.key).used_activations == 3


def test_zip_in_zip_out(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in.zip"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("sub/", b"")  # a directory entry: skipped
        zf.writestr("sub/b.req", activation(world, lic, "b"))
        zf.writestr("a.req", activation(world, lic, "a"))
        zf.writestr("bad.req", b"garbage")
        zf.writestr(".dotted.req", activation(world, lic, "dotted"))
    out, report = tmp_path / "out.zip", tmp_path / "report.csv"

    summary = run(world, src, out, report)

    assert (summary.total, summary.accepted, summary.rejected) == (4, 3, 1)
    rows = read_report(report)
    assert [r["file"] for r in rows] == [".dotted.req", "a.req", "bad.req", "sub/b.req"]
    accepted = {r["response_file"]: r for r in rows if r["code"] == "OK"}
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(accepted)  # one entry per accepted request, nothing else
        for name, row in accepted.items():
            assert verified(world, zf.read(name)).activation_id == row["activation_id"]
    assert not (tmp_path / "out.zip.partial").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("workers", [1, 2])
def test_a_zip_batch_makes_no_file_per_request_on_disk(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Zip in, zip out: while the batch runs (seen at every chunk's progress), the output's folder
    holds only the zip being written and its journals, never a response file or a staging folder."""
    monkeypatch.setattr(batch, "CHUNK", 4)
    lic = world.license(activations=-1)
    src = tmp_path / "in.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i in range(20):
            zf.writestr(f"m{i:02d}.req", activation(world, lic, f"m{i}"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    seen: list[list[str]] = []

    def progress(done: int, total: int) -> None:
        seen.append(sorted(p.name for p in out_dir.iterdir()))

    summary = run(
        world, src, out_dir / "out.zip", tmp_path / "report.csv", workers=workers, progress=progress
    )

    assert summary.accepted == 20
    assert len(seen) >= 2  # the check ran mid-batch, more than once
    for names in seen:
        assert all(n.startswith("out.zip.") and not (out_dir / n).is_dir() for n in names), names
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.zip"]


def test_directory_in_zip_out_and_zip_in_directory_out(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10)
    write(tmp_path / "in" / "x" / "a.req", activation(world, lic, "a"))
    run(world, tmp_path / "in", tmp_path / "out.zip", tmp_path / "r1.csv")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert zf.namelist() == ["x/a.response"]

    with zipfile.ZipFile(tmp_path / "in.zip", "w") as zf:
        zf.writestr("y/b.req", activation(world, lic, "b"))
    run(world, tmp_path / "in.zip", tmp_path / "out", tmp_path / "r2.csv")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.response")] == [
        "y/b.response"
    ]


def test_reports_in_csv_and_json(world: World, tmp_path: Path) -> None:
    lic = world.license()
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    write(src / "b.req", b"garbage")

    run(world, src, tmp_path / "out", tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        assert next(csv.reader(f)) == list(REPORT_FIELDS)
    as_csv = read_report(tmp_path / "report.csv")
    assert len(as_csv) == 2
    ok, bad = as_csv
    assert (ok["file"], ok["kind"], ok["code"], ok["response_file"]) == (
        "a.req",
        "activation",
        "OK",
        "a.response",
    )
    assert ok["activation_id"].startswith("act_")
    assert (bad["file"], bad["kind"], bad["code"], bad["activation_id"]) == (
        "b.req",
        "",
        "MALFORMED_REQUEST",
        "",
    )
    assert bad["message"]
    assert REPORT_FIELDS[-1] == "reissued" and (ok["reissued"], bad["reissued"]) == ("", "")

    run(world, src, tmp_path / "out", tmp_path / "report.json")
    as_json = read_report(tmp_path / "report.json")
    assert all(list(row) == list(REPORT_FIELDS) for row in as_json)
    # The second run answers a.req again from the database: reissued (a boolean in JSON), no seat used.
    assert [row["reissued"] for row in as_json] == [True, False]
    assert outcomes(as_json) == outcomes(as_csv)
    assert world.reload_license(lic.key).used_activations == 1
    assert not list(tmp_path.glob(".*"))  # no temp files beside the reports


@pytest.mark.parametrize("workers", [1, 2])
def test_on_row_gets_every_row_in_input_order_with_its_details(
    world: World, tmp_path: Path, workers: int
) -> None:
    lic = world.license(activations=5)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a", hostname="host-a"))
    write(src / "b.req", b"garbage")
    run(world, src, tmp_path / "first", tmp_path / "first.csv", workers=workers)
    write(src / "c.req", activation(world, lic, "c", hostname="host-c"))
    seen: list[dict[str, str]] = []

    run(world, src, tmp_path / "out", tmp_path / "report.csv", workers=workers, on_row=seen.append)

    assert [r["file"] for r in seen] == ["a.req", "b.req", "c.req"]
    assert {r["file"]: tuple(r[k] for k in DETAIL_FIELDS) for r in seen} == {
        "a.req": ("1", lic.id, "host-a", "fp-a"),  # granted by the first run: the same answer again
        "b.req": ("", "", "", ""),
        "c.req": ("", lic.id, "host-c", "fp-c"),
    }
    report = read_report(tmp_path / "report.csv")
    assert outcomes(seen) == outcomes(report)
    assert [r["reissued"] for r in report] == ["yes", "", ""]  # a.req was answered by the first run
    with open(tmp_path / "report.csv", newline="") as f:
        assert next(csv.reader(f)) == list(REPORT_FIELDS)  # the other details stay out of the report
    assert world.reload_license(lic.key).used_activations == 2


@pytest.mark.parametrize("report", ["report.txt", "report", "report.CSV.bak"])
def test_a_report_of_another_kind_is_refused_before_anything(
    world: World, tmp_path: Path, report: str
) -> None:
    lic = world.license()
    write(tmp_path / "in" / "a.req", activation(world, lic, "a"))
    before, audits = world.snapshot(), batch_audits(world)
    with pytest.raises(OfflineServiceError) as caught:
        run(world, tmp_path / "in", tmp_path / "out", tmp_path / report)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert world.snapshot() == before
    assert batch_audits(world) == audits
    assert not (tmp_path / "out").exists()


def test_an_input_that_is_neither_directory_nor_zip(world: World, tmp_path: Path) -> None:
    for path in (tmp_path / "missing", write(tmp_path / "file.req", b"x")):
        with pytest.raises(OfflineServiceError) as caught:
            run(world, path, tmp_path / "out", tmp_path / "r.csv")
        assert caught.value.code is Code.INVALID_ARGUMENT


def test_two_inputs_with_the_same_response_name_are_refused(world: World, tmp_path: Path) -> None:
    lic = world.license()
    write(tmp_path / "in" / "a.req", activation(world, lic, "a"))
    write(tmp_path / "in" / "a.jws", activation(world, lic, "b"))
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as caught:
        run(world, tmp_path / "in", tmp_path / "out", tmp_path / "r.csv")
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert "a.response" in caught.value.message
    assert world.snapshot() == before


def test_mixed_files_get_the_right_codes(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10)
    earlier = Machine("fp-earlier")
    granted = world.process(
        earlier.request(Kind.ACTIVATION, world.product.id, issued_at=wall_now(), license_key=lic.key),
        now=wall_now(),
    )
    assert granted.ok
    src = tmp_path / "in"
    good = activation(world, lic, "good")
    files = {
        "good.req": (good, "OK", "activation"),
        "trial.req": (
            Machine("fp-t").request(Kind.TRIAL, world.product.id, issued_at=wall_now()),
            "OK",
            "trial",
        ),
        "off.req": (
            earlier.request(
                Kind.DEACTIVATION, world.product.id, issued_at=wall_now(), activation_id=granted.activation_id
            ),
            "OK",
            "deactivation",
        ),
        "garbage.req": (b"not a request", "MALFORMED_REQUEST", ""),
        "empty.req": (b"", "MALFORMED_REQUEST", ""),
        "huge.req": (good + b" " * (MAX_FILE_BYTES + 1 - len(good)), "REQUEST_TOO_LARGE", ""),
        "old.req": (
            activation(world, lic, "old", issued_at=wall_now() - 31 * 86400),
            "REQUEST_EXPIRED",
            "activation",
        ),
        "future.req": (
            activation(world, lic, "fut", issued_at=wall_now() + 3600),
            "REQUEST_FROM_FUTURE",
            "activation",
        ),
        "wrongkey.req": (
            Machine("fp-w").request(
                Kind.ACTIVATION,
                world.product.id,
                issued_at=wall_now(),
                license_key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE",
            ),
            "LICENSE_NOT_FOUND",
            "activation",
        ),
    }
    for name, (data, _, _) in files.items():
        write(src / name, data)
    (src / "link.req").symlink_to(src / "good.req")  # never followed

    summary = run(world, src, tmp_path / "out", tmp_path / "report.csv")

    rows = {r["file"]: r for r in read_report(tmp_path / "report.csv")}
    assert set(rows) == {*files, "link.req"}
    for name, (_, code, kind) in files.items():
        assert (rows[name]["code"], rows[name]["kind"]) == (code, kind), rows[name]
        assert bool(rows[name]["response_file"]) == (code == "OK")
    assert rows["link.req"]["code"] == "MALFORMED_REQUEST"
    assert rows["link.req"]["message"].startswith("cannot read")
    assert (summary.accepted, summary.rejected) == (3, 7)
    after = world.reload_license(lic.key)
    assert (after.used_activations, after.used_deactivations) == (1, 1)


# -- names that cannot be written apart --------------------------------------------------------

LONG = "x" * 250  # + ".req" fits in 255 bytes; + ".response" does not
CLASHING_NAMES = {
    "a response is also a folder": (["a.req", "a.response/b.req"], "a.response"),
    "an entry is also a folder": (["a", "a/b.req"], "a/b.req"),
    "entries differ only in case": (["A.req", "a.req"], "A.req"),
    "responses differ only in case": (["X.req", "x.jws"], "x.response"),
    "the same name in two Unicode forms": (["\u00e9.req", "e\u0301.req"], "\u00e9.req"),
    "a file and a folder differ only in case": (["sub/a.req", "SUB"], "SUB"),
    "a response name over 255 bytes": ([LONG + ".req"], LONG),
    "a path over 1024 bytes": (["/".join(["d" * 200] * 6) + "/a.req"], "1024"),
}


@pytest.mark.parametrize("case", CLASHING_NAMES, ids=list(CLASHING_NAMES))
def test_a_zip_whose_names_cannot_be_written_apart_is_refused_before_anything(
    world: World, tmp_path: Path, case: str
) -> None:
    names, named = CLASHING_NAMES[case]
    lic = world.license(activations=10)
    src = tmp_path / "in.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for n, name in enumerate(names):
            zf.writestr(name, activation(world, lic, f"m{n}"))
    before, audits = world.snapshot(), batch_audits(world)
    for out in (tmp_path / "out", tmp_path / "out.zip"):
        with pytest.raises(OfflineServiceError) as caught:
            run(world, src, out, tmp_path / "r.csv")
        assert caught.value.code is Code.BAD_ARCHIVE
        assert named in caught.value.message
        assert not out.exists() and not (tmp_path / "r.csv").exists()
    assert world.snapshot() == before
    assert batch_audits(world) == audits


@pytest.mark.parametrize(
    "names",
    [["A.req", "a.req"], ["X.req", "x.jws"], [LONG + ".req"]],
    ids=["case", "response case", "long response name"],
)
def test_a_directory_whose_names_cannot_be_written_apart_is_refused_before_anything(
    world: World, tmp_path: Path, names: list[str]
) -> None:
    lic = world.license(activations=10)
    for n, name in enumerate(names):
        write(tmp_path / "in" / name, activation(world, lic, f"m{n}"))
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as caught:
        run(world, tmp_path / "in", tmp_path / "out", tmp_path / "r.csv")
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert names[-1][:40] in caught.value.message
    assert world.snapshot() == before


def test_the_batch_command_refuses_a_zip_whose_responses_clash(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lic = world.license(activations=10)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as zf:
        zf.writestr("a.req", activation(world, lic, "a"))
        zf.writestr("a.response/b.req", activation(world, lic, "b"))
    before = world.snapshot()
    status = cli_batch(
        world, capsys, tmp_path / "in.zip", "--out", tmp_path / "out", "--report", tmp_path / "r.csv"
    )
    assert status.code == 1
    assert status.err.startswith("error: BAD_ARCHIVE: ") and "a.response/b.req" in status.err
    assert world.snapshot() == before


def test_check_batch_names_takes_names_that_are_apart() -> None:
    check_batch_names(["a.req", "b/a.req", "B.req", "c.response/d.req", "x" * 246 + ".req"])
    check_batch_names(["/".join(["d" * 200] * 5)[:1000] + ".req"])


# -- a response that cannot be written --------------------------------------------------------


# A zip output's responses go to one file written by the coordinator: failing to write it fails
# the run, which resumes when run again (tests/licensing/test_zip_batch.py).
@pytest.mark.parametrize("output", ["out"])
def test_a_response_that_cannot_be_written_is_reported_and_reissued_by_a_rerun(
    world: World, tmp_path: Path, output: str
) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    for name in ("a", "b", "c"):
        write(src / f"{name}.req", activation(world, lic, name))
    staging = tmp_path / output
    (staging / "b.response").mkdir(parents=True)  # where b's response must go: it cannot be written

    summary = run(world, src, tmp_path / output, tmp_path / "first.json")

    assert (summary.total, summary.accepted, summary.rejected) == (3, 2, 1)
    rows = {r["file"]: r for r in read_report(tmp_path / "first.json")}
    failed = rows["b.req"]
    assert failed["code"] == "STORAGE_ERROR" and failed["response_file"] == ""
    assert "b.response" in failed["message"] and "run the batch again" in failed["message"]
    assert failed["activation_id"]  # recorded: the seat is used, and a re-run reissues it
    assert world.reload_license(lic.key).used_activations == 3

    (staging / "b.response").rmdir()
    summary = run(world, src, tmp_path / output, tmp_path / "second.json")

    assert (summary.total, summary.accepted, summary.rejected) == (3, 3, 0)
    again = {r["file"]: r for r in read_report(tmp_path / "second.json")}
    assert again["b.req"]["activation_id"] == failed["activation_id"]
    assert world.reload_license(lic.key).used_activations == 3  # reissued, not counted again
    if output.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / output) as zf:
            body = zf.read("b.response")
    else:
        body = (tmp_path / output / "b.response").read_bytes()
    assert verified(world, body).activation_id == failed["activation_id"]


# -- what a directory holds besides request files --------------------------------------------


def run_bounded(world: World, *args: Path, seconds: float = 60, **kw: Any) -> BatchSummary:
    """``run`` on a thread that must finish within ``seconds``: a batch that hangs fails the test."""
    result: list[BatchSummary | BaseException] = []

    def target() -> None:
        try:
            result.append(run(world, *args, **kw))
        except BaseException as exc:  # handed to the test
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the batch did not finish within {seconds} s")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_only_regular_files_of_a_directory_are_read(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    os.mkfifo(src / "fifo.req")  # opened for reading, it would wait for a writer forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(src / "sock.req"))
    (src / "link.req").symlink_to(src / "a.req")
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere" / "x.req", activation(world, lic, "x"))
    (src / "linked").symlink_to(tmp_path / "elsewhere")  # a linked folder is not followed either
    try:
        summary = run_bounded(world, src, tmp_path / "out", tmp_path / "r.csv")
    finally:
        server.close()

    assert (summary.total, summary.accepted, summary.rejected) == (5, 1, 4)
    rows = {r["file"]: r for r in read_report(tmp_path / "r.csv")}
    expected = {
        "fifo.req": "a FIFO",
        "sock.req": "a socket",
        "link.req": "a symbolic link",
        "linked": "a symbolic link",
    }
    for name, kind in expected.items():
        assert rows[name]["code"] == "MALFORMED_REQUEST", rows[name]
        assert rows[name]["message"] == f"cannot read: {kind}, not a regular file"
    assert rows["a.req"]["code"] == "OK"
    assert world.reload_license(lic.key).used_activations == 1


def test_a_file_swapped_for_a_fifo_after_listing_is_not_waited_for(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    write(src / "b.req", activation(world, lic, "b"))
    listed = batch._list_inputs

    def list_then_swap(*args: Any) -> list[str]:
        names = listed(*args)
        (src / "b.req").unlink()
        os.mkfifo(src / "b.req")
        return names

    monkeypatch.setattr(batch, "_list_inputs", list_then_swap)
    summary = run_bounded(world, src, tmp_path / "out", tmp_path / "r.csv")
    assert (summary.accepted, summary.rejected) == (1, 1)
    rows = {r["file"]: r for r in read_report(tmp_path / "r.csv")}
    assert rows["b.req"]["message"] == "cannot read: a FIFO, not a regular file"


@pytest.mark.parametrize("report", ["r.csv", "r.json"])
@pytest.mark.parametrize("output", ["out", "out.zip"])
def test_a_name_that_is_not_utf8_is_reported_escaped_and_resumes(
    world: World, tmp_path: Path, report: str, output: str
) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    write(src / "sub" / "b.req", activation(world, lic, "b"))
    for raw in (b"\xff.req", b"sub/caf\xe9.req"):
        fd = os.open(os.fsencode(src) + b"/" + raw, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, activation(world, lic, raw.hex()))
        os.close(fd)

    summary = run_bounded(world, src, tmp_path / output, tmp_path / report)

    assert (summary.total, summary.accepted, summary.rejected) == (4, 2, 2)
    rows = read_report(tmp_path / report)
    assert [r["file"] for r in rows] == ["a.req", "sub/b.req", "sub/caf\\xe9.req", "\\xff.req"]
    for row in rows[2:]:
        assert row["code"] == "MALFORMED_REQUEST" and row["response_file"] == ""
        assert "not UTF-8" in row["message"]
    assert world.reload_license(lic.key).used_activations == 2

    # A run killed after its first chunk: the journal holds these rows, the next run resumes.
    if output.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / output) as zf:
            zf.extractall(tmp_path / "extracted")
        journal = journal_rows(src, tmp_path / "extracted", rows[:2]) + rows[2:]
        unfinished(tmp_path / output)
        journal_path = tmp_path / (output + JOURNAL)
    else:
        journal = journal_rows(src, tmp_path / output, rows[:2]) + rows[2:]
        journal_path = tmp_path / output / JOURNAL
    journal_path.write_text("".join(json.dumps(e) + "\n" for e in journal))
    audits = batch_audits(world)

    summary = run_bounded(world, src, tmp_path / output, tmp_path / report)

    assert (summary.total, summary.accepted, summary.rejected, summary.skipped) == (4, 2, 2, 2)
    assert outcomes(read_report(tmp_path / report)) == outcomes(rows)
    assert batch_audits(world) == audits
    assert world.reload_license(lic.key).used_activations == 2


def test_the_batch_command_reports_a_name_that_is_not_utf8(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lic = world.license(activations=10)
    src = tmp_path / "in"
    write(src / "a.req", activation(world, lic, "a"))
    fd = os.open(os.fsencode(src) + b"/\xff.req", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    status = cli_batch(
        world, capsys, src, "--out", tmp_path / "out", "--report", tmp_path / "r.csv", "--json"
    )
    assert status.code == 3
    assert json.loads(status.out)["rejected"] == 1
    assert [r["file"] for r in read_report(tmp_path / "r.csv")] == ["a.req", "\\xff.req"]


# -- limits, re-runs and workers --------------------------------------------------------------


def test_the_activation_limit_holds_across_workers_and_reruns(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "CHUNK", 5)  # eight chunks, so both workers get work
    lic = world.license(activations=25)
    src = tmp_path / "in"
    for n in range(40):
        write(src / f"r{n:02}.req", activation(world, lic, f"m{n}"))

    first = run(world, src, tmp_path / "out", tmp_path / "r1.csv", workers=2)
    rows = read_report(tmp_path / "r1.csv")
    codes = [r["code"] for r in rows]
    assert (codes.count("OK"), codes.count("ACTIVATION_LIMIT")) == (25, 15)
    assert (first.accepted, first.rejected) == (25, 15)
    assert world.reload_license(lic.key).used_activations == 25
    assert len(list((tmp_path / "out").glob("*.response"))) == 25

    again = run(world, src, tmp_path / "out", tmp_path / "r2.csv", workers=2)
    assert outcomes(read_report(tmp_path / "r2.csv")) == outcomes(rows)
    assert (again.accepted, again.rejected) == (25, 15)
    assert world.reload_license(lic.key).used_activations == 25
    with world.store.read() as tx:
        assert len(tx.activations(lic.id)) == 25


def test_rerunning_a_batch_counts_nothing_twice(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=10, deactivations=5)
    src = tmp_path / "in"
    for name in ("p", "q"):
        machine = Machine(f"fp-{name}")
        outcome = world.process(
            machine.request(Kind.ACTIVATION, world.product.id, issued_at=wall_now(), license_key=lic.key),
            now=wall_now(),
        )
        write(
            src / f"off-{name}.req",
            machine.request(
                Kind.DEACTIVATION, world.product.id, issued_at=wall_now(), activation_id=outcome.activation_id
            ),
        )
    for name in ("a", "b", "c"):
        write(src / f"on-{name}.req", activation(world, lic, name))
    write(src / "zz-garbage.req", b"garbage")

    run(world, src, tmp_path / "out", tmp_path / "r1.json")
    first = outcomes(read_report(tmp_path / "r1.json"))
    after_first = world.reload_license(lic.key)
    assert (after_first.used_activations, after_first.used_deactivations) == (3, 2)
    snapshot = {k: v for k, v in world.snapshot().items() if k != "request_nonces"}

    for n in range(2):
        summary = run(world, src, tmp_path / "out", tmp_path / f"again{n}.json")
        assert outcomes(read_report(tmp_path / f"again{n}.json")) == first
        assert (summary.accepted, summary.rejected) == (5, 1)
        again = world.reload_license(lic.key)
        assert (again.used_activations, again.used_deactivations) == (3, 2)
        assert {k: v for k, v in world.snapshot().items() if k != "request_nonces"} == snapshot


def make_mixed_batch(world: World, src: Path) -> None:
    lic = world.license(activations=-1)  # which files win a limit depends on how chunks interleave
    for n in range(9):
        write(src / f"d{n % 3}" / f"act{n}.req", activation(world, lic, f"m{n}"))
    write(src / "trial.req", Machine("fp-t").request(Kind.TRIAL, world.product.id, issued_at=wall_now()))
    write(src / "garbage.req", b"garbage")
    write(src / "huge.req", b"x" * (MAX_FILE_BYTES + 1))


def test_one_worker_and_two_workers_give_the_same_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(batch, "CHUNK", 4)
    results = []
    for workers in (1, 2):
        world = make_world(tmp_path / f"w{workers}", backend=backend)
        try:
            make_mixed_batch(world, world.root / "in")
            summary = run(world, world.root / "in", world.root / "out", world.root / "r.csv", workers=workers)
            rows = read_report(world.root / "r.csv")
            results.append(
                (
                    (summary.total, summary.accepted, summary.rejected),
                    [(r["file"], r["kind"], r["code"], r["response_file"]) for r in rows],
                )
            )
        finally:
            world.store.close()
    assert results[0] == results[1]
    counts, rows = results[0]
    assert counts == (12, 10, 2)
    assert [r[2] for r in rows].count("OK") == 10


def test_progress_is_reported_per_chunk(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "CHUNK", 3)
    lic = world.license(activations=-1)
    for n in range(7):
        write(tmp_path / "in" / f"{n}.req", activation(world, lic, f"m{n}"))
    calls: list[tuple[int, int]] = []
    run(
        world,
        tmp_path / "in",
        tmp_path / "out",
        tmp_path / "r.csv",
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]

    calls.clear()
    run(
        world,
        tmp_path / "in",
        tmp_path / "out",
        tmp_path / "r.csv",
        workers=2,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]


def test_an_empty_input_gives_an_empty_report(world: World, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    summary = run(world, tmp_path / "in", tmp_path / "out", tmp_path / "r.json")
    assert (summary.total, summary.accepted, summary.rejected) == (0, 0, 0)
    assert read_report(tmp_path / "r.json") == []


def test_batches_run_at_once_in_one_process_keep_to_their_own_data(tmp_path: Path, backend: str) -> None:
    """Two in-process runs on threads (as two web uploads are), each over its own data directory:
    every run decides its files with its own store, account and licenses, and closes only its own."""
    worlds = [make_world(tmp_path / f"w{n}", backend=backend) for n in range(2)]
    try:
        licenses = [w.license(activations=-1) for w in worlds]
        for w, lic in zip(worlds, licenses, strict=True):
            for n in range(40):
                write(w.root / "in" / f"{n}.req", activation(w, lic, f"{w.root.name}-{n}"))
        barrier = threading.Barrier(len(worlds))
        failures: list[BaseException] = []
        reports: dict[int, list[list[dict[str, str]]]] = {0: [], 1: []}

        def upload(n: int) -> None:
            w = worlds[n]
            try:
                for round_ in range(3):
                    barrier.wait(timeout=60)
                    report = w.root / f"r{round_}.csv"
                    run(w, w.root / "in", w.root / f"out{round_}.zip", report)
                    reports[n].append(read_report(report))
            except BaseException as exc:  # handed to the test
                failures.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=upload, args=(n,), daemon=True) for n in range(len(worlds))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads) and not failures, failures
        for w, lic, rounds in zip(worlds, licenses, reports.values(), strict=True):
            with w.store.read() as tx:
                mine = {a.id for a in tx.activations(lic.id)}
            assert len(mine) == 40 and w.reload_license(lic.key).used_activations == 40
            for rows in rounds:
                assert [r["code"] for r in rows] == ["OK"] * 40
                assert {r["activation_id"] for r in rows} == mine  # reissued, and only its own
    finally:
        for w in worlds:
            w.store.close()
    assert batch._pool_run is None  # the in-process path holds nothing in the module


# -- resuming after a crash -------------------------------------------------------------------


def journal_rows(src: Path, out: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """What the journal of a run that wrote these report rows held: a digest of each input and the
    size of each response file."""
    result = []
    for row in rows:
        entry = dict(row)
        entry["digest"] = hashlib.sha256((src / row["file"]).read_bytes()).hexdigest()
        if row["response_file"]:
            entry["size"] = str((out / row["response_file"]).stat().st_size)
        result.append(entry)
    return result


def test_a_resumed_batch_reuses_what_was_done_and_redoes_the_rest(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=-1)
    src, out = tmp_path / "in", tmp_path / "out"
    for n in range(10):
        write(src / f"r{n}.req", activation(world, lic, f"m{n}"))
    run(world, src, out, tmp_path / "first.json")
    first = read_report(tmp_path / "first.json")
    assert not (out / JOURNAL).exists()  # a finished batch leaves no journal

    # A crash after the first five files: their journal rows were written, the rest were not.
    done = journal_rows(src, out, first[:5])
    for entry in done:
        entry["message"] = "from the journal"  # marks the rows that are reused, not redone
    (out / "r1.response").unlink()  # lost: redone
    with open(out / "r2.response", "r+b") as f:  # torn: redone
        f.truncate(10)
    write(src / "r3.req", activation(world, lic, "changed"))  # changed since: redone
    (out / JOURNAL).write_text("".join(json.dumps(e) + "\n" for e in done))
    audits = batch_audits(world)

    summary = run(world, src, out, tmp_path / "second.json")

    assert (summary.total, summary.accepted, summary.skipped) == (10, 10, 2)  # r0 and r4
    assert batch_audits(world) == audits + 8
    second = {r["file"]: r for r in read_report(tmp_path / "second.json")}
    assert [f for f, r in second.items() if r["message"] == "from the journal"] == ["r0.req", "r4.req"]
    for name in ("r1", "r2", "r3"):
        response = verified(world, (out / f"{name}.response").read_bytes())
        assert response.activation_id == second[f"{name}.req"]["activation_id"]
    assert second["r3.req"]["activation_id"] != first[3]["activation_id"]
    assert world.reload_license(lic.key).used_activations == 11  # ten machines and the changed r3
    assert not (out / JOURNAL).exists()


def test_a_journal_left_by_a_crashed_run_is_resumed_by_the_cli(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lic = world.license(activations=-1)
    src, out = tmp_path / "in", tmp_path / "out"
    for n in range(6):
        write(src / f"r{n}.req", activation(world, lic, f"m{n}"))
    run(world, src, out, tmp_path / "first.csv")
    rows = journal_rows(src, out, read_report(tmp_path / "first.csv"))
    # The journal the crashed run was appending to, its last line torn in the middle.
    (out / (JOURNAL + ".new")).write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + '{"file": "r3.r')
    audits = batch_audits(world)

    status = cli_batch(world, capsys, src, "--out", out, "--report", tmp_path / "second.csv", "--json")

    assert status.code == 0
    summary = json.loads(status.out)
    assert (summary["total"], summary["accepted"], summary["rejected"], summary["resumed"]) == (6, 6, 0, 3)
    assert batch_audits(world) == audits + 3
    assert outcomes(read_report(tmp_path / "second.csv")) == outcomes(read_report(tmp_path / "first.csv"))
    assert sorted(p.name for p in out.iterdir()) == [f"r{n}.response" for n in range(6)]


def unfinished(output: Path, keep: int | None = None) -> None:
    """Turn a finished zip output back into what a run killed before its end leaves: the entries
    (``keep``: only the first ones) in OUT.zip.partial with no central directory, and the
    writer's journal of them beside it."""
    with zipfile.ZipFile(output) as zf:
        infos = zf.infolist()[:keep]
    data = output.read_bytes()
    end = (
        infos[-1].header_offset + 30 + len(infos[-1].filename.encode()) + infos[-1].file_size if infos else 0
    )
    output.with_name(output.name + ".partial").write_bytes(data[:end])
    lines = [json.dumps([i.filename, i.header_offset, i.file_size, i.CRC]) + "\n" for i in infos]
    output.with_name(output.name + ".journal").write_text("".join(lines))
    output.unlink()


def test_a_crashed_zip_batch_resumes_from_its_partial_file(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=-1)
    src = tmp_path / "in.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for n in range(4):
            zf.writestr(f"r{n}.req", activation(world, lic, f"m{n}"))
    out = tmp_path / "out.zip"
    run(world, src, out, tmp_path / "first.csv")
    rows = read_report(tmp_path / "first.csv")
    with zipfile.ZipFile(out) as zf:
        first = {name: zf.read(name) for name in zf.namelist()}
        sizes = {name: zf.getinfo(name).file_size for name in zf.namelist()}
    # What a run into out.zip leaves when killed after its first two files: their entries in
    # out.zip.partial, the writer's journal, and the rows' journal.
    unfinished(out, keep=2)
    with zipfile.ZipFile(src) as zf:
        journal = [
            dict(
                row,
                digest=hashlib.sha256(zf.read(row["file"])).hexdigest(),
                size=str(sizes[row["response_file"]]),
            )
            for row in rows[:2]
        ]
    (tmp_path / ("out.zip" + JOURNAL)).write_text("".join(json.dumps(e) + "\n" for e in journal))
    audits = batch_audits(world)

    summary = run(world, src, out, tmp_path / "second.csv")

    assert (summary.total, summary.accepted, summary.skipped) == (4, 4, 2)
    assert batch_audits(world) == audits + 2
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out"))
    assert leftovers == ["out.zip"]  # no partial file, no journals
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == [f"r{n}.response" for n in range(4)]
        assert zf.testzip() is None
        for name in zf.namelist()[:2]:
            assert zf.read(name) == first[name]  # kept from the first run, not rewritten
    assert world.reload_license(lic.key).used_activations == 4


def test_the_staging_folder_of_an_earlier_version_is_explained(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=-1)
    write(tmp_path / "in" / "a.req", activation(world, lic, "a"))
    (tmp_path / "out.zip.partial").mkdir()
    before = world.snapshot()
    with pytest.raises(OfflineServiceError) as caught:
        run(world, tmp_path / "in", tmp_path / "out.zip", tmp_path / "r.csv")
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert (
        "earlier version" in caught.value.message
        and "delete it and run the batch again" in caught.value.message
    )
    assert world.snapshot() == before


# -- the batch command ------------------------------------------------------------------------


class Status:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def cli_batch(world: World, capsys: pytest.CaptureFixture[str], *args: str | Path) -> Status:
    capsys.readouterr()
    argv = ["batch", *map(str, args), *world.where()]
    if not any(a == "--workers" for a in argv):
        argv += ["--workers", "1"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return Status(code, out, err)


def test_the_batch_command(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lic = world.license()
    write(tmp_path / "in" / "a.req", activation(world, lic, "a"))
    status = cli_batch(
        world, capsys, tmp_path / "in", "--out", tmp_path / "out", "--report", tmp_path / "r.csv"
    )
    assert status.code == 0
    assert status.out.startswith("1 files: 1 accepted, 0 rejected (0 from an earlier run) in ")
    assert status.err == ""  # no progress bar when stderr is not a terminal

    write(tmp_path / "in" / "b.req", b"garbage")
    status = cli_batch(
        world, capsys, tmp_path / "in", "--out", tmp_path / "out", "--report", tmp_path / "r.json",
        "--json", "--response-validity", "12h",
    )  # fmt: skip
    assert status.code == 3
    summary = json.loads(status.out)
    assert {k: summary[k] for k in ("total", "accepted", "rejected", "resumed")} == {
        "total": 2,
        "accepted": 1,
        "rejected": 1,
        "resumed": 0,
    }
    assert summary["report"] == str(tmp_path / "r.json")
    response = verified(world, (tmp_path / "out" / "a.response").read_bytes())
    assert response.apply_before - response.issued_at == 43200


def test_the_batch_command_reports_errors(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "in" / "a.req", b"x")
    status = cli_batch(
        world, capsys, tmp_path / "in", "--out", tmp_path / "out", "--report", tmp_path / "r.txt"
    )
    assert status.code == 1
    assert status.err.startswith("error: INVALID_ARGUMENT: the report must be a .csv or .json file")
    status = cli_batch(
        world, capsys, tmp_path / "nothing", "--out", tmp_path / "out", "--report", tmp_path / "r.csv"
    )
    assert status.code == 1
    assert status.err.startswith("error: INVALID_ARGUMENT: ")
    a_file = write(tmp_path / "a-file", b"x")
    status = cli_batch(world, capsys, tmp_path / "in", "--out", a_file, "--report", tmp_path / "r.csv")
    assert status.code == 1
    assert status.err.startswith("error: STORAGE_ERROR: ")


@pytest.mark.slow
def test_the_batch_command_in_a_real_process(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=3)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as zf:
        for n in range(5):
            zf.writestr(f"box/{n}.req", activation(world, lic, f"m{n}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    done = subprocess.run(
        [
            sys.executable, "-m", "offline_service.cli", "batch", str(tmp_path / "in.zip"),
            "--out", str(tmp_path / "out.zip"), "--report", str(tmp_path / "r.csv"), "--workers", "2",
            *world.where(), "--json",
        ],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["accepted"], summary["rejected"]) == (5, 3, 2)
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert len(zf.namelist()) == 3
    assert world.reload_license(lic.key).used_activations == 3


def test_the_csv_report_makes_names_that_read_as_formulas_inert(world: World, tmp_path: Path) -> None:
    # A hostile file name must not run as a spreadsheet formula when the report is opened.
    src = tmp_path / "in"
    write(src / "=HYPERLINK(1).req", b"garbage")
    write(src / " @SUM(1).req", b"garbage")
    run(world, src, tmp_path / "out", tmp_path / "report.csv")
    files = sorted(row["file"] for row in read_report(tmp_path / "report.csv"))
    assert files == ["' @SUM(1).req", "'=HYPERLINK(1).req"]
    run(world, src, tmp_path / "out", tmp_path / "report.json")  # JSON is data: left as it is
    assert sorted(row["file"] for row in read_report(tmp_path / "report.json")) == [
        " @SUM(1).req",
        "=HYPERLINK(1).req",
    ]
