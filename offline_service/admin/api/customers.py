"""``/v1/admin/organizations``, ``/v1/admin/users`` and ``/v1/admin/groups``: the account's customers,
with the same services as the CLI's ``org``, ``user`` and ``group`` verbs (``accounts.membership``,
as the vendor: ``Scope.vendor`` with the token as the actor).

A user is never given a password here: ``"invite": true`` (or ``POST .../invite``) mails them a
one-time set-password link, as ``user password-link`` does. The link's secret goes into the mail
only, never into an answer, a kept idempotent answer or the audit log."""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts import invitations, membership, password_links, queries
from offline_service.accounts.membership import MAX_ALLOWED_USERS, NewUser
from offline_service.accounts.models import User
from offline_service.accounts.representations import group_json, organization_json, person_json
from offline_service.accounts.scope import Scope as People
from offline_service.admin.api._kit import (
    admin_token,
    create_once,
    flag,
    id_cursor,
    json_body,
    json_response,
    limit,
    members,
    next_cursor,
    path_id,
)
from offline_service.admin.models import AdminToken, Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import check_id
from offline_service.store import Transaction
from offline_service.web.api import json_int
from offline_service.web.auth import services
from offline_service.web.services import Services

__all__ = [
    "GROUP_CHANGE_MEMBERS",
    "GROUP_MEMBERS",
    "MAX_EMAIL",
    "ORGANIZATION_MEMBERS",
    "USER_MEMBERS",
    "routes",
]

MAX_EMAIL = 254
ORGANIZATION_MEMBERS = frozenset({"name", "allowedUsers"})
USER_MEMBERS = frozenset({"email", "role", "organizationId", "firstName", "lastName", "invite"})
GROUP_MEMBERS = frozenset({"organizationId", "name"})
GROUP_CHANGE_MEMBERS = frozenset({"name"})

log = logging.getLogger("offline_service.admin.api.customers")


async def _vendor(request: Request, scope: Scope) -> tuple[AdminToken, People]:
    """The token, and the vendor's scope over the token's account, acting as the token."""
    token, account = await admin_token(request, scope)
    return token, People.vendor(account, actor=token.actor)


def _text(body: dict[str, Any], name: str, *, required: bool, high: int) -> str:
    """Text of at most ``high`` characters, without control characters ("" when absent)."""
    value = body.get(name)
    if value is None and not required and name not in body:
        return ""
    if not isinstance(value, str) or len(value) > high or not value.isprintable():
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"{name} must be text of at most {high} characters, without control characters",
        )
    return value


# -- organizations -------------------------------------------------------------------------------


async def organization_list(request: Request) -> Response:
    _, scope = await _vendor(request, Scope.CUSTOMERS_READ)
    size = limit(request.query_params)
    after = id_cursor(request.query_params, "organization")
    page, last = await run_in_threadpool(
        lambda: queries.organization_page(services(request).store, scope, after=after, limit=size)
    )
    return json_response(
        {"organizations": [organization_json(o) for o in page], "nextCursor": next_cursor(last)}
    )


def _allowed_users(body: dict[str, Any]) -> int | None:
    value = body.get("allowedUsers")
    if value is None:
        return None
    number = json_int(value)
    if number is None or not 0 <= number <= MAX_ALLOWED_USERS:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"allowedUsers must be 0 to {MAX_ALLOWED_USERS}, or null for no cap"
        )
    return number


async def organization_create(request: Request) -> Response:
    token, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    body = await json_body(request)
    members(body, ORGANIZATION_MEMBERS)
    name = _text(body, "name", required=True, high=membership.MAX_ORGANIZATION_NAME)
    allowed = _allowed_users(body)
    now = services(request).now()

    def create(tx: Transaction) -> dict[str, Any]:
        org = membership.create_organization_in(tx, scope, name=name, now=now, allowed_users=allowed)
        return organization_json(org)

    return await create_once(request, token, body, create, now=now)


async def organization_detail(request: Request) -> Response:
    _, scope = await _vendor(request, Scope.CUSTOMERS_READ)
    org_id = path_id(request, "organization")
    view = await run_in_threadpool(queries.organization, services(request).store, scope, org_id)
    return json_response(
        {
            **organization_json(view.organization),
            "users": view.users,
            "enabledUsers": view.enabled_users,
            "groups": view.groups,
            "licenses": view.licenses,
        }
    )


async def organization_groups(request: Request) -> Response:
    _, scope = await _vendor(request, Scope.CUSTOMERS_READ)
    org_id = path_id(request, "organization")
    found = await run_in_threadpool(queries.organization_groups, services(request).store, scope, org_id)
    return json_response(
        {
            "groups": [
                {
                    **group_json(g.group),
                    "memberIds": sorted(g.member_ids),
                    "licenseIds": sorted(g.license_ids),
                }
                for g in found
            ]
        }
    )


