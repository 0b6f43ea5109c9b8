"""Batch processing of thousands of request files with every core, crash-safe and resumable.

INPUT and OUTPUT are each a directory or a ``.zip``. Work is split into chunks; each worker process
has its own engine and database connection and processes a chunk in one transaction. After a chunk's
responses are written, its report rows are appended to a journal. Running the same batch again
reuses a journal row only when the input file is unchanged (same SHA-256) and its response file is
still there at the recorded size; everything else is processed again, which is idempotent in the
engine, so nothing is ever counted twice, after a killed process or a power loss alike.

A zip is read and written without a file per request: workers read their chunk's entries at the
offsets the checked central directory gives (``zipstream.read_lean``) and hand the responses back;
this process appends them to ``OUT.zip.partial`` (``zipstream.ZipWriter``), whose journal is made
durable per chunk before the chunk's report rows are journaled.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from offline_service.csvcell import csv_cell
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.licensing.archive import ArchiveLimits, Entries, Entry, checked_entries, read_entry
from offline_service.licensing.batch_names import check_batch_names, file_label, response_name
from offline_service.licensing.engine import Engine, LicenseFilter
from offline_service.licensing.zipstream import ZipWriter
from offline_service.settings import Settings
from offline_service.store import open_store
from offline_service.webhooks import events as webhooks

__all__ = ["DETAIL_FIELDS", "REPORT_FIELDS", "BatchSummary", "run_batch"]

log = logging.getLogger("offline_service.licensing.batch")

# New columns go at the end, so that a reader by position keeps working. ``reissued``: granted
# before and answered again (the same activation, no seat used), "yes" in CSV and true in JSON.
REPORT_FIELDS = ("file", "kind", "code", "activation_id", "response_file", "message", "reissued")
# A row's details beyond the report, kept in the journal and handed to ``on_row``; empty when unknown
# (a file that was not read, a row of a journal written before they were kept).
DETAIL_FIELDS = ("reissued", "license_id", "hostname", "fingerprint")
JOURNAL = ".batch-journal.jsonl"
CHUNK = 512  # files per transaction: fewer commits, while the write lock is held for ~20 ms


@dataclass(frozen=True, slots=True)
class BatchSummary:
    total: int
    accepted: int
    rejected: int
    skipped: int  # already done in an earlier run, taken from the journal
    seconds: float


# -- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """What a run is, in plain values a worker process can be given (pickled when spawned)."""

    settings: Settings
    account_id: str
    input: str
    staging: str  # the output folder; "" for a zip, whose responses come back to the coordinator
    validity: int | None
    actor: str
    allowed_licenses: frozenset[str] | None
    kinds: frozenset[Kind] | None
    now: int | None


@dataclass(slots=True)
class _Run:
    """One batch run as its chunks see it: the engine, the caller's narrowing, the input and the
    staging directory. Made once per run (in this process) or once per worker process of the
    run's own pool, and passed to every chunk: no batch state is shared between runs."""

    spec: _Spec
    engine: Engine
    zip: int | None  # the input zip's descriptor, read with pread
    owns_store: bool  # opened for this run, closed with it; not the web app's store
    dirs: set[str] = field(default_factory=set)  # response folders already made

    @classmethod
    def open(cls, spec: _Spec, engine: Engine | None = None) -> _Run:
        """``engine``: one to share (the web app's, whose store threads may share); by default a
        store and keyring of this run's own."""
        owns = engine is None
        if engine is None:
            settings = spec.settings
            store = open_store(settings)
            keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
            engine = Engine(store=store, keyring=keyring, policy=settings.policy)
        try:
            zf = os.open(spec.input, os.O_RDONLY) if spec.input.endswith(".zip") else None
        except BaseException:
            if owns:
                engine.store.close()
            raise
        return cls(spec=spec, engine=engine, zip=zf, owns_store=owns)

    def license_filter(self) -> LicenseFilter | None:
        allowed = self.spec.allowed_licenses
        return None if allowed is None else (lambda lic: lic.id in allowed)

    def close(self) -> None:
        if self.zip is not None:
            os.close(self.zip)
        if self.owns_store:
            self.engine.store.close()


# A worker process of a pool belongs to one run: the pool's initializer opens that run here, in the
# child, and only that pool's chunks read it. The coordinator and the in-process path (every web
# upload) never set or read it; they pass their _Run to each chunk.
_pool_run: _Run | OfflineServiceError | None = None


