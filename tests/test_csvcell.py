"""CSV cells a spreadsheet cannot run as formulas (OWASP's CSV-injection guidance)."""

from __future__ import annotations

import csv
import io

import pytest

from offline_service.csvcell import csv_cell

FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A formula trigger first: = + - @ and their full-width and small forms.
        (FORMULA, "'" + FORMULA),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\uff1dcmd", "'\uff1dcmd"),  # full-width = + - @
        ("\uff0b1+1", "'\uff0b1+1"),
        ("\uff0d2+3", "'\uff0d2+3"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("\ufe66cmd", "'\ufe66cmd"),  # small equals sign
        ("\u2212" + "2+3", "'\u22122+3"),  # minus sign
        # A cell never starts with a control character (tab, CR, LF, NUL, ...), formula or not.
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\ncmd", "'\ncmd"),
        ("\x00cmd", "'\x00cmd"),
        ("\x1b[31m", "'\x1b[31m"),
        # Whitespace or invisible characters before a trigger do not hide it.
        (" " + FORMULA, "' " + FORMULA),
        ("   +1", "'   +1"),
        ("\u00a0=1", "'\u00a0=1"),  # no-break space
        ("\u3000=1", "'\u3000=1"),  # ideographic space
        ("\t=1", "'\t=1"),
        ("\r\n=1", "'\r\n=1"),
        ("\u200b=1", "'\u200b=1"),  # zero-width space
        ("\u200c=1", "'\u200c=1"),  # zero-width non-joiner
        ("\u200d=1", "'\u200d=1"),  # zero-width joiner
        ("\u2060=1", "'\u2060=1"),  # word joiner
        ("\ufeff=1", "'\ufeff=1"),  # byte-order mark
        ("\u202e=1", "'\u202e=1"),  # right-to-left override
        ("\u200b \ufeff\uff1d1", "'\u200b \ufeff\uff1d1"),  # several, then a full-width =
        # Ordinary values stay as they are.
        ("", ""),
        ("lab-pc-7", "lab-pc-7"),
        ("a=b", "a=b"),
        ("user1@example.com", "user1@example.com"),
        ("act_01hq3k9x2v", "act_01hq3k9x2v"),
        ("2027-01-15T08:00:00Z", "2027-01-15T08:00:00Z"),
        ("Windows 11 (x64)", "Windows 11 (x64)"),
        ("  padded", "  padded"),
        ("\u200bword", "\u200bword"),
        ("'=already quoted", "'=already quoted"),
        ("100%", "100%"),
        ("a|b", "a|b"),
    ],
)
def test_csv_cells_cannot_become_formulas(value: str, expected: str) -> None:
    assert csv_cell(value) == expected


def test_a_row_read_back_is_what_was_written_but_for_the_quote_before_a_would_be_formula() -> None:
    row = [
        "user1@example.com",
        "act_01hq3k9x2v",
        "2027-01-15T08:00:00Z",
        "-5",
        "lab-pc-7",
        " =1",
        'a,"b"\n=c',
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([csv_cell(c) for c in row])
    [back] = list(csv.reader(io.StringIO(out.getvalue())))
    # A negative number is quoted too (OWASP: a leading minus starts a formula); a separator, quote
    # or line break inside a cell is kept inside it by the CSV quoting, so it starts no new cell.
    assert back == [
        "user1@example.com",
        "act_01hq3k9x2v",
        "2027-01-15T08:00:00Z",
        "'-5",
        "lab-pc-7",
        "' =1",
        'a,"b"\n=c',
    ]
