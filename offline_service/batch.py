"""Batch processing of thousands of request files with every core, crash-safe and resumable.

INPUT and OUTPUT are each a directory or a ``.zip``. Work is split into chunks; each worker process
has its own engine and database connection and processes a chunk in one transaction. After a chunk's
responses are written, its report rows are appended to a journal. Running the same batch again
reuses a journal row only when the input file is unchanged (same SHA-256) and its response file is
still there at the recorded size; everything else is processed again, which is idempotent in the
engine, so nothing is ever counted twice, after a killed process or a power loss alike.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .archive import ZIP_ERRORS, ArchiveLimits, checked_entries, read_entry
from .engine import Engine
from .errors import Code, OfflineServiceError
from .jws import MAX_FILE_BYTES
from .keyring import Keyring
from .messages import Kind
from .settings import Settings
from .store import SQLiteStore

__all__ = ["REPORT_FIELDS", "BatchSummary", "check_response_names", "response_name", "run_batch"]

REPORT_FIELDS = ("file", "kind", "code", "activation_id", "response_file", "message")
JOURNAL = ".batch-journal.jsonl"
CHUNK = 512  # files per transaction: fewer commits, while the write lock is held for ~20 ms


@dataclass(frozen=True, slots=True)
class BatchSummary:
    total: int
    accepted: int
    rejected: int
    skipped: int  # already done in an earlier run, taken from the journal
    seconds: float


def check_response_names(inputs: Iterable[tuple[str, str]]) -> None:
    """Refuse, before anything is processed, inputs (label, response file) of which two would be
    answered in the same file (a.req and a.txt in a.response): one response would be lost."""
    answered: dict[str, tuple[int, str]] = {}
    for position, (label, response) in enumerate(inputs):
        first, other = answered.setdefault(response, (position, label))
        if first != position:  # the same file named twice counts as two inputs too
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, f"{other} and {label} would both be answered in {response}; rename one"
            )


def response_name(name: str) -> str:
    """The response file for an input: its extension replaced by ``.response``."""
    path = Path(name)
    return str(path.with_suffix(".response")) if path.suffix else name + ".response"


# -- worker side -----------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(
    settings: Settings,
    account_id: str,
    input_path: str,
    staging: str,
    validity: int | None,
    actor: str = "batch",
    allowed_licenses: frozenset[str] | None = None,
    kinds: frozenset[Kind] | None = None,
    now: int | None = None,
) -> None:
    store = SQLiteStore(settings.data_dir)
    keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
    _worker.update(
        engine=Engine(store=store, keyring=keyring, policy=settings.policy),
        account_id=account_id,
        zip=zipfile.ZipFile(input_path) if input_path.endswith(".zip") else None,
        input=input_path,
        staging=staging,
        dirs=set(),
        validity=validity,
        actor=actor,
        license_filter=None if allowed_licenses is None else (lambda lic: lic.id in allowed_licenses),
        kinds=kinds,
        now=now,
    )


def _close_worker() -> None:
    """Release what _init_worker opened (used when the batch runs in this process)."""
    engine: Engine | None = _worker.pop("engine", None)
    if engine is not None:
        engine.store.close()
    zf: zipfile.ZipFile | None = _worker.pop("zip", None)
    if zf is not None:
        zf.close()


def _read_input(name: str) -> bytes:
    zf: zipfile.ZipFile | None = _worker["zip"]
    if zf is not None:
        return read_entry(zf, zf.getinfo(name))
    fd = os.open(os.path.join(_worker["input"], name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        data = os.read(fd, MAX_FILE_BYTES + 1)
        while len(data) <= MAX_FILE_BYTES and (more := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
            data += more  # a short read is allowed by POSIX; keep reading up to the limit
        return data
    finally:
        os.close(fd)


def _process_chunk(task: tuple[Sequence[str], dict[str, dict[str, str]]]) -> tuple[list[dict[str, str]], int]:
    """Process one chunk; returns its report rows in input order and how many came from the journal."""
    names, done = task
    engine: Engine = _worker["engine"]
    rows: list[dict[str, str] | None] = [None] * len(names)
    todo: list[int] = []
    datas: list[bytes] = []
    digests: list[str] = []
    reused = 0
    for i, name in enumerate(names):
        try:
            data = _read_input(name)
        except (OSError, OfflineServiceError) as exc:
            message = exc.message if isinstance(exc, OfflineServiceError) else exc.strerror or str(exc)
            rows[i] = _row(name, "", Code.MALFORMED_REQUEST.value, "", "", f"cannot read: {message}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        earlier = done.get(name)
        if earlier is not None and earlier.get("digest") == digest and _still_written(earlier):
            rows[i] = earlier
            reused += 1
            continue
        todo.append(i)
        datas.append(data)
        digests.append(digest)
    outcomes = engine.process_many(
        datas,
        account_id=_worker["account_id"],
        now=_worker["now"] if _worker["now"] is not None else int(time.time()),
        response_validity=_worker["validity"],
        actor=_worker["actor"],
        license_filter=_worker["license_filter"],
        kinds=_worker["kinds"],
    )
    staging: str = _worker["staging"]
    made: set[str] = _worker["dirs"]
    for i, digest, outcome in zip(todo, digests, outcomes, strict=True):
        name = names[i]
        out = ""
        if outcome.response is not None:
            out = response_name(name)
            parent = os.path.dirname(out)
            if parent and parent not in made:
                os.makedirs(os.path.join(staging, parent), exist_ok=True)
                made.add(parent)
            # No temp file and rename: a chunk counts as done only once its journal line is written
            # after these files, so a file torn by a crash is rewritten when the batch is resumed.
            fd = os.open(os.path.join(staging, out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            body = outcome.response.encode() + b"\n"
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
        row = _row(
            name,
            outcome.kind.value if outcome.kind else "",
            outcome.code,
            outcome.activation_id or "",
            out,
            outcome.message,
        )
        row["digest"] = digest
        if out:
            row["size"] = str(len(body))
        rows[i] = row
    return [r for r in rows if r is not None], reused


def _still_written(row: dict[str, str]) -> bool:
    """A journal row is reusable only if its response file survived (nothing was fsync'd)."""
    if not row.get("response_file"):
        return True
    try:
        return os.stat(os.path.join(_worker["staging"], row["response_file"])).st_size == int(
            row.get("size", -1)
        )
    except (OSError, ValueError):
        return False


def _row(
    file: str, kind: str, code: str, activation_id: str, response_file: str, message: str
) -> dict[str, str]:
    return {
        "file": file,
        "kind": kind,
        "code": code,
        "activation_id": activation_id,
        "response_file": response_file,
        "message": message,
    }


# -- coordinator side --------------------------------------------------------------------------


def _list_inputs(input_path: Path, limits: ArchiveLimits) -> list[str]:
    if input_path.suffix == ".zip":
        try:
            with zipfile.ZipFile(input_path) as zf:
                return [info.filename for info in checked_entries(zf, limits)]
        except ZIP_ERRORS as exc:
            raise OfflineServiceError(
                Code.BAD_ARCHIVE, f"{input_path.name} is not a readable zip: {exc}"
            ) from None
    if not input_path.is_dir():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{input_path} is neither a directory nor a .zip")
    names = []
    for root, dirs, files in os.walk(input_path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith("."):
                names.append(os.path.relpath(os.path.join(root, f), input_path).replace(os.sep, "/"))
    return sorted(names)


def _load_journal(path: Path) -> dict[str, dict[str, str]]:
    """Rows of earlier runs: the consolidated journal, then the one a crashed run was writing."""
    done: dict[str, dict[str, str]] = {}
    for part in (path, path.with_name(path.name + ".new")):
        if part.exists():
            with open(part, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        break  # a torn last line from a crash: that file is simply redone
                    done[row["file"]] = row
    if done:  # consolidate, so the run below may start a fresh .new journal
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in done.values())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        path.with_name(path.name + ".new").unlink(missing_ok=True)
    return done


def _write_report(report: Path, journal: Path) -> None:
    """Stream the report from the journal (constant memory, input order)."""
    tmp = report.with_name(f".{report.name}.tmp")
    with open(journal, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8", newline="") as dst:
        rows = (json.loads(line) for line in src)
        if report.suffix == ".json":
            dst.write("[")
            for n, row in enumerate(rows):
                dst.write(("," if n else "") + "\n  " + json.dumps({k: row[k] for k in REPORT_FIELDS}))
            dst.write("\n]\n")
        else:
            writer = csv.DictWriter(dst, fieldnames=REPORT_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, report)


def _zip_directory(staging: Path, output: Path) -> None:
    tmp = output.with_name(f".{output.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(staging):
            dirs.sort()
            for f in sorted(files):
                # Only the journal: a response may start with a dot, as its zip entry did.
                if root == str(staging) and f in (JOURNAL, JOURNAL + ".new", JOURNAL + ".tmp"):
                    continue
                full = Path(root, f)
                zf.write(full, full.relative_to(staging).as_posix())
    os.replace(tmp, output)


def _bounded(pool: Any, tasks: Iterator[Any], *, window: int) -> Iterator[tuple[list[dict[str, str]], int]]:
    """Results in task order with at most ``window`` chunks in flight, so memory stays flat in
    the number of files (Pool.imap would queue every task and buffer every early result)."""
    pending: deque[Any] = deque()
    for task in tasks:
        pending.append(pool.apply_async(_process_chunk, (task,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _run(
    pool: Any,
    workers: int,
    init_args: tuple[Any, ...],
    input_path: Path,
    staging: Path,
    limits: ArchiveLimits | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int, int, int]:
    """List and check the inputs, then process them; returns (accepted, rejected, skipped, total)."""
    names = _list_inputs(input_path, limits or ArchiveLimits())
    check_response_names((name, response_name(name)) for name in names)
    staging.mkdir(parents=True, exist_ok=True)
    journal_path = staging / JOURNAL
    done = _load_journal(journal_path)
    # Each chunk carries only the journal rows of its own files.
    tasks: Iterator[tuple[Sequence[str], dict[str, dict[str, str]]]] = (
        (chunk, {n: done[n] for n in chunk if n in done})
        for chunk in (names[i : i + CHUNK] for i in range(0, len(names), CHUNK))
    )
    accepted = rejected = skipped = finished = 0
    # This run's journal, in input order; rows of earlier runs come back through the workers for
    # files that did not change, so they are not processed again.
    with open(journal_path.with_name(JOURNAL + ".new"), "w", encoding="utf-8") as journal:
        if pool is None:
            _init_worker(*init_args)
            results: Iterator[tuple[list[dict[str, str]], int]] = map(_process_chunk, tasks)
        else:
            results = _bounded(pool, tasks, window=2 * workers)
        for rows, reused in results:
            skipped += reused
            for row in rows:
                if row["code"] == "OK":
                    accepted += 1
                else:
                    rejected += 1
                journal.write(json.dumps(row) + "\n")
            journal.flush()
            finished += len(rows)
            if progress:
                progress(finished, len(names))
    return accepted, rejected, skipped, len(names)


def run_batch(
    settings: Settings,
    *,
    account_id: str,
    input_path: Path,
    output: Path,
    report: Path,
    workers: int | None = None,
    response_validity: int | None = None,
    limits: ArchiveLimits | None = None,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "batch",
    allowed_licenses: frozenset[str] | None = None,
    kinds: frozenset[Kind] | None = None,
    now: int | None = None,
) -> BatchSummary:
    """Process every request file under ``input_path``; write responses to ``output`` and one
    report row per input file to ``report`` (.csv or .json). With ``allowed_licenses``, requests
    for any other license are refused as LICENSE_NOT_FOUND (a portal user's batch); with ``kinds``,
    requests of other kinds are refused unrecorded; ``now`` fixes the time (default: the clock)."""
    started = time.perf_counter()
    if report.suffix not in (".csv", ".json"):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the report must be a .csv or .json file")
    zip_out = output.suffix == ".zip"
    staging = output.with_name(output.name + ".partial") if zip_out else output
    workers = max(1, workers or os.cpu_count() or 1)
    init_args = (
        settings,
        account_id,
        str(input_path),
        str(staging),
        response_validity,
        actor,
        allowed_licenses,
        kinds,
        now,
    )
    # Workers are forked before the input is listed: forked later, each would inherit the list of
    # every file name, and touching it (reference counts, GC) would copy it into every worker.
    ctx = multiprocessing.get_context("spawn" if sys.platform != "linux" else "fork")
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=init_args) if workers > 1 else None
    try:
        accepted, rejected, skipped, total = _run(
            pool, workers, init_args, input_path, staging, limits, progress
        )
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        else:
            _close_worker()
    journal_path = staging / JOURNAL
    os.replace(journal_path.with_name(JOURNAL + ".new"), journal_path)
    _write_report(report, journal_path)
    if zip_out:
        _zip_directory(staging, output)
        shutil.rmtree(staging)
    else:
        journal_path.unlink()
    return BatchSummary(
        total=total,
        accepted=accepted,
        rejected=rejected,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
