"""The backends the store contract runs against, and the rows the contract tests start from.

A backend is one entry of ``BACKENDS``: a function from a fresh directory to an opened, empty
store (a server backend would create a fresh database or schema and may ignore the directory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from offline_service.accounts.models import Account, Organization, Role, User, UserGroup
from offline_service.licensing.models import Activation, License, LicenseStatus, Product
from offline_service.store import SQLiteStore, Store
from tests.pg import open_postgresql

__all__ = ["BACKENDS", "NOW", "Seed", "new_activation", "new_license", "seed"]

BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite": lambda directory: SQLiteStore(directory / "data"),
    "postgresql": open_postgresql,
}

NOW = 1_800_000_000
KEYS = ("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "FFFFF-GGGGG-HHHHH-JJJJJ-KKKKK", "LLLLL-MMMMM-NNNNN-PPPPP-QQQQQ")


@dataclass(frozen=True)
class Seed:
    """Two accounts, each with a product; the first has an organization, two people and a group."""

    account: Account
    other: Account
    product: Product
    other_product: Product
    organization: Organization
    admin: User
    user: User
    group: UserGroup


def new_license(seed: Seed, n: int, **fields: object) -> License:
    """The n-th license of the seed's first account (a key of its own, created at NOW + n)."""
    values: dict[str, object] = {
        "id": f"lic_{n}",
        "account_id": seed.account.id,
        "product_id": seed.product.id,
        "key": KEYS[n] if n < len(KEYS) else f"key-{n}",
        "allowed_activations": 2,
        "allowed_deactivations": 1,
        "status": LicenseStatus.ACTIVE,
        "created_at": NOW + n,
        "metadata": {"n": str(n)},
    }
    values.update(fields)
    return License(**values)  # type: ignore[arg-type]


def new_activation(license: License, n: int, **fields: object) -> Activation:
    """An activation of the license on machine ``fp-<n>``, created at NOW + n."""
    values: dict[str, object] = {
        "id": f"act_{license.id}_{n}",
        "license_id": license.id,
        "product_id": license.product_id,
        "fingerprint": f"fp-{n}",
        "machine_key": bytes([n % 256]) * 32,
        "machine_key_thumbprint": "t" * 43,
        "created_at": NOW + n,
        "hostname": f"host-{n}",
        "metadata": {"seat": str(n)},
    }
    values.update(fields)
    return Activation(**values)  # type: ignore[arg-type]


def seed(store: Store) -> Seed:
    account = Account(id="acc_a", alias="a", name="Account A", created_at=NOW)
    other = Account(id="acc_b", alias="b", name="Account B", created_at=NOW)
    product = Product("prd_a", account.id, "App", True, 14, 86400, NOW)
    other_product = Product("prd_b", other.id, "Other app", False, 0, 3600, NOW)
    organization = Organization("org_a", account.id, "Org A", NOW, allowed_users=5)
    admin = User("usr_admin", account.id, "Admin@A.example", Role.ORGANIZATION_ADMIN, NOW, organization.id)
    user = User("usr_user", account.id, "user@a.example", Role.USER, NOW, organization.id, first_name="Ann")
    group = UserGroup("grp_a", account.id, organization.id, "Team", NOW)
    with store.write() as tx:
        for a in (account, other):
            tx.insert_account(a)
        for p in (product, other_product):
            tx.insert_product(p)
        tx.insert_organization(organization)
        for u in (admin, user):
            tx.insert_user(u)
        tx.insert_group(group)
    return Seed(account, other, product, other_product, organization, admin, user, group)