# -- users ---------------------------------------------------------------------------------------


async def user_list(request: Request) -> Response:
    _, scope = await _vendor(request, Scope.CUSTOMERS_READ)
    params = request.query_params
    org_id = params.get("organization") or None
    if org_id is not None:
        check_id(org_id, "organization", "organization")
    size = limit(params)
    after = id_cursor(params, "user")
    page, last = await run_in_threadpool(
        lambda: queries.user_page(
            services(request).store, scope, organization_id=org_id, after=after, limit=size
        )
    )
    return json_response({"users": [person_json(u) for u in page], "nextCursor": next_cursor(last)})


def _link_base(svc: Services, account_id: str) -> str:
    """Where this account's set-password links start; asked before anything is changed, so that a
    service without a public address refuses an invitation and creates nobody."""
    return password_links.link_base(svc.store, account_id, public_url=svc.settings.public_url)


def _mail_failed(user: User, exc: OfflineServiceError) -> OfflineServiceError:
    """A mail that could not be sent, logged without the link and answered without the mailer's
    words (they may name a path): the link stays issued, and another can be asked for."""
    log.error("no set-password mail for user %s: %s", user.id, exc.code.value)
    return OfflineServiceError(
        Code.STORAGE_ERROR,
        f"the set-password mail for user {user.id} could not be sent; send another with"
        f" POST /v1/admin/users/{user.id}/invite",
    )


def _mail_link(svc: Services, user: User, token: str, *, base: str, now: int) -> None:
    """Mail a new user their set-password link (blocking, no transaction held)."""
    expires_at = now + svc.settings.password_link_lifetime
    try:
        invitations.mail_link(
            svc.store,
            svc.mailer,
            user,
            token,
            sender=svc.settings.mail_from,
            base=base,
            expires_at=expires_at,
            now=now,
        )
    except OfflineServiceError as exc:
        raise _mail_failed(user, exc) from None


async def user_create(request: Request) -> Response:
    """Create a user, without a password; with ``"invite": true`` mail them a set-password link
    (only the first answer of an Idempotency-Key sends it: a replay mails nothing)."""
    token, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    body = await json_body(request)
    members(body, USER_MEMBERS)
    email = _text(body, "email", required=True, high=MAX_EMAIL)
    role = _text(body, "role", required=True, high=64)
    org_id = body.get("organizationId")
    if org_id is not None:
        check_id(org_id, "organization", "organizationId")
    first = _text(body, "firstName", required=False, high=membership.MAX_NAME)
    last = _text(body, "lastName", required=False, high=membership.MAX_NAME)
    invite = flag(body, "invite") or False
    svc = services(request)
    now = svc.now()
    lifetime = svc.settings.password_link_lifetime
    base = await run_in_threadpool(_link_base, svc, scope.account_id) if invite else None
    made: list[NewUser] = []

    def create(tx: Transaction) -> dict[str, Any]:
        new = membership.create_user_in(
            tx,
            scope,
            email=email,
            role=role,
            now=now,
            organization_id=org_id,
            first_name=first,
            last_name=last,
            link_lifetime=lifetime if invite else None,
        )
        made.append(new)
        answer = person_json(new.user)
        if invite:
            answer["invitation"] = {"expiresAt": now + lifetime}
        return answer

    response = await create_once(request, token, body, create, now=now)
    if made and base is not None:
        new = made[-1]
        assert new.link is not None, "a link was asked for"
        link = new.link
        await run_in_threadpool(lambda: _mail_link(svc, new.user, link, base=base, now=now))
    return response


async def user_detail(request: Request) -> Response:
    _, scope = await _vendor(request, Scope.CUSTOMERS_READ)
    user_id = path_id(request, "user")
    found = await run_in_threadpool(queries.user, services(request).store, scope, user_id)
    return json_response(person_json(found))


async def _user_disabled(request: Request, disabled: bool) -> Response:
    """Disable (their sessions, tokens and set-password link end) or enable again, within the
    organization's allowed users, checked in the transaction that enables."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    user_id = path_id(request, "user")
    svc = services(request)
    changed = await run_in_threadpool(
        lambda: membership.set_disabled(svc.store, scope, user_id, disabled, now=svc.now())
    )
    return json_response(person_json(changed))


async def user_disable(request: Request) -> Response:
    return await _user_disabled(request, True)


async def user_enable(request: Request) -> Response:
    return await _user_disabled(request, False)


async def user_invite(request: Request) -> Response:
    """Mail the user a new set-password link; earlier links end, their password (if any) works
    until the link is used."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    user_id = path_id(request, "user")
    svc = services(request)
    now = svc.now()
    lifetime = svc.settings.password_link_lifetime
    base = await run_in_threadpool(_link_base, svc, scope.account_id)

    def invite() -> tuple[User, int]:
        try:
            return invitations.send_link(
                svc.store,
                scope,
                user_id,
                mailer=svc.mailer,
                sender=svc.settings.mail_from,
                base=base,
                lifetime=lifetime,
                now=now,
            )
        except invitations.NotMailed as exc:
            raise _mail_failed(exc.user, exc) from None

    user, expires_at = await run_in_threadpool(invite)
    return json_response({**person_json(user), "invitation": {"expiresAt": expires_at}})


