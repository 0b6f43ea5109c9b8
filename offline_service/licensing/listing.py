"""The query strings of the portal's lists of licenses and of a license's activations: search,
filters, order and page, read leniently.

A list is a GET form, so a view can be shared as a URL and works without JavaScript. Such URLs are
edited by hand and passed around: an unknown parameter is ignored, and a value that is not one the
form offers falls back to its default (never an error page), within the licenses the person may
see whatever the URL says.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from offline_service.licensing.models import (
    ACTIVATION_ORDERS,
    ATTENTION,
    LICENSE_SORTS,
    LICENSE_STATES,
    ActivationFilter,
    LicenseFilter,
)

__all__ = [
    "ACTIVATION_STATUSES",
    "DIRECTIONS",
    "LICENSES_PER_PAGE",
    "LICENSE_ACTIVATIONS_PER_PAGE",
    "MAX_PAGE",
    "MAX_TEXT",
    "Pager",
    "activation_params",
    "activation_query",
    "choice",
    "license_params",
    "license_query",
    "page_number",
    "search_text",
]

LICENSES_PER_PAGE = 25
LICENSE_ACTIVATIONS_PER_PAGE = 25
MAX_PAGE = 1_000_000
MAX_TEXT = 100  # characters of search text kept
DIRECTIONS = ("asc", "desc")
ACTIVATION_STATUSES = ("live", "deactivated")


def search_text(params: Mapping[str, str], name: str = "q") -> str:
    """Free text to search for: control characters dropped (PostgreSQL refuses NUL in text),
    at most MAX_TEXT characters, trimmed."""
    value = "".join(c for c in params.get(name, "")[: MAX_TEXT * 4] if c.isprintable())
    return value[:MAX_TEXT].strip()


def choice(params: Mapping[str, str], name: str, options: Collection[str]) -> str | None:
    """The parameter if it is one of ``options``, else None (the form's default)."""
    value = params.get(name, "")
    return value if value in options else None


def page_number(params: Mapping[str, str]) -> int:
    """The page asked for, from 1: 1 unless ASCII digits of 1 to MAX_PAGE."""
    value = params.get("page", "")
    if value.isascii() and value.isdigit() and len(value) <= 7 and 1 <= int(value) <= MAX_PAGE:
        return int(value)
    return 1


def license_query(params: Mapping[str, str], products: Collection[str]) -> LicenseFilter:
    """The Licenses list's query; ``products`` are the ids its product filter offers (any other is
    ignored, as is every other value the form does not offer)."""
    product = params.get("product", "")
    return LicenseFilter(
        text=search_text(params),
        state=choice(params, "status", LICENSE_STATES),
        product_id=product if product in products else None,
        attention=choice(params, "attention", ATTENTION),
        sort=choice(params, "sort", LICENSE_SORTS) or "created",
        descending=params.get("dir") == "desc",
    )


def license_params(query: LicenseFilter) -> dict[str, str]:
    """The parameters that give ``query`` back (defaults left out), for links to its pages."""
    kept = {
        "q": query.text,
        "status": query.state or "",
        "product": query.product_id or "",
        "attention": query.attention or "",
        "sort": "" if query.sort == "created" else query.sort,
        "dir": "desc" if query.descending else "",
    }
    return {k: v for k, v in kept.items() if v}


def activation_query(params: Mapping[str, str]) -> ActivationFilter:
    """A license's activations: search text, live or deactivated, and order."""
    status = choice(params, "status", ACTIVATION_STATUSES)
    return ActivationFilter(
        live=None if status is None else status == "live",
        text=search_text(params),
        order=choice(params, "sort", ACTIVATION_ORDERS) or "newest",
    )


def activation_params(query: ActivationFilter) -> dict[str, str]:
    """The parameters that give ``query`` back (defaults left out)."""
    kept = {
        "q": query.text,
        "status": "" if query.live is None else ("live" if query.live else "deactivated"),
        "sort": "" if query.order == "newest" else query.order,
    }
    return {k: v for k, v in kept.items() if v}


@dataclass(frozen=True, slots=True)
class Pager:
    """Links to the pages of a list: ``path`` with the list's parameters and a page number."""

    path: str
    params: Mapping[str, str]
    number: int
    pages: int
    fragment: str = ""

    def at(self, number: int) -> str:
        params = {**self.params, **({"page": str(number)} if number > 1 else {})}
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.path}{query}{self.fragment}"

    @property
    def previous(self) -> str | None:
        return self.at(self.number - 1) if self.number > 1 else None

    @property
    def next(self) -> str | None:
        return self.at(self.number + 1) if self.number < self.pages else None
