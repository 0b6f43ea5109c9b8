"""The vendor's verbs for the people of an account: ``org create``, ``user create|disable|enable|
password-link`` and ``group create|rename|delete|add-user|remove-user|link|unlink``.

Thin: each verb resolves the names it is given (``accounts.membership`` lookups) and calls the
same membership operation the organization admin's pages call, with ``Scope.vendor``.
``cli/_main.py`` calls ``register`` to add them to its parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from offline_service.accounts import invitations, membership, password_links
from offline_service.accounts.mail import FileMailer, open_mailer
from offline_service.accounts.models import Role, UserGroup
from offline_service.accounts.scope import Scope
from offline_service.cli.context import EXIT_OK, Context, emit, iso, now
from offline_service.errors import OfflineServiceError

__all__ = ["register"]

Handler = Callable[[Context], int]
Verb = Callable[[Any, str, Handler, str], argparse.ArgumentParser]


def _vendor(ctx: Context) -> Scope:
    return Scope.vendor(ctx.account())


def cmd_org_create(ctx: Context) -> int:
    org = membership.create_organization(
        ctx.store, _vendor(ctx), name=ctx.args.name, now=now(), allowed_users=ctx.args.allowed_users
    )
    emit(ctx.args, {"id": org.id, "name": org.name}, f"organization {org.id} ({org.name})")
    return EXIT_OK


def cmd_user_create(ctx: Context) -> int:
    a = ctx.args
    password = None
    if a.password_stdin:
        # One line from standard input, so the password is never in argv or shell history.
        password = sys.stdin.readline().rstrip("\r\n")
    scope = _vendor(ctx)
    org = membership.organization_named(ctx.store, scope, a.organization) if a.organization else None
    user = membership.create_user(
        ctx.store,
        scope,
        email=a.email,
        role=a.role,
        now=now(),
        organization_id=org.id if org else None,
        password=password,
        first_name=a.first_name or "",
        last_name=a.last_name or "",
        cost=ctx.settings.password_cost,
    ).user
    data = {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "organizationId": user.organization_id,
    }
    emit(a, data, f"user {user.id} ({user.email}, {user.role})")
    return EXIT_OK


def cmd_user_disable(ctx: Context) -> int:
    disabled = ctx.args.verb == "disable"
    scope = _vendor(ctx)
    user = membership.user_with_email(ctx.store, scope, ctx.args.email)
    user = membership.set_disabled(ctx.store, scope, user.id, disabled, now=now())
    state = "disabled (sessions and tokens ended)" if user.disabled else "enabled"
    emit(
        ctx.args,
        {"id": user.id, "email": user.email, "disabled": user.disabled},
        f"user {user.email} {state}",
    )
    return EXIT_OK


def cmd_user_password_link(ctx: Context) -> int:
    account = ctx.account()
    scope = Scope.vendor(account)
    base = ctx.args.base_url
    if not base:
        try:
            base = password_links.link_base(ctx.store, account.id, public_url=ctx.settings.public_url)
        except OfflineServiceError as exc:  # the same code, with the flag that helps here
            raise OfflineServiceError(
                exc.code, "give --base-url (the portal's address) or set OFFLINE_SERVICE_PUBLIC_URL"
            ) from None
    user = membership.user_with_email(ctx.store, scope, ctx.args.email)
    mailer = open_mailer(smtp=ctx.settings.smtp, data_dir=ctx.settings.data_dir)
    # The link is a secret: it goes into the mail only, never to the terminal.
    user, expires_at = invitations.send_link(
        ctx.store,
        scope,
        user.id,
        mailer=mailer,
        sender=ctx.settings.mail_from,
        base=base,
        lifetime=ctx.settings.password_link_lifetime,
        now=now(),
    )
    where = f"written to {mailer.directory}" if isinstance(mailer, FileMailer) else "sent by SMTP"
    data: dict[str, Any] = {"id": user.id, "email": user.email, "expiresAt": expires_at}
    if isinstance(mailer, FileMailer):
        data["mailDirectory"] = str(mailer.directory)
    emit(
        ctx.args,
        data,
        f"set-password link for {user.email} mailed ({where}); it works once, until {iso(expires_at)}",
    )
    return EXIT_OK


def cmd_group_create(ctx: Context) -> int:
    scope = _vendor(ctx)
    org = membership.organization_named(ctx.store, scope, ctx.args.organization)
    group = membership.create_group(ctx.store, scope, name=ctx.args.name, now=now(), organization_id=org.id)
    emit(ctx.args, {"id": group.id, "name": group.name}, f"group {group.id} ({group.name})")
    return EXIT_OK


def _group(ctx: Context, scope: Scope, name: str, organization: str | None) -> UserGroup:
    """The group of this name, in the named organization when one is given."""
    org = membership.organization_named(ctx.store, scope, organization) if organization else None
    return membership.group_named(ctx.store, scope, name, organization_id=org.id if org else None)


def cmd_group_rename(ctx: Context) -> int:
    a, scope = ctx.args, _vendor(ctx)
    group = _group(ctx, scope, a.group, a.organization)
    renamed = membership.rename_group(ctx.store, scope, group.id, name=a.new_name, now=now())
    emit(a, {"id": renamed.id, "name": renamed.name}, f"group {renamed.id} renamed {renamed.name}")
    return EXIT_OK


def cmd_group_delete(ctx: Context) -> int:
    a, scope = ctx.args, _vendor(ctx)
    group = _group(ctx, scope, a.group, a.organization)
    membership.delete_group(ctx.store, scope, group.id, now=now())
    emit(a, {"removed": group.id}, f"group {group.id} ({group.name}) deleted with its members and links")
    return EXIT_OK


def cmd_group_member(ctx: Context) -> int:
    a, scope = ctx.args, _vendor(ctx)
    group = membership.group_named(ctx.store, scope, a.group)
    user = membership.user_with_email(ctx.store, scope, a.email)
    if a.verb == "add-user":
        membership.add_member(ctx.store, scope, group.id, user.id, now=now())
        emit(a, {"group": a.group, "email": a.email}, f"{a.email} added to {a.group}")
    else:
        membership.remove_member(ctx.store, scope, group.id, user.id, now=now())
        emit(a, {"group": a.group, "email": a.email}, f"{a.email} removed from {a.group}")
    return EXIT_OK


def cmd_group_link(ctx: Context) -> int:
    a, scope = ctx.args, _vendor(ctx)
    group = membership.group_named(ctx.store, scope, a.group)
    license = membership.license_with_key(ctx.store, scope, a.key)
    if a.verb == "link":
        membership.link_license(ctx.store, scope, group.id, license.id, now=now())
        emit(a, {"group": a.group, "linked": True}, f"license linked to {a.group}")
    else:
        membership.unlink_license(ctx.store, scope, group.id, license.id, now=now())
        emit(a, {"group": a.group, "linked": False}, f"license unlinked from {a.group}")
    return EXIT_OK


def register(verbs: Any, verb: Verb) -> None:
    """Add the ``org``, ``user`` and ``group`` verbs to the parser's subcommands ``verbs``; ``verb``
    makes one verb's parser with the common options."""
    org = verbs.add_parser("org", help="customer organizations").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(org, "create", cmd_org_create, "create an organization")
    p.add_argument("--name", required=True)
    p.add_argument("--allowed-users", type=int, metavar="N", help="cap on the organization's users")

    usr = verbs.add_parser("user", help="portal users").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(usr, "create", cmd_user_create, "create a portal user")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--organization", metavar="NAME")
    p.add_argument("--first-name")
    p.add_argument("--last-name")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of standard input"
    )
    for name, text in (
        ("disable", "disable a portal user: they cannot log in, and their sessions and tokens end"),
        ("enable", "enable a disabled portal user again (within the organization's allowed users)"),
    ):
        p = verb(usr, name, cmd_user_disable, text)
        p.add_argument("email", metavar="EMAIL")
        p.set_defaults(verb=name)
    p = verb(
        usr,
        "password-link",
        cmd_user_password_link,
        "mail a user a one-time link to set their password (written to DATA/mail/); earlier links end",
    )
    p.add_argument("email", metavar="EMAIL")
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="the portal's address for the link (default $OFFLINE_SERVICE_PUBLIC_URL)",
    )

    grp = verbs.add_parser("group", help="user groups").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    p = verb(grp, "create", cmd_group_create, "create a user group in an organization")
    p.add_argument("--organization", required=True, metavar="NAME")
    p.add_argument("--name", required=True)
    p = verb(grp, "rename", cmd_group_rename, "rename a user group (the new name unique in its organization)")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.add_argument("--organization", metavar="NAME", help="the group's organization (when several have one)")
    p = verb(
        grp,
        "delete",
        cmd_group_delete,
        "delete a user group with its memberships and license links (the users and licenses stay)",
    )
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--organization", metavar="NAME", help="the group's organization (when several have one)")
    for name, handler, text, what, metavar in (
        ("add-user", cmd_group_member, "add a user of the organization to a group", "email", "EMAIL"),
        (
            "link",
            cmd_group_link,
            "let a group's members use a license of their organization",
            "key",
            "LICENSE_KEY",
        ),
        ("remove-user", cmd_group_member, "remove a user from a group", "email", "EMAIL"),
        ("unlink", cmd_group_link, "unlink a license from a group", "key", "LICENSE_KEY"),
    ):
        p = verb(grp, name, handler, text)
        p.add_argument("group", metavar="GROUP")
        p.add_argument(what, metavar=metavar)
        p.set_defaults(verb=name)
