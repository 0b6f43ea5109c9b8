"""HTTP delivery of release files without a server: which single byte range a ``Range`` header
asks for, and a ``Content-Disposition`` that is safe for any file name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.releases.delivery import RangeNotSatisfiable, byte_range, content_disposition


@given(st.text(max_size=30), st.integers(min_value=0, max_value=10**6))
def test_byte_range_is_within_the_file_or_refused(header: str, size: int) -> None:
    try:
        found = byte_range(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.size == size
        return
    assert found is None or 0 <= found[0] < found[1] <= size


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
)
def test_byte_range_of_well_formed_headers(first: int, last: int, size: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert byte_range(header, size) is None
    elif first >= size:
        with pytest.raises(RangeNotSatisfiable):
            byte_range(header, size)
    else:
        assert byte_range(header, size) == (first, min(last + 1, size))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.bin", "attachment; filename=\"app.bin\"; filename*=UTF-8''app.bin"),
        ('a"b\\c.exe', "attachment; filename=\"a_b_c.exe\"; filename*=UTF-8''a%22b%5Cc.exe"),
        (
            "Setup 2.0 é.msi",
            "attachment; filename=\"Setup_2.0_.msi\"; filename*=UTF-8''Setup%202.0%20%C3%A9.msi",
        ),
        ("中文", "attachment; filename=\"download\"; filename*=UTF-8''%E4%B8%AD%E6%96%87"),
    ],
)
def test_content_disposition_is_safe(name: str, expected: str) -> None:
    assert content_disposition(name) == expected
