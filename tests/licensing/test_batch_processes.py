"""Batches as separate ``offline-service batch`` processes on one database, on every backend (on
PostgreSQL they could as well run on separate machines): several at once over overlapping sets of
request files never grant more than a license allows, and a batch killed by SIGKILL mid-run, then
run again, ends as if it had never been interrupted. Every answer is checked against the database.
Small chunks (tests/licensing/batch_driver.py) make the batches' transactions interleave."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing.batch import run_batch
from offline_service.licensing.models import License
from offline_service.settings import Settings
from tests.db import rows
from tests.factories import Machine, World, wall_now
from tests.licensing.test_zipstream import unzip_t
from tests.pg import database_url

pytestmark = pytest.mark.slow

CHUNK = 3  # files per transaction
TIMEOUT = 120  # seconds for any one batch: a hang fails the test
ROOT = Path(__file__).resolve().parents[2]  # where ``python -m tests...`` finds the tests package


def _argv(
    world: World, src: Path, out: Path, report: Path, *, workers: int = 2, kill: str = "none"
) -> list[str]:
    argv = [sys.executable, "-m", "tests.licensing.batch_driver", str(CHUNK), kill, "batch"]
    argv += [str(src), "--out", str(out), "--report", str(report), "--workers", str(workers), "--json"]
    return argv + world.where()


def _start(argv: list[str], *, own_session: bool = False) -> subprocess.Popen[str]:
    """A batch process; ``own_session``: in a process group of its own (one it may kill whole)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=own_session,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """The exit status, output and error output of a batch (a hang fails the test)."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("a batch did not finish")
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def _files(world: World, lic: License, prefix: str, count: int) -> dict[str, bytes]:
    """One activation request file per machine, by file name."""
    return {
        f"{prefix}{n:02}.req": Machine(f"fp-{prefix}{n}").request(
            Kind.ACTIVATION, world.product.id, license_key=lic.key, issued_at=wall_now()
        )
        for n in range(count)
    }


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _report(path: Path) -> dict[str, dict[str, str]]:
    """file -> its one report row (a file answered twice fails here)."""
    with open(path, encoding="utf-8", newline="") as f:
        found = list(csv.DictReader(f))
    by_file = {row["file"]: row for row in found}
    assert len(by_file) == len(found), "a file was answered twice"
    return by_file


def _live(world: World, lic: License) -> set[str]:
    found = rows(
        world.store,
        "SELECT id FROM activations WHERE license_id = ? AND deactivated_at IS NULL",
        lic.id,
    )
    return {str(aid) for (aid,) in found}


def _check_granted(world: World, lic: License, granted: set[str]) -> None:
    """The license's seats are exactly the granted activations, each counted once."""
    assert len(granted) == lic.allowed_activations
    assert _live(world, lic) == granted
    assert world.reload_license(lic.key).used_activations == lic.allowed_activations


def _check_responses(world: World, out: Path, report: dict[str, dict[str, str]]) -> None:
    """One verified response file (or zip entry) per granted row, and none for any other."""
    if out.suffix == ".zip":
        unzip_t(out)
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
            bodies = {name: zf.read(name) for name in zf.namelist()}
        assert len(bodies) == len(zf.namelist()), "an entry written twice"
    else:
        bodies = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(bodies) == sorted(row["response_file"] for row in report.values() if row["code"] == "OK")
    keys = world.keyring.public_keys(world.product.id)
    for row in report.values():
        if row["code"] == "OK":
            answer = parse_response(bodies[row["response_file"]], keys)
            assert answer.activation_id == row["activation_id"], row


def test_three_batch_processes_over_overlapping_files_never_over_grant(world: World, tmp_path: Path) -> None:
    scarce, scarcer = world.license(activations=4), world.license(activations=3)
    files = _files(world, scarce, "a", 12) | _files(world, scarcer, "b", 9)
    names = sorted(files)
    # Each file is in two of the three batches: the same bytes, so also the same nonce.
    sets = [{n: files[n] for i, n in enumerate(names) if i % 3 != k} for k in range(3)]
    runs = [
        _start(
            _argv(world, _write(tmp_path / f"in{k}", chosen), tmp_path / f"out{k}", tmp_path / f"r{k}.csv")
        )
        for k, chosen in enumerate(sets)
    ]
    for proc in runs:
        code, _, _ = _finish(proc)
        assert code in (0, 3), code  # 3: some files were refused

    reports = [_report(tmp_path / f"r{k}.csv") for k in range(3)]
    for k, report in enumerate(reports):
        assert set(report) == set(sets[k])
        assert {row["code"] for row in report.values()} <= {"OK", "ACTIVATION_LIMIT"}, report
        _check_responses(world, tmp_path / f"out{k}", report)
    # A file answered by two batches got one answer: the second batch reissued the first's
    # activation, or both found the license full.
    for name in names:
        answers = {(r[name]["code"], r[name]["activation_id"]) for r in reports if name in r}
        assert len(answers) == 1, (name, answers)
    for lic, prefix in ((scarce, "a"), (scarcer, "b")):
        granted = {
            row["activation_id"]
            for report in reports
            for name, row in report.items()
            if name.startswith(prefix) and row["code"] == "OK"
        }
        _check_granted(world, lic, granted)


