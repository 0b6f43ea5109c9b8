"""Release versions: what is accepted, and the order a license's maximum version is compared in."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.errors import Code, OfflineServiceError
from offline_service.releases.versions import Version, parse_version

# Each is before the next (the semantic-versioning example, plus shorter and longer forms).
ASCENDING = [
    "0.9",
    "1.0.0-0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2",
    "2.9.1-beta.1",
    "2.9.1",
    "2.10.0",
    "2.10.0.1",
    "10",
]


def test_examples_are_in_order() -> None:
    parsed = [parse_version(v) for v in ASCENDING]
    assert sorted(reversed(parsed)) == parsed
    for earlier, later in itertools.pairwise(parsed):
        assert earlier < later, (earlier, later)


@pytest.mark.parametrize(("a", "b"), [("2.9", "2.9.0"), ("1", "1.0.0.0"), ("3.0-rc.1", "3.0.0-rc.1")])
def test_missing_numbers_are_zero(a: str, b: str) -> None:
    assert parse_version(a) == parse_version(b)
    assert hash(parse_version(a)) == hash(parse_version(b))
    assert str(parse_version(a)) == a  # the text is kept as published


@pytest.mark.parametrize(
    "bad",
    ["", "v1.0", "1.", ".1", "1..2", "01.2", "1.02", "1.2.3.4.5", "1.0-", "1.0-beta..1", "1.0-01",
     "1.0+build", "1.0 beta", "1.0-bé", "1234567890.0", "1." + "1" * 70, "1.0\n", "-1"],
)  # fmt: skip
def test_invalid_versions_are_refused(bad: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        parse_version(bad)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_a_version_is_a_string() -> None:
    with pytest.raises(TypeError):
        parse_version(2)  # type: ignore[arg-type]


_number = st.integers(min_value=0, max_value=999_999_999).map(str)
_word = st.from_regex(r"\A[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*\Z").filter(lambda w: 0 < len(w) <= 8)
_identifier = st.one_of(st.integers(min_value=0, max_value=10**6).map(str), _word)
versions = st.builds(
    lambda numbers, pre: ".".join(numbers) + (f"-{'.'.join(pre)}" if pre else ""),
    st.lists(_number, min_size=1, max_size=4),
    st.lists(_identifier, max_size=3),
).filter(lambda text: len(text) <= 64)


@given(versions)
def test_every_generated_version_parses_and_keeps_its_text(text: str) -> None:
    assert parse_version(text).text == text
    assert parse_version(text) == parse_version(text)


@given(versions, versions)
def test_the_order_is_total_and_antisymmetric(a: str, b: str) -> None:
    x, y = parse_version(a), parse_version(b)
    assert [x < y, x == y, x > y].count(True) == 1
    assert (x <= y and y <= x) == (x == y)
    if x == y:
        assert hash(x) == hash(y)


@given(versions, versions, versions)
def test_the_order_is_transitive(a: str, b: str, c: str) -> None:
    x, y, z = sorted(parse_version(v) for v in (a, b, c))
    assert x <= y <= z and x <= z


@given(versions)
def test_a_pre_release_comes_before_its_release(text: str) -> None:
    version = parse_version(text)
    release = parse_version(text.split("-", 1)[0])
    assert release.final
    if version.final:
        assert version == release
    else:
        assert version < release


@given(st.lists(versions, max_size=8))
def test_sorting_agrees_with_pairwise_comparison(texts: list[str]) -> None:
    ordered: list[Version] = sorted(parse_version(t) for t in texts)
    for i, earlier in enumerate(ordered):
        for later in ordered[i + 1 :]:
            assert not later < earlier
