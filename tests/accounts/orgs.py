"""The people of two accounts for the membership tests: Org A (cap 4) with admin ann, user bob and
group Ops; Org B with admin zed; account "other" with its own Org A and admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from offline_service.accounts.models import Role, User, UserGroup
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.licensing.models import License
from tests import db, people
from tests.factories import NOW, World, make_world

__all__ = ["DAY", "NEW_PASSWORD", "PASSWORD", "Org", "add_user", "make_org", "refused"]

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase 7"
DAY = 86400


@dataclass
class Org:
    """Org A (cap 4) with admin ann and user bob, group Ops; Org B with admin zed; account "other"
    with its own organization and admin."""

    w: World
    ann: User
    bob: User
    zed: User
    stranger: User
    ops: UserGroup
    a_license: License
    b_license: License
    free_license: License

    @property
    def admin(self) -> Scope:
        return Scope.of_admin(self.ann)

    def user(self, user_id: str) -> User:
        with self.w.store.read() as tx:
            found = tx.user(self.w.account.id, user_id)
        assert found is not None
        return found

    def audit(self) -> list[tuple[str, str]]:
        with self.w.store.read() as tx:
            return [(e.actor, e.action) for e in tx.audit_entries(self.w.account.id, limit=1000)]

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            t: db.table(self.w.store, t)
            for t in (
                "users",
                "user_groups",
                "group_members",
                "group_licenses",
                "credentials",
                "password_tokens",
                "audit_log",
            )
        }


def add_user(w: World, email: str, role: Role, org: str | None, account: Any = None) -> User:
    return people.create_user(
        w.store,
        account or w.account,
        email=email,
        role=role,
        organization=org,
        password=PASSWORD,
        cost=Cost.MINIMUM,
        now=NOW,
    )


def make_org(tmp_path: Path, backend: str = "sqlite") -> Org:
    w = make_world(tmp_path, backend=backend)
    store = w.store
    people.create_organization(store, w.account, name="Org A", now=NOW, allowed_users=4)
    people.create_organization(store, w.account, name="Org B", now=NOW)
    ann = add_user(w, "ann@a.example", Role.ORGANIZATION_ADMIN, "Org A")
    bob = add_user(w, "bob@a.example", Role.USER, "Org A")
    zed = add_user(w, "zed@b.example", Role.ORGANIZATION_ADMIN, "Org B")
    other, _ = admin.ensure_account(store, "other", now=NOW)
    people.create_organization(store, other, name="Org A", now=NOW)
    stranger = add_user(w, "ann@a.example", Role.ORGANIZATION_ADMIN, "Org A", account=other)
    ops = people.create_group(store, w.account, organization="Org A", name="Ops", now=NOW)
    return Org(
        w=w,
        ann=ann,
        bob=bob,
        zed=zed,
        stranger=stranger,
        ops=ops,
        a_license=w.license(owner_organization="Org A"),
        b_license=w.license(owner_organization="Org B"),
        free_license=w.license(),
    )


def refused(code: Code, call: Any, *args: Any, **kw: Any) -> OfflineServiceError:
    with pytest.raises(OfflineServiceError) as info:
        call(*args, **kw)
    assert info.value.code is code, info.value
    return info.value
