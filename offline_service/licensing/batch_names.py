"""The names in a batch: which inputs can be answered side by side wherever the batch is unpacked,
the response file of each input, and how the report shows a name. Checked before anything is
processed or recorded, so a batch is refused whole rather than half answered."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from offline_service.errors import Code, OfflineServiceError

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "check_batch_names",
    "check_response_names",
    "file_label",
    "response_name",
]

MAX_NAME_BYTES = 255  # one part of a path (a file or folder name), as most file systems allow
MAX_PATH_BYTES = 1024  # a whole path inside the batch, input or response, in UTF-8


def check_response_names(inputs: Iterable[tuple[str, str]]) -> None:
    """Refuse, before anything is processed, inputs (label, response file) of which two would be
    answered in the same file (a.req and a.txt in a.response, or A.req and a.req where case is
    folded): one response would be lost."""
    answered: dict[str, tuple[int, str]] = {}
    for position, (label, response) in enumerate(inputs):
        first, other = answered.setdefault(_folded(response), (position, label))
        if first != position:  # the same file named twice counts as two inputs too
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, f"{other} and {label} would both be answered in {response}; rename one"
            )


def check_batch_names(names: Iterable[str], *, code: Code = Code.INVALID_ARGUMENT) -> None:
    """Refuse, before anything is processed or recorded, input names (relative, ``/``-separated)
    of which the inputs or their responses could not all be written apart wherever the batch is
    unpacked: two equal once case is folded (Windows and macOS fold it), one a file where another
    needs a folder (``a.req`` answered in ``a.response``, ``a.response/b.req`` inside it), a part
    of a path over MAX_NAME_BYTES or a path over MAX_PATH_BYTES (UTF-8). ``code``: BAD_ARCHIVE
    for a zip, INVALID_ARGUMENT for a directory."""
    names = list(names)
    for what, path_of in (("entry", str), ("response", response_name)):
        files: dict[str, int] = {}  # folded path -> index of its input
        folders: dict[str, int] = {}  # folded folder -> index of an input under it
        for i, name in enumerate(names):
            path = path_of(name)
            size = len(path.encode("utf-8"))
            if size > MAX_PATH_BYTES:
                raise OfflineServiceError(
                    code, f"{what} {path!r} of {name!r} is {size} bytes long; the limit is {MAX_PATH_BYTES}"
                )
            parts = path.split("/")
            for part in parts:
                if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                    raise OfflineServiceError(
                        code, f"{what} {path!r} of {name!r} has a name over {MAX_NAME_BYTES} bytes; rename it"
                    )
            key = _folded(path)
            first = files.setdefault(key, i)
            if first != i:
                if what == "entry":
                    problem = f"{names[first]} and {name} differ only in case or Unicode form"
                else:
                    problem = f"{names[first]} and {name} would both be answered in {path!r}"
                raise OfflineServiceError(code, f"{problem}; rename one")
            for depth in range(1, len(parts)):
                folders.setdefault(_folded("/".join(parts[:depth])), i)
        for key, i in files.items():
            if key in folders:
                other = names[folders[key]]
                raise OfflineServiceError(
                    code,
                    f"{names[i]} and {other}: {what} {path_of(names[i])!r} would be a file and also the"
                    f" folder of {path_of(other)!r}; rename one",
                )


def _folded(path: str) -> str:
    """A path as a file system that folds case and normalises Unicode sees it."""
    return unicodedata.normalize("NFC", path).casefold()


def response_name(name: str) -> str:
    """The response file for an input: its extension replaced by ``.response``."""
    path = Path(name)
    return str(path.with_suffix(".response")) if path.suffix else name + ".response"


def file_label(name: str) -> str:
    """A name as the report shows it: one that is not UTF-8 (os.walk's surrogate escapes) with
    its undecodable bytes as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
