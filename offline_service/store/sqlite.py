"""The embedded SQLite backend: WAL mode, writers serialised with BEGIN IMMEDIATE."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
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
from offline_service.audit import AuditEntry
from offline_service.branding.models import Branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import email_key, new_id, normalize_license_key
from offline_service.licensing.models import (
    Activation,
    ActivationFilter,
    License,
    LicenseStatus,
    Product,
    Trial,
)
from offline_service.releases.models import Release, ReleaseFile
from offline_service.store.checkpoints import Checkpointer

__all__ = ["SQLiteStore", "key_hash"]

DB_FILE = "offline-service.sqlite3"
BUSY_TIMEOUT_MS = 60_000
CHECKPOINT_PAGES = 4000  # WAL pages (4 KiB each) between checkpoints


@functools.lru_cache(maxsize=4096)  # a batch repeats the same few keys thousands of times
def key_hash(key: str) -> bytes:
    """Licenses are looked up by a hash of the normalised key, so lookups never compare key text
    directly and a key typed in lower case, without hyphens or with O for 0 still matches."""
    return hashlib.sha256(normalize_license_key(key).encode("utf-8")).digest()


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("offline_service").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


_LICENSE_COLS = (
    "id, account_id, product_id, key, allowed_activations, allowed_deactivations, status, created_at,"
    " expires_at, validity_days, owner, metadata, used_activations, used_deactivations, owner_user_id,"
    " owner_organization_id, max_version"
)
_ACTIVATION_COLS = (
    "id, license_id, product_id, fingerprint, machine_key, machine_key_thumbprint, created_at,"
    " hostname, os, app_version, metadata, deactivated_at"
)
_PRODUCT_COLS = "id, account_id, name, trials_enabled, trial_days, max_response_validity, created_at"
_TRIAL_COLS = (
    "id, product_id, fingerprint, machine_key_thumbprint, created_at, ends_at, hostname, os, app_version"
)


def _license(row: tuple) -> License:  # type: ignore[type-arg]
    return License(
        id=row[0],
        account_id=row[1],
        product_id=row[2],
        key=row[3],
        allowed_activations=row[4],
        allowed_deactivations=row[5],
        status=LicenseStatus(row[6]),
        created_at=row[7],
        expires_at=row[8],
        validity_days=row[9],
        owner=row[10],
        metadata=json.loads(row[11]),
        used_activations=row[12],
        used_deactivations=row[13],
        owner_user_id=row[14],
        owner_organization_id=row[15],
        max_version=row[16],
    )


def _activation(row: tuple) -> Activation:  # type: ignore[type-arg]
    return Activation(
        id=row[0],
        license_id=row[1],
        product_id=row[2],
        fingerprint=row[3],
        machine_key=row[4],
        machine_key_thumbprint=row[5],
        created_at=row[6],
        hostname=row[7],
        os=row[8],
        app_version=row[9],
        metadata=json.loads(row[10]),
        deactivated_at=row[11],
    )


def _product(row: tuple) -> Product:  # type: ignore[type-arg]
    return Product(
        id=row[0],
        account_id=row[1],
        name=row[2],
        trials_enabled=bool(row[3]),
        trial_days=row[4],
        max_response_validity=row[5],
        created_at=row[6],
    )


_USER_COLS = (
    "id, account_id, email, role, created_at, organization_id, password_hash, first_name, last_name, disabled,"
    " time_zone, notify_new_activation, notify_license_expiry"
)
_CREDENTIAL_COLS = (
    "token_hash, kind, user_id, account_id, created_at, expires_at, revoked_at, user_agent, address, id,"
    " name, last_used_at"
)


def _user(row: tuple) -> User:  # type: ignore[type-arg]
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
    )


_AUDIT_COLS = "at, actor, action, code, account_id, product_id, license_id, activation_id, detail"


def _audit_entry(r: tuple) -> AuditEntry:  # type: ignore[type-arg]
    return AuditEntry(
        at=r[0],
        actor=r[1],
        action=r[2],
        code=r[3],
        account_id=r[4],
        product_id=r[5],
        license_id=r[6],
        activation_id=r[7],
        detail=json.loads(r[8]),
    )


class _PeopleTx:
    """The people and credential part of a transaction (plain statements, nothing buffered)."""

    __slots__ = ()
    _c: sqlite3.Connection

    def _one(self, sql: str, args: tuple) -> tuple | None:  # type: ignore[type-arg]
        row: tuple | None = self._c.execute(sql, args).fetchone()  # type: ignore[type-arg]
        return row

    def insert_organization(self, o: Organization) -> None:
        self._c.execute(
            "INSERT INTO organizations (id, account_id, name, allowed_users, created_at) VALUES (?, ?, ?, ?, ?)",
            (o.id, o.account_id, o.name, o.allowed_users, o.created_at),
        )

    def organization_by_name(self, account_id: str, name: str) -> Organization | None:
        row = self._one(
            "SELECT id, account_id, name, created_at, allowed_users FROM organizations"
            " WHERE account_id = ? AND name = ?",
            (account_id, name),
        )
        return Organization(*row) if row else None

    def insert_user(self, u: User) -> None:
        self._c.execute(
            f"INSERT INTO users ({_USER_COLS}, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                email_key(u.email),
            ),
        )

    def user_by_email(self, account_id: str, email_key: str) -> User | None:
        row = self._one(
            f"SELECT {_USER_COLS} FROM users WHERE account_id = ? AND email_key = ?", (account_id, email_key)
        )
        return _user(row) if row else None

    def user(self, account_id: str, user_id: str) -> User | None:
        row = self._one(
            f"SELECT {_USER_COLS} FROM users WHERE account_id = ? AND id = ?", (account_id, user_id)
        )
        return _user(row) if row else None

    def insert_group(self, g: UserGroup) -> None:
        self._c.execute(
            "INSERT INTO user_groups (id, account_id, organization_id, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (g.id, g.account_id, g.organization_id, g.name, g.created_at),
        )

    def groups_by_name(self, account_id: str, name: str) -> Sequence[UserGroup]:
        rows = self._c.execute(
            "SELECT id, account_id, organization_id, name, created_at FROM user_groups"
            " WHERE account_id = ? AND name = ? ORDER BY created_at",
            (account_id, name),
        )
        return [UserGroup(*r) for r in rows]

    def add_group_member(self, group_id: str, user_id: str) -> None:
        self._c.execute(
            "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)", (group_id, user_id)
        )

    def link_group_license(self, group_id: str, license_id: str) -> None:
        self._c.execute(
            "INSERT OR IGNORE INTO group_licenses (group_id, license_id) VALUES (?, ?)",
            (group_id, license_id),
        )

    def visible_license_ids(self, account_id: str, user: User) -> frozenset[str]:
        """An organization admin sees every license of the organization; a user sees the licenses
        assigned to them and those linked to their groups. Always within the account."""
        if user.role is Role.ORGANIZATION_ADMIN and user.organization_id is not None:
            rows = self._c.execute(
                "SELECT id FROM licenses WHERE account_id = ? AND owner_organization_id = ?",
                (account_id, user.organization_id),
            )
        else:
            rows = self._c.execute(
                "SELECT id FROM licenses WHERE account_id = ? AND owner_user_id = ?"
                " UNION SELECT l.id FROM licenses l JOIN group_licenses gl ON gl.license_id = l.id"
                " JOIN group_members gm ON gm.group_id = gl.group_id WHERE l.account_id = ? AND gm.user_id = ?",
                (account_id, user.id, account_id, user.id),
            )
        return frozenset(r[0] for r in rows)

    def insert_credential(self, c: Credential) -> None:
        self._c.execute(
            f"INSERT INTO credentials ({_CREDENTIAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        row = self._one(f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE token_hash = ?", (token_hash,))
        return Credential(*row) if row else None

    def revoke_credential(self, token_hash: bytes, at: int) -> None:
        self._c.execute(
            "UPDATE credentials SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (at, token_hash),
        )

    def login_failures(self, subject: str) -> tuple[int, int]:
        row = self._one("SELECT failures, locked_until FROM login_failures WHERE subject = ?", (subject,))
        return (row[0], row[1]) if row else (0, 0)

    def record_login_failure(self, subject: str, failures: int, locked_until: int, at: int) -> None:
        self._c.execute(
            "INSERT INTO login_failures (subject, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures,"
            " locked_until = excluded.locked_until, updated_at = excluded.updated_at",
            (subject, failures, locked_until, at),
        )

    def clear_login_failures(self, subject: str) -> None:
        self._c.execute("DELETE FROM login_failures WHERE subject = ?", (subject,))

    # -- organization admins, profiles, personal access tokens, set-password links (people_admin) --

    def account_by_id(self, account_id: str) -> Account | None:
        row = self._one("SELECT id, alias, name, created_at FROM accounts WHERE id = ?", (account_id,))
        return Account(*row) if row else None

    def organization(self, account_id: str, organization_id: str) -> Organization | None:
        row = self._one(
            "SELECT id, account_id, name, created_at, allowed_users FROM organizations"
            " WHERE account_id = ? AND id = ?",
            (account_id, organization_id),
        )
        return Organization(*row) if row else None

    def organization_users(self, account_id: str, organization_id: str) -> Sequence[User]:
        rows = self._c.execute(
            f"SELECT {_USER_COLS} FROM users WHERE account_id = ? AND organization_id = ?"
            " ORDER BY email_key, id",
            (account_id, organization_id),
        )
        return [_user(r) for r in rows]

    def enabled_user_count(self, account_id: str, organization_id: str) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM users WHERE account_id = ? AND organization_id = ? AND disabled = 0",
            (account_id, organization_id),
        )
        return int(row[0]) if row else 0

    def update_user(self, u: User) -> None:
        self._c.execute(
            "UPDATE users SET email = ?, email_key = ?, first_name = ?, last_name = ?, role = ?, disabled = ?,"
            " password_hash = ?, time_zone = ?, notify_new_activation = ?, notify_license_expiry = ?"
            " WHERE account_id = ? AND id = ?",
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
                u.account_id,
                u.id,
            ),
        )

    def group(self, account_id: str, group_id: str) -> UserGroup | None:
        row = self._one(
            "SELECT id, account_id, organization_id, name, created_at FROM user_groups"
            " WHERE account_id = ? AND id = ?",
            (account_id, group_id),
        )
        return UserGroup(*row) if row else None

    def organization_groups(self, account_id: str, organization_id: str) -> Sequence[UserGroup]:
        rows = self._c.execute(
            "SELECT id, account_id, organization_id, name, created_at FROM user_groups"
            " WHERE account_id = ? AND organization_id = ? ORDER BY name, id",
            (account_id, organization_id),
        )
        return [UserGroup(*r) for r in rows]

    def rename_group(self, group_id: str, name: str) -> None:
        self._c.execute("UPDATE user_groups SET name = ? WHERE id = ?", (name, group_id))

    def group_member_ids(self, group_id: str) -> frozenset[str]:
        rows = self._c.execute("SELECT user_id FROM group_members WHERE group_id = ?", (group_id,))
        return frozenset(r[0] for r in rows)

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        self._c.execute("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id))

    def group_license_ids(self, group_id: str) -> frozenset[str]:
        rows = self._c.execute("SELECT license_id FROM group_licenses WHERE group_id = ?", (group_id,))
        return frozenset(r[0] for r in rows)

    def unlink_group_license(self, group_id: str, license_id: str) -> None:
        self._c.execute(
            "DELETE FROM group_licenses WHERE group_id = ? AND license_id = ?", (group_id, license_id)
        )

    def user_credentials(self, account_id: str, user_id: str) -> Sequence[Credential]:
        rows = self._c.execute(
            f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE account_id = ? AND user_id = ?"
            " AND revoked_at IS NULL ORDER BY created_at DESC, id",
            (account_id, user_id),
        )
        return [Credential(*r) for r in rows]

    def credential_by_id(self, account_id: str, user_id: str, credential_id: str) -> Credential | None:
        row = self._one(
            f"SELECT {_CREDENTIAL_COLS} FROM credentials WHERE account_id = ? AND user_id = ? AND id = ?",
            (account_id, user_id, credential_id),
        )
        return Credential(*row) if row else None

    def revoke_user_credentials(self, user_id: str, at: int, *, keep: bytes | None = None) -> int:
        cursor = self._c.execute(
            "UPDATE credentials SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
            " AND token_hash IS NOT ?",
            (at, user_id, keep),
        )
        return cursor.rowcount

    def touch_credential(self, token_hash: bytes, at: int) -> None:
        self._c.execute("UPDATE credentials SET last_used_at = ? WHERE token_hash = ?", (at, token_hash))

    def insert_password_token(self, t: PasswordToken) -> None:
        self._c.execute(
            "INSERT INTO password_tokens (token_hash, user_id, account_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (t.token_hash, t.user_id, t.account_id, t.created_at, t.expires_at),
        )

    def password_token(self, token_hash: bytes) -> PasswordToken | None:
        row = self._one(
            "SELECT token_hash, user_id, account_id, created_at, expires_at FROM password_tokens"
            " WHERE token_hash = ?",
            (token_hash,),
        )
        return PasswordToken(*row) if row else None

    def delete_password_tokens(self, user_id: str) -> None:
        self._c.execute("DELETE FROM password_tokens WHERE user_id = ?", (user_id,))


_RELEASE_COLS = "id, account_id, product_id, version, channel, notes, published_at"
_RELEASE_FILE_COLS = "id, release_id, name, size, sha256, path"
_BRANDING_COLS = "account_id, updated_at, portal_name, accent_color, logo_file, logo_type, custom_domain"


class _ReleasesTx:
    """Releases, licenses' maximum versions and account customization (plain statements)."""

    __slots__ = ()
    _c: sqlite3.Connection

    def insert_release(self, release: Release, files: Sequence[ReleaseFile]) -> None:
        r = release
        self._c.execute(
            f"INSERT INTO releases ({_RELEASE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.account_id, r.product_id, r.version, r.channel, r.notes, r.published_at),
        )
        self._c.executemany(
            f"INSERT INTO release_files ({_RELEASE_FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
            [(f.id, f.release_id, f.name, f.size, f.sha256, f.path) for f in files],
        )

    def releases(self, account_id: str, product_id: str | None = None) -> Sequence[Release]:
        sql = f"SELECT {_RELEASE_COLS} FROM releases WHERE account_id = ?"
        args: tuple[str, ...] = (account_id,)
        if product_id is not None:
            sql += " AND product_id = ?"
            args += (product_id,)
        return [Release(*r) for r in self._c.execute(sql + " ORDER BY published_at, id", args)]

    def release_files(self, release_ids: Sequence[str]) -> Sequence[ReleaseFile]:
        found: list[ReleaseFile] = []
        for group in _groups(sorted(set(release_ids))):
            rows = self._c.execute(
                f"SELECT {_RELEASE_FILE_COLS} FROM release_files"
                f" WHERE release_id IN ({','.join('?' * len(group))}) ORDER BY release_id, name",
                tuple(group),
            )
            found += [ReleaseFile(*r) for r in rows]
        return found

    def release_file(self, account_id: str, file_id: str) -> tuple[Release, ReleaseFile] | None:
        cols = ", ".join(f"r.{c.strip()}" for c in _RELEASE_COLS.split(","))
        fcols = ", ".join(f"f.{c.strip()}" for c in _RELEASE_FILE_COLS.split(","))
        row = self._c.execute(
            f"SELECT {cols}, {fcols} FROM release_files f JOIN releases r ON r.id = f.release_id"
            " WHERE f.id = ? AND r.account_id = ?",
            (file_id, account_id),
        ).fetchone()
        return (Release(*row[:7]), ReleaseFile(*row[7:])) if row else None

    def delete_release(self, release_id: str) -> None:
        self._c.execute("DELETE FROM release_files WHERE release_id = ?", (release_id,))
        self._c.execute("DELETE FROM releases WHERE id = ?", (release_id,))

    def branding(self, account_id: str) -> Branding | None:
        row = self._c.execute(
            f"SELECT {_BRANDING_COLS} FROM account_branding WHERE account_id = ?", (account_id,)
        ).fetchone()
        return Branding(*row) if row else None

    def branding_by_domain(self, domain: str) -> Branding | None:
        row = self._c.execute(
            f"SELECT {_BRANDING_COLS} FROM account_branding WHERE custom_domain = ?", (domain,)
        ).fetchone()
        return Branding(*row) if row else None

    def save_branding(self, b: Branding) -> None:
        self._c.execute(
            f"INSERT INTO account_branding ({_BRANDING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id) DO UPDATE SET updated_at = excluded.updated_at,"
            " portal_name = excluded.portal_name, accent_color = excluded.accent_color,"
            " logo_file = excluded.logo_file, logo_type = excluded.logo_type,"
            " custom_domain = excluded.custom_domain",
            (
                b.account_id,
                b.updated_at,
                b.portal_name,
                b.accent_color,
                b.logo_file,
                b.logo_type,
                b.custom_domain,
            ),
        )


