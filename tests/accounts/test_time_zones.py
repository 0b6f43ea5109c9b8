"""The time zones the profile page offers (``accounts.time_zones``): canonical names only, each
with its offset at the time, in order of offset; and what the form may send back."""

from __future__ import annotations

import datetime as dt

import pytest

from offline_service.accounts import time_zones
from offline_service.errors import Code, OfflineServiceError
from tests.factories import NOW  # 2027-01-15: winter in Europe

SUMMER = int(dt.datetime(2027, 7, 15, 12, tzinfo=dt.UTC).timestamp())
# Europe's summer time ends at 01:00 UTC on the last Sunday of October.
AFTER_CHANGE = int(dt.datetime(2027, 10, 31, 2, tzinfo=dt.UTC).timestamp())
# Aliases and legacy names the tz database has, none of which is offered.
NOT_OFFERED = (
    "Factory",
    "Etc/GMT+3",
    "Etc/UTC",
    "GMT+0",
    "GMT",
    "UCT",
    "Zulu",
    "US/Eastern",
    "localtime",
    "posixrules",
    "Asia/Calcutta",
    "Europe/Kiev",
    "Australia/NSW",
    "America/Buenos_Aires",
)


def test_only_canonical_zones_are_offered() -> None:
    names = time_zones.names()
    for legacy in NOT_OFFERED:
        assert legacy not in names, legacy
    for canonical in ("UTC", "Europe/Paris", "Asia/Kolkata", "Europe/Kyiv", "America/New_York"):
        assert canonical in names, canonical
    assert all(n == "UTC" or n.partition("/")[0] in time_zones.AREAS for n in names)
    assert len(names) > 300  # every country's zones, not a handful
    assert time_zones.names() is names  # computed once per process


def test_each_zone_has_its_offset_at_the_time_and_the_list_is_ordered_by_offset_then_name() -> None:
    winter = {c.name: c.label for c in time_zones.choices(NOW)}
    assert winter["Europe/Paris"] == "Europe/Paris (UTC+01:00)"
    assert winter["America/New_York"] == "America/New_York (UTC-05:00)"
    assert winter["Asia/Kathmandu"] == "Asia/Kathmandu (UTC+05:45)"
    assert winter["UTC"] == "UTC (UTC+00:00)"
    assert {c.name: c.label for c in time_zones.choices(SUMMER)}["Europe/Paris"] == "Europe/Paris (UTC+02:00)"
    labels = [c.label for c in time_zones.choices(NOW)]
    assert not any(legacy + " (" in label for legacy in NOT_OFFERED for label in labels)

    def key(label: str) -> tuple[int, str]:
        name, _, offset = label.partition(" (UTC")
        hours, minutes = offset.rstrip(")").split(":")
        sign = -1 if hours.startswith("-") else 1
        return sign * (abs(int(hours)) * 60 + int(minutes)), name

    assert labels == sorted(labels, key=key)
    assert labels[0].endswith("(UTC-11:00)") and labels[-1].endswith("(UTC+14:00)")


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("Europe/Paris (UTC+01:00)", "Europe/Paris"),
        ("  Asia/Kathmandu (UTC+05:45) ", "Asia/Kathmandu"),
        ("UTC", "UTC"),
        ("UTC (UTC+00:00)", "UTC"),
    ],
)
def test_the_form_may_send_the_name_or_the_label(sent: str, meant: str) -> None:
    assert time_zones.parse(sent, now=NOW) == meant


def test_a_label_shown_just_before_a_change_of_summer_time_still_reads_back() -> None:
    assert time_zones.parse("Europe/Paris (UTC+02:00)", now=AFTER_CHANGE) == "Europe/Paris"
    assert time_zones.parse("Europe/Paris (UTC+01:00)", now=AFTER_CHANGE) == "Europe/Paris"
    with pytest.raises(OfflineServiceError):
        time_zones.parse("Europe/Paris (UTC+02:00)", now=NOW)  # not Paris's offset in January


@pytest.mark.parametrize(
    "sent",
    [
        *NOT_OFFERED,
        "Factory (UTC+00:00)",
        "Etc/GMT+3 (UTC-03:00)",
        "Europe/Paris (UTC+09:00)",
        "Europe/Paris (UTC+1:00)",
        "europe/paris",
        "Paris",
        "",
        "   ",
        "../../etc/passwd",
        "Europe/Paris\x00",
        "x" * 10_000,
    ],
)
def test_anything_else_is_refused_with_a_stable_code(sent: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        time_zones.parse(sent, now=NOW)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert "choose a time zone from the list" in info.value.message


def test_the_persons_stored_zone_is_taken_back_even_when_no_longer_offered() -> None:
    assert time_zones.parse("US/Eastern", now=NOW, keep="US/Eastern") == "US/Eastern"
    with pytest.raises(OfflineServiceError):
        time_zones.parse("US/Pacific", now=NOW, keep="US/Eastern")
    with pytest.raises(OfflineServiceError):
        time_zones.parse("", now=NOW, keep="")
