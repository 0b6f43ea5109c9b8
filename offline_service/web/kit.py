"""The page kit every portal page is built with: templates and rendering, the error page, who is
logged in, where to go after logging in, form fields, and times shown in the person's time zone.

The licensing, accounts and releases pages all render through :func:`render`, so every page gets the
CSRF token, the brand and the same escaping.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import zoneinfo
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES, strict_json
from offline_service.licensing.models import UNLIMITED
from offline_service.web.agents import describe as describe_agent
from offline_service.web.auth import SESSION_COOKIE, Caller, check_csrf, csrf_token, portal_caller
from offline_service.web.brand import brand_context
from offline_service.web.errors import status_of
from offline_service.web.labels import role_word, state_word
from offline_service.web.security import Receive, Scope, Send
from offline_service.web.words import DETAILED, LINKS, PLAIN_WORDS, VARIANTS, Link, wait_words

__all__ = [
    "FIELD_BYTES",
    "FLASH_COOKIE",
    "FLASH_SECONDS",
    "KEPT",
    "TEMPLATES",
    "Flash",
    "Problem",
    "back",
    "error_page",
    "forget_session",
    "form_field",
    "forward",
    "iso",
    "mask_key",
    "page_caller",
    "posted_form",
    "problem_page",
    "refuse",
    "render",
    "safe_next",
    "templates",
    "to_login",
    "too_large",
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
    """An error as a page shows it: one plain sentence (what happened, what to do next), perhaps
    with a link to the page that helps; the engine's message, shown as a detail only where it says
    what exactly is wrong (words.DETAILED); and the stable code."""

    code: str
    plain: str
    message: str = ""
    link: Link | None = None
    variant: str = ""  # a name in words.VARIANTS when the page chose that sentence
    seconds: int | None = None  # RATE_LIMITED: how long to wait

    @classmethod
    def make(cls, code: Code, message: str = "", *, variant: str = "", seconds: int | None = None) -> Problem:
        """The problem of ``code``: its own words, or those of ``variant`` when it is a variant of
        that code, or the time to wait when ``seconds`` is given for RATE_LIMITED."""
        chosen = VARIANTS.get(variant)
        if chosen is not None and chosen[0] is code:
            plain, link = chosen[1], chosen[2]
        else:
            variant, plain, link = "", PLAIN_WORDS.get(code, _NO_WORDS), LINKS.get(code)
        if code is Code.RATE_LIMITED and seconds is not None and 0 < seconds <= _MAX_WAIT:
            plain = wait_words(seconds)
        else:
            seconds = None
        return cls(code=code.value, plain=plain, message=message, link=link, variant=variant, seconds=seconds)

    @classmethod
    def of(cls, exc: OfflineServiceError, *, variant: str = "") -> Problem:
        retry_after = getattr(exc, "retry_after", None)
        seconds = retry_after if type(retry_after) is int else None
        return cls.make(exc.code, exc.message, variant=variant, seconds=seconds)

    @property
    def detail(self) -> str:
        """The message, where it says what exactly is wrong; else nothing (it is for the logs)."""
        return self.message if self.code in _DETAILED else ""

    @property
    def parts(self) -> tuple[str, str, str]:
        """The sentence as (before, the linked words, after); the linked words are empty without a link."""
        if self.link is None or self.link[1] not in self.plain:
            return self.plain, "", ""
        return self.plain.partition(self.link[1])


_NO_WORDS = "This could not be done. The code below says why."
_DETAILED = frozenset(c.value for c in DETAILED)
_MAX_WAIT = 24 * 3600


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    caller: Caller | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page from ``template``, with the CSRF token, the path and ``caller`` in its context, and
    the problem of a refused form (see :func:`refuse`) when this page is the one it was meant for:
    shown once, then dropped."""
    token = csrf_token(request)
    full: dict[str, Any] = {
        "caller": caller,
        "csrf": token,
        "path": request.url.path,
        "values": {},
        "failed": "",
        "dropped": (),
    }
    full.update(context or {})
    flash = _recall_flash(request) if FLASH_COOKIE in request.cookies else None
    if flash is not None:
        if full.get("problem") is None and flash.problem is not None:  # an error page's own comes first
            full["problem"] = flash.problem
        full.update(failed=flash.form, dropped=flash.dropped, values={**full["values"], **flash.values})
    previous = _TIME_ZONE.set(caller.user.time_zone if caller else "UTC")
    try:  # the template is rendered here, in the constructor
        response = templates.TemplateResponse(request, template, full, status_code=status, headers=headers)
    finally:
        _TIME_ZONE.reset(previous)
    csrf_token(request, response)  # sets the cookie the token above came from, if it is new
    if FLASH_COOKIE in request.cookies:
        # Shown (or unreadable): gone, so that a reload shows the page as it is. A flash for a page
        # under this one is not at this path, and stays.
        response.delete_cookie(
            FLASH_COOKIE, path=request.url.path, httponly=True, samesite="strict", secure=_secure(request)
        )
    return response


