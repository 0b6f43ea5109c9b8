"""The time zones a person may choose on the profile page: canonical IANA zones, each with its
current offset from UTC ("Europe/Paris (UTC+01:00)"), sorted by offset then name; and reading
back what the form sends (the bare name or such a label).

Canonical: a name of the form Area/Location (Area one of ``AREAS``) that the tz database's
``zone.tab`` lists, and "UTC". That leaves out the database's aliases and legacy names ("Factory",
"Etc/GMT+3", "GMT+0", "US/Eastern", "Asia/Calcutta", "Europe/Kiev", "posixrules"...). ``zone.tab``
is read from where ``zoneinfo`` reads its zones (``zoneinfo.TZPATH``, else the ``tzdata``
package); without one, the Area/Location names alone are offered.

The names are computed once per process (the zone data does not change under a running process);
the labels depend on the time (summer time moves offsets), so they are cached per hour.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from offline_service.errors import Code, OfflineServiceError

__all__ = ["AREAS", "UTC", "Choice", "choices", "label", "names", "parse"]

AREAS = frozenset(
    {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"}
)
UTC = "UTC"
_LABEL = re.compile(r"(?P<name>[A-Za-z0-9_+/-]{1,64}) \(UTC[+-]\d\d:\d\d\)")
_HOUR = 3600
# A label shown on a page at most this long ago still reads back after a change of summer time.
_GRACE = 86_400


@dataclass(frozen=True, slots=True)
class Choice:
    """One zone of the list: its name, as stored, and its label, as the form shows it."""

    name: str
    label: str


def _zone_tab() -> str | None:
    """The text of the tz database's zone.tab, from where zoneinfo reads the zones."""
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:
        return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return None


def _listed(tab: str) -> frozenset[str]:
    """The zone names of zone.tab (third column; '#' starts a comment line)."""
    rows = (line.split("\t") for line in tab.splitlines() if line and not line.startswith("#"))
    return frozenset(row[2] for row in rows if len(row) >= 3)


@functools.cache
def names() -> frozenset[str]:
    """The canonical zone names this system knows (see the module's docstring), UTC among them."""
    known = zoneinfo.available_timezones()
    found = {n for n in known if n.partition("/")[0] in AREAS and n.partition("/")[2]}
    tab = _zone_tab()
    if tab is not None:
        found &= _listed(tab)
    return frozenset(found | {UTC})


def label(name: str, at: int) -> str:
    """``name`` with its offset from UTC at ``at``: "Europe/Paris (UTC+01:00)"."""
    offset = dt.datetime.fromtimestamp(at, zoneinfo.ZoneInfo(name)).utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{name} (UTC{sign}{hours:02d}:{rest:02d})"


@functools.lru_cache(maxsize=4)
def _choices(hour: int) -> tuple[Choice, ...]:
    at = hour * _HOUR
    offsets = {n: dt.datetime.fromtimestamp(at, zoneinfo.ZoneInfo(n)).utcoffset() for n in names()}
    ordered = sorted(names(), key=lambda n: (offsets[n] or dt.timedelta(), n))
    return tuple(Choice(name=n, label=label(n, at)) for n in ordered)


def choices(now: int) -> tuple[Choice, ...]:
    """Every canonical zone with its offset at ``now`` (to the hour), by offset then name."""
    return _choices(now // _HOUR)


def parse(value: str, *, now: int, keep: str | None = None) -> str:
    """The zone name the form's ``value`` means: a canonical name, or the label of one as a page
    showed it (at ``now``, or up to a day before, across a change of summer time). ``keep``, the
    person's zone as stored, is taken back as it is even if it is no longer offered (a zone chosen
    before the list was narrowed). INVALID_ARGUMENT for anything else."""
    value = value.strip()
    if value and value == keep:
        return value
    if value in names():
        return value
    found = _LABEL.fullmatch(value)
    if found is not None and found["name"] in names():
        name = found["name"]
        if value in (label(name, now), label(name, now - _GRACE)):
            return name
    raise OfflineServiceError(
        Code.INVALID_ARGUMENT,
        "choose a time zone from the list: type a city or region, e.g. Paris, and pick its zone",
    )
