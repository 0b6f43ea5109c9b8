"""The organization admin's pages in the portal: users (add, edit, disable and enable, send a
set-password link) and user groups (create, rename, delete, members, linked licenses).

Thin: every decision is in ``accounts.membership``, the same operations the vendor's CLI uses.
Anyone but an organization admin gets FORBIDDEN on every page here; an id outside the admin's
organization is NOT_FOUND. Each change answers with a redirect to the page that shows it
(post/redirect/get), also when it is refused: then to the page of its form, which says why. What
cannot be undone in a click (disabling a user, deleting a group) is asked on a page of its own first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from offline_service.accounts import invitations, membership, overview, password_links
from offline_service.accounts.models import Role, User
from offline_service.accounts.overview import GroupView, OrganizationView
from offline_service.accounts.scope import Scope
from offline_service.errors import OfflineServiceError
from offline_service.ids import check_id
from offline_service.licensing.models import License
from offline_service.web.auth import Caller, services
from offline_service.web.kit import (
    Problem,
    back,
    error_page,
    mask_key,
    page_caller,
    posted_form,
    refuse,
    render,
    to_login,
)
from offline_service.web.services import Services

__all__ = ["routes"]

log = logging.getLogger("offline_service.accounts.organization_pages")

# What a finished change says on the page it leads to; the query names a key, never the text.
DONE = {
    "created": "The user was added and sent a link to set their password.",
    "saved": "Saved.",
    "disabled": "The user is disabled; their sessions and tokens have ended.",
    "enabled": "The user is enabled again.",
    "link-sent": "A new set-password link was sent; any earlier link no longer works.",
    "created-unmailed": "The user was added, but the mail with their set-password link could not be"
    " sent. Send a new link from this page once mail works again.",
    "link-unmailed": "A new set-password link was made, but its mail could not be sent; any earlier"
    " link no longer works. Try again later.",
    "group-created": "The group was created.",
    "group-deleted": "The group was deleted.",
    "member-added": "The user was added to the group.",
    "member-removed": "The user was removed from the group.",
    "license-linked": "The license was linked: the group's members may use it.",
    "license-unlinked": "The license was unlinked from the group.",
}

Page = Callable[[Request, Caller, Scope], Awaitable[Response]]


def _admin(handler: Page, **ids: str) -> Callable[[Request], Awaitable[Response]]:
    """A page for organization admins only: the login page for nobody, FORBIDDEN for others, and
    every refusal the handler does not show itself as an error page. ``ids``: path parameter ->
    the kind of id it must be (INVALID_ARGUMENT otherwise)."""

    async def endpoint(request: Request) -> Response:
        caller = await page_caller(request)
        if caller is None:
            return to_login(request)
        try:
            scope = Scope.of_admin(caller.user)
            for name, kind in ids.items():
                check_id(request.path_params[name], kind)
            return await handler(request, caller, scope)
        except OfflineServiceError as exc:
            return error_page(request, caller, exc)

    return endpoint


def _done(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def _view(svc: Services, scope: Scope) -> OrganizationView:
    return overview.view(svc.store, scope)


def _link_base(svc: Services, account_id: str) -> str:
    """Where this account's set-password links start (blocking); asked before anything is changed."""
    return password_links.link_base(svc.store, account_id, public_url=svc.settings.public_url)


def _mail_password_link(svc: Services, user: User, token: str, *, base: str) -> bool:
    """Mail ``user`` their set-password link, which starts with ``base`` (blocking, no transaction
    held); whether it was sent. A failure is logged by the sender, without the link; the change it
    follows is kept, and the page says the mail is missing."""
    now = svc.now()
    try:
        invitations.mail_link(
            svc.store,
            svc.mailer,
            user,
            token,
            sender=svc.settings.mail_from,
            base=base,
            expires_at=now + svc.settings.password_link_lifetime,
            now=now,
        )
    except OfflineServiceError as exc:
        log.error("no set-password mail for user %s: %s", user.id, exc.code.value)
        return False
    return True


