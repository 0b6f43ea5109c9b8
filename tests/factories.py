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
from offline_service.store import SQLiteStore
from tests.db import table

NOW = 1_800_000_000  # a fixed "now" (2027-01-15) so tests never depend on the wall clock


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
    """One account with one product (trials on) in a fresh data directory."""

    root: Path
    store: SQLiteStore
    keyring: Keyring
    engine: Engine
    account: Account
    product: Product

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


def make_world(root: Path, *, trial_days: int = 14, policy: Policy | None = None) -> World:
    store = SQLiteStore(root / "data")
    keyring = Keyring(root / "keys")
    account, _ = admin.ensure_account(store, "default", now=NOW)
    product = admin.create_product(store, keyring, account, name="App", now=NOW, trial_days=trial_days)
    engine = Engine(store=store, keyring=keyring, policy=policy)
    return World(root=root, store=store, keyring=keyring, engine=engine, account=account, product=product)


def wall_now() -> int:
    return int(time.time())