# -- groups --------------------------------------------------------------------------------------


async def group_create(request: Request) -> Response:
    token, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    body = await json_body(request)
    members(body, GROUP_MEMBERS)
    org_id = check_id(body.get("organizationId"), "organization", "organizationId")
    name = _text(body, "name", required=True, high=membership.MAX_GROUP_NAME)
    now = services(request).now()

    def create(tx: Transaction) -> dict[str, Any]:
        group = membership.create_group_in(tx, scope, name=name, now=now, organization_id=org_id)
        return {**group_json(group), "memberIds": [], "licenseIds": []}

    return await create_once(request, token, body, create, now=now)


async def group_rename(request: Request) -> Response:
    """PATCH ``{name}``: rename the group (the name unique in its organization, checked in the
    transaction that renames)."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    group_id = path_id(request, "group")
    body = await json_body(request)
    members(body, GROUP_CHANGE_MEMBERS)
    name = _text(body, "name", required=True, high=membership.MAX_GROUP_NAME)
    svc = services(request)
    group = await run_in_threadpool(
        lambda: membership.rename_group(svc.store, scope, group_id, name=name, now=svc.now())
    )
    return json_response(group_json(group))


async def group_delete(request: Request) -> Response:
    """DELETE: the group with its memberships and license links; the users and licenses stay."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    group_id = path_id(request, "group")
    svc = services(request)
    group = await run_in_threadpool(
        lambda: membership.delete_group(svc.store, scope, group_id, now=svc.now())
    )
    return json_response({"removed": group.id})


async def group_change(request: Request) -> Response:
    return await (group_rename if request.method == "PATCH" else group_delete)(request)


async def group_member(request: Request) -> Response:
    """POST: add a user of the group's organization; DELETE: remove them. Adding twice is no change."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    group_id = path_id(request, "group")
    user_id = path_id(request, "user", "userId")
    svc = services(request)
    change = membership.add_member if request.method == "POST" else membership.remove_member
    await run_in_threadpool(lambda: change(svc.store, scope, group_id, user_id, now=svc.now()))
    return json_response({"groupId": group_id, "userId": user_id, "member": request.method == "POST"})


async def group_license(request: Request) -> Response:
    """POST: link a license the group's organization owns (any other is LICENSE_NOT_FOUND, as at
    the command line); DELETE: unlink it."""
    _, scope = await _vendor(request, Scope.CUSTOMERS_WRITE)
    group_id = path_id(request, "group")
    license_id = path_id(request, "license", "licenseId")
    svc = services(request)
    change = membership.link_license if request.method == "POST" else membership.unlink_license
    await run_in_threadpool(lambda: change(svc.store, scope, group_id, license_id, now=svc.now()))
    return json_response({"groupId": group_id, "licenseId": license_id, "linked": request.method == "POST"})


async def organizations(request: Request) -> Response:
    return await (organization_create if request.method == "POST" else organization_list)(request)


async def users(request: Request) -> Response:
    return await (user_create if request.method == "POST" else user_list)(request)


routes: tuple[BaseRoute, ...] = (
    Route("/v1/admin/organizations", organizations, methods=["GET", "POST"]),
    Route("/v1/admin/organizations/{id}", organization_detail, methods=["GET"]),
    Route("/v1/admin/organizations/{id}/groups", organization_groups, methods=["GET"]),
    Route("/v1/admin/users", users, methods=["GET", "POST"]),
    Route("/v1/admin/users/{id}", user_detail, methods=["GET"]),
    Route("/v1/admin/users/{id}/disable", user_disable, methods=["POST"]),
    Route("/v1/admin/users/{id}/enable", user_enable, methods=["POST"]),
    Route("/v1/admin/users/{id}/invite", user_invite, methods=["POST"]),
    Route("/v1/admin/groups", group_create, methods=["POST"]),
    Route("/v1/admin/groups/{id}", group_change, methods=["PATCH", "DELETE"]),
    Route("/v1/admin/groups/{id}/members/{userId}", group_member, methods=["POST", "DELETE"]),
    Route("/v1/admin/groups/{id}/licenses/{licenseId}", group_license, methods=["POST", "DELETE"]),
)