def _refused(
    request: Request, page: str, exc: OfflineServiceError, form: str, fields: dict[str, str] | None = None
) -> Response:
    """Post/redirect/get for a refused change: back to ``page``, which shows the problem, with the
    fields it keeps (kit.KEPT: names, emails, roles; never anything else)."""
    return refuse(request, page, Problem.of(exc), form=form, fields=fields)


# -- users ---------------------------------------------------------------------------------------


async def _users_page(request: Request, caller: Caller, scope: Scope) -> Response:
    view = await run_in_threadpool(_view, services(request), scope)
    groups_of = {u.id: [g.group.name for g in view.groups if u.id in g.member_ids] for u in view.users}
    context = {
        "section": "users",
        "view": view,
        "groups_of": groups_of,
        "roles": [r.value for r in Role],
        "values": {"role": Role.USER.value},
        "notice": _done(request),
    }
    return render(request, "organization_users.html", context, caller=caller)


async def users(request: Request, caller: Caller, scope: Scope) -> Response:
    if request.method in ("GET", "HEAD"):
        return await _users_page(request, caller, scope)
    form = await posted_form(request)
    svc = services(request)
    try:
        base = await run_in_threadpool(_link_base, svc, caller.user.account_id)
        created = await run_in_threadpool(
            lambda: membership.create_user(
                svc.store,
                scope,
                email=form.get("email", ""),
                role=form.get("role", ""),
                first_name=form.get("first_name", ""),
                last_name=form.get("last_name", ""),
                now=svc.now(),
                link_lifetime=svc.settings.password_link_lifetime,
            )
        )
    except OfflineServiceError as exc:
        return _refused(request, "/organization/users", exc, "create", form)
    user, token = created.user, created.link
    assert token is not None, "a link was asked for"
    sent = await run_in_threadpool(lambda: _mail_password_link(svc, user, token, base=base))
    return back(f"/organization/users/{user.id}", "created" if sent else "created-unmailed")


async def _user_page(request: Request, caller: Caller, scope: Scope) -> Response:
    view = await run_in_threadpool(_view, services(request), scope)
    user = view.user(request.path_params["id"])
    context = {
        "section": "users",
        "view": view,
        "person": user,
        "groups": [g for g in view.groups if user.id in g.member_ids],
        "roles": [r.value for r in Role],
        "values": {"first_name": user.first_name, "last_name": user.last_name, "role": user.role.value},
        "is_self": user.id == caller.user.id,
        "notice": _done(request),
    }
    return render(request, "organization_user.html", context, caller=caller)


async def user_detail(request: Request, caller: Caller, scope: Scope) -> Response:
    if request.method in ("GET", "HEAD"):
        return await _user_page(request, caller, scope)
    form = await posted_form(request)
    svc, user_id = services(request), request.path_params["id"]
    try:
        await run_in_threadpool(
            lambda: membership.update_user(
                svc.store,
                scope,
                user_id,
                first_name=form.get("first_name", ""),
                last_name=form.get("last_name", ""),
                role=form.get("role", ""),
                now=svc.now(),
            )
        )
    except OfflineServiceError as exc:
        # Shown on the user's page; for a user outside the organization that page is NOT_FOUND.
        return _refused(request, f"/organization/users/{user_id}", exc, "edit", form)
    return back(f"/organization/users/{user_id}", "saved")


async def _user_action(request: Request, caller: Caller, scope: Scope, action: str) -> Response:
    await posted_form(request)
    svc, user_id = services(request), request.path_params["id"]
    try:
        if action == "link-sent":
            base = await run_in_threadpool(_link_base, svc, caller.user.account_id)
            user, token = await run_in_threadpool(
                lambda: membership.send_password_link(
                    svc.store,
                    scope,
                    user_id,
                    now=svc.now(),
                    link_lifetime=svc.settings.password_link_lifetime,
                )
            )
            if not await run_in_threadpool(lambda: _mail_password_link(svc, user, token, base=base)):
                action = "link-unmailed"
        else:
            disabled = action == "disabled"
            await run_in_threadpool(
                lambda: membership.set_disabled(svc.store, scope, user_id, disabled, now=svc.now())
            )
    except OfflineServiceError as exc:
        return _refused(request, f"/organization/users/{user_id}", exc, action)
    return back(f"/organization/users/{user_id}", action)


