"""CSV cells a spreadsheet opens as text, never as a formula (CSV or formula injection).

Every CSV the service writes (the activations and audit exports, the batch report) holds text
that came from request files or people, so each cell goes through ``csv_cell``. The rule follows
OWASP's CSV-injection guidance and ASVS 1.2.10, and closes the ways around a check of the first
character:

* A cell that would start a formula gets a single quote (``'``) before it, which a spreadsheet
  takes as "this is text" and does not show. A formula starts with ``=``, ``+``, ``-`` or ``@``,
  or a character a spreadsheet may read as one of them: the full-width forms (U+FF1D, U+FF0B,
  U+FF0D, U+FF20), the small and superscript forms (anything NFKC-normalising to one of the four)
  and the minus sign U+2212.
* Leading whitespace (spaces, no-break and ideographic spaces, tabs, line breaks), control
  characters and invisible format characters (zero-width space, joiners, word joiner, byte-order
  mark, direction marks) do not hide a formula: the first character after them decides.
* A cell never starts with a control character (tab, CR, LF, NUL, escape, ...), formula or not.

Decided and kept so: a leading ``-`` is quoted too, so a negative number is exported as ``'-5``
(the export has no numeric columns; OWASP quotes it as well). ``|`` and ``%`` are not triggers
(no spreadsheet starts a formula with them; ``=cmd|...`` needs the ``=`` first). Separators,
quotes and line breaks inside a cell are the CSV writer's business: it quotes such a cell, so no
formula can start a new cell in the middle of one.
"""

from __future__ import annotations

import unicodedata

__all__ = ["csv_cell"]

_TRIGGERS = frozenset("=+-@")
_ALSO_TRIGGERS = frozenset("\u2212")  # MINUS SIGN: not NFKC-equal to "-", still read as one


def _invisible(char: str) -> bool:
    """Whitespace, a control character, or a format character that shows nothing (Cf)."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def _trigger(char: str) -> bool:
    return char in _ALSO_TRIGGERS or unicodedata.normalize("NFKC", char)[:1] in _TRIGGERS


def csv_cell(value: str) -> str:
    """``value`` made inert for spreadsheets: a single quote before it when it starts with a control
    character, or when its first visible character starts a formula."""
    if not value:
        return value
    if unicodedata.category(value[0]) == "Cc":
        return "'" + value
    first = next((c for c in value if not _invisible(c)), "")
    return "'" + value if first and _trigger(first) else value
