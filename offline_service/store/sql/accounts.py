"""Accounts' SQL, written once for every backend: accounts, organizations, people and groups,
credentials, login back-off and set-password links (plain statements, nothing buffered)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.accounts.models import (
    Account,
    Credential,
    Organization,
    PasswordToken,
    Role,
    User,
    UserGroup,
)
from offline_service.ids import email_key, new_id
from offline_service.store.sql._base import SQLPart
from offline_service.store.sql.dialect import Dialect

__all__ = ["USER_COLS", "AccountsSQL", "AccountsStatements", "user_from_row"]

_ACCOUNT_COLS = "id, alias, name, created_at"
_ORGANIZATION_COLS = "id, account_id, name, created_at, allowed_users"
_GROUP_COLS = "id, account_id, organization_id, name, created_at"
USER_COLS = (
    "id, account_id, email, role, created_at, organization_id, password_hash, first_name, last_name, disabled,"
    " time_zone, notify_new_activation, notify_license_expiry, notify_new_release"
)
_CREDENTIAL_COLS = (
    "token_hash, kind, user_id, account_id, created_at, expires_at, revoked_at, user_agent, address, id,"
    " name, last_used_at"
)
_CREDENTIAL_WIDTH = len(_CREDENTIAL_COLS.split(","))
# set-password links
_LINK_COLS = "token_hash, user_id, account_id, created_at, expires_at"


def _values(columns: str) -> str:
    return "(" + ", ".join("?" for _ in columns.split(",")) + ")"


def user_from_row(row: Sequence[Any]) -> User:
    return User(
        id=row[0],
        account_id=row[1],
        email=row[2],
        role=Role(row[3]),
        created_at=row[4],
        organization_id=row[5],
        password_hash=row[6],
        first_name=row[7],
        last_name=row[8],
        disabled=bool(row[9]),
        time_zone=row[10],
        notify_new_activation=bool(row[11]),
        notify_license_expiry=bool(row[12]),
        notify_new_release=bool(row[13]),
    )


def _credential_holder() -> str:
    """One statement for a credential, its person and the ids of the licenses they may use (as
    ``visible_license_ids``): a row of the credential's and the person's columns (license id
    NULL), then a row per license id (everything else NULL). One statement is one snapshot, so
    the store can run it alone: on PostgreSQL one round trip instead of five."""
    cred = [f"c.{c.strip()}" for c in _CREDENTIAL_COLS.split(",")]
    user = [f"u.{c.strip()} AS u_{c.strip()}" for c in USER_COLS.split(",")]
    width = len(cred) + len(user)
    blanks = ", ".join(["NULL"] * width)
    admin = f"h.u_role = '{Role.ORGANIZATION_ADMIN.value}' AND h.u_organization_id IS NOT NULL"
    return (
        f"WITH h AS (SELECT {', '.join(cred + user)} FROM credentials c"
        " JOIN users u ON u.account_id = c.account_id AND u.id = c.user_id WHERE c.token_hash = ?)"
        " SELECT h.*, NULL FROM h"
        f" UNION ALL SELECT {blanks}, l.id FROM h JOIN licenses l"
        f" ON l.account_id = h.u_account_id AND l.owner_organization_id = h.u_organization_id WHERE {admin}"
        f" UNION ALL SELECT {blanks}, l.id FROM h JOIN licenses l"
        f" ON l.account_id = h.u_account_id AND l.owner_user_id = h.u_id WHERE NOT ({admin})"
        f" UNION ALL SELECT {blanks}, l.id FROM h JOIN group_members gm ON gm.user_id = h.u_id"
        " JOIN group_licenses gl ON gl.group_id = gm.group_id"
        f" JOIN licenses l ON l.id = gl.license_id AND l.account_id = h.u_account_id WHERE NOT ({admin})"
    )


class AccountsStatements:
    """Accounts' statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.account_by_alias = q(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE alias = ?")
        self.account_by_id = q(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE id = ?")
        self.insert_account = q(f"INSERT INTO accounts ({_ACCOUNT_COLS}) VALUES (?, ?, ?, ?)")
        self.insert_organization = q(
            "INSERT INTO organizations (id, account_id, name, allowed_users, created_at) VALUES (?, ?, ?, ?, ?)"
        )
        self.organization_by_name = q(
            f"SELECT {_ORGANIZATION_COLS} FROM organizations WHERE account_id = ? AND name = ?"
        )
        self.organization = q(
            f"SELECT {_ORGANIZATION_COLS} FROM organizations WHERE account_id = ? AND id = ?"
        )
        self.insert_user = q(
            f"INSERT INTO users ({USER_COLS}, email_key) VALUES {_values(USER_COLS + ', k')}"
        )
        self.user_by_email = q(f"SELECT {USER_COLS} FROM users WHERE account_id = ? AND email_key = ?")
        self.user = q(f"SELECT {USER_COLS} FROM users WHERE account_id = ? AND id = ?")
        self.organization_users = q(
            f"SELECT {USER_COLS} FROM users WHERE account_id = ? AND organization_id = ? ORDER BY email_key, id"
        )
        self.enabled_user_count = q(
            "SELECT COUNT(*) FROM users WHERE account_id = ? AND organization_id = ? AND disabled = 0"
        )
        # organizations_page and users_page, by which filters they have: (organization, after)
        self.organizations_page = {
            after: q(
                f"SELECT {_ORGANIZATION_COLS} FROM organizations WHERE account_id = ?"
                + (" AND id > ?" if after else "")
                + " ORDER BY id LIMIT ?"
            )
            for after in (False, True)
        }
        self.users_page = {
            (organization, after): q(
                f"SELECT {USER_COLS} FROM users WHERE account_id = ?"
                + (" AND organization_id = ?" if organization else "")
                + (" AND id > ?" if after else "")
                + " ORDER BY id LIMIT ?"
            )
            for organization in (False, True)
            for after in (False, True)
        }
        _of_organization = (
            "JOIN user_groups g ON g.id = x.group_id WHERE g.account_id = ? AND g.organization_id = ?"
        )
        self.organization_group_members = q(
            f"SELECT x.group_id, x.user_id FROM group_members x {_of_organization}"
        )
        self.organization_group_licenses = q(
            f"SELECT x.group_id, x.license_id FROM group_licenses x {_of_organization}"
        )
        self.organization_counts = q(
            "SELECT (SELECT COUNT(*) FROM users WHERE account_id = ? AND organization_id = ?),"
            " (SELECT COUNT(*) FROM users WHERE account_id = ? AND organization_id = ? AND disabled = 0),"
            " (SELECT COUNT(*) FROM user_groups WHERE account_id = ? AND organization_id = ?),"
            " (SELECT COUNT(*) FROM licenses WHERE account_id = ? AND owner_organization_id = ?)"
        )
        self.update_user = q(
            "UPDATE users SET email = ?, email_key = ?, first_name = ?, last_name = ?, role = ?, disabled = ?,"
            " password_hash = ?, time_zone = ?, notify_new_activation = ?, notify_license_expiry = ?,"
            " notify_new_release = ? WHERE account_id = ? AND id = ?"
        )
        self.insert_group = q(f"INSERT INTO user_groups ({_GROUP_COLS}) VALUES {_values(_GROUP_COLS)}")
        self.groups_by_name = q(
            f"SELECT {_GROUP_COLS} FROM user_groups WHERE account_id = ? AND name = ? ORDER BY created_at"
        )
        self.group = q(f"SELECT {_GROUP_COLS} FROM user_groups WHERE account_id = ? AND id = ?")
        self.organization_groups = q(
            f"SELECT {_GROUP_COLS} FROM user_groups WHERE account_id = ? AND organization_id = ? ORDER BY name, id"
        )
        self.rename_group = q("UPDATE user_groups SET name = ? WHERE id = ?")
        self.add_group_member = d.insert_ignore("group_members", "group_id, user_id")
        self.remove_group_member = q("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
        self.group_member_ids = q("SELECT user_id FROM group_members WHERE group_id = ?")
        self.link_group_license = d.insert_ignore("group_licenses", "group_id, license_id")
        self.unlink_group_license = q("DELETE FROM group_licenses WHERE group_id = ? AND license_id = ?")
        self.group_license_ids = q("SELECT license_id FROM group_licenses WHERE group_id = ?")
        linked = (
            f"SELECT {', '.join('g.' + c.strip() for c in _GROUP_COLS.split(','))} FROM user_groups g"
            " JOIN group_licenses gl ON gl.group_id = g.id WHERE g.account_id = ? AND gl.license_id = ?"
        )
        self.license_groups = q(linked + " ORDER BY g.name, g.id")
        self.member_license_groups = q(
            linked
            + " AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = ?)"
            " ORDER BY g.name, g.id"
        )
        # A group's members and license links go first: the tables reference the group.
        _of_group = "group_id IN (SELECT id FROM user_groups WHERE account_id = ? AND id = ?)"
        self.delete_group_members = q(f"DELETE FROM group_members WHERE {_of_group}")
        self.delete_group_licenses = q(f"DELETE FROM group_licenses WHERE {_of_group}")
        self.delete_group = q("DELETE FROM user_groups WHERE account_id = ? AND id = ?")
        self.organization_license_ids = q(
            "SELECT id FROM licenses WHERE account_id = ? AND owner_organization_id = ?"
        )
        self.user_license_ids = q(
            "SELECT id FROM licenses WHERE account_id = ? AND owner_user_id = ?"
            " UNION SELECT l.id FROM licenses l JOIN group_licenses gl ON gl.license_id = l.id"
            " JOIN group_members gm ON gm.group_id = gl.group_id WHERE l.account_id = ? AND gm.user_id = ?"
        )
        self.insert_credential = q(
            f"INSERT INTO credentials ({_CREDENTIAL_COLS}) VALUES {_values(_CREDENTIAL_COLS)}"
        )
        self.credential = q(f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE token_hash = ?")
        self.credential_holder = q(_credential_holder())
        self.credential_by_id = q(
            f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE account_id = ? AND user_id = ? AND id = ?"
        )
        self.user_credentials = q(
            f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE account_id = ? AND user_id = ?"
            " AND revoked_at IS NULL ORDER BY created_at DESC, id"
        )
        self.revoke_credential = q(
            "UPDATE credentials SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
        )
        self.revoke_user_credentials = q(
            "UPDATE credentials SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
            f" AND token_hash {d.is_not} ?"
        )
        self.touch_credential = q("UPDATE credentials SET last_used_at = ? WHERE token_hash = ?")
        self.login_failures = q("SELECT failures, locked_until FROM login_failures WHERE subject = ?")
        self.record_login_failure = q(
            "INSERT INTO login_failures (subject, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures,"
            " locked_until = excluded.locked_until, updated_at = excluded.updated_at"
        )
        self.clear_login_failures = q("DELETE FROM login_failures WHERE subject = ?")
        self.insert_password_token = q(
            f"INSERT INTO password_tokens ({_LINK_COLS}) VALUES {_values(_LINK_COLS)}"
        )
        self.password_token = q(f"SELECT {_LINK_COLS} FROM password_tokens WHERE token_hash = ?")
        self.delete_password_tokens = q("DELETE FROM password_tokens WHERE user_id = ?")


class AccountsSQL(SQLPart):
    """Accounts' part of a transaction."""

    __slots__ = ()
    _uq: AccountsStatements

    def account_by_alias(self, alias: str) -> Account | None:
        row = self._one(self._uq.account_by_alias, (alias,))
        return Account(*row) if row else None

    def account_by_id(self, account_id: str) -> Account | None:
        row = self._one(self._uq.account_by_id, (account_id,))
        return Account(*row) if row else None

    def insert_account(self, account: Account) -> None:
        self._c.execute(
            self._uq.insert_account, (account.id, account.alias, account.name, account.created_at)
        )

    def insert_organization(self, o: Organization) -> None:
        self._c.execute(
            self._uq.insert_organization, (o.id, o.account_id, o.name, o.allowed_users, o.created_at)
        )

    def organization_by_name(self, account_id: str, name: str) -> Organization | None:
        row = self._one(self._uq.organization_by_name, (account_id, name))
        return Organization(*row) if row else None

    def organization(self, account_id: str, organization_id: str) -> Organization | None:
        row = self._one(self._uq.organization, (account_id, organization_id))
        return Organization(*row) if row else None

    def organization_users(self, account_id: str, organization_id: str) -> Sequence[User]:
        return [
            user_from_row(r)
            for r in self._c.execute(self._uq.organization_users, (account_id, organization_id))
        ]

    def enabled_user_count(self, account_id: str, organization_id: str) -> int:
        row = self._one(self._uq.enabled_user_count, (account_id, organization_id))
        return int(row[0]) if row else 0

    def organizations_page(
        self, account_id: str, *, after: str | None = None, limit: int
    ) -> Sequence[Organization]:
        args = [account_id, *([after] if after is not None else []), limit]
        return [
            Organization(*r) for r in self._c.execute(self._uq.organizations_page[after is not None], args)
        ]

    def users_page(
        self, account_id: str, *, organization_id: str | None = None, after: str | None = None, limit: int
    ) -> Sequence[User]:
        sql = self._uq.users_page[(organization_id is not None, after is not None)]
        args = [account_id, *(x for x in (organization_id, after) if x is not None), limit]
        return [user_from_row(r) for r in self._c.execute(sql, args)]

    def organization_group_links(
        self, account_id: str, organization_id: str
    ) -> tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]]]:
        args = (account_id, organization_id)
        members = [(r[0], r[1]) for r in self._c.execute(self._uq.organization_group_members, args)]
        licenses = [(r[0], r[1]) for r in self._c.execute(self._uq.organization_group_licenses, args)]
        return members, licenses

    def organization_counts(self, account_id: str, organization_id: str) -> tuple[int, int, int, int]:
        row = self._one(self._uq.organization_counts, (account_id, organization_id) * 4)
        assert row is not None  # a SELECT of subqueries always has its one row
        users, enabled, groups, licenses = (int(x) for x in row)
        return users, enabled, groups, licenses

    def insert_user(self, u: User) -> None:
        self._c.execute(
            self._uq.insert_user,
            (
                u.id,
                u.account_id,
                u.email,
                u.role.value,
                u.created_at,
                u.organization_id,
                u.password_hash,
                u.first_name,
                u.last_name,
                int(u.disabled),
                u.time_zone,
                int(u.notify_new_activation),
                int(u.notify_license_expiry),
                int(u.notify_new_release),
                email_key(u.email),
            ),
        )

    def user_by_email(self, account_id: str, email_key: str) -> User | None:
        row = self._one(self._uq.user_by_email, (account_id, email_key))
        return user_from_row(row) if row else None

    def user(self, account_id: str, user_id: str) -> User | None:
        row = self._one(self._uq.user, (account_id, user_id))
        return user_from_row(row) if row else None

    def update_user(self, u: User) -> None:
        self._c.execute(
            self._uq.update_user,
            (
                u.email,
                email_key(u.email),
                u.first_name,
                u.last_name,
                u.role.value,
                int(u.disabled),
                u.password_hash,
                u.time_zone,
                int(u.notify_new_activation),
                int(u.notify_license_expiry),
                int(u.notify_new_release),
                u.account_id,
                u.id,
            ),
        )

    def insert_group(self, g: UserGroup) -> None:
        self._c.execute(self._uq.insert_group, (g.id, g.account_id, g.organization_id, g.name, g.created_at))

    def groups_by_name(self, account_id: str, name: str) -> Sequence[UserGroup]:
        return [UserGroup(*r) for r in self._c.execute(self._uq.groups_by_name, (account_id, name))]

    def group(self, account_id: str, group_id: str) -> UserGroup | None:
        row = self._one(self._uq.group, (account_id, group_id))
        return UserGroup(*row) if row else None

    def organization_groups(self, account_id: str, organization_id: str) -> Sequence[UserGroup]:
        rows = self._c.execute(self._uq.organization_groups, (account_id, organization_id))
        return [UserGroup(*r) for r in rows]

    def rename_group(self, group_id: str, name: str) -> None:
        self._c.execute(self._uq.rename_group, (name, group_id))

    def add_group_member(self, group_id: str, user_id: str) -> None:
        self._c.execute(self._uq.add_group_member, (group_id, user_id))

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        self._c.execute(self._uq.remove_group_member, (group_id, user_id))

    def group_member_ids(self, group_id: str) -> frozenset[str]:
        return frozenset(r[0] for r in self._c.execute(self._uq.group_member_ids, (group_id,)))

    def link_group_license(self, group_id: str, license_id: str) -> None:
        self._c.execute(self._uq.link_group_license, (group_id, license_id))

    def unlink_group_license(self, group_id: str, license_id: str) -> None:
        self._c.execute(self._uq.unlink_group_license, (group_id, license_id))

    def group_license_ids(self, group_id: str) -> frozenset[str]:
        return frozenset(r[0] for r in self._c.execute(self._uq.group_license_ids, (group_id,)))

    def license_groups(
        self, account_id: str, license_id: str, *, member_id: str | None = None
    ) -> Sequence[UserGroup]:
        if member_id is None:
            rows = self._c.execute(self._uq.license_groups, (account_id, license_id))
        else:
            rows = self._c.execute(self._uq.member_license_groups, (account_id, license_id, member_id))
        return [UserGroup(*r) for r in rows]

    def delete_group(self, account_id: str, group_id: str) -> tuple[int, int]:
        args = (account_id, group_id)
        members = self._c.execute(self._uq.delete_group_members, args).rowcount
        licenses = self._c.execute(self._uq.delete_group_licenses, args).rowcount
        self._c.execute(self._uq.delete_group, args)
        return members, licenses

    def visible_license_ids(self, account_id: str, user: User) -> frozenset[str]:
        """An organization admin sees every license of the organization; a user sees the licenses
        assigned to them and those linked to their groups. Always within the account."""
        if user.role is Role.ORGANIZATION_ADMIN and user.organization_id is not None:
            rows = self._c.execute(self._uq.organization_license_ids, (account_id, user.organization_id))
        else:
            rows = self._c.execute(self._uq.user_license_ids, (account_id, user.id, account_id, user.id))
        return frozenset(r[0] for r in rows)

    def insert_credential(self, c: Credential) -> None:
        self._c.execute(
            self._uq.insert_credential,
            (
                c.token_hash,
                c.kind,
                c.user_id,
                c.account_id,
                c.created_at,
                c.expires_at,
                c.revoked_at,
                c.user_agent,
                c.address,
                c.id or new_id("crd"),
                c.name,
                c.last_used_at,
            ),
        )

    def credential(self, token_hash: bytes) -> Credential | None:
        row = self._one(self._uq.credential, (token_hash,))
        return Credential(*row) if row else None

    def credential_holder(self, token_hash: bytes) -> tuple[Credential, User, frozenset[str]] | None:
        credential = user = None
        ids: set[str] = set()
        width = _CREDENTIAL_WIDTH
        for row in self._c.execute(self._uq.credential_holder, (token_hash,)):
            if row[-1] is not None:
                ids.add(row[-1])
            else:
                credential, user = Credential(*row[:width]), user_from_row(row[width:-1])
        if credential is None or user is None:
            return None
        return credential, user, frozenset(ids)

    def credential_by_id(self, account_id: str, user_id: str, credential_id: str) -> Credential | None:
        row = self._one(self._uq.credential_by_id, (account_id, user_id, credential_id))
        return Credential(*row) if row else None

    def user_credentials(self, account_id: str, user_id: str) -> Sequence[Credential]:
        return [Credential(*r) for r in self._c.execute(self._uq.user_credentials, (account_id, user_id))]

    def revoke_credential(self, token_hash: bytes, at: int) -> None:
        self._c.execute(self._uq.revoke_credential, (at, token_hash))

    def revoke_user_credentials(self, user_id: str, at: int, *, keep: bytes | None = None) -> int:
        return self._c.execute(self._uq.revoke_user_credentials, (at, user_id, keep)).rowcount

    def touch_credential(self, token_hash: bytes, at: int) -> None:
        self._c.execute(self._uq.touch_credential, (at, token_hash))

    def login_failures(self, subject: str) -> tuple[int, int]:
        row = self._one(self._uq.login_failures, (subject,))
        return (row[0], row[1]) if row else (0, 0)

    def record_login_failure(self, subject: str, failures: int, locked_until: int, at: int) -> None:
        self._c.execute(self._uq.record_login_failure, (subject, failures, locked_until, at))

    def clear_login_failures(self, subject: str) -> None:
        self._c.execute(self._uq.clear_login_failures, (subject,))

    def insert_password_token(self, t: PasswordToken) -> None:
        self._c.execute(
            self._uq.insert_password_token,
            (t.token_hash, t.user_id, t.account_id, t.created_at, t.expires_at),
        )

    def password_token(self, token_hash: bytes) -> PasswordToken | None:
        row = self._one(self._uq.password_token, (token_hash,))
        return PasswordToken(*row) if row else None

    def delete_password_tokens(self, user_id: str) -> None:
        self._c.execute(self._uq.delete_password_tokens, (user_id,))
