"""The results of portal batches, kept in the database so that the batch page can answer its post
with a redirect (post/redirect/get) and any instance can show the result and serve its zip.

A result belongs to the person who uploaded it: every read names the account, the user and the
time, so anyone else, and everyone after ``expires_at``, finds nothing. Expired results are
deleted a few at a time in the transaction that stores a new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from offline_service.errors import Code
from offline_service.ids import ID_PREFIXES, new_id
from offline_service.licensing.models import BatchFile, BatchResult
from offline_service.store import Store

__all__ = [
    "ACCEPTED",
    "PRUNE_BATCH",
    "REFUSED",
    "REISSUED",
    "RESULT_SECONDS",
    "Summary",
    "find",
    "find_archive",
    "outcome",
    "save",
    "summarize",
]

RESULT_SECONDS = 24 * 3600
PRUNE_BATCH = 16  # expired results deleted per new one at most: bounded work, yet faster than they come

# What became of a file, in one word each (web/labels.py has the words the pages show).
ACCEPTED, REISSUED, REFUSED = "accepted", "reissued", "refused"


def outcome(f: BatchFile) -> str:
    """ACCEPTED (recorded and counted), REISSUED (the same request again: the same answer,
    nothing counted) or REFUSED."""
    if f.code != Code.OK.value:
        return REFUSED
    return REISSUED if f.reissued else ACCEPTED


@dataclass(frozen=True, slots=True)
class Summary:
    """How many files of a batch came to what: accepted ones by kind, reissued ones, and refused
    ones by code (most frequent first, then by code)."""

    activations: int
    deactivations: int
    reissued: int
    refused: tuple[tuple[str, int], ...]

    @property
    def accepted(self) -> int:
        return self.activations + self.deactivations

    @property
    def refused_total(self) -> int:
        return sum(n for _, n in self.refused)

    @property
    def total(self) -> int:
        return self.accepted + self.reissued + self.refused_total


def summarize(files: Iterable[BatchFile]) -> Summary:
    """The counts of a batch's files."""
    kinds: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    reissued = 0
    for f in files:
        what = outcome(f)
        if what == ACCEPTED:
            kinds[f.kind] += 1
        elif what == REISSUED:
            reissued += 1
        else:
            codes[f.code] += 1
    return Summary(
        activations=kinds["activation"],
        deactivations=kinds["deactivation"],
        reissued=reissued,
        refused=tuple(sorted(codes.items(), key=lambda item: (-item[1], item[0]))),
    )


def save(
    store: Store, *, account_id: str, user_id: str, files: Iterable[BatchFile], archive: bytes, now: int
) -> BatchResult:
    """Keep a batch's result for its uploader for RESULT_SECONDS; in the same transaction, delete
    at most PRUNE_BATCH expired ones (blocking)."""
    result = BatchResult(
        id=new_id(ID_PREFIXES["batch"]),  # 80 random bits: unguessable, and scoped to its person besides
        account_id=account_id,
        user_id=user_id,
        created_at=now,
        expires_at=now + RESULT_SECONDS,
        files=tuple(files),
    )
    with store.write() as tx:
        tx.prune_batch_results(now, PRUNE_BATCH)
        tx.insert_batch_result(result, archive)
    return result


def find(store: Store, *, account_id: str, user_id: str, result_id: str, now: int) -> BatchResult | None:
    """The result if it is this person's and has not expired; None otherwise, whichever the
    reason (blocking)."""
    with store.read(one_statement=True) as tx:
        return tx.batch_result(account_id, user_id, result_id, now)


def find_archive(
    store: Store, *, account_id: str, user_id: str, result_id: str, now: int
) -> tuple[int, bytes] | None:
    """When the result was made and its zip of responses, under the same conditions as ``find``
    (blocking)."""
    with store.read(one_statement=True) as tx:
        return tx.batch_result_archive(account_id, user_id, result_id, now)
