"""One-time links to set a password: a new person's first password, a new one an admin sends, or one
the person asked for on the forgot-password page (``password_reset``).

The link carries 32 random bytes. Only their SHA-256 is stored, with an expiry, and the secret is
looked up by that hash, so neither the database nor the time a lookup takes gives it away. A link
works once; issuing a new one, setting a password or disabling the person ends the old one.
Setting a password through a link ends every session and token the person had.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import urlencode

from offline_service import audit
from offline_service.accounts.auth import token_hash
from offline_service.accounts.models import Account, Organization, PasswordToken, User
from offline_service.accounts.passwords import Cost, check_strength, hash_password
from offline_service.errors import Code, OfflineServiceError
from offline_service.store import Store, Transaction

__all__ = [
    "PATH",
    "account_alias",
    "base_url",
    "holder",
    "issue",
    "link",
    "link_base",
    "mail",
    "message",
    "set_password",
]

PATH = "/set-password"
_MAX_TOKEN = 200  # a real one is 43 characters; anything much longer is not worth hashing


def issue(tx: Transaction, user: User, *, now: int, lifetime: int) -> str:
    """A new link secret for ``user``, inside the caller's transaction; earlier ones stop working."""
    token = secrets.token_urlsafe(32)
    tx.delete_password_tokens(user.id)
    tx.insert_password_token(
        PasswordToken(
            token_hash=token_hash(token),
            user_id=user.id,
            account_id=user.account_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def base_url(*, public_url: str | None, custom_domain: str | None) -> str:
    """Where the links in an account's mails start: ``https://`` and the account's custom domain, or
    else the configured public URL (OFFLINE_SERVICE_PUBLIC_URL). Never the address a request came
    to: its Host header is whatever the sender wrote. INVALID_ARGUMENT when neither is set."""
    if custom_domain:
        return f"https://{custom_domain}"
    if public_url:
        return public_url
    raise OfflineServiceError(
        Code.INVALID_ARGUMENT,
        "no link can be mailed: the service has no public address. Set OFFLINE_SERVICE_PUBLIC_URL "
        "(the portal's address, like https://portal.example) and restart it",
    )


def link_base(store: Store, account_id: str, *, public_url: str | None) -> str:
    """``base_url`` for this account: its custom domain, or ``public_url``. Asked before anything is
    changed, so that a refusal leaves no person without a mail and no earlier link ended."""
    with store.read() as tx:
        found = tx.branding(account_id)
    return base_url(public_url=public_url, custom_domain=found.custom_domain if found else None)


def link(base_url: str, token: str) -> str:
    """The address of the set-password page for ``token``."""
    return f"{base_url.rstrip('/')}{PATH}?{urlencode({'token': token})}"


def message(
    *,
    sender: str,
    user: User,
    account: Account,
    organization: Organization | None,
    url: str,
    expires_at: int,
    now: int,
    requested: bool = False,
) -> EmailMessage:
    """The mail that carries a set-password link: from an administrator, or ``requested`` by
    whoever typed the person's email on the forgot-password page."""
    name = f"{user.first_name} {user.last_name}".strip() or user.email
    where = f" of {organization.name}" if organization else ""
    until = dt.datetime.fromtimestamp(expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = user.email
    mail["Subject"] = (
        "Set a new password for the license portal"
        if requested
        else "Set your password for the license portal"
    )
    mail["Date"] = formatdate(now, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    mail["Message-ID"] = make_msgid(domain=domain)
    why = (
        "someone asked for a link to set a new password for your license portal login"
        " (if it was you, here it is)."
        if requested
        else f"an administrator{where} has given you access to the license portal, or sent you a new"
        " link to set your password."
    )
    text = (
        f"Hello {name},\n\n"
        f"{why}\n\n"
        f"Set your password here (the link works once, until {until}):\n\n"
        f"  {url}\n\n"
        "Then log in with:\n\n"
        f"  account  {account.alias}\n"
        f"  email    {user.email}\n\n"
        "If you did not expect this mail, ignore it: nothing changes until the link is used.\n"
    )
    # Not quoted-printable: the link stays one readable line in the raw .eml file.
    mail.set_content(text, cte="7bit" if text.isascii() else "8bit")
    return mail


def mail(
    store: Store,
    user: User,
    token: str,
    *,
    sender: str,
    base: str,
    expires_at: int,
    now: int,
    requested: bool = False,
) -> EmailMessage:
    """The mail that carries ``user``'s link for ``token``, naming their account and organization
    (``requested``: on the forgot-password page, see ``message``)."""
    with store.read() as tx:
        account = tx.account_by_id(user.account_id)
        org = tx.organization(user.account_id, user.organization_id) if user.organization_id else None
    if account is None:
        raise OfflineServiceError(Code.NOT_FOUND, "no such account")
    return message(
        sender=sender,
        user=user,
        account=account,
        organization=org,
        url=link(base, token),
        expires_at=expires_at,
        now=now,
        requested=requested,
    )


def account_alias(store: Store, user: User) -> str:
    """The alias of ``user``'s account: what they type to log in."""
    with store.read() as tx:
        account = tx.account_by_id(user.account_id)
    return account.alias if account else ""


def _valid(tx: Transaction, token: str, now: int) -> tuple[PasswordToken, User]:
    found = tx.password_token(token_hash(token)) if 0 < len(token) <= _MAX_TOKEN else None
    user = tx.user(found.account_id, found.user_id) if found is not None else None
    if found is None or user is None or found.expires_at <= now or user.disabled:
        # One answer for unknown, used, replaced, expired and disabled: a link is valid or it is not.
        raise OfflineServiceError(
            Code.INVALID_PASSWORD_LINK,
            "this set-password link is not valid; ask your administrator for a new one",
        )
    return found, user


def holder(store: Store, token: str, *, now: int) -> User:
    """The person a valid link is for; INVALID_PASSWORD_LINK otherwise. Uses nothing up."""
    with store.read() as tx:
        return _valid(tx, token, now)[1]


def set_password(store: Store, token: str, password: str, *, now: int, cost: Cost = Cost.INTERACTIVE) -> User:
    """Set the password of the link's person, use the link up and end their sessions and tokens;
    one transaction. A weak password changes nothing and leaves the link usable."""
    user = holder(store, token, now=now)
    check_strength(password, email=user.email)
    hashed = hash_password(password, cost)  # slow: outside the write lock
    with store.write() as tx:
        _, current = _valid(tx, token, now)  # again: it may have been used meanwhile
        if current.id != user.id:
            raise OfflineServiceError(Code.INVALID_PASSWORD_LINK, "this set-password link is not valid")
        updated = replace(current, password_hash=hashed)
        tx.update_user(updated)
        tx.delete_password_tokens(current.id)
        ended = tx.revoke_user_credentials(current.id, now)
        audit.record(
            tx,
            account_id=current.account_id,
            actor=f"user:{current.id}",
            action="user.set_password",
            now=now,
            user=current.id,
            via="link",
            revoked=str(ended),
        )
    return updated