def _init_pool_worker(spec: _Spec) -> None:
    global _pool_run
    if multiprocessing.parent_process() is None:
        raise RuntimeError("only the worker processes of a batch's own pool hold a run")
    try:
        _pool_run = _Run.open(spec)
    except OfflineServiceError as exc:
        # Kept for the chunks to raise: raised here, it would end the worker, and the run would
        # fail with "a worker stopped" instead of the cause (the database cannot be reached...).
        _pool_run = exc


def _process_pool_chunk(task: _Task) -> _Result:
    assert _pool_run is not None, "called outside a batch pool's worker"
    if isinstance(_pool_run, OfflineServiceError):
        raise _pool_run
    return _process_chunk(_pool_run, task)


# -- worker side -----------------------------------------------------------------------------

# A chunk's input names, the journal rows of earlier runs for them, and where a zip's entries lie.
_Task = tuple[Sequence[str], dict[str, dict[str, str]], Sequence[Entry] | None]
# Its report rows in input order, how many came from the journal, and the responses still to be
# written (into a zip output, by the coordinator) by response name.
_Result = tuple[list[dict[str, str]], int, dict[str, bytes]]
_KINDS_OF_FILE = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a folder",
}


class _NotRead(Exception):
    """An input that is not read (its report row: MALFORMED_REQUEST and this message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _read_input(run: _Run, name: str, entry: Entry | None) -> bytes:
    if run.zip is not None and entry is not None:
        return read_entry(run.zip, entry)
    path = os.path.join(run.spec.input, name)
    # Only regular files are opened: a FIFO would block the run, a device might do anything on
    # open. lstat first; then O_NOFOLLOW | O_NONBLOCK and fstat, should the file be swapped between.
    _regular(os.lstat(path).st_mode)
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _regular(stat.S_IFLNK)
        raise
    try:
        _regular(os.fstat(fd).st_mode)
        data = os.read(fd, MAX_FILE_BYTES + 1)
        while len(data) <= MAX_FILE_BYTES and (more := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
            data += more  # a short read is allowed by POSIX; keep reading up to the limit
        return data
    finally:
        os.close(fd)


def _regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS_OF_FILE.get(stat.S_IFMT(mode), "not a regular file")
        raise _NotRead(f"cannot read: {kind}, not a regular file")


def _process_chunk(run: _Run, task: _Task) -> _Result:
    """Process one chunk; returns its report rows in input order, how many came from the journal
    and, for a zip output, the responses to write."""
    names, done, entries = task
    spec = run.spec
    rows: list[dict[str, str] | None] = [None] * len(names)
    todo: list[int] = []
    datas: list[bytes] = []
    digests: list[str] = []
    reused = 0
    bodies: dict[str, bytes] = {}
    for i, name in enumerate(names):
        label = file_label(name)
        if label != name:
            message = "cannot read: the file name is not UTF-8 (shown with \\xNN escapes); rename it"
            rows[i] = _row(label, "", Code.MALFORMED_REQUEST.value, "", "", message)
            continue
        try:
            data = _read_input(run, name, entries[i] if entries is not None else None)
        except _NotRead as exc:
            rows[i] = _row(name, "", Code.MALFORMED_REQUEST.value, "", "", exc.message)
            continue
        except (OSError, OfflineServiceError) as exc:
            message = exc.message if isinstance(exc, OfflineServiceError) else exc.strerror or str(exc)
            rows[i] = _row(name, "", Code.MALFORMED_REQUEST.value, "", "", f"cannot read: {message}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        earlier = done.get(name)
        if earlier is not None and earlier.get("digest") == digest and _still_written(run, earlier):
            rows[i] = earlier
            reused += 1
            continue
        todo.append(i)
        datas.append(data)
        digests.append(digest)
    outcomes = run.engine.process_many(
        datas,
        account_id=spec.account_id,
        now=spec.now if spec.now is not None else int(time.time()),
        response_validity=spec.validity,
        actor=spec.actor,
        license_filter=run.license_filter(),
        kinds=spec.kinds,
    )
    for i, digest, outcome in zip(todo, digests, outcomes, strict=True):
        name = names[i]
        row = _row(
            name,
            outcome.kind.value if outcome.kind else "",
            outcome.code,
            outcome.activation_id or "",
            "",
            outcome.message,
        )
        # What the engine knew besides the report's columns, for the journal (and a portal batch's
        # result page): whether the request was granted before, its license and its machine.
        request = outcome.request
        row["reissued"] = "1" if outcome.reissued else ""
        row["license_id"] = outcome.license_id or ""
        row["hostname"] = request.hostname if request is not None else ""
        row["fingerprint"] = request.fingerprint if request is not None else ""
        if outcome.response is not None:
            out = response_name(name)
            body = outcome.response.encode() + b"\n"
            try:
                if spec.staging:
                    _write_response(run, out, body)
                else:
                    bodies[out] = body
            except OSError as exc:
                # Recorded but not written: the row says so and has no digest, so that running the
                # batch again processes the file again, and the engine reissues the same answer.
                row["code"] = Code.STORAGE_ERROR.value
                row["message"] = (
                    f"granted, but the response {out} could not be written ({exc.strerror or exc});"
                    " run the batch again to reissue it"
                )
                rows[i] = row
                continue
            row["response_file"] = out
            row["size"] = str(len(body))
        row["digest"] = digest
        rows[i] = row
    return [r for r in rows if r is not None], reused, bodies


def _write_response(run: _Run, out: str, body: bytes) -> None:
    parent = os.path.dirname(out)
    if parent and parent not in run.dirs:
        os.makedirs(os.path.join(run.spec.staging, parent), exist_ok=True)
        run.dirs.add(parent)
    # No temp file and rename: a chunk counts as done only once its journal line is written after
    # these files, so a file torn by a crash is rewritten when the batch is resumed.
    path = os.path.join(run.spec.staging, out)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        written = os.write(fd, body)
        if written != len(body):
            raise OSError(errno.ENOSPC, f"wrote {written} of {len(body)} bytes")
    except OSError:
        with contextlib.suppress(OSError):  # no torn response left for a zip output to take
            os.unlink(path)
        raise
    finally:
        os.close(fd)


def _still_written(run: _Run, row: dict[str, str]) -> bool:
    """A journal row is reusable only if its response file survived (nothing was fsync'd); for a
    zip output, the coordinator passes on only rows whose entry the ZipWriter kept."""
    if not row.get("response_file") or not run.spec.staging:
        return True
    try:
        return os.stat(os.path.join(run.spec.staging, row["response_file"])).st_size == int(
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


def _list_inputs(input_path: Path, limits: ArchiveLimits) -> tuple[list[str], Entries | None]:
    """The inputs in name order, after checking that their responses can all be written apart:
    a zip's entries (BAD_ARCHIVE) and where they lie, or every file and link of a directory but
    hidden ones (INVALID_ARGUMENT; what is not a regular file gets its own report row, so does a
    name that is not UTF-8, which is not answered and so not checked)."""
    if input_path.suffix == ".zip":
        try:
            entries = checked_entries(input_path, limits)
        except OSError as exc:
            raise OfflineServiceError(
                Code.BAD_ARCHIVE, f"{input_path.name} is not a readable zip: {exc.strerror or exc}"
            ) from None
        check_batch_names(entries.names, code=Code.BAD_ARCHIVE)
        return entries.names, entries
    if not input_path.is_dir():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{input_path} is neither a directory nor a .zip")
    names = []
    for root, dirs, files in os.walk(input_path):
        # A link to a folder is listed (and reported), never followed.
        files += [d for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in files)
        for f in files:
            if not f.startswith("."):
                names.append(os.path.relpath(os.path.join(root, f), input_path).replace(os.sep, "/"))
    names.sort()
    check_batch_names(n for n in names if file_label(n) == n)
    return names, None


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
                item: dict[str, object] = {k: row.get(k, "") for k in REPORT_FIELDS}
                item["reissued"] = row.get("reissued") == "1"
                dst.write(("," if n else "") + "\n  " + json.dumps(item))
            dst.write("\n]\n")
        else:
            writer = csv.DictWriter(dst, fieldnames=REPORT_FIELDS, extrasaction="ignore")
            writer.writeheader()
            # A file name or message may start like a formula: made inert as on the portal's exports.
            writer.writerows(
                {
                    **{k: csv_cell(str(v)) for k, v in row.items()},
                    "reissued": "yes" if row.get("reissued") == "1" else "",
                }
                for row in rows
            )
    os.replace(tmp, report)


def _bounded(pool: ProcessPoolExecutor, tasks: Iterator[_Task], *, window: int) -> Iterator[_Result]:
    """Results in task order with at most ``window`` chunks in flight, so memory stays flat in
    the number of files (Executor.map would queue every task and buffer every early result).
    A worker that dies (killed, out of memory) fails the run instead of leaving it waiting
    forever for the chunk it took, as a ``multiprocessing.Pool`` would: its chunk's transaction
    committed or not, and running the batch again resumes either way."""
    pending: deque[Future[_Result]] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(_process_pool_chunk, task))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise OfflineServiceError(
            Code.INTERNAL_ERROR,
            f"a batch worker process stopped ({exc}); run the batch again to resume it",
        ) from None


def _journal_path(spec: _Spec, output: Path) -> Path:
    """The report rows' journal: in the output folder, or beside a zip output."""
    return Path(spec.staging) / JOURNAL if spec.staging else output.with_name(output.name + JOURNAL)


def _run(
    spec: _Spec,
    output: Path,
    pool: ProcessPoolExecutor | None,
    workers: int,
    engine: Engine | None,
    limits: ArchiveLimits | None,
    progress: Callable[[int, int], None] | None,
    on_row: Callable[[dict[str, str]], None] | None,
) -> tuple[int, int, int, int, ZipWriter | None]:
    """List and check the inputs, then process them; returns (accepted, rejected, skipped, total)
    and, for a zip output, its writer, still to be finished."""
    names, entries = _list_inputs(Path(spec.input), limits or ArchiveLimits())
    (Path(spec.staging) if spec.staging else output.parent).mkdir(parents=True, exist_ok=True)
    writer = None if spec.staging else ZipWriter.open(output)
    try:
        journal_path = _journal_path(spec, output)
        done = _load_journal(journal_path)
        if writer is not None:
            # A row is reused only with its response kept whole in the zip (what _still_written
            # checks of a response file); any other is processed again, and its entry replaced.
            kept = writer.resumed
            done = {
                n: row
                for n, row in done.items()
                if not row.get("response_file")
                or kept.get(row["response_file"], (-1,))[0] == _int(row.get("size"))
            }
        # Each chunk carries only the journal rows of its own files, and where its entries lie.
        tasks: Iterator[_Task] = (
            (
                names[i : i + CHUNK],
                {n: done[n] for n in names[i : i + CHUNK] if n in done},
                entries[i : i + CHUNK] if entries is not None else None,
            )
            for i in range(0, len(names), CHUNK)
        )
        accepted = rejected = skipped = finished = 0
        # This run's journal, in input order; rows of earlier runs come back through the workers for
        # files that did not change, so they are not processed again.
        with contextlib.ExitStack() as stack:
            journal = stack.enter_context(
                open(journal_path.with_name(journal_path.name + ".new"), "w", encoding="utf-8")
            )
            if pool is None:
                run = _Run.open(spec, engine)
                stack.callback(run.close)
                results: Iterator[_Result] = (_process_chunk(run, task) for task in tasks)
            else:
                results = _bounded(pool, tasks, window=2 * workers)
            for rows, reused, bodies in results:
                skipped += reused
                if writer is not None:
                    for row in rows:
                        body = bodies.get(row.get("response_file", ""))
                        if body is not None:
                            writer.add(row["response_file"], body)
                    # The chunk's responses are durable before its rows are journaled: a row in the
                    # journal always has its entry, and the database committed the chunk before.
                    writer.sync()
                for row in rows:
                    if row["code"] == "OK":
                        accepted += 1
                    else:
                        rejected += 1
                    journal.write(json.dumps(row) + "\n")
                    if on_row is not None:
                        on_row(row)
                journal.flush()
                finished += len(rows)
                if progress:
                    progress(finished, len(names))
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    return accepted, rejected, skipped, len(names), writer


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return -2


def run_batch(
    settings: Settings,
    *,
    account_id: str,
    input_path: Path,
    output: Path,
    report: Path,
    workers: int | None = None,
    engine: Engine | None = None,
    response_validity: int | None = None,
    limits: ArchiveLimits | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict[str, str]], None] | None = None,
    actor: str = "batch",
    allowed_licenses: frozenset[str] | None = None,
    kinds: frozenset[Kind] | None = None,
    now: int | None = None,
    report_entry: str | None = None,
) -> BatchSummary:
    """Process every request file under ``input_path``; write responses to ``output`` and one
    report row per input file to ``report`` (.csv or .json). ``engine``: process in this process
    with this engine (a server's, shared by its threads) instead of stores of the batch's own;
    ``workers`` must then be 1. With ``allowed_licenses``, requests for any other license are
    refused as LICENSE_NOT_FOUND (a portal user's batch); with ``kinds``, requests of other kinds
    are refused unrecorded; ``now`` fixes the time (default: the clock). ``on_row`` is given each
    file's row as it is recorded, in input order: the report's fields and DETAIL_FIELDS.
    ``report_entry``: a zip output also holds the report, as its last entry of this name."""
    started = time.perf_counter()
    if report.suffix not in (".csv", ".json"):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "the report must be a .csv or .json file")
    if engine is not None and workers not in (None, 1):
        raise ValueError("a batch given an engine runs in this process: workers must be 1")
    zip_out = output.suffix == ".zip"
    if report_entry is not None and not zip_out:
        raise ValueError("only a zip output holds the report as an entry")
    staging = "" if zip_out else str(output)
    workers = 1 if engine is not None else max(1, workers or os.cpu_count() or 1)
    spec = _Spec(
        settings=settings,
        account_id=account_id,
        input=str(input_path),
        staging=staging,
        validity=response_validity,
        actor=actor,
        allowed_licenses=allowed_licenses,
        kinds=kinds,
        now=now,
    )
    # Workers are forked before the input is listed: forked later, each would inherit the list of
    # every file name, and touching it (reference counts, GC) would copy it into every worker.
    # (The first task forks them all, with "fork"; hence the empty one.) Each worker opens this
    # run's store, keyring and zip in its initializer; the pool is this run's alone and ends with it.
    ctx = multiprocessing.get_context("spawn" if sys.platform != "linux" else "fork")
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(spec,))
        pool.submit(int)
    try:
        accepted, rejected, skipped, total, writer = _run(
            spec, output, pool, workers, engine, limits, progress, on_row
        )
    finally:
        if pool is not None:
            # After a failure, the chunks not begun are dropped; those begun end their transaction
            # (their journal rows are lost, so a new run processes them again, idempotently).
            pool.shutdown(wait=True, cancel_futures=True)
    journal_path = _journal_path(spec, output)
    try:
        os.replace(journal_path.with_name(journal_path.name + ".new"), journal_path)
        _write_report(report, journal_path)
        if writer is not None:
            if report_entry is not None:
                writer.add_file(report_entry, report)
            writer.finish()
        journal_path.unlink()
    finally:
        if writer is not None:
            writer.close()
    summary = BatchSummary(
        total=total,
        accepted=accepted,
        rejected=rejected,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
    _emit_completed(spec, engine, summary, input_path=input_path, output=output)
    return summary


def _emit_completed(
    spec: _Spec, engine: Engine | None, summary: BatchSummary, *, input_path: Path, output: Path
) -> None:
    """Queue ``batch.completed`` for the batch's account, in a write transaction of its own: the
    batch has no single transaction, and the event says the whole run ended (its chunks committed).
    Names only, never the caller's folders. A database failure here is logged, not raised: the
    run it would announce has succeeded, and its results are still returned."""
    data = {
        "total": summary.total,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "skipped": summary.skipped,
        "input": input_path.name,
        "output": output.name,
        "seconds": round(summary.seconds, 3),
    }
    now = spec.now if spec.now is not None else int(time.time())
    try:
        store = engine.store if engine is not None else open_store(spec.settings)
        try:
            with store.write() as tx:
                webhooks.emit(tx, spec.account_id, [("batch.completed", data)], now=now)
        finally:
            if engine is None:
                store.close()
    except OfflineServiceError as exc:
        # The run succeeded: every result is committed and in its report, and the caller gets
        # them. Only the notice is lost, which the operator must learn from the log.
        log.error(
            "batch.completed was not recorded for account %s (input %s, output %s): %s: %s;"
            " the batch itself finished (%d files: %d accepted, %d rejected, %d skipped)"
            " and its report holds every result, but no webhook announces it",
            spec.account_id,
            data["input"],
            data["output"],
            exc.code.value,
            exc.message,
            summary.total,
            summary.accepted,
            summary.rejected,
            summary.skipped,
        )
