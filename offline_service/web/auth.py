"""Who is asking: bearer tokens for the API, a session cookie for the portal, and the CSRF check
for every form. Every later query is scoped with the person this returns."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from offline_service.accounts.auth import resolve_holder
from offline_service.accounts.models import User
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.models import License
from offline_service.web.services import Services

__all__ = [
    "API_KINDS",
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "Caller",
    "api_caller",
    "bearer_token",
    "check_csrf",
    "client_address",
    "csrf_token",
    "portal_caller",
    "resolve_caller",
    "services",
    "set_cookie",
]

SESSION_COOKIE = "ofs_session"
CSRF_COOKIE = "ofs_csrf"
# A bearer token of the JSON API: an access token from a login, or a personal access token.
API_KINDS = ("access", "personal")


@dataclass(frozen=True, slots=True)
class Caller:
    """A logged-in person and the licenses they may see and use."""

    user: User
    license_ids: frozenset[str]
    token: str
    kind: str = "session"  # of the credential: "session", "access" or "personal"

    def may_use(self, license: License) -> bool:
        return license.account_id == self.user.account_id and license.id in self.license_ids

    @property
    def actor(self) -> str:
        return f"user:{self.user.id}"


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def resolve_caller(svc: Services, token: str, kind: str | tuple[str, ...]) -> Caller:
    """The person behind a session or a bearer token (one kind or several), with the licenses they
    may see (blocking)."""
    user, cred, ids = resolve_holder(svc.store, token, kind=kind, now=svc.now())
    return Caller(user=user, license_ids=ids, token=token, kind=cred.kind)


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; UNAUTHENTICATED when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OfflineServiceError(
            Code.UNAUTHENTICATED, "send Authorization: Bearer <access token or personal access token>"
        )
    return token.strip()


async def api_caller(request: Request) -> Caller:
    """The person behind the bearer token; UNAUTHENTICATED otherwise."""
    return await run_in_threadpool(resolve_caller, services(request), bearer_token(request), API_KINDS)


async def portal_caller(request: Request) -> Caller:
    """The person behind the session cookie; UNAUTHENTICATED otherwise."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise OfflineServiceError(Code.UNAUTHENTICATED, "please log in")
    return await run_in_threadpool(resolve_caller, services(request), token, "session")


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    """HttpOnly, SameSite=Lax, and Secure whenever the request came over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def csrf_token(request: Request, response: Response | None = None) -> str:
    """The browser's CSRF token (double-submit: a random cookie echoed in every form). Sets the
    cookie on ``response`` when the browser has none yet."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = request.scope.setdefault("ofs.csrf", secrets.token_urlsafe(32))
        if response is not None:
            set_cookie(request, response, CSRF_COOKIE, token, max_age=None)
    return token


def check_csrf(request: Request, submitted: object) -> None:
    """A posted form must carry the token of the browser's CSRF cookie (compared in constant time)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (isinstance(submitted, str) and len(cookie) >= 32 and hmac.compare_digest(submitted, cookie)):
        raise OfflineServiceError(
            Code.CSRF_FAILED, "the form is stale or was not sent by this site; reload the page"
        )
