"""A product's signing keys, for the CLI's ``keys`` verbs and the admin API alike: their public
parts (never a private key or where it is kept), rotation and removal, each checked against the
account first (another account's product is PRODUCT_NOT_FOUND, as a missing one) and audited."""

from __future__ import annotations

from typing import Any

from offline_service import audit
from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring, PublicKey
from offline_service.licensing import queries
from offline_service.store import Store, Transaction

__all__ = ["jwks", "key_json", "keys", "remove", "rotate", "rotate_in"]


def key_json(key: PublicKey) -> dict[str, Any]:
    """A key as the CLI's ``--json`` and the admin API show it: public parts only."""
    jwk = key.jwk()
    return {
        "kid": key.kid,
        "productId": key.product_id,
        "algorithm": jwk["alg"],
        "status": key.status,
        "createdAt": key.created_at,
        "jwk": jwk,
    }


def keys(store: Store, keyring: Keyring, account: Account, product_id: str) -> list[PublicKey]:
    """The product's active and retired keys, oldest first."""
    queries.check_product(store, account, product_id)
    return keyring.published(product_id)


def jwks(store: Store, keyring: Keyring, account: Account, product_id: str | None = None) -> dict[str, Any]:
    """The JWKS of one product of the account, or of all its products."""
    if product_id is not None:
        queries.check_product(store, account, product_id)
        return keyring.jwks(product_id)
    ids = [p.id for p in queries.products(store, account)]
    return {"keys": [k for pid in ids for k in keyring.jwks(pid)["keys"]]}


def rotate_in(
    tx: Transaction, keyring: Keyring, account: Account, product_id: str, *, now: int, actor: str
) -> PublicKey:
    """Make a new active key for the product (earlier ones retired), audited in ``tx``. The key
    files are written (mode 0600) before the transaction commits: a failed commit leaves a rotated
    keyring, which is a valid one, and no entry."""
    if tx.product(account.id, product_id) is None:
        raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")
    kid = keyring.rotate(product_id, now=now)
    audit.record(
        tx, account_id=account.id, actor=actor, action="key.rotate", now=now, product_id=product_id, kid=kid
    )
    return next(k for k in keyring.published(product_id) if k.kid == kid)


def rotate(
    store: Store, keyring: Keyring, account: Account, product_id: str, *, now: int, actor: str = "cli"
) -> PublicKey:
    """``rotate_in`` in a write transaction of its own."""
    with store.write() as tx:
        return rotate_in(tx, keyring, account, product_id, now=now, actor=actor)


def remove(
    store: Store,
    keyring: Keyring,
    account: Account,
    product_id: str,
    kid: str,
    *,
    now: int,
    actor: str = "cli",
) -> None:
    """Delete a retired key (CONFLICT for the active one, NOT_FOUND for an unknown one); responses
    it signed stop verifying."""
    with store.write() as tx:
        if tx.product(account.id, product_id) is None:
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {product_id} in this account")
        keyring.remove(product_id, kid)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="key.remove",
            now=now,
            product_id=product_id,
            kid=kid,
        )
