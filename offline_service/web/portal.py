"""The customer portal: server-rendered pages over the same engine and store as the API.

A person logs in to one account, sees the licenses they may use, and activates or deactivates
machines offline by uploading request files. Every page works without JavaScript; every form
carries the CSRF token; every query is scoped to the logged-in person.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections import Counter
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind
from offline_service.ids import check_id
from offline_service.licensing.decisions import DAY
from offline_service.licensing.engine import Outcome
from offline_service.licensing.models import UNLIMITED, License, LicenseStatus
from offline_service.web.auth import (
    SESSION_COOKIE,
    Caller,
    check_csrf,
    csrf_token,
    portal_caller,
    services,
)
from offline_service.web.branding import brand_context
from offline_service.web.errors import status_of
from offline_service.web.offline import process_request, process_zip
from offline_service.web.services import Services

__all__ = [
    "FIELD_BYTES",
    "PLAIN_WORDS",
    "Problem",
    "download_name",
    "error_page",
    "forget_session",
    "form_field",
    "license_rows",
    "mask_key",
    "page_caller",
    "render",
    "routes",
    "safe_next",
    "to_login",
]

TEMPLATES = Path(__file__).parent / "templates"
VALIDITY_DAYS = (1, 3, 7, 30)  # the engine caps each at the product's maximum
DEFAULT_VALIDITY_DAYS = 7
RECENT_ACTIVITY = 15
# The audit log is read newest first and filtered to the person's licenses; this bounds the scan.
# Form fields other than files: the body limit (4 x 16 KiB) is the real bound; this only makes
# sure starlette never refuses a pasted request before we can say REQUEST_TOO_LARGE in words.
_FIELD_BYTES = 4 * MAX_FILE_BYTES

# What a code means, for a person; the engine's own message and the code are shown beside it.
PLAIN_WORDS: Mapping[Code, str] = {
    Code.MALFORMED_REQUEST: "This is not a request file this page can use.",
    Code.UNSUPPORTED_VERSION: "The request file was made by a version of the software this service does not support.",
    Code.BAD_SIGNATURE: "The request file is damaged or was changed after it was made.",
    Code.REQUEST_EXPIRED: "The request file is too old. Make a new one on the machine.",
    Code.REQUEST_FROM_FUTURE: "The request file is dated in the future. Check the clock of the machine.",
    Code.REQUEST_TOO_LARGE: "The file is too large to be a request file.",
    Code.REQUEST_REPLAYED: "This request file was already used for something else. Make a new one.",
    Code.PRODUCT_NOT_FOUND: "The request is for a product this service does not know.",
    Code.LICENSE_NOT_FOUND: "The request is for a license that does not exist or that you may not use.",
    Code.PRODUCT_MISMATCH: "The license key belongs to another product.",
    Code.LICENSE_SUSPENDED: "This license is suspended.",
    Code.LICENSE_REVOKED: "This license has been revoked.",
    Code.LICENSE_EXPIRED: "This license has expired.",
    Code.ACTIVATION_LIMIT: "This license has no activations left. Deactivate a machine first.",
    Code.DEACTIVATION_LIMIT: "This license has no deactivations left.",
    Code.ACTIVATION_NOT_FOUND: "No activation you may manage matches this request.",
    Code.MACHINE_KEY_MISMATCH: "The request was made by another machine than the one that was activated.",
    Code.TRIAL_NOT_ALLOWED: "Trials cannot be started here.",
    Code.INVALID_CREDENTIALS: "The account, email or password is not right.",
    Code.RATE_LIMITED: "Too many failed logins.",
    Code.INVALID_ARGUMENT: "Something in the form is missing or not valid.",
    Code.BAD_ARCHIVE: "The zip file cannot be processed.",
    Code.CSRF_FAILED: "The form is out of date. Reload the page and try again.",
    # people administration and profiles
    Code.FORBIDDEN: "Only an organization admin may do this.",
    Code.CONFLICT: "This clashes with what is already there.",
    Code.USER_LIMIT: "Your organization has all the users it may have. Disable one, or ask your vendor for more.",
    Code.SELF_LOCKOUT: "You cannot disable yourself or take the admin role from yourself. Ask another admin.",
    Code.INVALID_PASSWORD_LINK: "This link does not work any more. Ask your administrator to send a new one.",
    Code.WRONG_PASSWORD: "Your current password is not right.",
    Code.NOT_FOUND: "There is nothing here.",
    # downloads
    Code.LINK_EXPIRED: "This download link has expired. Open Downloads again for a fresh one.",
    Code.LINK_INVALID: "This download link is not valid for you. Open Downloads, logged in as yourself.",
    Code.RANGE_NOT_SATISFIABLE: "The part of the file asked for is beyond its end.",
}


# -- rendering -------------------------------------------------------------------------------


# The time zone of the person a page is rendered for (see _render): templates show times in it.
_TIME_ZONE: ContextVar[str] = ContextVar("offline_service_time_zone", default="UTC")


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _when(ts: int | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, _zone(_TIME_ZONE.get())).strftime("%Y-%m-%d %H:%M %Z")


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _allowed(n: int) -> str:
    return "unlimited" if n == UNLIMITED else str(n)


templates = Jinja2Templates(directory=TEMPLATES, context_processors=[brand_context])
templates.env.autoescape = True  # every template, whatever its name
templates.env.filters.update(when=_when, iso=_iso, allowed=_allowed)


@dataclass(frozen=True, slots=True)
class Problem:
    """An error as a page shows it: plain words, the engine's message, and the stable code."""

    code: str
    plain: str
    message: str

    @classmethod
    def of(cls, exc: OfflineServiceError) -> Problem:
        return cls(code=exc.code.value, plain=PLAIN_WORDS.get(exc.code, ""), message=exc.message)


