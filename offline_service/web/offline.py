"""Offline activation for a logged-in person, shared by the JSON API and the portal: one request
file, or a zip of them, processed by the engine within the licenses the person may use."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from .._b64 import b64url_decode
from ..batch import run_batch
from ..engine import Outcome
from ..errors import Code, OfflineServiceError
from ..jws import MAX_FILE_BYTES, strict_json, unarmor
from ..messages import Kind
from .auth import Caller
from .services import Services

__all__ = ["ZipResult", "process_request", "process_zip"]


def _declared_kind(data: bytes) -> str | None:
    """The kind a request says it is, read without verifying it: only to refuse a file sent to the
    wrong place before the engine records anything. The engine still verifies everything."""
    try:
        parts = unarmor(data[: MAX_FILE_BYTES + 1]).split(b".")
        kind = strict_json(b64url_decode(parts[1])).get("kind") if len(parts) == 3 else None
    except (ValueError, UnicodeError, RecursionError):
        return None
    return kind if isinstance(kind, str) else None


def _process(
    svc: Services, caller: Caller, data: bytes, validity: int | None, kinds: tuple[Kind, ...]
) -> Outcome:
    declared = _declared_kind(data)
    if declared is not None and declared not in {k.value for k in kinds}:
        raise OfflineServiceError(
            Code.MALFORMED_REQUEST,
            f"this is a {declared} request; this page takes {' or '.join(k.value for k in kinds)} requests",
        )
    return svc.engine.process(
        data,
        account_id=caller.user.account_id,
        now=svc.now(),
        response_validity=validity,
        actor=caller.actor,
        license_filter=caller.may_use,
    )


async def process_request(
    svc: Services, caller: Caller, data: bytes, *, validity: int | None, kinds: tuple[Kind, ...]
) -> Outcome:
    """Process one request file for ``caller``; raises OfflineServiceError with the engine's code
    when it is refused. Trials are not processed here: they have their own endpoint."""
    outcome = await run_in_threadpool(_process, svc, caller, data, validity, kinds)
    if not outcome.ok:
        raise OfflineServiceError(Code(outcome.code), outcome.message)
    return outcome


@dataclass(frozen=True, slots=True)
class ZipResult:
    archive: bytes  # the responses, and report.csv
    accepted: int
    rejected: int


def _process_zip(svc: Services, caller: Caller, upload: bytes, validity: int | None) -> ZipResult:
    with tempfile.TemporaryDirectory(prefix="ofs-upload-") as tmp:
        root = Path(tmp)
        source, output, report = root / "requests.zip", root / "responses.zip", root / "report.csv"
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(upload)
        summary = run_batch(
            svc.settings,
            account_id=caller.user.account_id,
            input_path=source,
            output=output,
            report=report,
            workers=1,
            response_validity=validity,
            actor=caller.actor,
            allowed_licenses=caller.license_ids,
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
            if output.exists():
                with zipfile.ZipFile(output) as responses:
                    for info in responses.infolist():
                        out.writestr(info.filename, responses.read(info))
            out.writestr("report.csv", report.read_bytes())
        return ZipResult(archive=buffer.getvalue(), accepted=summary.accepted, rejected=summary.rejected)


async def process_zip(
    svc: Services, caller: Caller, upload: bytes, *, validity: int | None = None
) -> ZipResult:
    """Every request in an uploaded zip (checked like the CLI's: entries, sizes, ratio, names),
    for the licenses ``caller`` may use; the responses and a CSV report come back as one zip."""
    if not upload:
        raise OfflineServiceError(Code.BAD_ARCHIVE, "the upload is empty")
    return await run_in_threadpool(_process_zip, svc, caller, upload, validity)


def report_rows(archive: bytes) -> list[dict[str, str]]:
    """The report of a ZipResult, for pages that show it."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return list(csv.DictReader(io.StringIO(z.read("report.csv").decode("utf-8"))))