# -- refused forms: post/redirect/get ------------------------------------------------------------

# A refused form answers like an accepted one, with a 303 to the page of the form (so a reload
# repeats nothing: no second login attempt, no second upload). What that page shows travels in a
# cookie: HttpOnly, SameSite=Strict, for that page's path only, FLASH_SECONDS at most, and dropped
# by the page that shows it. It is the browser's to change, so everything read back is checked
# (see _recall_flash): an unknown code shows nothing, the words come from words.py by code and
# variant name, the fields are those of KEPT only, each cut to its length, and Jinja escapes them.
FLASH_COOKIE = "ofs_flash"
FLASH_SECONDS = 60
# The cookie's value at most: browsers keep 4096 bytes of a cookie's name, value and attributes.
FLASH_BYTES = 3600
MESSAGE_CHARS = 300
# Every field a refused form may keep, with its length: names, emails and chosen options. Never a
# password, a token or the CSRF token: a field not named here is not kept.
KEPT: Mapping[str, int] = MappingProxyType(
    {
        "account": 64,
        "email": 254,
        "first_name": 100,
        "last_name": 100,
        "role": 32,
        "name": 200,
        "time_zone": 64,
        "notify_new_activation": 1,
        "notify_license_expiry": 1,
        "notify_new_release": 1,
        "days": 5,
        "user": 64,
        "license": 64,
        "validity": 4,
        "text": MAX_FILE_BYTES,  # a pasted request: kept when it fits in FLASH_BYTES
    }
)
_FORM = re.compile(r"[a-z][a-z0-9-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Flash:
    """What a refused form left for its page: the problem, which form of the page it was, the
    fields it keeps, and those it had to drop (too long to carry). An accepted form (see
    :func:`forward`) leaves fields only."""

    problem: Problem | None
    form: str
    values: dict[str, str]
    dropped: tuple[str, ...]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _flash_value(payload: dict[str, Any]) -> str:
    return quote(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), safe="")


def refuse(
    request: Request,
    to: str,
    problem: Problem,
    *,
    form: str = "",
    fields: Mapping[str, str] | None = None,
) -> Response:
    """Post/redirect/get for a refused form: a 303 to ``to`` (the form's page, with its query if
    it has one), which shows ``problem`` once, knowing which ``form`` of the page it was and with
    the ``fields`` in KEPT filled in again. A field that does not fit in the cookie is dropped, and
    the page says so (``dropped``)."""
    return _with_flash(request, to, problem, form=form, fields=fields)


def forward(request: Request, to: str, *, fields: Mapping[str, str]) -> Response:
    """Post/redirect/get for an accepted form whose next page needs some of its ``fields`` (in
    KEPT), such as the login form filled in after a password is set: as :func:`refuse`, with no
    problem to show."""
    return _with_flash(request, to, None, fields=fields)


def _with_flash(
    request: Request,
    to: str,
    problem: Problem | None,
    *,
    form: str = "",
    fields: Mapping[str, str] | None = None,
) -> Response:
    assert not form or _FORM.fullmatch(form), form
    path = urlsplit(to).path
    values = {k: v[: KEPT[k]] for k, v in (fields or {}).items() if k in KEPT and isinstance(v, str) and v}
    payload: dict[str, Any] = {"p": path, "c": Code.OK.value, "f": form, "v": values}
    if problem is not None:
        payload.update(
            c=problem.code,
            w=problem.variant,
            s=problem.seconds,
            m=problem.detail[:MESSAGE_CHARS],  # the rest is for the logs, not for the page
        )
    value, dropped = _flash_value(payload), []
    while len(value) > FLASH_BYTES and values:
        largest = max(values, key=lambda k: len(values[k]))
        del values[largest]
        dropped.append(largest)
        payload["x"] = dropped
        value = _flash_value(payload)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_SECONDS,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