async def user_disable(request: Request, caller: Caller, scope: Scope) -> Response:
    """GET: the page that asks to confirm; POST: disable."""
    if request.method in ("GET", "HEAD"):
        view = await run_in_threadpool(_view, services(request), scope)
        person = view.user(request.path_params["id"])
        context = {"section": "users", "person": person, "is_self": person.id == caller.user.id}
        return render(request, "organization_user_disable.html", context, caller=caller)
    return await _user_action(request, caller, scope, "disabled")


async def user_enable(request: Request, caller: Caller, scope: Scope) -> Response:
    return await _user_action(request, caller, scope, "enabled")


async def user_link(request: Request, caller: Caller, scope: Scope) -> Response:
    return await _user_action(request, caller, scope, "link-sent")


# -- groups --------------------------------------------------------------------------------------


async def _groups_page(request: Request, caller: Caller, scope: Scope) -> Response:
    view = await run_in_threadpool(_view, services(request), scope)
    context = {"section": "groups", "view": view, "values": {}, "notice": _done(request)}
    return render(request, "organization_groups.html", context, caller=caller)


async def groups(request: Request, caller: Caller, scope: Scope) -> Response:
    if request.method in ("GET", "HEAD"):
        return await _groups_page(request, caller, scope)
    form = await posted_form(request)
    svc = services(request)
    try:
        group = await run_in_threadpool(
            lambda: membership.create_group(svc.store, scope, name=form.get("name", ""), now=svc.now())
        )
    except OfflineServiceError as exc:
        return _refused(request, "/organization/groups", exc, "create", form)
    return back(f"/organization/groups/{group.id}", "group-created")


def _shown(view: OrganizationView, license: License) -> tuple[License, str]:
    """A license and how the page names it: the masked key and the product."""
    return license, f"{mask_key(license.key)} ({view.products.get(license.product_id, license.product_id)})"


async def _group_page(request: Request, caller: Caller, scope: Scope) -> Response:
    view = await run_in_threadpool(_view, services(request), scope)
    group = view.group(request.path_params["id"])
    context = {
        "section": "groups",
        "view": view,
        "group": group,
        "members": [u for u in view.users if u.id in group.member_ids],
        "others": [u for u in view.users if u.id not in group.member_ids],
        "linked": [_shown(view, x) for x in view.licenses if x.id in group.license_ids],
        "unlinked": [_shown(view, x) for x in view.licenses if x.id not in group.license_ids],
        "values": {"name": group.group.name},
        "notice": _done(request),
    }
    return render(request, "organization_group.html", context, caller=caller)


async def group_detail(request: Request, caller: Caller, scope: Scope) -> Response:
    if request.method in ("GET", "HEAD"):
        return await _group_page(request, caller, scope)
    form = await posted_form(request)
    svc, group_id = services(request), request.path_params["id"]
    try:
        await run_in_threadpool(
            lambda: membership.rename_group(
                svc.store, scope, group_id, name=form.get("name", ""), now=svc.now()
            )
        )
    except OfflineServiceError as exc:
        # Shown on the group's page; for a group outside the organization that page is NOT_FOUND.
        return _refused(request, f"/organization/groups/{group_id}", exc, "rename", form)
    return back(f"/organization/groups/{group_id}", "saved")


def _losses(view: OrganizationView, group: GroupView) -> list[tuple[User, list[str]]]:
    """Who loses which licenses (as the page names them) when ``group`` goes: its members who
    are users, and the group's licenses they neither own nor get through another group."""
    names = {x.id: _shown(view, x)[1] for x in view.licenses}
    losses = []
    for person in view.users:
        if person.id not in group.member_ids or person.role is Role.ORGANIZATION_ADMIN:
            continue  # an organization admin sees every license of the organization anyway
        kept = {i for g in view.groups if g is not group and person.id in g.member_ids for i in g.license_ids}
        lost = [
            names[x.id]
            for x in view.licenses
            if x.id in group.license_ids and x.id not in kept and x.owner_user_id != person.id
        ]
        if lost:
            losses.append((person, lost))
    return losses