def _render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    caller: Caller | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    token = csrf_token(request)
    zone = _TIME_ZONE.set(caller.user.time_zone if caller else "UTC")
    try:  # the template is rendered here, in the constructor
        response = templates.TemplateResponse(
            request,
            template,
            {"caller": caller, "csrf": token, "path": request.url.path, **(context or {})},
            status_code=status,
            headers=headers,
        )
    finally:
        _TIME_ZONE.reset(zone)
    csrf_token(request, response)  # sets the cookie the token above came from, if it is new
    return response


def _error_page(request: Request, caller: Caller | None, exc: OfflineServiceError) -> Response:
    return _render(
        request, "error.html", {"problem": Problem.of(exc)}, caller=caller, status=status_of(exc.code)
    )


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


def _to_login(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?{urlencode({'next': safe_next(here)})}", status_code=303)
    if SESSION_COOKIE in request.cookies:  # expired or revoked: let the browser forget it
        _forget_session(request, response)
    return response


def _forget_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


async def _caller(request: Request) -> Caller | None:
    """The logged-in person, or None when there is no valid session."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await portal_caller(request)
    except OfflineServiceError as exc:
        if exc.code is Code.UNAUTHENTICATED:
            return None
        raise


def _field(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


# -- licenses --------------------------------------------------------------------------------


def mask_key(key: str) -> str:
    """A license key with all but its last group hidden, e.g. ``•••••-•••••-•••••-•••••-K7QPA``."""
    shown = min(5, len(key) // 4)
    hidden = key[: len(key) - shown]
    return re.sub(r"[^-]", "•", hidden) + key[len(key) - shown :]


@dataclass(frozen=True, slots=True)
class LicenseRow:
    license: License
    product: str
    state: str  # active, expired, suspended or revoked
    masked_key: str


def _state(license: License, now: int) -> str:
    if (
        license.status is LicenseStatus.ACTIVE
        and license.expires_at is not None
        and license.expires_at <= now
    ):
        return "expired"
    return license.status.value


def _rows(svc: Services, caller: Caller) -> list[LicenseRow]:
    now = svc.now()
    account_id = caller.user.account_id
    with svc.store.read() as tx:
        products = {p.id: p.name for p in tx.products(account_id)}
        found = [tx.license_by_id(account_id, i) for i in caller.license_ids]
    licenses = sorted((x for x in found if x is not None), key=lambda x: (x.created_at, x.id))
    return [
        LicenseRow(
            license=x,
            product=products.get(x.product_id, x.product_id),
            state=_state(x, now),
            masked_key=mask_key(x.key),
        )
        for x in licenses
        if caller.may_use(x)
    ]


@dataclass(frozen=True, slots=True)
class Activity:
    entry: AuditEntry
    what: str
    who: str
    license: LicenseRow | None


_ACTIONS = {
    "activation": "Offline activation",
    "deactivation": "Offline deactivation",
    "license.create": "License created",
    "license.active": "License reinstated",
    "license.suspended": "License suspended",
    "license.revoked": "License revoked",
    "activation.release": "Seat released by the vendor",
    "license.max_version": "Newest version allowed changed",
}


def _who(actor: str, caller: Caller) -> str:
    if actor == caller.actor:
        return "you"
    return "another user" if actor.startswith("user:") else "the vendor"


def _dashboard(svc: Services, caller: Caller) -> dict[str, Any]:
    rows = _rows(svc, caller)
    by_id = {r.license.id: r for r in rows}
    # Only entries about licenses this person may see: never another customer's activity.
    with svc.store.read() as tx:
        mine = tx.audit_entries_for_licenses(caller.user.account_id, frozenset(by_id), limit=RECENT_ACTIVITY)
    states = Counter(r.state for r in rows)
    return {
        "rows": rows,
        "states": [(s, states[s]) for s in ("active", "expired", "suspended", "revoked") if states[s]],
        "used": sum(r.license.used_activations for r in rows),
        "allowed": (
            UNLIMITED
            if any(r.license.allowed_activations == UNLIMITED for r in rows)
            else sum(r.license.allowed_activations for r in rows)
        ),
        "activity": [
            Activity(
                entry=e,
                what=_ACTIONS.get(e.action, e.action),
                who=_who(e.actor, caller),
                license=by_id.get(e.license_id or ""),
            )
            for e in mine
        ],
    }


async def dashboard(request: Request) -> Response:
    caller = await _caller(request)
    if caller is None:
        return _to_login(request)
    data = await run_in_threadpool(_dashboard, services(request), caller)
    return _render(request, "dashboard.html", {"section": "dashboard", **data}, caller=caller)


async def licenses(request: Request) -> Response:
    caller = await _caller(request)
    if caller is None:
        return _to_login(request)
    rows = await run_in_threadpool(_rows, services(request), caller)
    return _render(request, "licenses.html", {"section": "licenses", "rows": rows}, caller=caller)


def _detail(svc: Services, caller: Caller, license_id: str) -> dict[str, Any]:
    account_id = caller.user.account_id
    with svc.store.read() as tx:
        found = tx.license_by_id(account_id, license_id) if license_id in caller.license_ids else None
        if found is None or not caller.may_use(found):
            raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license")
        product = tx.product(account_id, found.product_id)
        activations = sorted(tx.activations(found.id), key=lambda a: (a.created_at, a.id), reverse=True)
    row = LicenseRow(
        license=found,
        product=product.name if product else found.product_id,
        state=_state(found, svc.now()),
        masked_key=mask_key(found.key),
    )
    return {"row": row, "activations": activations}


async def license_detail(request: Request) -> Response:
    caller = await _caller(request)
    if caller is None:
        return _to_login(request)
    try:
        license_id = check_id(request.path_params["id"], "license")
        data = await run_in_threadpool(_detail, services(request), caller, license_id)
    except OfflineServiceError as exc:
        if exc.code is not Code.LICENSE_NOT_FOUND:
            raise
        return _error_page(request, caller, exc)
    reveal = request.query_params.get("reveal") == "1"
    return _render(request, "license.html", {"section": "licenses", "reveal": reveal, **data}, caller=caller)


# -- offline activation and deactivation -----------------------------------------------------


def download_name(text: str, fallback: str = "machine") -> str:
    """``text`` reduced to [A-Za-z0-9._-], without leading dots or dashes, for a file name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:48].strip("._-")
    return cleaned or fallback


