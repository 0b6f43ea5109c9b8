"""Test factories: a ready store + keyring + account + product, and signed request files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.utils

from offline_service.accounts.models import Account
from offline_service.fileformat import jws, messages
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind
from offline_service.ids import new_nonce
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import Policy
from offline_service.licensing.engine import Engine
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.store import SQLiteStore, Store, open_store
from tests.db import table
from tests.pg import database_url

NOW = 1_800_000_000  # a fixed "now" (2027-01-15) so tests never depend on the wall clock
# The backends a ``World`` can stand on (``make_world(backend=...)``): suites that must hold on every
# backend parametrize their ``world`` fixture over these.
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Machine:
    """A simulated installation: its own Ed25519 key and fingerprint."""

    fingerprint: str
    seed: bytes = field(default_factory=lambda: nacl.utils.random(32))

    @property
    def public_key(self) -> bytes:
        return nacl.bindings.crypto_sign_seed_keypair(self.seed)[0]

    @property
    def secret_key(self) -> bytes:
        return nacl.bindings.crypto_sign_seed_keypair(self.seed)[1]

    def sign(self, payload: dict[str, Any], header: dict[str, Any] | None = None) -> bytes:
        h = header or {"alg": "EdDSA", "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(self.public_key)}
        return jws.encode(h, payload, self.secret_key).encode()

    def request(
        self,
        kind: Kind,
        product_id: str,
        *,
        issued_at: int = NOW,
        license_key: str | None = None,
        activation_id: str | None = None,
        nonce: str | None = None,
        **extra: Any,
    ) -> bytes:
        payload = messages.request_payload(
            kind=kind,
            product_id=product_id,
            fingerprint=self.fingerprint,
            issued_at=issued_at,
            nonce=nonce or new_nonce(),
            license_key=license_key,
            activation_id=activation_id,
            hostname=extra.pop("hostname", "host-" + self.fingerprint[:8]),
            os=extra.pop("os", "Linux"),
            app_version=extra.pop("app_version", "1.0.0"),
            metadata=extra.pop("metadata", None),
        )
        payload.update(extra)
        return self.sign(payload)


@dataclass
class World:
    """One account with one product (trials on) in a fresh data directory, its database SQLite
    there (``database_url`` None) or a fresh PostgreSQL database."""

    root: Path
    store: Store
    keyring: Keyring
    engine: Engine
    account: Account
    product: Product
    database_url: str | None = None

    def settings(self) -> Settings:
        """Settings naming this world's data directory and database, for another process to
        open the same store (``open_store(world.settings())``)."""
        return Settings(
            data_dir=self.root / "data", keys_dir=self.root / "keys", database_url=self.database_url
        )

    def where(self) -> list[str]:
        """The command-line options naming this world's data, keys and database, for
        ``offline-service`` run in-process or as a process."""
        database = ["--database-url", self.database_url] if self.database_url else []
        return ["--data", str(self.root / "data"), "--keys", str(self.root / "keys"), *database]

    def license(self, *, activations: int = 3, deactivations: int = 3, **kw: Any) -> License:
        return admin.create_license(
            self.store,
            self.account,
            product_id=kw.pop("product_id", self.product.id),
            allowed_activations=activations,
            allowed_deactivations=deactivations,
            now=kw.pop("now", NOW),
            **kw,
        )

    def machine(self, name: str = "m1") -> Machine:
        return Machine(fingerprint=f"fp-{name}")

    def process(self, data: bytes, *, now: int = NOW, **kw: Any) -> Any:
        return self.engine.process(data, account_id=self.account.id, now=now, **kw)

    def reload_license(self, key: str) -> License:
        with self.store.read() as tx:
            found = tx.license_by_key(self.account.id, key)
        assert found is not None
        return found

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the license state tables (not the audit log), for "changes nothing" checks."""
        return {
            t: table(self.store, t)
            for t in ("accounts", "products", "licenses", "activations", "request_nonces", "trials")
        }


def database_for(root: Path, backend: str) -> str | None:
    """The database URL of a test directory on ``backend``: None for SQLite in its data directory,
    else a fresh PostgreSQL database with the current schema (the same one for the same ``root``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    return database_url(root, migrated=True) if backend == "postgresql" else None


def database_options(root: Path, backend: str) -> list[str]:
    """``--database-url URL`` of ``database_for(root, backend)``, or nothing for SQLite."""
    url = database_for(root, backend)
    return ["--database-url", url] if url else []


def make_world(
    root: Path, *, trial_days: int = 14, policy: Policy | None = None, backend: str = "sqlite"
) -> World:
    url = database_for(root, backend)
    store: Store = SQLiteStore(root / "data") if url is None else open_store(Settings(database_url=url))
    keyring = Keyring(root / "keys")
    account, _ = admin.ensure_account(store, "default", now=NOW)
    product = admin.create_product(store, keyring, account, name="App", now=NOW, trial_days=trial_days)
    engine = Engine(store=store, keyring=keyring, policy=policy)
    return World(
        root=root,
        store=store,
        keyring=keyring,
        engine=engine,
        account=account,
        product=product,
        database_url=url,
    )


def wall_now() -> int:
    return int(time.time())