async def group_delete(request: Request, caller: Caller, scope: Scope) -> Response:
    """GET: the page that asks to confirm, with who loses which licenses; POST: delete."""
    svc, group_id = services(request), request.path_params["id"]
    if request.method in ("GET", "HEAD"):
        view = await run_in_threadpool(_view, svc, scope)
        group = view.group(group_id)
        context = {"section": "groups", "group": group, "losses": _losses(view, group)}
        return render(request, "organization_group_delete.html", context, caller=caller)
    await posted_form(request)
    try:
        await run_in_threadpool(lambda: membership.delete_group(svc.store, scope, group_id, now=svc.now()))
    except OfflineServiceError as exc:
        return _refused(request, f"/organization/groups/{group_id}", exc, "delete")
    return back("/organization/groups", "group-deleted")


Change = Callable[[Services, Scope, str, str], None]


def _group_change(change: Change, field: str | None, kind: str, done: str) -> Page:
    """A change to a group's members or licenses: the other id, of ``kind``, comes from the form
    (``field``) or from the path (``other``)."""

    async def handler(request: Request, caller: Caller, scope: Scope) -> Response:
        form = await posted_form(request)
        svc, group_id = services(request), request.path_params["id"]
        other = form.get(field, "") if field else request.path_params["other"]
        try:
            check_id(other, kind, field or "id")
            await run_in_threadpool(change, svc, scope, group_id, other)
        except OfflineServiceError as exc:
            return _refused(request, f"/organization/groups/{group_id}", exc, done, form)
        return back(f"/organization/groups/{group_id}", done)

    return handler


def _add(svc: Services, scope: Scope, group_id: str, user_id: str) -> None:
    membership.add_member(svc.store, scope, group_id, user_id, now=svc.now())


def _remove(svc: Services, scope: Scope, group_id: str, user_id: str) -> None:
    membership.remove_member(svc.store, scope, group_id, user_id, now=svc.now())


def _link(svc: Services, scope: Scope, group_id: str, license_id: str) -> None:
    membership.link_license(svc.store, scope, group_id, license_id, now=svc.now())


def _unlink(svc: Services, scope: Scope, group_id: str, license_id: str) -> None:
    membership.unlink_license(svc.store, scope, group_id, license_id, now=svc.now())


_POST = ["POST"]
_BOTH = ["GET", "POST"]
routes: list[BaseRoute] = [
    Route("/organization/users", _admin(users), methods=_BOTH, name="org_users"),
    Route("/organization/users/{id}", _admin(user_detail, id="user"), methods=_BOTH, name="org_user"),
    Route("/organization/users/{id}/disable", _admin(user_disable, id="user"), methods=_BOTH),
    Route("/organization/users/{id}/enable", _admin(user_enable, id="user"), methods=_POST),
    Route("/organization/users/{id}/password-link", _admin(user_link, id="user"), methods=_POST),
    Route("/organization/groups", _admin(groups), methods=_BOTH, name="org_groups"),
    Route("/organization/groups/{id}", _admin(group_detail, id="group"), methods=_BOTH, name="org_group"),
    Route("/organization/groups/{id}/delete", _admin(group_delete, id="group"), methods=_BOTH),
    Route(
        "/organization/groups/{id}/members",
        _admin(_group_change(_add, "user", "user", "member-added"), id="group"),
        methods=_POST,
    ),
    Route(
        "/organization/groups/{id}/members/{other}/remove",
        _admin(_group_change(_remove, None, "user", "member-removed"), id="group", other="user"),
        methods=_POST,
    ),
    Route(
        "/organization/groups/{id}/licenses",
        _admin(_group_change(_link, "license", "license", "license-linked"), id="group"),
        methods=_POST,
    ),
    Route(
        "/organization/groups/{id}/licenses/{other}/unlink",
        _admin(_group_change(_unlink, None, "license", "license-unlinked"), id="group", other="license"),
        methods=_POST,
    ),
]