@pytest.mark.parametrize("io", ["folder", "zip"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_killed_mid_run_and_run_again_ends_as_one_uninterrupted_run(
    world: World, tmp_path: Path, workers: int, io: str
) -> None:
    lic = world.license(activations=7)
    files = _files(world, lic, "r", 20)
    if io == "zip":  # zip in, zip out: the responses go to out.zip.partial and its journal
        src, out = tmp_path / "in.zip", tmp_path / "out.zip"
        with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        src, out = _write(tmp_path / "in", files), tmp_path / "out"
    report = tmp_path / "report.csv"

    # Killed just after a process committed its second chunk, before that chunk's responses and
    # journal rows were written.
    argv = _argv(world, src, out, report, workers=workers, kill="group:2")
    code, _, _ = _finish(_start(argv, own_session=True))
    assert code == -signal.SIGKILL
    assert not report.exists()
    before = _live(world, lic)
    if workers == 1:
        # In order: the first chunk answered and journaled, the second decided and never answered.
        assert len(before) == 2 * CHUNK
        if io == "zip":
            assert not out.exists()
            assert len(tmp_path.joinpath("out.zip.journal").read_text().splitlines()) == CHUNK
            rows_journal = tmp_path / "out.zip.batch-journal.jsonl.new"
        else:
            assert len(list(out.glob("*.response"))) == CHUNK
            rows_journal = out / ".batch-journal.jsonl.new"
        assert len(rows_journal.read_text().splitlines()) == CHUNK
    else:  # each worker's chunks, in whatever order they came: the killer's two at least
        assert len(before) >= min(2 * CHUNK, lic.allowed_activations)

    code, out_text, _ = _finish(_start(_argv(world, src, out, report, workers=workers)))

    assert code == 3  # 13 refused
    summary = json.loads(out_text)
    assert (summary["total"], summary["accepted"], summary["rejected"]) == (20, 7, 13)
    if workers == 1:
        assert summary["resumed"] == CHUNK
    found = _report(report)
    assert set(found) == {f"r{n:02}.req" for n in range(20)}
    codes = [row["code"] for row in found.values()]
    assert (codes.count("OK"), codes.count("ACTIVATION_LIMIT")) == (7, 13), codes
    granted = {row["activation_id"] for row in found.values() if row["code"] == "OK"}
    assert before <= granted  # every seat taken before the kill was answered: none lost
    _check_granted(world, lic, granted)
    _check_responses(world, out, found)
    if io == "zip":
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.zip"]


def test_a_batch_whose_worker_is_killed_fails_at_once_and_resumes(world: World, tmp_path: Path) -> None:
    lic = world.license(activations=7)
    src = _write(tmp_path / "in", _files(world, lic, "r", 20))
    out, report = tmp_path / "out", tmp_path / "report.csv"

    # One worker killed alone after its first chunk committed: the run must say so and stop, not
    # wait forever for that chunk's answers.
    code, _, err = _finish(_start(_argv(world, src, out, report, kill="worker:1")))
    assert code == 1
    assert err.startswith("error: INTERNAL_ERROR: a batch worker process stopped"), err
    assert "run the batch again" in err
    before = _live(world, lic)
    assert len(before) >= CHUNK

    code, out_text, _ = _finish(_start(_argv(world, src, out, report)))

    assert code == 3
    summary = json.loads(out_text)
    assert (summary["total"], summary["accepted"], summary["rejected"]) == (20, 7, 13)
    found = _report(report)
    granted = {row["activation_id"] for row in found.values() if row["code"] == "OK"}
    assert len(found) == 20 and before <= granted
    _check_granted(world, lic, granted)
    _check_responses(world, out, found)


def test_workers_that_cannot_open_the_database_fail_the_run_with_the_cause(tmp_path: Path) -> None:
    # The coordinator of run_batch opens no store with workers > 1: only the workers meet the
    # missing database. Their error reaches it (pickled) with its code, and nothing hangs.
    server = urlsplit(database_url(tmp_path))  # a server that answers, and a database it lacks
    missing = urlunsplit(server._replace(path=f"/offline_missing_{secrets.token_hex(4)}"))
    settings = Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys", database_url=missing)
    _write(tmp_path / "in", {"a.req": b"garbage"})

    with pytest.raises(OfflineServiceError) as caught:
        run_batch(
            settings, account_id="acc_none", input_path=tmp_path / "in", output=tmp_path / "out",
            report=tmp_path / "r.csv", workers=2,
        )  # fmt: skip

    assert caught.value.code is Code.STORAGE_ERROR
    assert "cannot open database" in caught.value.message
