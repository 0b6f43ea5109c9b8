"""The portal's pages for people: logging in and out, asking for a link when the password is
forgotten, a person's own pages (the profile: names,
email, password, time zone, mail preferences; the security page: sessions and API logins with a
revoke button each, personal access tokens), the set-password page a mailed link opens, and (from
``accounts.organization_pages``) the organization admin's pages.

Thin: every decision is in ``accounts.auth``, ``accounts.profile``, ``accounts.password_links`` and
``accounts.password_reset``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlencode

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts import organization_pages, password_links, password_reset, profile, time_zones
from offline_service.accounts.auth import (
    authenticate,
    check_email,
    issue_credential,
    revoke_credential,
    token_hash,
)
from offline_service.accounts.models import Credential
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_alias, check_id, is_alias
from offline_service.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    check_csrf,
    client_address,
    services,
    set_cookie,
)
from offline_service.web.errors import status_of
from offline_service.web.kit import (
    FIELD_BYTES,
    Problem,
    back,
    error_page,
    forget_session,
    form_field,
    forward,
    page_caller,
    posted_form,
    refuse,
    render,
    safe_next,
    to_login,
)
from offline_service.web.services import Services

__all__ = ["routes"]

log = logging.getLogger("offline_service.accounts.pages")

DONE = {
    "name": "Your name is saved.",
    "email": "Your email is changed. Log in with the new one from now on.",
    "password": "Your password is changed. Your other sessions and tokens have ended.",
    "preferences": "Your preferences are saved.",
    "session-revoked": "The session has ended.",
    "token-revoked": "The token is revoked.",
    "token-created": "The token is made. Its secret is shown only once: if you did not copy it, revoke the token and make another.",
}

Page = Callable[[Request, Caller], Awaitable[Response]]


def _person(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for whoever is logged in; refusals the handler does not show itself become an error page."""

    async def endpoint(request: Request) -> Response:
        caller = await page_caller(request)
        if caller is None:
            return to_login(request)
        try:
            return await handler(request, caller)
        except OfflineServiceError as exc:
            return error_page(request, caller, exc)

    return endpoint


# -- login and logout ------------------------------------------------------------------------


def _login_again(request: Request, target: str) -> str:
    """The login page a refused login goes back to: with where to go after it and the account the
    page was for (``?account=``), as the form was posted."""
    query = {"next": target} if target != "/" else {}
    named = request.query_params.get("account", "")
    if is_alias(named):
        query["account"] = named
    return f"/login?{urlencode(query)}" if query else "/login"


async def login(request: Request) -> Response:
    if request.method in ("GET", "HEAD"):
        if await page_caller(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        context = {"next": safe_next(request.query_params.get("next"))}
        if request.query_params.get("done") == "password-set":
            context["notice"] = "Your password is set. Log in with it."
        return render(request, "login.html", context)
    async with request.form(max_files=0, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        account_alias = form_field(form, "account", 1024).strip()
        email = form_field(form, "email", 254).strip()
        password = form_field(form, "password", 1024)
        target = safe_next(form.get("next"))
    svc = services(request)
    kept = {"account": account_alias, "email": email}  # never the password
    try:
        if not (account_alias and email and password):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "fill in the account, email and password")
        check_alias(account_alias, "the account")
        user = await run_in_threadpool(
            authenticate,
            svc.store,
            account_alias=account_alias,
            email=email,
            password=password,
            address=client_address(request),
            now=svc.now(),
            cost=svc.settings.password_cost,
        )
    except OfflineServiceError as exc:
        if exc.code not in (Code.INVALID_ARGUMENT, Code.INVALID_CREDENTIALS, Code.RATE_LIMITED):
            raise
        # The login page again (post/redirect/get): a reload asks again, it does not log in again.
        return refuse(request, _login_again(request, target), Problem.of(exc), fields=kept)
    token = await run_in_threadpool(
        issue_credential,
        svc.store,
        user,
        kind="session",
        lifetime=svc.settings.session_lifetime,
        now=svc.now(),
        user_agent=request.headers.get("user-agent", ""),
        address=client_address(request),
    )
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=svc.settings.session_lifetime)
    # A fresh CSRF token for the new session: one planted before login is worth nothing after it.
    set_cookie(request, response, CSRF_COOKIE, secrets.token_urlsafe(32), max_age=None)
    return response