def _text(value: object, limit: int, *, lines: bool = False) -> str:
    if not isinstance(value, str):
        return ""
    return (_CONTROL_BUT_LINES if lines else _CONTROL).sub("", value[:limit])


def _recall_flash(request: Request) -> Flash | None:
    """The flash cookie's problem and fields, when it is for this page and well-formed."""
    raw = request.cookies.get(FLASH_COOKIE, "")
    if not raw or len(raw) > 2 * FLASH_BYTES:
        return None
    try:
        data = strict_json(unquote(raw, errors="strict").encode("utf-8"))
    except (ValueError, UnicodeError):
        return None
    code = data.get("c")
    if data.get("p") != request.url.path or not isinstance(code, str):
        return None
    try:
        known = Code(code)
    except ValueError:
        return None
    problem: Problem | None = None  # OK: an accepted form's fields only (see forward)
    if known is not Code.OK:
        if known not in PLAIN_WORDS:  # no page refuses a form with it
            return None
        seconds = data.get("s")
        problem = Problem.make(
            known,
            _text(data.get("m"), MESSAGE_CHARS),
            variant=_text(data.get("w"), 32),
            seconds=seconds if type(seconds) is int else None,
        )
    form = data.get("f")
    kept = data.get("v")
    values = {
        k: _text(v, KEPT[k], lines=k == "text")
        for k, v in (kept.items() if isinstance(kept, dict) else ())
        if k in KEPT and isinstance(v, str)
    }
    dropped = data.get("x")
    return Flash(
        problem=problem,
        form=form if isinstance(form, str) and _FORM.fullmatch(form) else "",
        values=values,
        dropped=tuple(x for x in dropped if isinstance(x, str) and x in KEPT)
        if isinstance(dropped, list)
        else (),
    )


def error_page(request: Request, caller: Caller | None, exc: OfflineServiceError) -> Response:
    """The error page for ``exc``, with the status its code has in the API."""
    status = status_of(exc.code)
    return render(
        request, "error.html", _error_context(Problem.of(exc), status), caller=caller, status=status
    )


def _error_context(problem: Problem, status: int) -> dict[str, Any]:
    if problem.code == Code.CSRF_FAILED.value:
        heading = "This form is out of date"
    else:
        heading = _HEADINGS.get(status, "Something went wrong on our side" if status >= 500 else "")
    return {"problem": problem, "heading": heading or "Something went wrong"}


_HEADINGS = {
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not available this way",
    413: "Too large",
    429: "Too many attempts",
}


async def problem_page(
    request: Request, code: Code, message: str, status: int, headers: Mapping[str, str]
) -> Response:
    """The error page for what no page showed itself (an unknown path, a method a path does not
    take, an error a handler let through): in the portal's frame, with the menu for a person who
    is logged in. The app's exception handlers use it for every path but the API's."""
    try:
        caller = await page_caller(request)
    except OfflineServiceError:
        caller = None  # the database, most likely: the page is still shown, without the menu
    variant = "wrong-method" if status == 405 else ""
    problem = Problem.make(code, message, variant=variant)
    context = _error_context(problem, status)
    return render(request, "error.html", context, caller=caller, status=status, headers=headers)


# The pages whose form takes a file: a body over the limit goes back to the page (post/redirect/get).
_UPLOAD_PAGES = ("/activate", "/deactivate", "/batch")


async def too_large(scope: Scope, limit: int, receive: Receive, send: Send) -> None:
    """A portal request whose body is over ``limit`` (web.security.BodyLimit): an upload form is
    refused back to its page; anything else gets the error page."""
    request = Request(scope, receive)
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    message = f"the upload is larger than this page takes ({size} at most)"
    response: Response
    if request.method == "POST" and request.url.path in _UPLOAD_PAGES:
        response = refuse(request, request.url.path, Problem.make(Code.REQUEST_TOO_LARGE, message))
    else:
        response = await problem_page(request, Code.REQUEST_TOO_LARGE, message, 413, {})
    await response(scope, receive, send)


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