class _Tx(_PeopleTx, _ReleasesTx):
    """A Transaction over one sqlite3 connection.

    Within one write transaction it keeps identity maps of the products and licenses it has read,
    and buffers its inserts (activations, nonces, audit entries) and license updates, flushing them
    with executemany before commit or before any read that could see them. Reads of buffered rows
    are answered from the buffers, so the engine sees exactly what it would see with eager writes.
    """

    __slots__ = (
        "_activations",
        "_audits",
        "_c",
        "_dirty",
        "_known_live",
        "_known_nonces",
        "_known_pairs",
        "_licenses",
        "_live",
        "_nonces",
        "_products",
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn
        self._products: dict[tuple[str, str], Product | None] = {}
        self._licenses: dict[bytes | str, License] = {}  # by key hash and by id
        self._dirty: set[str] = set()
        self._activations: dict[str, Activation] = {}  # buffered inserts by id
        self._live: dict[tuple[str, str], Activation] = {}  # buffered inserts by (license, fingerprint)
        self._nonces: dict[tuple[str, str], tuple[str, str, str, str, int]] = {}
        self._audits: list[tuple[object, ...]] = []
        # Results of preload(): nonces and live activations known to exist, or known not to.
        self._known_nonces: dict[tuple[str, str], str | None] = {}
        self._known_pairs: set[tuple[str, str]] = set()
        self._known_live: dict[tuple[str, str], Activation] = {}

    def preload(self, requests: Sequence[tuple[str, str, str, str | None]]) -> None:
        by_product: dict[str, list[str]] = {}
        hashes = {key_hash(k) for _, _, _, k in requests if k is not None}
        for product_id, nonce, _, _ in requests:
            by_product.setdefault(product_id, []).append(nonce)
        for group in _groups(sorted(hashes - self._licenses.keys())):
            sql = f"SELECT {_LICENSE_COLS} FROM licenses WHERE key_hash IN ({','.join('?' * len(group))})"
            for row in self._c.execute(sql, group):
                self._remember(row)
        for product_id, nonces in by_product.items():
            for group in _groups(nonces):
                for n in group:
                    self._known_nonces.setdefault((product_id, n), None)
                sql = (
                    "SELECT nonce, activation_id FROM request_nonces"
                    f" WHERE product_id = ? AND nonce IN ({','.join('?' * len(group))})"
                )
                for nonce, activation_id in self._c.execute(sql, (product_id, *group)):
                    self._known_nonces[(product_id, nonce)] = activation_id
        wanted: dict[str, set[str]] = {}  # license id -> fingerprints not yet known
        for _, _, fingerprint, key in requests:
            found = self._licenses.get(key_hash(key)) if key is not None else None
            if found is not None and (found.id, fingerprint) not in self._known_pairs:
                wanted.setdefault(found.id, set()).add(fingerprint)
        for license_id, fingerprints in wanted.items():
            for group in _groups(sorted(fingerprints)):
                sql = (
                    f"SELECT {_ACTIVATION_COLS} FROM activations WHERE license_id = ?"
                    f" AND fingerprint IN ({','.join('?' * len(group))}) AND deactivated_at IS NULL"
                )
                for row in self._c.execute(sql, (license_id, *group)):
                    a = _activation(row)
                    self._known_live[(a.license_id, a.fingerprint)] = a
                self._known_pairs.update((license_id, fp) for fp in group)

    def _forget_preloaded(self) -> None:
        self._known_nonces.clear()
        self._known_pairs.clear()
        self._known_live.clear()

    def flush(self) -> None:
        """Write every buffered change (the transaction stays open)."""
        c = self._c
        if self._activations:
            c.executemany(
                f"INSERT INTO activations ({_ACTIVATION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.id,
                        a.license_id,
                        a.product_id,
                        a.fingerprint,
                        a.machine_key,
                        a.machine_key_thumbprint,
                        a.created_at,
                        a.hostname,
                        a.os,
                        a.app_version,
                        json.dumps(dict(a.metadata)),
                        a.deactivated_at,
                    )
                    for a in self._activations.values()
                ],
            )
            self._activations.clear()
            self._live.clear()
        if self._nonces:
            c.executemany(
                "INSERT INTO request_nonces (product_id, nonce, kind, activation_id, processed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                list(self._nonces.values()),
            )
            self._nonces.clear()
        if self._dirty:
            rows = [self._licenses[i] for i in self._dirty]
            c.executemany(
                "UPDATE licenses SET used_activations = ?, used_deactivations = ?, expires_at = ? WHERE id = ?",
                [(x.used_activations, x.used_deactivations, x.expires_at, x.id) for x in rows],
            )
            self._dirty.clear()
        if self._audits:
            c.executemany(
                "INSERT INTO audit_log (at, account_id, actor, action, code, product_id, license_id,"
                " activation_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._audits,
            )
            self._audits.clear()

    def account_by_alias(self, alias: str) -> Account | None:
        row = self._one("SELECT id, alias, name, created_at FROM accounts WHERE alias = ?", (alias,))
        return Account(*row) if row else None

    def insert_account(self, account: Account) -> None:
        self._c.execute(
            "INSERT INTO accounts (id, alias, name, created_at) VALUES (?, ?, ?, ?)",
            (account.id, account.alias, account.name, account.created_at),
        )

    def product(self, account_id: str, product_id: str) -> Product | None:
        cache_key = (account_id, product_id)
        if cache_key in self._products:
            return self._products[cache_key]
        row = self._one(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ? AND account_id = ?",
            (product_id, account_id),
        )
        found = self._products[cache_key] = _product(row) if row else None
        return found

    def product_by_id(self, product_id: str) -> Product | None:
        row = self._one(f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ?", (product_id,))
        return _product(row) if row else None

    def products(self, account_id: str) -> Sequence[Product]:
        rows = self._c.execute(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE account_id = ? ORDER BY created_at, id",
            (account_id,),
        )
        return [_product(r) for r in rows]

    def insert_product(self, product: Product) -> None:
        self._products.pop((product.account_id, product.id), None)
        self._c.execute(
            f"INSERT INTO products ({_PRODUCT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                product.id,
                product.account_id,
                product.name,
                int(product.trials_enabled),
                product.trial_days,
                product.max_response_validity,
                product.created_at,
            ),
        )

    def _remember(self, row: tuple | None) -> License | None:  # type: ignore[type-arg]
        if row is None:
            return None
        found = self._licenses.get(row[0])
        if found is None:
            found = _license(row)
            self._licenses[found.id] = found
            self._licenses[key_hash(found.key)] = found
        return found

    def license_by_key(self, account_id: str, key: str) -> License | None:
        digest = key_hash(key)
        found = self._licenses.get(digest)
        if found is None:
            found = self._remember(
                self._one(f"SELECT {_LICENSE_COLS} FROM licenses WHERE key_hash = ?", (digest,))
            )
        return found if found is not None and found.account_id == account_id else None

    def license_by_id(self, account_id: str, license_id: str) -> License | None:
        found = self._licenses.get(license_id)
        if found is None:
            found = self._remember(
                self._one(f"SELECT {_LICENSE_COLS} FROM licenses WHERE id = ?", (license_id,))
            )
        return found if found is not None and found.account_id == account_id else None

    def licenses(self, account_id: str, product_id: str | None = None) -> Sequence[License]:
        self.flush()
        sql = f"SELECT {_LICENSE_COLS} FROM licenses WHERE account_id = ?"
        args: tuple[str, ...] = (account_id,)
        if product_id is not None:
            sql += " AND product_id = ?"
            args += (product_id,)
        return [_license(r) for r in self._c.execute(sql + " ORDER BY created_at, id", args)]

    def insert_license(self, license: License) -> None:
        self._c.execute(
            f"INSERT INTO licenses ({_LICENSE_COLS}, key_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                license.id,
                license.account_id,
                license.product_id,
                license.key,
                license.allowed_activations,
                license.allowed_deactivations,
                license.status.value,
                license.created_at,
                license.expires_at,
                license.validity_days,
                license.owner,
                json.dumps(dict(license.metadata)),
                license.used_activations,
                license.used_deactivations,
                license.owner_user_id,
                license.owner_organization_id,
                license.max_version,
                key_hash(license.key),
            ),
        )

    def set_license_status(self, license_id: str, status: LicenseStatus) -> None:
        self.flush()
        self._forget_license(license_id)
        self._c.execute("UPDATE licenses SET status = ? WHERE id = ?", (status.value, license_id))

    def set_license_max_version(self, license_id: str, max_version: str | None) -> None:
        self.flush()
        self._forget_license(license_id)
        self._c.execute("UPDATE licenses SET max_version = ? WHERE id = ?", (max_version, license_id))

    def _forget_license(self, license_id: str) -> None:
        found = self._licenses.pop(license_id, None)
        if found is not None:
            self._licenses.pop(key_hash(found.key), None)

    def update_license_usage(
        self, license_id: str, *, used_activations: int, used_deactivations: int, expires_at: int | None
    ) -> None:
        current = self._licenses.get(license_id)
        if current is None:  # not read in this transaction: write through
            self._c.execute(
                "UPDATE licenses SET used_activations = ?, used_deactivations = ?, expires_at = ? WHERE id = ?",
                (used_activations, used_deactivations, expires_at, license_id),
            )
            return
        updated = current.with_usage(
            used_activations=used_activations, used_deactivations=used_deactivations, expires_at=expires_at
        )
        self._licenses[license_id] = self._licenses[key_hash(current.key)] = updated
        self._dirty.add(license_id)

    def live_activation(self, license_id: str, fingerprint: str) -> Activation | None:
        buffered = self._live.get((license_id, fingerprint))
        if buffered is not None:
            return buffered
        if (license_id, fingerprint) in self._known_pairs:
            return self._known_live.get((license_id, fingerprint))
        row = self._one(
            f"SELECT {_ACTIVATION_COLS} FROM activations"
            " WHERE license_id = ? AND fingerprint = ? AND deactivated_at IS NULL",
            (license_id, fingerprint),
        )
        return _activation(row) if row else None

    def activation(self, product_id: str, activation_id: str) -> Activation | None:
        buffered = self._activations.get(activation_id)
        if buffered is not None:
            return buffered if buffered.product_id == product_id else None
        row = self._one(
            f"SELECT {_ACTIVATION_COLS} FROM activations WHERE id = ? AND product_id = ?",
            (activation_id, product_id),
        )
        return _activation(row) if row else None

    def activations(self, license_id: str) -> Sequence[Activation]:
        self.flush()
        rows = self._c.execute(
            f"SELECT {_ACTIVATION_COLS} FROM activations WHERE license_id = ? ORDER BY created_at, id",
            (license_id,),
        )
        return [_activation(r) for r in rows]

    def activation_in_account(self, account_id: str, activation_id: str) -> Activation | None:
        self.flush()
        cols = ", ".join(f"a.{c.strip()}" for c in _ACTIVATION_COLS.split(","))
        row = self._one(
            f"SELECT {cols} FROM activations a JOIN licenses l ON l.id = a.license_id"
            " WHERE a.id = ? AND l.account_id = ?",
            (activation_id, account_id),
        )
        return _activation(row) if row else None

    def insert_activation(self, a: Activation) -> None:
        self._activations[a.id] = a
        if a.deactivated_at is None:
            self._live[(a.license_id, a.fingerprint)] = a

    def deactivate(self, activation_id: str, at: int) -> None:
        self.flush()
        self._forget_preloaded()
        self._c.execute("UPDATE activations SET deactivated_at = ? WHERE id = ?", (at, activation_id))

    def nonce_activation(self, product_id: str, nonce: str) -> str | None:
        buffered = self._nonces.get((product_id, nonce))
        if buffered is not None:
            return buffered[3]
        if (product_id, nonce) in self._known_nonces:
            return self._known_nonces[(product_id, nonce)]
        row = self._one(
            "SELECT activation_id FROM request_nonces WHERE product_id = ? AND nonce = ?",
            (product_id, nonce),
        )
        return row[0] if row else None

    def record_nonce(self, product_id: str, nonce: str, kind: str, activation_id: str, at: int) -> None:
        self._nonces[(product_id, nonce)] = (product_id, nonce, kind, activation_id, at)

    def trial(self, product_id: str, fingerprint: str) -> Trial | None:
        row = self._one(
            f"SELECT {_TRIAL_COLS} FROM trials WHERE product_id = ? AND fingerprint = ?",
            (product_id, fingerprint),
        )
        return Trial(*row) if row else None

    def insert_trial(self, t: Trial) -> None:
        self._c.execute(
            f"INSERT INTO trials ({_TRIAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.id,
                t.product_id,
                t.fingerprint,
                t.machine_key_thumbprint,
                t.created_at,
                t.ends_at,
                t.hostname,
                t.os,
                t.app_version,
            ),
        )

    def audit(self, e: AuditEntry) -> None:
        self._audits.append(
            (
                e.at,
                e.account_id,
                e.actor,
                e.action,
                e.code,
                e.product_id,
                e.license_id,
                e.activation_id,
                json.dumps(dict(e.detail)) if e.detail else "{}",
            )
        )

    def audit_entries(self, account_id: str, limit: int = 100) -> Sequence[AuditEntry]:
        self.flush()
        rows = self._c.execute(
            f"SELECT {_AUDIT_COLS} FROM audit_log WHERE account_id = ? ORDER BY id DESC LIMIT ?",
            (account_id, limit),
        )
        return [_audit_entry(r) for r in rows]

    def organization_licenses(self, account_id: str, organization_id: str) -> Sequence[License]:
        self.flush()
        rows = self._c.execute(
            f"SELECT {_LICENSE_COLS} FROM licenses WHERE account_id = ? AND owner_organization_id = ?"
            " ORDER BY created_at, id",
            (account_id, organization_id),
        )
        return [_license(r) for r in rows]

    def find_activations(
        self,
        account_id: str,
        license_ids: frozenset[str],
        query: ActivationFilter,
        *,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, Sequence[Activation]]:
        self.flush()
        # The licenses go in as one JSON array: any number of them, one statement, one page.
        where = [
            "a.license_id IN (SELECT value FROM json_each(?))",
            "l.account_id = ?",
        ]
        args: list[object] = [json.dumps(sorted(license_ids)), account_id]
        if query.product_id is not None:
            where.append("a.product_id = ?")
            args.append(query.product_id)
        if query.license_id is not None:
            where.append("a.license_id = ?")
            args.append(query.license_id)
        if query.live is not None:
            where.append("a.deactivated_at IS NULL" if query.live else "a.deactivated_at IS NOT NULL")
        if query.text:
            escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            where.append("(a.hostname LIKE ? ESCAPE '\\' OR a.fingerprint LIKE ? ESCAPE '\\')")
            args += [pattern, pattern]
        sql = "FROM activations a JOIN licenses l ON l.id = a.license_id WHERE " + " AND ".join(where)
        total = self._one(f"SELECT COUNT(*) {sql}", tuple(args))
        cols = ", ".join(f"a.{c.strip()}" for c in _ACTIVATION_COLS.split(","))
        rows = self._c.execute(
            f"SELECT {cols} {sql} ORDER BY a.created_at DESC, a.id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return (int(total[0]) if total else 0), [_activation(r) for r in rows]

    def audit_entries_for_licenses(
        self, account_id: str, license_ids: frozenset[str], limit: int = 100
    ) -> Sequence[AuditEntry]:
        """The newest entries about these licenses (the portal shows a person only their own)."""
        self.flush()
        found: list[tuple[int, AuditEntry]] = []
        for group in _groups(sorted(license_ids)):
            rows = self._c.execute(
                f"SELECT {_AUDIT_COLS}, id FROM audit_log WHERE account_id = ?"
                f" AND license_id IN ({','.join('?' * len(group))}) ORDER BY id DESC LIMIT ?",
                (account_id, *group, limit),
            )
            found += [(r[9], _audit_entry(r)) for r in rows]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [entry for _, entry in found[:limit]]


class SQLiteStore:
    """Store backed by one SQLite file in ``data_dir``; safe to share between processes."""

    def __init__(self, data_dir: str | os.PathLike[str], *, background_checkpoints: bool = False) -> None:
        """``background_checkpoints``: for a long-running server, checkpoint the WAL on a thread
        of its own (``Checkpointer``) instead of inside the commits of request handlers."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.data_dir / DB_FILE
        self._lock_fd = os.open(self.data_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # One connection per store: threads of one process take turns (the web layer's workers).
        self._thread_lock = threading.RLock()
        self._flock_depth = 0  # nested holds of the writers' lock by this process (under _thread_lock)
        self._checkpointer: Checkpointer | None = None
        try:
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the
            # last commits, which batch re-runs recover idempotently.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # Batches write thousands of rows a second: a larger page cache and fewer, larger
            # checkpoints cut the write amplification of the WAL.
            self._conn.execute("PRAGMA cache_size = -8192")
            # With background checkpoints the commits' own is only the safety net, should the
            # checkpointer fall behind.
            autocheckpoint = 4 * CHECKPOINT_PAGES if background_checkpoints else CHECKPOINT_PAGES
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
            self._conn.execute("PRAGMA journal_size_limit = 67108864")
            self._migrate()
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot open database: {exc}") from None
        if background_checkpoints:
            self._checkpointer = Checkpointer(
                self.path, writer_lock=self._writer_lock, reset_pages=CHECKPOINT_PAGES
            )

    def _migrate(self) -> None:
        c = self._conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)"
        )
        for version, sql in _migrations():
            c.execute("BEGIN IMMEDIATE")
            try:
                if c.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    c.execute("COMMIT")
                    continue
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s', 'now'))", (version,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def write(self) -> Iterator[_Tx]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so the reads that
        decide a limit and the writes that consume it can never interleave with another writer.

        Writers first queue on an flock of ``write.lock`` in the data directory: a blocked process
        is woken the moment the lock is free, where SQLite's busy handler would sleep 1-100 ms
        between retries and leave a core idle. SQLite's own locking stays the safety net."""
        with self._writer_lock():
            yield from self._write_transaction()

    @contextmanager
    def write_lock_if_free(self) -> Iterator[bool]:
        """Hold the write lock for a block if it can be had without waiting; yields whether it was.
        For callers that must not wait (an event loop): ``write()`` inside the block does not block,
        however many transactions the block runs."""
        with self._writer_lock(blocking=False) as held:
            yield held

    @contextmanager
    def _writer_lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """The writers' lock: this process's thread lock, then the flock other processes queue on.
        Reentrant: an inner hold (``write()`` inside ``write_lock_if_free()``) does not release the
        flock when it ends, so no other process can slip in between two transactions of a block."""
        if not self._thread_lock.acquire(blocking=blocking):
            yield False
            return
        try:
            if self._flock_depth == 0:
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
            self._flock_depth += 1
            try:
                yield True
            finally:
                self._flock_depth -= 1
                if self._flock_depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _write_transaction(self) -> Iterator[_Tx]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database busy: {exc}") from None
        tx = _Tx(self._conn)
        try:
            yield tx
            tx.flush()
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise OfflineServiceError(Code.STORAGE_ERROR, f"database error: {exc}") from None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise OfflineServiceError(Code.STORAGE_ERROR, f"commit failed: {exc}") from None

    @contextmanager
    def read(self) -> Iterator[_Tx]:
        """A read-only snapshot. Inside another transaction it simply reads within that one."""
        with self._thread_lock:
            if self._conn.in_transaction:
                yield _Tx(self._conn)
                return
            self._conn.execute("BEGIN")
            try:
                yield _Tx(self._conn)
            finally:
                self._conn.execute("ROLLBACK")

    def debug_query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """For tests and maintenance only: one statement of SQLite's SQL on the store's connection,
        within the open transaction if this thread is in one (a write outside commits at once).
        Errors are sqlite3's own, so that a test can check which constraint refused a row."""
        with self._thread_lock:
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
            return rows

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conn.close()
        os.close(self._lock_fd)


def _groups(items: Sequence[Any], size: int = 400) -> Iterator[Sequence[Any]]:
    """Slices of at most ``size``: keeps each query under SQLite's bound on variables."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