async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        svc = services(request)
        await run_in_threadpool(revoke_credential, svc.store, token, now=svc.now())
    response = RedirectResponse("/login", status_code=303)
    forget_session(request, response)
    return response


# -- forgot password -----------------------------------------------------------------------------


def _sent(svc: Services) -> str:
    hours = svc.settings.password_link_lifetime // 3600
    return (
        "If an account exists for that email address, we have sent it a link to set a new password,"
        f" which works once and expires in {hours} hour{'s' if hours != 1 else ''}."
    )


def _mail_reset(svc: Services, reset: password_reset.Reset) -> None:
    """Mail the link of a forgot-password request (blocking; after the answer is sent)."""
    try:
        svc.send(
            password_links.mail(
                svc.store,
                reset.user,
                reset.token,
                sender=svc.settings.mail_from,
                base=reset.base,
                expires_at=reset.expires_at,
                now=svc.now(),
                requested=True,
            )
        )
    except OfflineServiceError as exc:
        # The answer is gone already, and must not differ from an unknown email's anyway: the
        # operator learns it here (the user's id, never the link), the person can ask again.
        log.error("forgot password: no mail for user %s: %s %s", reset.user.id, exc.code.value, exc.message)


async def forgot_password(request: Request) -> Response:
    """GET: the form (or, with ``?sent=1``, the one answer); POST: ask for a link, then always the
    same redirect, whether the email is a person's, nobody's or a disabled person's, or a cap was
    reached. The mail is written after the answer, so that it takes no longer either."""
    svc = services(request)
    # Only a ?account= the login page would also take: it keeps the page's look (web/brand.py).
    named = request.query_params.get("account", "")
    query = {"account": named} if is_alias(named) else {}
    if request.method in ("GET", "HEAD"):
        if request.query_params.get("sent") == "1":
            return render(
                request, "forgot_password.html", {"notice": _sent(svc), "sent": True, "query": query}
            )
        return render(request, "forgot_password.html", {"values": {"account": named[:64]}, "query": query})
    async with request.form(max_files=0, max_fields=10, max_part_size=FIELD_BYTES) as form:
        check_csrf(request, form.get("csrf"))
        account_alias = form_field(form, "account", 1024).strip()
        email = form_field(form, "email", 254).strip()
    try:
        if not (account_alias and email):
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "fill in the account and email")
        check_alias(account_alias, "the account")
        check_email(email)
        address = client_address(request)
        reset = await run_in_threadpool(
            lambda: password_reset.request_link(
                svc.store,
                account_alias=account_alias,
                email=email,
                address=address,
                now=svc.now(),
                lifetime=svc.settings.password_link_lifetime,
                public_url=svc.settings.public_url,
            )
        )
    except OfflineServiceError as exc:
        # Refusals of the form itself, the same whoever the email is: not a word about a person.
        again = f"/forgot-password?{urlencode(query)}" if query else "/forgot-password"
        return refuse(request, again, Problem.of(exc), fields={"account": account_alias, "email": email})
    target = f"/forgot-password?{urlencode({'sent': '1', **query})}"
    task = BackgroundTask(_mail_reset, svc, reset) if reset is not None else None
    return RedirectResponse(target, status_code=303, background=task)


# -- profile -------------------------------------------------------------------------------------


async def profile_page(request: Request, caller: Caller) -> Response:
    user = caller.user
    zones = time_zones.choices(services(request).now())
    context = {
        "section": "profile",
        "tab": "profile",
        "person": user,
        "zones": zones,
        # The person's zone as the list labels it; a zone the list does not offer, by its name.
        "zone_shown": next((z.label for z in zones if z.name == user.time_zone), user.time_zone),
        "values": {"first_name": user.first_name, "last_name": user.last_name, "email": ""},
        "notice": DONE.get(request.query_params.get("done", "")),
    }
    return render(request, "profile.html", context, caller=caller)


# What each profile form may give back to the page when it is refused (never a password).
_FORM_FIELDS = {
    "name": frozenset({"first_name", "last_name"}),
    "email": frozenset({"email"}),
    "password": frozenset[str](),
    "preferences": frozenset(
        {"time_zone", "notify_new_activation", "notify_license_expiry", "notify_new_release"}
    ),
}