def _machine_name(outcome: Outcome) -> str:
    request = outcome.request  # the engine's verified request: no second parse
    if request is None:
        return "machine"
    return download_name(request.hostname) if request.hostname else download_name(request.fingerprint[:16])


def _validity(form: FormData) -> int:
    value = form.get("validity")
    if value is None or value == "":
        return DEFAULT_VALIDITY_DAYS * DAY
    if not isinstance(value, str) or not value.isdigit() or int(value) not in VALIDITY_DAYS:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "choose one of the offered response validities")
    return int(value) * DAY


async def _request_file(form: FormData) -> bytes:
    """The uploaded request file, or else the pasted text; at most MAX_FILE_BYTES."""
    upload = form.get("file")
    data = b""
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_FILE_BYTES + 1)
    if not data.strip():
        pasted = form.get("text")
        data = pasted.strip().encode("utf-8") if isinstance(pasted, str) else b""
    if len(data) > MAX_FILE_BYTES:
        raise OfflineServiceError(
            Code.REQUEST_TOO_LARGE, f"a request file is at most {MAX_FILE_BYTES // 1024} KiB"
        )
    if not data.strip():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "choose a request file or paste its text")
    return data


@dataclass(frozen=True, slots=True)
class _Page:
    kind: Kind
    template: str
    section: str
    suffix: str  # of the downloaded file name


