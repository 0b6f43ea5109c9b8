"""Offline activation for a logged-in person, shared by the JSON API and the portal: one request
file, or a zip of them, processed by the engine within the licenses the person may use."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing.batch import run_batch
from offline_service.licensing.engine import Outcome, Pending
from offline_service.licensing.models import BatchFile
from offline_service.web.auth import API_KINDS, Caller, resolve_caller
from offline_service.web.services import Services

__all__ = ["RequestQueue", "RequestRefused", "ZipResult", "process_request", "process_zip"]


class RequestRefused(OfflineServiceError):
    """A request file the engine refused. ``kind`` is what the file asks for, when it could be
    read: a page uses it to name the page the file belongs on."""

    def __init__(self, code: Code, message: str | None = None, *, kind: Kind | None = None) -> None:
        super().__init__(code, message)
        self.kind = kind


async def process_request(
    svc: Services, caller: Caller, data: bytes, *, validity: int | None, kinds: tuple[Kind, ...]
) -> Outcome:
    """Process one request file for ``caller``; raises OfflineServiceError with the engine's code
    when it is refused. Trials are not processed here: they have their own endpoint."""
    result = await run_in_threadpool(_engine, svc, caller, [data], validity, kinds)
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


@dataclass(frozen=True, slots=True)
class _Job:
    token: str
    data: bytes
    validity: int | None
    kinds: tuple[Kind, ...]


class RequestQueue:
    """Request files of API callers (bearer tokens), processed in groups: the requests that arrive
    together, or while the group before them is processed, are taken as one group, where each
    token is resolved once and the requests of one caller share one engine transaction. Under
    load this is one commit for several requests instead of one each. Lives on one event loop.

    Its pending list is per process on purpose: a performance grouping of one process's requests,
    not a limit. Other processes group their own; what requests may do is decided in the engine's
    transactions, which the store serialises across processes."""

    MAX_BATCH = 64
    # Event-loop turns the drainer waits, once requests are pending, for no new one to arrive
    # before it takes them: the requests whose bodies were read in the same turn reach the
    # queue over the next one or two. Measured with 8 clients: groups went from mostly 1-3 to
    # 8, and throughput up by a sixth; a turn with nothing to run costs a few microseconds.
    GATHER_TURNS = 2

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._pending: list[tuple[_Job, asyncio.Future[Outcome]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def process(
        self, token: str, data: bytes, *, validity: int | None, kinds: tuple[Kind, ...]
    ) -> Outcome:
        """Like ``process_request``, for the person behind an access token (UNAUTHENTICATED if none)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((_Job(token, data, validity, kinds), future))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._gather()
                batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
                try:
                    results = await self._run(batch)
                except Exception as exc:
                    # Only from outside the engine's transactions (resolving tokens, the writers'
                    # lock, signing): every request of the trip gets it, and the app's handler
                    # logs it. A file whose decision was recorded is reissued when sent again.
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._drainer = None

    async def _run(self, batch: list[tuple[_Job, asyncio.Future[Outcome]]]) -> list[Outcome | Exception]:
        """Tokens, then parse and verify, on this thread and with no lock; the decisions under the
        writers' lock, on this thread when the lock is free right now (the work is CPU-bound, and
        a hop to a worker thread only adds GIL hand-overs: measured, about a quarter of the
        throughput), otherwise on a worker thread, so that the event loop never waits for another
        process's transaction; then the signatures, here, the lock released."""
        run = _Run(self.svc, [job for job, _ in batch])
        with self.svc.store.write_lock_if_free() as free:
            if free:
                run.decide()
        if not free:
            await run_in_threadpool(run.decide)
        return run.finish()

    async def _gather(self) -> None:
        """Let the event loop run until no request has joined the queue for GATHER_TURNS turns
        (or a full batch waits), so that requests arriving together share one transaction."""
        seen, quiet = len(self._pending), 0
        while quiet < self.GATHER_TURNS and seen < self.MAX_BATCH:
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._pending) == seen else 0
            seen = len(self._pending)


class _Group:
    """The requests of one caller (and validity and kinds) in one trip: one engine transaction."""

    __slots__ = ("caller", "indexes", "items", "kinds", "outcomes", "validity")

    def __init__(self, caller: Caller, validity: int | None, kinds: tuple[Kind, ...]) -> None:
        self.caller, self.validity, self.kinds = caller, validity, kinds
        self.indexes: list[int] = []
        self.items: list[Pending] = []
        self.outcomes: list[Outcome | Exception] | None = None  # when decided other than in items


