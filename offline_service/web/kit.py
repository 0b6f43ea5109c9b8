"""The page kit every portal page is built with: templates and rendering, the error page, who is
logged in, where to go after logging in, form fields, and times shown in the person's time zone.

The licensing, accounts and releases pages all render through :func:`render`, so every page gets the
CSRF token, the brand and the same escaping.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.licensing.models import UNLIMITED
from offline_service.web.agents import describe as describe_agent
from offline_service.web.auth import SESSION_COOKIE, Caller, check_csrf, csrf_token, portal_caller
from offline_service.web.brand import brand_context
from offline_service.web.errors import status_of
from offline_service.web.labels import role_word, state_word
from offline_service.web.words import PLAIN_WORDS

__all__ = [
    "FIELD_BYTES",
    "TEMPLATES",
    "Problem",
    "back",
    "error_page",
    "forget_session",
    "form_field",
    "iso",
    "mask_key",
    "page_caller",
    "posted_form",
    "render",
    "safe_next",
    "templates",
    "to_login",
    "when",
    "zone",
]

TEMPLATES = Path(__file__).parent / "templates"
# Form fields other than files: the body limit (4 x 16 KiB) is the real bound; this only makes
# sure starlette never refuses a pasted request before we can say REQUEST_TOO_LARGE in words.
FIELD_BYTES = 4 * MAX_FILE_BYTES


# -- times -----------------------------------------------------------------------------------


# The time zone of the person a page is rendered for (see render): templates show times in it.
_TIME_ZONE: ContextVar[str] = ContextVar("offline_service_time_zone", default="UTC")


@functools.lru_cache(maxsize=64)
def zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name``; UTC when it is unknown. Cached per process: zone data is
    immutable, so processes cannot disagree."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def when(ts: int | None) -> str:
    """A time as a person reads it, in the time zone of the page's person; ``never`` for None."""
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, zone(_TIME_ZONE.get())).strftime("%Y-%m-%d %H:%M %Z")


def iso(ts: int) -> str:
    """A time as ISO 8601 UTC, for ``<time datetime=...>``."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _allowed(n: int) -> str:
    return "unlimited" if n == UNLIMITED else str(n)


templates = Jinja2Templates(directory=TEMPLATES, context_processors=[brand_context])
templates.env.autoescape = True  # every template, whatever its name
templates.env.filters.update(
    when=when, iso=iso, allowed=_allowed, state_word=state_word, role_word=role_word, agent=describe_agent
)


# -- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """An error as a page shows it: plain words, the engine's message, and the stable code."""

    code: str
    plain: str
    message: str

    @classmethod
    def of(cls, exc: OfflineServiceError) -> Problem:
        return cls(code=exc.code.value, plain=PLAIN_WORDS.get(exc.code, ""), message=exc.message)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    caller: Caller | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page from ``template``, with the CSRF token, the path and ``caller`` in its context."""
    token = csrf_token(request)
    previous = _TIME_ZONE.set(caller.user.time_zone if caller else "UTC")
    try:  # the template is rendered here, in the constructor
        response = templates.TemplateResponse(
            request,
            template,
            {"caller": caller, "csrf": token, "path": request.url.path, **(context or {})},
            status_code=status,
            headers=headers,
        )
    finally:
        _TIME_ZONE.reset(previous)
    csrf_token(request, response)  # sets the cookie the token above came from, if it is new
    return response


def error_page(request: Request, caller: Caller | None, exc: OfflineServiceError) -> Response:
    """The error page for ``exc``, with the status its code has in the API."""
    return render(
        request, "error.html", {"problem": Problem.of(exc)}, caller=caller, status=status_of(exc.code)
    )


def mask_key(key: str) -> str:
    """A license key with all but its last group hidden, e.g. ``•••••-•••••-•••••-•••••-K7QPA``."""
    shown = min(5, len(key) // 4)
    hidden = key[: len(key) - shown]
    return re.sub(r"[^-]", "•", hidden) + key[len(key) - shown :]


# -- who is asking ---------------------------------------------------------------------------


def safe_next(value: object) -> str:
    """Where to go after logging in: a local path of this site, else the dashboard. Never off-site."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/"
    # "//host" and "/\host" are other sites to a browser, and browsers drop tabs and newlines.
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


def to_login(request: Request) -> Response:
    """To the login page, and back here after it; an expired session cookie is dropped."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?{urlencode({'next': safe_next(here)})}", status_code=303)
    if SESSION_COOKIE in request.cookies:  # expired or revoked: let the browser forget it
        forget_session(request, response)
    return response


def forget_session(request: Request, response: Response) -> None:
    """Make the browser drop its session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


async def page_caller(request: Request) -> Caller | None:
    """The logged-in person, or None when there is no valid session."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await portal_caller(request)
    except OfflineServiceError as exc:
        if exc.code is Code.UNAUTHENTICATED:
            return None
        raise


def form_field(form: FormData, name: str, limit: int) -> str:
    """A text field of a form, cut to ``limit`` characters; empty when missing or a file."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def posted_form(request: Request) -> dict[str, str]:
    """The text fields of a posted form (no files, at most 20 fields of 1,024 characters), after the
    CSRF check: what every page that changes something reads first."""
    async with request.form(max_files=0, max_fields=20, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        return {name: form_field(form, name, 1024) for name in form if name != "csrf"}


def back(path: str, done: str) -> Response:
    """Post/Redirect/Get: after a change, to ``path`` saying what was ``done``."""
    return RedirectResponse(f"{path}?done={done}", status_code=303)