def _change(which: str) -> Page:
    """POST /profile/<which>: one form of the profile page."""

    async def handler(request: Request, caller: Caller) -> Response:
        form = await posted_form(request)
        svc, user = services(request), caller.user
        now, address, cost = svc.now(), client_address(request), svc.settings.password_cost

        def run() -> None:
            if which == "name":
                profile.update_name(
                    svc.store,
                    user,
                    first_name=form.get("first_name", ""),
                    last_name=form.get("last_name", ""),
                    now=now,
                )
            elif which == "email":
                profile.change_email(
                    svc.store,
                    user,
                    email=form.get("email", ""),
                    password=form.get("password", ""),
                    address=address,
                    now=now,
                    cost=cost,
                )
            elif which == "password":
                if form.get("new_password", "") != form.get("confirm", ""):
                    raise OfflineServiceError(Code.INVALID_ARGUMENT, "the two new passwords differ")
                profile.change_password(
                    svc.store,
                    user,
                    current_password=form.get("current_password", ""),
                    new_password=form.get("new_password", ""),
                    keep=caller.token,
                    address=address,
                    now=now,
                    cost=cost,
                )
            else:
                profile.update_preferences(
                    svc.store,
                    user,
                    time_zone=form.get("time_zone", ""),
                    notify_new_activation=form.get("notify_new_activation") == "1",
                    notify_license_expiry=form.get("notify_license_expiry") == "1",
                    notify_new_release=form.get("notify_new_release") == "1",
                    now=now,
                )

        try:
            await run_in_threadpool(run)
        except OfflineServiceError as exc:
            # Only the refused form keeps what was typed; the other forms show what is stored (a
            # refused email change must not show the name fields empty: saving them would erase it).
            kept = {k: v for k, v in form.items() if k in _FORM_FIELDS[which]}
            return refuse(request, "/profile", Problem.of(exc), form=which, fields=kept)
        return back("/profile", which)

    return handler


# -- sessions and tokens -------------------------------------------------------------------------


# A new personal access token travels from its POST to the page that shows it (post/redirect/get)
# in a cookie of its own: HttpOnly, SameSite=Strict, only for that page, two minutes at most, and
# dropped by the first page that shows it, so a reload neither makes a second token nor shows the
# secret again. Never in a URL (access logs), never stored: the database has only its hash.
NEW_TOKEN_COOKIE = "ofs_new_token"  # noqa: S105 (a cookie name, not a secret)
_NEW_TOKEN_PATH = "/profile/security"  # noqa: S105 (a path)


def _new_token(request: Request, personal: Sequence[Credential]) -> tuple[Credential, str] | None:
    """The token the browser was just given, if the cookie names one of the person's own
    tokens and holds its very secret (checked against the stored hash)."""
    crd, _, secret = request.cookies.get(NEW_TOKEN_COOKIE, "").partition(":")
    for cred in personal:
        if cred.id == crd and secret and hmac.compare_digest(cred.token_hash, token_hash(secret)):
            return cred, secret
    return None