class _Run:
    """One trip of the queue through the engine's three phases: ``__init__`` resolves each token
    once and verifies every file (no lock), ``decide()`` runs one write transaction per caller
    (the only part that needs the writers' lock), ``finish()`` signs (no lock)."""

    __slots__ = ("_groups", "_jobs", "_now", "_results", "_svc")

    def __init__(self, svc: Services, jobs: list[_Job]) -> None:
        self._svc, self._jobs = svc, jobs
        self._results: dict[int, Outcome | Exception] = {}
        callers: dict[str, Caller | OfflineServiceError] = {}
        self._groups: dict[tuple[str, int | None, tuple[Kind, ...]], _Group] = {}
        self._now = now = svc.now()  # one time for the three phases, as in Engine.process_many
        for i, job in enumerate(jobs):
            caller = callers.get(job.token)
            if caller is None:
                try:
                    caller = callers[job.token] = resolve_caller(svc, job.token, API_KINDS)
                except OfflineServiceError as exc:
                    caller = callers[job.token] = exc
            if isinstance(caller, OfflineServiceError):
                self._results[i] = caller
                continue
            key = (job.token, job.validity, job.kinds)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(caller, job.validity, job.kinds)
            group.indexes.append(i)
        for group in self._groups.values():
            group.items = svc.engine.verify_many(
                [jobs[i].data for i in group.indexes], now=now, kinds=frozenset(group.kinds)
            )

    def decide(self) -> None:
        """Phase 2: one write transaction per group. A group refused as a whole (storage, a bad
        validity) gets that error, nothing recorded; a failure nobody expected (rolled back) is
        retried one request at a time, so that it fails only the request that causes it (the
        request's handler logs it)."""
        svc = self._svc
        for group in self._groups.values():
            caller = group.caller
            try:
                with svc.engine.write() as tx:
                    svc.engine.decide_many(
                        tx,
                        group.items,
                        account_id=caller.user.account_id,
                        now=self._now,
                        response_validity=group.validity,
                        actor=caller.actor,
                        license_filter=caller.may_use,
                    )
            except OfflineServiceError as exc:
                group.outcomes = [exc] * len(group.indexes)
            except Exception as exc:
                # The items were decided in a transaction that rolled back: not signed, redone.
                datas = [self._jobs[i].data for i in group.indexes]
                group.outcomes = (
                    [exc]
                    if len(datas) == 1
                    else [_one(svc, caller, d, group.validity, group.kinds) for d in datas]
                )

    def finish(self) -> list[Outcome | Exception]:
        """Phase 3: sign what was granted; one result per job, in order."""
        for group in self._groups.values():
            outcomes = group.outcomes
            if outcomes is None:
                outcomes = [_result(o) for o in self._svc.engine.sign_many(group.items)]
            for i, outcome in zip(group.indexes, outcomes, strict=True):
                self._results[i] = outcome
        return [self._results[i] for i in range(len(self._jobs))]


def _engine(
    svc: Services, caller: Caller, datas: list[bytes], validity: int | None, kinds: tuple[Kind, ...]
) -> list[Outcome | Exception]:
    outcomes = svc.engine.process_many(
        datas,
        account_id=caller.user.account_id,
        now=svc.now(),
        response_validity=validity,
        actor=caller.actor,
        license_filter=caller.may_use,
        kinds=frozenset(kinds),
    )
    return [_result(o) for o in outcomes]


def _result(outcome: Outcome) -> Outcome | Exception:
    """A granted outcome as it is; a refused one as the error its caller raises."""
    return outcome if outcome.ok else RequestRefused(outcome.code, outcome.message, kind=outcome.kind)


def _one(
    svc: Services, caller: Caller, data: bytes, validity: int | None, kinds: tuple[Kind, ...]
) -> Outcome | Exception:
    try:
        return _engine(svc, caller, [data], validity, kinds)[0]
    except Exception as exc:  # not swallowed: handed to the request's handler, which logs it
        return exc


@dataclass(frozen=True, slots=True)
class ZipResult:
    archive: bytes  # the responses, and report.csv
    accepted: int
    rejected: int
    files: tuple[BatchFile, ...] = ()  # what became of each file, in the report's order


def _batch_file(row: dict[str, str]) -> BatchFile:
    """A batch's report row and its details (``batch.DETAIL_FIELDS``) as a record."""
    return BatchFile(
        file=row["file"],
        kind=row["kind"],
        code=row["code"],
        reissued=row.get("reissued") == "1",
        activation_id=row["activation_id"],
        license_id=row.get("license_id", ""),
        hostname=row.get("hostname", ""),
        fingerprint=row.get("fingerprint", ""),
        message=row["message"],
    )


# A person's zip may activate and deactivate; trials need no license and have their own endpoint.
_ZIP_KINDS = frozenset({Kind.ACTIVATION, Kind.DEACTIVATION})


def _process_zip(svc: Services, caller: Caller, upload: bytes, validity: int | None) -> ZipResult:
    with tempfile.TemporaryDirectory(prefix="ofs-upload-") as tmp:
        root = Path(tmp)
        source, output, report = root / "requests.zip", root / "responses.zip", root / "report.csv"
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(upload)
        # In this thread, with the app's engine and store (threads take turns on its connection);
        # the run's state lives in this call only, so uploads at the same time never share it.
        files: list[BatchFile] = []
        summary = run_batch(
            svc.settings,
            account_id=caller.user.account_id,
            input_path=source,
            output=output,
            report=report,
            engine=svc.engine,
            response_validity=validity,
            actor=caller.actor,
            allowed_licenses=caller.license_ids,
            kinds=_ZIP_KINDS,
            now=svc.now(),
            on_row=lambda row: files.append(_batch_file(row)),
            report_entry="report.csv",
        )
        svc.metrics.batch(summary)
        return ZipResult(
            archive=output.read_bytes(),
            accepted=summary.accepted,
            rejected=summary.rejected,
            files=tuple(files),
        )


async def process_zip(
    svc: Services, caller: Caller, upload: bytes, *, validity: int | None = None
) -> ZipResult:
    """Every request in an uploaded zip (checked like the CLI's: entries, sizes, ratio, names),
    for the licenses ``caller`` may use; the responses and a CSV report come back as one zip,
    and what became of each file as records (for the portal's result page)."""
    if not upload:
        raise OfflineServiceError(Code.BAD_ARCHIVE, "the upload is empty")
    return await run_in_threadpool(_process_zip, svc, caller, upload, validity)


def report_rows(archive: bytes) -> list[dict[str, str]]:
    """The report of a ZipResult, for pages that show it."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return list(csv.DictReader(io.StringIO(z.read("report.csv").decode("utf-8"))))
