"""The licensing pages of the portal: the dashboard, the licenses a person may use and each one's
detail, offline activation, deactivation and batches by uploading request files, each answered
with a redirect to its result page (a batch's result is kept in the database:
licensing.batch_results), and an organization admin's release of a lost machine's seat (when the
product allows it).

Every page works without JavaScript; every form carries the CSRF token; every read is scoped to the
logged-in person (licensing.queries), and every request file goes through the engine
(licensing.offline) within the licenses the person may use.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.audit import AuditEntry
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind, looks_like_response, parse_response
from offline_service.fileformat.messages import Response as ParsedResponse
from offline_service.ids import check_id, is_id
from offline_service.licensing import batch_results, listing, queries, seat_release
from offline_service.licensing.decisions import DAY
from offline_service.licensing.engine import Outcome
from offline_service.licensing.models import (
    ACTIVATION_ORDERS,
    ATTENTION,
    LICENSE_SORTS,
    LICENSE_STATES,
    NEAR_EXPIRY_SECONDS,
    NEAR_LIMIT_PERCENT,
    UNLIMITED,
    Activation,
    BatchFile,
    License,
    LicenseStatus,
    ListedLicense,
)
from offline_service.licensing.offline import RequestRefused, process_request, process_zip
from offline_service.web.auth import Caller, check_csrf, services
from offline_service.web.errors import status_of
from offline_service.web.kit import (
    FIELD_BYTES,
    Problem,
    back,
    error_page,
    form_field,
    mask_key,
    page_caller,
    posted_form,
    refuse,
    render,
    to_login,
)
from offline_service.web.services import Services
from offline_service.web.words import PLAIN_WORDS

__all__ = [
    "ATTENTION_SHOWN",
    "BATCH_PAGE_SIZE",
    "DEFAULT_VALIDITY_DAYS",
    "VALIDITY_DAYS",
    "BatchRow",
    "LicenseRow",
    "download_name",
    "license_rows",
    "routes",
]

VALIDITY_DAYS = (1, 3, 7, 30)  # the engine caps each at the product's maximum
DEFAULT_VALIDITY_DAYS = 7
RECENT_ACTIVITY = 15
ATTENTION_SHOWN = 5  # licenses that need attention on the dashboard; the Licenses list has the rest


@dataclass(frozen=True, slots=True)
class LicenseRow:
    license: License
    product: str
    state: str  # active, expired, suspended or revoked
    masked_key: str
    label: str = ""  # what tells it apart: its name, else its owner note, else who holds it
    holder: str = ""  # the owning organization's name, or the owning user's name or email


def _state(license: License, now: int) -> str:
    if (
        license.status is LicenseStatus.ACTIVE
        and license.expires_at is not None
        and license.expires_at <= now
    ):
        return "expired"
    return license.status.value


def _row(license: License, product: str, now: int, holder: str = "") -> LicenseRow:
    return LicenseRow(
        license=license,
        product=product,
        state=_state(license, now),
        masked_key=mask_key(license.key),
        label=license.name or license.owner or holder,
        holder=holder,
    )


def _listed(found: ListedLicense, now: int) -> LicenseRow:
    return _row(found.license, found.product, now, found.holder)


def license_rows(svc: Services, caller: Caller) -> list[LicenseRow]:
    """The licenses ``caller`` may use, oldest first, for choosing one in a form (blocking)."""
    now = svc.now()
    account_id = caller.user.account_id
    products = queries.product_names(svc.store, account_id)
    found = queries.visible_licenses(svc.store, account_id, caller.license_ids)
    return [_row(x, products.get(x.product_id, x.product_id), now) for x in found if caller.may_use(x)]


def _near_limit(license: License) -> bool:
    """At least NEAR_LIMIT_PERCENT of its allowed activations used (never for unlimited)."""
    allowed = license.allowed_activations
    return allowed != UNLIMITED and license.used_activations * 100 >= allowed * NEAR_LIMIT_PERCENT


def _attention_reasons(row: LicenseRow, now: int) -> list[str]:
    """Why a license needs attention, in words: suspended, or usable and near its activation limit
    or its expiry (the dashboard's selection, ``LicenseFilter(attention="any")``)."""
    lic = row.license
    if row.state == "suspended":
        return ["Suspended"]
    if row.state != "active":
        return []
    reasons = []
    if _near_limit(lic):
        reasons.append(f"{lic.used_activations} of {lic.allowed_activations} activations used")
    if lic.expires_at is not None and lic.expires_at - now <= NEAR_EXPIRY_SECONDS:
        days = -(-(lic.expires_at - now) // DAY)
        reasons.append(f"Expires in {days} day{'s' if days != 1 else ''}")
    return reasons


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
    seat_release.ACTION: "Seat of a lost machine released by an organization admin",
    "license.max_version": "Newest version allowed changed",
    "license.update": "License name or owner changed",
}


def _what(entry: AuditEntry) -> str:
    what = _ACTIONS.get(entry.action, entry.action)
    if entry.detail.get("reissued") == "true":  # the same file again: nothing was counted
        return f"{what}: the same response again, nothing counted"
    return what


def _who(actor: str, caller: Caller) -> str:
    if actor == caller.actor:
        return "you"
    return "another user" if actor.startswith("user:") else "the vendor"


def _dashboard(svc: Services, caller: Caller) -> dict[str, Any]:
    now = svc.now()
    # Only licenses this person may see, and entries about them: never another customer's.
    found = queries.dashboard(
        svc.store,
        caller.user.account_id,
        caller.license_ids,
        now=now,
        attention=ATTENTION_SHOWN,
        activity=RECENT_ACTIVITY,
    )
    by_id = {
        i: _row(x, found.products.get(x.product_id, x.product_id), now)
        for i, x in found.licenses.items()
        if caller.may_use(x)
    }
    attention = [_listed(x, now) for x in found.attention.rows if caller.may_use(x.license)]
    summary = found.summary
    mine = found.activity
    return {
        "total": summary.total,
        "states": [(s, summary.states[s]) for s in LICENSE_STATES if summary.states[s]],
        "used": summary.used,
        "allowed": summary.allowed,
        "attention": [(r, _attention_reasons(r, now)) for r in attention],
        "attention_total": found.attention.matching,
        "near_expiry_days": NEAR_EXPIRY_SECONDS // DAY,
        "activity": [
            Activity(
                entry=e,
                what=_what(e),
                who=_who(e.actor, caller),
                license=by_id.get(e.license_id or ""),
            )
            for e in mine
        ],
    }


async def dashboard(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    data = await run_in_threadpool(_dashboard, services(request), caller)
    return render(request, "dashboard.html", {"section": "dashboard", **data}, caller=caller)


_SORT_WORDS = {
    "created": "Created",
    "product": "Product",
    "name": "Name",
    "expiry": "Expiry",
    "seats": "Activations used",
}
_ATTENTION_WORDS = {
    "near-limit": f"Near the activation limit ({NEAR_LIMIT_PERCENT}% or more used)",
    "near-expiry": f"Expiring within {NEAR_EXPIRY_SECONDS // DAY} days",
    "any": "Needing attention (either, or suspended)",
}


def _licenses(svc: Services, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """The Licenses list: one page of the person's licenses that match the query string."""
    now = svc.now()
    account_id = caller.user.account_id
    products = queries.license_choices(svc.store, account_id, caller.license_ids)
    query = listing.license_query(params, {p.id for p in products})
    size = listing.LICENSES_PER_PAGE
    found = queries.find_licenses(
        svc.store,
        account_id,
        caller.license_ids,
        query,
        now=now,
        page=listing.page_number(params),
        size=size,
    )
    rows = [_listed(x, now) for x in found.rows if caller.may_use(x.license)]
    first = (found.number - 1) * size + 1
    return {
        "rows": rows,
        "query": query,
        "matching": found.matching,
        "total": found.total,
        "first": first,
        "last": first + len(rows) - 1,
        "pager": listing.Pager("/licenses", listing.license_params(query), found.number, found.pages),
        "page_size": size,
        "products": [(p.id, p.name) for p in products],
        "states": LICENSE_STATES,
        "attentions": [(a, _ATTENTION_WORDS[a]) for a in ATTENTION],
        "sorts": [(s, _SORT_WORDS[s]) for s in LICENSE_SORTS],
    }


async def licenses(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    data = await run_in_threadpool(_licenses, services(request), caller, request.query_params)
    return render(request, "licenses.html", {"section": "licenses", **data}, caller=caller)


def _detail(svc: Services, caller: Caller, license_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    query = listing.activation_query(params)
    view = queries.license_view(
        svc.store,
        caller.user,
        caller.license_ids,
        license_id,
        query,
        page=listing.page_number(params),
        size=listing.LICENSE_ACTIVATIONS_PER_PAGE,
    )
    if not caller.may_use(view.license):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no such license")
    product = view.product.name if view.product else view.license.product_id
    row = _row(view.license, product, svc.now(), view.holder)
    path = f"/licenses/{view.license.id}"
    return {
        "row": row,
        "groups": view.groups,
        "groups_managed": view.groups_managed,
        "activations": view.activations,
        "matching": view.matching,
        "activations_total": view.total,
        "query": query,
        "status": listing.activation_params(query).get("status", ""),
        "orders": ACTIVATION_ORDERS,
        "pager": listing.Pager(
            path, listing.activation_params(query), view.number, view.pages, fragment="#activations"
        ),
        "page_size": listing.LICENSE_ACTIVATIONS_PER_PAGE,
        "offers_release": seat_release.offers_release(caller.user, view.license, view.product),
    }


# What a finished change says on the license's page; the query names a key, never the text.
_DONE = {
    "released": "The seat is free again. The release counted as one of this license's deactivations.",
}


async def license_detail(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    try:
        license_id = check_id(request.path_params["id"], "license")
        data = await run_in_threadpool(_detail, services(request), caller, license_id, request.query_params)
    except OfflineServiceError as exc:
        if exc.code is not Code.LICENSE_NOT_FOUND:
            raise
        return error_page(request, caller, exc)
    reveal = request.query_params.get("reveal") == "1"
    notice = _DONE.get(request.query_params.get("done", ""))
    context = {"section": "licenses", "reveal": reveal, "notice": notice, **data}
    return render(request, "license.html", context, caller=caller)


async def release_seat(request: Request) -> Response:
    """GET: the page that asks an organization admin to confirm releasing a machine's seat;
    POST: release it, then back to the license's page (post/redirect/get)."""
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    try:
        license_id = check_id(request.path_params["id"], "license")
        activation_id = check_id(request.path_params["activation"], "activation")
        if request.method == "POST":
            await posted_form(request)
            try:
                await run_in_threadpool(
                    lambda: seat_release.release_seat(
                        svc.store, caller.user, license_id, activation_id, now=svc.now()
                    )
                )
            except OfflineServiceError as exc:
                # Shown on the confirmation page again (post/redirect/get), if the person may
                # still see it; else that page is the error page.
                return refuse(request, request.url.path, Problem.of(exc))
            return back(f"/licenses/{license_id}", "released")
        view = await run_in_threadpool(
            seat_release.release_view, svc.store, caller.user, license_id, activation_id
        )
    except OfflineServiceError as exc:
        return error_page(request, caller, exc)
    problem = view.refusal
    context = {
        "section": "licenses",
        "view": view,
        "row": _row(view.license, view.product.name, svc.now()),
        "problem": Problem.of(problem) if problem else None,
    }
    return render(
        request,
        "release_seat.html",
        context,
        caller=caller,
        status=status_of(problem.code) if problem else 200,
    )


def download_name(text: str, fallback: str = "machine") -> str:
    """``text`` reduced to [A-Za-z0-9._-], without leading dots or dashes, for a file name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:48].strip("._-")
    return cleaned or fallback


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

    @property
    def path(self) -> str:
        return f"/{self.section}"

    @property
    def result_path(self) -> str:
        return f"/{self.section}/result"


_ACTIVATE = _Page(Kind.ACTIVATION, "activate.html", "activate", ".response")
_DEACTIVATE = _Page(Kind.DEACTIVATION, "deactivate.html", "deactivate", "-deactivation-receipt.response")

# The signed response travels from the form's POST to its result page (post/redirect/get) in a
# cookie: HttpOnly, SameSite=Strict, only for that result page and its download, for
# RESULT_SECONDS, so that "Download again" works and a reload repeats nothing. Stateless, so any
# instance serves the result page; what it shows is checked afresh: the response's signature
# against the product keys, and its activation against the licenses the person may use.
RESULT_COOKIE = "ofs_result"
RESULT_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class Result:
    """What a result page shows: the verified response, and the activation and license it is about."""

    response: ParsedResponse
    text: str  # the response file's text, for the download
    reissued: bool
    activation: Activation
    row: LicenseRow

    @property
    def seats_left(self) -> int | None:
        lic = self.row.license
        return (
            None
            if lic.allowed_activations == UNLIMITED
            else max(0, lic.allowed_activations - lic.used_activations)
        )


def _remember(request: Request, page: _Page, outcome: Outcome) -> Response:
    assert outcome.response is not None
    response = RedirectResponse(page.result_path, status_code=303)
    response.set_cookie(
        RESULT_COOKIE,
        f"{int(outcome.reissued)}:{outcome.response}",
        max_age=RESULT_SECONDS,
        path=page.result_path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _recall(svc: Services, caller: Caller, page: _Page, cookie: str) -> Result | None:
    """The result in the cookie, if it is a response of this page's kind, signed by one of the
    products' keys, about an activation of a license ``caller`` may use (blocking)."""
    flag, _, text = cookie.partition(":")
    if flag not in ("0", "1") or not text or len(text) > MAX_FILE_BYTES:
        return None
    try:
        parsed = parse_response(text.encode("ascii"), svc.keyring.public_keys())
    except (ValueError, UnicodeError, OfflineServiceError):
        return None
    if parsed.kind is not page.kind:
        return None
    try:
        activation, license, product = queries.activation_view(
            svc.store, caller.user.account_id, caller.license_ids, parsed.activation_id
        )
    except OfflineServiceError:
        return None
    if not caller.may_use(license):
        return None
    row = _row(license, product.name if product else license.product_id, svc.now())
    return Result(response=parsed, text=text, reissued=flag == "1", activation=activation, row=row)


def _result_file_name(result: Result, page: _Page) -> str:
    machine = result.activation.hostname or result.activation.fingerprint[:16]
    return f"{download_name(machine)}-{download_name(result.activation.id, 'activation')}{page.suffix}"


async def _result(request: Request, page: _Page, *, download: bool) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    cookie = request.cookies.get(RESULT_COOKIE, "")
    result = await run_in_threadpool(_recall, svc, caller, page, cookie) if cookie else None
    if download and result is not None:
        return Response(
            (result.text + "\n").encode("ascii"),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{_result_file_name(result, page)}"'},
        )
    context = {
        "section": page.section,
        "kind": page.kind.value,
        "result": result,
        "page_path": page.path,
        "minutes": RESULT_SECONDS // 60,
    }
    return render(request, "result.html", context, caller=caller, status=200 if result else 404)


def _problem(exc: OfflineServiceError, page: _Page, data: bytes) -> Problem:
    """The error as ``page`` shows it; a file that belongs elsewhere is told where: a request of
    another kind (the engine read its kind), or a response file (its header says so)."""
    if exc.code is Code.MALFORMED_REQUEST:
        kind = exc.kind if isinstance(exc, RequestRefused) else None
        if kind is not None and kind is not page.kind:
            return Problem.of(exc, variant=f"{kind.value}-request")
        if kind is None and looks_like_response(data):
            return Problem.of(exc, variant="response-file")
    return Problem.of(exc)


def _offline_context() -> dict[str, Any]:
    return {"validities": VALIDITY_DAYS, "chosen": DEFAULT_VALIDITY_DAYS}


async def _offline(request: Request, page: _Page) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    if request.method in ("GET", "HEAD"):
        context = {"section": page.section, **_offline_context()}
        return render(request, page.template, context, caller=caller)
    svc = services(request)
    async with request.form(max_files=1, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        data = b""
        try:
            data = await _request_file(form)
            validity = _validity(form) if page.kind is Kind.ACTIVATION else None
            outcome = await process_request(svc, caller, data, validity=validity, kinds=(page.kind,))
        except OfflineServiceError as exc:
            # The page again (post/redirect/get), with the choice made and the pasted text, if any.
            kept = {
                "validity": form_field(form, "validity", 4),
                "text": form_field(form, "text", MAX_FILE_BYTES),
            }
            return refuse(request, page.path, _problem(exc, page, data), fields=kept)
    assert outcome.response is not None and outcome.activation_id is not None
    return _remember(request, page, outcome)


async def activate(request: Request) -> Response:
    return await _offline(request, _ACTIVATE)


async def deactivate(request: Request) -> Response:
    return await _offline(request, _DEACTIVATE)


async def activate_result(request: Request) -> Response:
    return await _result(request, _ACTIVATE, download=False)


async def activate_download(request: Request) -> Response:
    return await _result(request, _ACTIVATE, download=True)


async def deactivate_result(request: Request) -> Response:
    return await _result(request, _DEACTIVATE, download=False)


async def deactivate_download(request: Request) -> Response:
    return await _result(request, _DEACTIVATE, download=True)


async def batch(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    context: dict[str, Any] = {
        "section": "batch",
        "max_mib": svc.settings.max_upload_bytes // (1024 * 1024),
        "hours": batch_results.RESULT_SECONDS // 3600,
        **_offline_context(),
    }
    if request.method in ("GET", "HEAD"):
        return render(request, "batch.html", context, caller=caller)
    async with request.form(max_files=1, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
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
            kept = {"validity": form_field(form, "validity", 4)}
            return refuse(request, "/batch", Problem.of(exc), fields=kept)
    # Post/redirect/get: the result is kept in the database (any instance shows it, a reload
    # repeats nothing), for the person who uploaded it only.
    saved = await run_in_threadpool(
        functools.partial(
            batch_results.save,
            svc.store,
            account_id=caller.user.account_id,
            user_id=caller.user.id,
            files=result.files,
            archive=result.archive,
            now=svc.now(),
        )
    )
    return RedirectResponse(f"/batch/result/{saved.id}", status_code=303)


BATCH_PAGE_SIZE = 200  # files per page of a batch's result; its summary always counts them all


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One file of a batch's result as the page shows it; ``license`` only if the person may see it."""

    file: BatchFile
    outcome: str  # batch_results.ACCEPTED, REISSUED or REFUSED
    license: LicenseRow | None

    @property
    def plain(self) -> str:
        """What a refused file's code means, in words; empty for the others."""
        return _plain(self.file.code) if self.outcome == "refused" else ""


def _plain(code: str) -> str:
    try:
        return PLAIN_WORDS.get(Code(code), "")
    except ValueError:
        return ""


def _no_result() -> OfflineServiceError:
    # One answer for a malformed id, an unknown one, another person's and an expired one.
    return OfflineServiceError(Code.NOT_FOUND, "no such batch result, or it has expired")


def _batch_page_number(params: Mapping[str, str]) -> int:
    value = params.get("page", "1")
    if not (value.isascii() and value.isdigit() and len(value) <= 9 and int(value) >= 1):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "page must be a whole number from 1")
    return int(value)


def _batch_view(svc: Services, caller: Caller, result_id: str, number: int) -> dict[str, Any]:
    """What a batch's result page shows: the summary of every file, and one page of them (blocking)."""
    now = svc.now()
    result = batch_results.find(
        svc.store, account_id=caller.user.account_id, user_id=caller.user.id, result_id=result_id, now=now
    )
    if result is None:
        raise _no_result()
    files = result.files
    pages = max(1, -(-len(files) // BATCH_PAGE_SIZE))
    if number > pages:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"this result has {pages} page(s)")
    shown = files[(number - 1) * BATCH_PAGE_SIZE : number * BATCH_PAGE_SIZE]
    # The licenses of this page's files that the person may see now, looked up afresh.
    wanted = caller.license_ids & {f.license_id for f in shown if f.license_id}
    products = queries.product_names(svc.store, caller.user.account_id) if wanted else {}
    visible = {
        x.id: _row(x, products.get(x.product_id, x.product_id), now)
        for x in queries.visible_licenses(svc.store, caller.user.account_id, wanted)
        if caller.may_use(x)
    }
    summary = batch_results.summarize(files)
    path = f"/batch/result/{result.id}"
    return {
        "result": result,
        "summary": summary,
        "refused": [(code, n, _plain(code)) for code, n in summary.refused],
        "rows": [BatchRow(f, batch_results.outcome(f), visible.get(f.license_id)) for f in shown],
        "first": (number - 1) * BATCH_PAGE_SIZE + 1,
        "number": number,
        "pages": pages,
        "page_size": BATCH_PAGE_SIZE,
        "previous": f"{path}?page={number - 1}" if number > 1 else None,
        "next": f"{path}?page={number + 1}" if number < pages else None,
        "download": f"{path}/download",
        "hours": batch_results.RESULT_SECONDS // 3600,
    }


async def batch_result(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    try:
        result_id = request.path_params["id"]
        if not is_id(result_id, "batch"):
            raise _no_result()
        number = _batch_page_number(request.query_params)
        data = await run_in_threadpool(_batch_view, services(request), caller, result_id, number)
    except OfflineServiceError as exc:
        return error_page(request, caller, exc)
    return render(request, "batch_result.html", {"section": "batch", **data}, caller=caller)


async def batch_download(request: Request) -> Response:
    caller = await page_caller(request)
    if caller is None:
        return to_login(request)
    svc = services(request)
    result_id = request.path_params["id"]
    found = None
    if is_id(result_id, "batch"):
        found = await run_in_threadpool(
            functools.partial(
                batch_results.find_archive,
                svc.store,
                account_id=caller.user.account_id,
                user_id=caller.user.id,
                result_id=result_id,
                now=svc.now(),
            )
        )
    if found is None:
        return error_page(request, caller, _no_result())
    created_at, archive = found
    stamp = dt.datetime.fromtimestamp(created_at, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="responses-{stamp}.zip"'},
    )


routes: list[BaseRoute] = [
    Route("/", dashboard, name="portal_dashboard"),
    Route("/licenses", licenses, name="portal_licenses"),
    Route("/licenses/{id}", license_detail, name="portal_license"),
    Route(
        "/licenses/{id}/release/{activation}",
        release_seat,
        methods=["GET", "POST"],
        name="portal_release_seat",
    ),
    Route("/activate", activate, methods=["GET", "POST"], name="portal_activate"),
    Route("/deactivate", deactivate, methods=["GET", "POST"], name="portal_deactivate"),
    Route("/activate/result", activate_result, name="portal_activate_result"),
    Route("/activate/result/download", activate_download, name="portal_activate_download"),
    Route("/deactivate/result", deactivate_result, name="portal_deactivate_result"),
    Route("/deactivate/result/download", deactivate_download, name="portal_deactivate_download"),
    Route("/batch", batch, methods=["GET", "POST"], name="portal_batch"),
    Route("/batch/result/{id}", batch_result, name="portal_batch_result"),
    Route("/batch/result/{id}/download", batch_download, name="portal_batch_download"),
]