async def security_page(request: Request, caller: Caller) -> Response:
    svc = services(request)
    found = await run_in_threadpool(lambda: profile.credentials(svc.store, caller.user, now=svc.now()))
    mine = token_hash(caller.token)
    context = {
        "section": "profile",
        "tab": "security",
        "sign_ins": [(c, hmac.compare_digest(c.token_hash, mine)) for c in found.sign_ins],
        "tokens": found.personal,
        "token_days": profile.TOKEN_DAYS,
        "values": {"days": "90"},
        "new_token": _new_token(request, found.personal),
        "notice": DONE.get(request.query_params.get("done", "")),
    }
    response = render(request, "profile_security.html", context, caller=caller)
    if NEW_TOKEN_COOKIE in request.cookies:  # shown once, or not at all
        response.delete_cookie(
            NEW_TOKEN_COOKIE,
            path=_NEW_TOKEN_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def _not_revoked(request: Request, exc: OfflineServiceError) -> Response:
    """A revoke button refused (most often: a page older than the session's or token's end)."""
    problem = Problem.of(exc, variant="already-ended" if exc.code is Code.NOT_FOUND else "")
    return refuse(request, "/profile/security", problem)


async def revoke_session(request: Request, caller: Caller) -> Response:
    await posted_form(request)
    svc = services(request)
    credential_id = check_id(request.path_params["id"], "credential")  # a bad path: the error page
    try:
        found = await run_in_threadpool(
            lambda: profile.revoke(
                svc.store,
                caller.user,
                credential_id,
                personal=False,
                now=svc.now(),
            )
        )
    except OfflineServiceError as exc:
        return _not_revoked(request, exc)
    if hmac.compare_digest(found.token_hash, token_hash(caller.token)):
        # This very session: the same as logging out.
        response = RedirectResponse("/login", status_code=303)
        forget_session(request, response)
        return response
    return back("/profile/security", "session-revoked")


async def create_token(request: Request, caller: Caller) -> Response:
    form = await posted_form(request)
    svc = services(request)
    days = form.get("days", "")
    try:
        credential, token = await run_in_threadpool(
            lambda: profile.create_personal_token(
                svc.store,
                caller.user,
                name=form.get("name", ""),
                days=int(days) if days.isascii() and days.isdigit() and len(days) < 6 else -1,
                now=svc.now(),
            )
        )
    except OfflineServiceError as exc:
        kept = {"name": form.get("name", ""), "days": days}
        return refuse(request, _NEW_TOKEN_PATH, Problem.of(exc), form="token", fields=kept)
    response = back(_NEW_TOKEN_PATH, "token-created")
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        f"{credential.id}:{token}",
        max_age=120,
        path=_NEW_TOKEN_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def revoke_token(request: Request, caller: Caller) -> Response:
    await posted_form(request)
    svc = services(request)
    credential_id = check_id(request.path_params["id"], "credential")  # a bad path: the error page
    try:
        await run_in_threadpool(
            lambda: profile.revoke(
                svc.store,
                caller.user,
                credential_id,
                personal=True,
                now=svc.now(),
            )
        )
    except OfflineServiceError as exc:
        return _not_revoked(request, exc)
    return back("/profile/security", "token-revoked")


# -- set-password links --------------------------------------------------------------------------


async def set_password(request: Request) -> Response:
    svc = services(request)
    if request.method in ("GET", "HEAD"):
        token = request.query_params.get("token", "")
        try:
            user = await run_in_threadpool(lambda: password_links.holder(svc.store, token, now=svc.now()))
        except OfflineServiceError as exc:
            return render(
                request, "set_password.html", {"problem": Problem.of(exc)}, status=status_of(exc.code)
            )
        return render(request, "set_password.html", {"token": token, "email": user.email})
    form = await posted_form(request)
    token = form.get("token", "")
    try:
        if form.get("password", "") != form.get("confirm", ""):
            await run_in_threadpool(lambda: password_links.holder(svc.store, token, now=svc.now()))
            raise OfflineServiceError(Code.INVALID_ARGUMENT, "the two passwords differ")
        user = await run_in_threadpool(
            lambda: password_links.set_password(
                svc.store, token, form.get("password", ""), now=svc.now(), cost=svc.settings.password_cost
            )
        )
    except OfflineServiceError as exc:
        # The link's page again (post/redirect/get): its form while the link works, else why not.
        return refuse(request, f"{password_links.PATH}?{urlencode({'token': token})}", Problem.of(exc))
    # Post/redirect/get: to the login page, filled in with the person's account and email (carried
    # as a refused form's fields are, not in the address, which logs keep), saying the password is set.
    alias = await run_in_threadpool(password_links.account_alias, svc.store, user)
    return forward(request, "/login?done=password-set", fields={"account": alias, "email": user.email})


routes: list[BaseRoute] = [
    Route("/login", login, methods=["GET", "POST"], name="portal_login"),
    Route("/logout", logout, methods=["POST"], name="portal_logout"),
    Route("/forgot-password", forgot_password, methods=["GET", "POST"], name="portal_forgot_password"),
    Route("/profile", _person(profile_page), name="portal_profile"),
    Route("/profile/name", _person(_change("name")), methods=["POST"]),
    Route("/profile/email", _person(_change("email")), methods=["POST"]),
    Route("/profile/password", _person(_change("password")), methods=["POST"]),
    Route("/profile/preferences", _person(_change("preferences")), methods=["POST"]),
    Route("/profile/security", _person(security_page), name="portal_security"),
    Route("/profile/sessions/{id}/revoke", _person(revoke_session), methods=["POST"]),
    Route("/profile/tokens", _person(create_token), methods=["POST"]),
    Route("/profile/tokens/{id}/revoke", _person(revoke_token), methods=["POST"]),
    Route(password_links.PATH, set_password, methods=["GET", "POST"], name="portal_set_password"),
    *organization_pages.routes,
]
