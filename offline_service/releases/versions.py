"""Release versions and their order: what ``release publish`` accepts and what a license's maximum
version is compared with.

A version is one to four dot-separated numbers without leading zeros, optionally followed by ``-``
and a pre-release of dot-separated identifiers (letters, digits, ``-``), as in semantic versioning:
``2.10.0`` > ``2.9.1`` > ``2.9.1-rc.1`` > ``2.9.1-beta.2`` > ``2.9.1-beta.1`` > ``2.9``.

Missing numbers count as zero, so ``2.9`` and ``2.9.0`` are the same version. A pre-release comes
before its release; pre-release identifiers compare one by one, numbers numerically and below words,
words in ASCII order, and a longer list after its own prefix (``rc`` < ``rc.1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from offline_service.errors import Code, OfflineServiceError

__all__ = ["MAX_VERSION_LENGTH", "Version", "parse_version"]

MAX_VERSION_LENGTH = 64
_NUMBERS = 4
_SHAPE = re.compile(
    r"\A(0|[1-9][0-9]{0,8})((?:\.(?:0|[1-9][0-9]{0,8})){0,3})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z"
)
_NUMERIC = re.compile(r"\A(0|[1-9][0-9]*)\Z")

# One pre-release identifier as a comparable tuple: numbers (0, n, "") sort before words (1, 0, w).
_Identifier = tuple[int, int, str]


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A parsed version. Equal and ordered by meaning, not by text: ``2.9 == 2.9.0``."""

    numbers: tuple[int, ...]  # always _NUMBERS long
    final: bool  # False for a pre-release, which comes before the release itself
    pre: tuple[_Identifier, ...]
    text: str = field(compare=False)

    def __str__(self) -> str:
        return self.text


def parse_version(text: str) -> Version:
    """The version ``text`` stands for; INVALID_ARGUMENT when it is not one."""
    if not isinstance(text, str):
        raise TypeError("a version is a string")
    match = _SHAPE.match(text) if len(text) <= MAX_VERSION_LENGTH else None
    if match is None:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"{text[:MAX_VERSION_LENGTH]!r} is not a version like 2.10.0 or 2.10.0-beta.1"
            f" (1-4 numbers without leading zeros, an optional -pre-release; at most {MAX_VERSION_LENGTH}"
            " characters)",
        )
    head, rest, pre = match.groups()
    numbers = [int(head), *(int(n) for n in rest.split(".")[1:] if rest)]
    identifiers: list[_Identifier] = []
    for part in pre.split(".") if pre else ():
        if part.isdigit():
            if not _NUMERIC.match(part):
                raise OfflineServiceError(
                    Code.INVALID_ARGUMENT, f"{text!r}: a numeric pre-release part has no leading zeros"
                )
            identifiers.append((0, int(part), ""))
        else:
            identifiers.append((1, 0, part))
    return Version(
        numbers=tuple(numbers + [0] * (_NUMBERS - len(numbers))),
        final=pre is None,
        pre=tuple(identifiers),
        text=text,
    )