_ACTIVATE = _Page(Kind.ACTIVATION, "activate.html", "activate", ".response")
_DEACTIVATE = _Page(Kind.DEACTIVATION, "deactivate.html", "deactivate", "-deactivation-receipt.response")


def _offline_context(form: FormData | None = None) -> dict[str, Any]:
    chosen = form.get("validity") if form is not None else None
    pasted = form.get("text") if form is not None else None
    return {
        "validities": VALIDITY_DAYS,
        "chosen": int(chosen) if isinstance(chosen, str) and chosen.isdigit() else DEFAULT_VALIDITY_DAYS,
        "text": pasted[:MAX_FILE_BYTES] if isinstance(pasted, str) else "",
    }


async def _offline(request: Request, page: _Page) -> Response:
    caller = await _caller(request)
    if caller is None:
        return _to_login(request)
    context = {"section": page.section}
    if request.method in ("GET", "HEAD"):
        return _render(request, page.template, {**context, **_offline_context()}, caller=caller)
    svc = services(request)
    async with request.form(max_files=1, max_fields=10, max_part_size=_FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        context.update(_offline_context(form))
        try:
            data = await _request_file(form)
            validity = _validity(form) if page.kind is Kind.ACTIVATION else None
            outcome = await process_request(svc, caller, data, validity=validity, kinds=(page.kind,))
        except OfflineServiceError as exc:
            problem = {"problem": Problem.of(exc)}
            return _render(
                request, page.template, {**context, **problem}, caller=caller, status=status_of(exc.code)
            )
    assert outcome.response is not None and outcome.activation_id is not None
    name = f"{_machine_name(outcome)}-{download_name(outcome.activation_id, 'activation')}{page.suffix}"
    return Response(
        (outcome.response + "\n").encode("ascii"),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def activate(request: Request) -> Response:
    return await _offline(request, _ACTIVATE)


async def deactivate(request: Request) -> Response:
    return await _offline(request, _DEACTIVATE)


async def batch(request: Request) -> Response:
    caller = await _caller(request)
    if caller is None:
        return _to_login(request)
    svc = services(request)
    context: dict[str, Any] = {
        "section": "batch",
        "max_mib": svc.settings.max_upload_bytes // (1024 * 1024),
        **_offline_context(),
    }
    if request.method in ("GET", "HEAD"):
        return _render(request, "batch.html", context, caller=caller)
    async with request.form(max_files=1, max_fields=10, max_part_size=_FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        context.update(_offline_context(form))
        upload = form.get("archive")
        try:
            validity = _validity(form)
            data = b""
            if isinstance(upload, UploadFile):
                data = await upload.read(svc.settings.max_upload_bytes + 1)
            if len(data) > svc.settings.max_upload_bytes:
                raise OfflineServiceError(
                    Code.REQUEST_TOO_LARGE, f"a zip is at most {context['max_mib']} MiB"
                )
            result = await process_zip(svc, caller, data, validity=validity)
        except OfflineServiceError as exc:
            problem = {"problem": Problem.of(exc)}
            return _render(
                request, "batch.html", {**context, **problem}, caller=caller, status=status_of(exc.code)
            )
    stamp = dt.datetime.fromtimestamp(svc.now(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        result.archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="responses-{stamp}.zip"',
            "X-Accepted": str(result.accepted),
            "X-Rejected": str(result.rejected),
        },
    )


routes: list[BaseRoute] = [
    Route("/", dashboard, name="portal_dashboard"),
    Route("/licenses", licenses, name="portal_licenses"),
    Route("/licenses/{id}", license_detail, name="portal_license"),
    Route("/activate", activate, methods=["GET", "POST"], name="portal_activate"),
    Route("/deactivate", deactivate, methods=["GET", "POST"], name="portal_deactivate"),
    Route("/batch", batch, methods=["GET", "POST"], name="portal_batch"),
]


# -- for the other portal modules (organization admin, profile, activations, downloads) ------

render = _render
error_page = _error_page
page_caller = _caller
to_login = _to_login
forget_session = _forget_session
form_field = _field
license_rows = _rows
FIELD_BYTES = _FIELD_BYTES
