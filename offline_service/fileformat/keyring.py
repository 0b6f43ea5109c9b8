"""Per-product Ed25519 signing keys on disk: mode 0600, optionally encrypted, rotatable.

Layout (documented in keys/README.md)::

    KEYS_DIR/<product_id>/<kid>.json     one file per key, private, mode 0600

    KEYS_DIR/<product_id>/active         the kid that the last create or rotate made active

``kid`` is the key's RFC 7638 thumbprint. Exactly one key per product is ``active`` (it signs);
``retired`` keys stay in the JWKS so earlier responses keep verifying, until removed.

Every instance of the service mounts the same directory, so a rotation by any process reaches the
others through it: ``create`` and ``rotate`` rewrite ``active`` (an atomic rename) after the key
files, and ``signer`` looks at it, and at the directory's mtime, at most once a second per product.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service._files import write_atomic
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.jws import EMITTED_ALG, jwk_thumbprint, okp_jwk
from offline_service.ids import check_id, is_id

__all__ = [
    "ARGON2_SECRETBOX",
    "Keyring",
    "PublicKey",
    "Signer",
    "lock_with_passphrase",
    "open_with_passphrase",
]

ACTIVE = "active"  # the product directory's change marker (not a key file: only *.json are)
RECHECK_SECONDS = 1.0  # how stale a process's idea of the active key may be

ARGON2_SECRETBOX = "argon2id+xsalsa20poly1305"
_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _passphrase_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )


def lock_with_passphrase(secret: bytes, passphrase: bytes) -> dict[str, Any]:
    """``secret`` encrypted under the passphrase (Argon2id, then XSalsa20-Poly1305), as the
    ``private`` member of a key file: the product keys' and the webhook sealing key's."""
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_passphrase_key(passphrase, salt, _OPSLIMIT, _MEMLIMIT))
    return {
        "encryption": ARGON2_SECRETBOX,
        "salt": b64url_encode(salt),
        "opslimit": _OPSLIMIT,
        "memlimit": _MEMLIMIT,
        "ciphertext": b64url_encode(bytes(box.encrypt(secret))),
    }


def open_with_passphrase(private: dict[str, Any], passphrase: bytes) -> bytes:
    """The secret of ``lock_with_passphrase``'s member: nacl's CryptoError for another passphrase,
    KeyError, TypeError or ValueError for a damaged member."""
    key = _passphrase_key(
        passphrase, b64url_decode(private["salt"]), private["opslimit"], private["memlimit"]
    )
    return bytes(nacl.secret.SecretBox(key).decrypt(b64url_decode(private["ciphertext"])))


@dataclass(frozen=True, slots=True)
class Signer:
    """The active signing key of a product."""

    product_id: str
    kid: str
    secret_key: bytes  # libsodium 64-byte form (seed || public key)

    def __repr__(self) -> str:  # never print key material
        return f"Signer(product_id={self.product_id!r}, kid={self.kid!r})"


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The public part of a published (active or retired) key: what may be shown to anyone."""

    kid: str
    product_id: str
    status: str  # "active" or "retired"
    created_at: int
    public_key: bytes

    def jwk(self) -> dict[str, Any]:
        """The key as a JWK (RFC 7517), as the JWKS shows it."""
        jwk: dict[str, Any] = okp_jwk(self.public_key)
        jwk.update(kid=self.kid, use="sig", alg=EMITTED_ALG, product=self.product_id, status=self.status)
        return jwk


@dataclass(frozen=True, slots=True)
class _KeyInfo:
    kid: str
    product_id: str
    status: str
    created_at: int
    public_key: bytes
    path: Path


class Keyring:
    """Signing keys under one directory. Private key files must not be readable by others."""

    def __init__(self, directory: str | os.PathLike[str], *, passphrase: bytes | None = None) -> None:
        self.directory = Path(directory)
        self._passphrase = passphrase or None
        # A per-process cache of decrypted active keys. Harmless by construction: the files are the
        # truth, the cache is re-validated against them at most RECHECK_SECONDS after each use, and a
        # lost or duplicated entry (threads racing on a miss) only costs one more load.
        self._signers: dict[str, tuple[tuple[int, bytes], Signer]] = {}  # product -> (stamp, signer)
        self._checked: dict[str, float] = {}  # product -> when the stamp was last looked at

    # -- public keys -------------------------------------------------------------------------

    def _product_dir(self, product_id: str) -> Path:
        # The id becomes a directory name: only the id shape ever does (no "..", "/" or NUL).
        return self.directory / check_id(product_id, "product", "product id")

    def _infos(self, product_id: str | None = None) -> list[_KeyInfo]:
        if product_id is not None:
            dirs = [self._product_dir(product_id)]
        elif self.directory.is_dir():
            dirs = sorted(self.directory.iterdir())
        else:
            return []
        infos = []
        for d in dirs:
            if not is_id(d.name, "product") or not d.is_dir():
                continue
            for path in sorted(d.glob("*.json")):
                doc = self._read(path)
                infos.append(
                    _KeyInfo(
                        kid=doc["kid"],
                        product_id=doc["productId"],
                        status=doc["status"],
                        created_at=doc["createdAt"],
                        public_key=_public_key(doc, path),
                        path=path,
                    )
                )
        return sorted(infos, key=lambda i: (i.product_id, i.created_at, i.kid))

    def _published(self, product_id: str | None) -> list[_KeyInfo]:
        # A "pending" key exists only during a rotation (or after one was interrupted).
        return [i for i in self._infos(product_id) if i.status in ("active", "retired")]

    def published(self, product_id: str | None = None) -> list[PublicKey]:
        """The active and retired keys' public parts, oldest first."""
        return [
            PublicKey(
                kid=i.kid,
                product_id=i.product_id,
                status=i.status,
                created_at=i.created_at,
                public_key=i.public_key,
            )
            for i in self._published(product_id)
        ]

    def public_keys(self, product_id: str | None = None) -> dict[str, bytes]:
        """kid -> raw public key, for every active and retired key."""
        return {i.kid: i.public_key for i in self._published(product_id)}

    def jwks(self, product_id: str | None = None) -> dict[str, Any]:
        """The JWKS (RFC 7517) of one product or all; retired keys are marked ``"status": "retired"``."""
        return {"keys": [key.jwk() for key in self.published(product_id)]}

    # -- signing -----------------------------------------------------------------------------

    def signer(self, product_id: str) -> Signer:
        """The product's active key, decrypted once and cached until the product's key directory
        changes (a rotation by another process, on this machine or another that mounts the same
        directory); a running server notices within a second, without a system call per request."""
        cached = self._signers.get(product_id)  # only ids that passed _product_dir are cached
        tick = time.monotonic()
        if cached is not None and tick - self._checked.get(product_id, 0.0) < RECHECK_SECONDS:
            return cached[1]
        directory = self._product_dir(product_id)
        self._checked[product_id] = tick
        # Taken before the key files are read: a rotation in progress while they are read rewrites
        # ``active`` after its last key file, so the next look sees a new stamp and loads again. The
        # mtime alone could miss that (its clock is coarse), and catches hand edits of the files.
        stamp = _stamp(directory)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        active = [i for i in self._infos(product_id) if i.status == "active"]
        if not active:
            raise OfflineServiceError(Code.KEY_ERROR, f"product {product_id} has no active signing key")
        # Two active keys: a rotation between its second and third step (or interrupted there). The
        # one ``active`` names signs until the rotation marks the new one, else the newest; both
        # are published either way.
        named = [i for i in active if i.kid.encode() == stamp[1].strip()]
        info = (named or active)[-1]
        seed = self._private_seed(self._read(info.path))
        public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
        if public_key != info.public_key:
            raise OfflineServiceError(Code.KEY_ERROR, f"key {info.kid} does not match its public key")
        signer = Signer(product_id=product_id, kid=info.kid, secret_key=secret_key)
        self._signers[product_id] = (stamp, signer)
        return signer

    # -- management --------------------------------------------------------------------------

    def create(self, product_id: str, *, now: int | None = None) -> str:
        """Make the first key of a product. Fails if it already has keys."""
        if self._infos(product_id):
            raise OfflineServiceError(Code.CONFLICT, f"product {product_id} already has keys")
        kid = self._new_key(product_id, now=now)
        self._mark(product_id, kid)
        return kid

    def rotate(self, product_id: str, *, now: int | None = None) -> str:
        """Make a new active key and retire the current one. Returns the new kid."""
        infos = self._infos(product_id)
        if not infos:
            raise OfflineServiceError(
                Code.NOT_FOUND, f"product {product_id} has no keys in {self.directory.absolute()}"
            )
        # Each step leaves a usable keyring if interrupted: pending (old key still signs), then two
        # active keys (the newer signs), then the old one retired; last, ``active`` tells every
        # process that shares the directory to load the key again.
        kid = self._new_key(product_id, now=now, status="pending")
        self._set_status(self._product_dir(product_id) / f"{kid}.json", "active")
        for info in infos:
            if info.status == "active":
                self._set_status(info.path, "retired")
        self._mark(product_id, kid)
        self._signers.pop(product_id, None)
        self._checked.pop(product_id, None)
        return kid

    def remove(self, product_id: str, kid: str) -> None:
        """Delete a retired key; responses it signed stop verifying."""
        for info in self._infos(product_id):
            if info.kid == kid:
                if info.status == "active":
                    raise OfflineServiceError(Code.CONFLICT, "the active key cannot be removed; rotate first")
                info.path.unlink()
                return
        raise OfflineServiceError(Code.NOT_FOUND, f"no key {kid} for product {product_id}")

    def discard(self, product_id: str) -> None:
        """Delete every key of a product, active ones too, and its folder: only for a product whose
        creation failed (``licensing.services`` checks that the store has no such product). Nothing
        to do when it has no folder."""
        directory = self._product_dir(product_id)
        try:
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"cannot remove {directory}: {exc.strerror or exc}"
            ) from None
        self._signers.pop(product_id, None)
        self._checked.pop(product_id, None)

    def _new_key(self, product_id: str, *, now: int | None, status: str = "active") -> str:
        seed = nacl.utils.random(32)
        public_key, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
        kid = jwk_thumbprint(public_key)
        doc: dict[str, Any] = {
            "kid": kid,
            "productId": product_id,
            "status": status,
            "createdAt": int(time.time()) if now is None else now,
            "alg": EMITTED_ALG,
            "x": b64url_encode(public_key),
            "private": self._protect(seed),
        }
        directory = self._product_dir(product_id)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        os.chmod(directory, 0o700)
        _write_private(directory / f"{kid}.json", doc)
        return kid

    def _mark(self, product_id: str, kid: str) -> None:
        # A new kid each time, so two rotations never leave the same content behind.
        write_atomic(self._product_dir(product_id) / ACTIVE, f"{kid}\n".encode(), mode=0o600)

    def _set_status(self, path: Path, status: str) -> None:
        doc = self._read(path)
        doc["status"] = status
        _write_private(path, doc)

    # -- private key protection --------------------------------------------------------------

    def _protect(self, seed: bytes) -> dict[str, Any]:
        if self._passphrase is None:
            return {"encryption": "none", "d": b64url_encode(seed)}
        return lock_with_passphrase(seed, self._passphrase)

    def _private_seed(self, doc: dict[str, Any]) -> bytes:
        private = doc.get("private", {})
        try:
            if private.get("encryption") == "none":
                seed = b64url_decode(private["d"])
            elif private.get("encryption") == ARGON2_SECRETBOX:
                if self._passphrase is None:
                    raise OfflineServiceError(
                        Code.KEY_ERROR,
                        f"key {doc['kid']} is encrypted; configure the key passphrase",
                    )
                seed = open_with_passphrase(private, self._passphrase)
            else:
                raise OfflineServiceError(Code.KEY_ERROR, f"key {doc['kid']}: unknown protection")
        except nacl.exceptions.CryptoError:
            raise OfflineServiceError(Code.KEY_ERROR, f"key {doc['kid']}: wrong passphrase") from None
        except (KeyError, TypeError, ValueError):
            raise OfflineServiceError(Code.KEY_ERROR, f"key {doc['kid']}: damaged key file") from None
        if len(seed) != 32:
            raise OfflineServiceError(Code.KEY_ERROR, f"key {doc['kid']}: damaged key file")
        return seed

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            st = path.stat()
        except OSError as exc:
            raise OfflineServiceError(Code.KEY_ERROR, f"cannot read {path.name}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise OfflineServiceError(
                Code.INSECURE_KEY_FILE,
                f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o});"
                " run: chmod 600 on it",
            )
        try:
            doc: dict[str, Any] = json.loads(path.read_bytes())
            for name in ("kid", "productId", "status", "createdAt", "x"):
                doc[name]
        except (OSError, ValueError, KeyError, TypeError):
            raise OfflineServiceError(Code.KEY_ERROR, f"{path.name}: damaged key file") from None
        return doc


def _stamp(directory: Path) -> tuple[int, bytes]:
    """What changes whenever the product's keys do: the directory's mtime and the ``active`` marker."""
    try:
        mtime = directory.stat().st_mtime_ns
    except OSError:
        return (-1, b"")
    try:
        marker = (directory / ACTIVE).read_bytes()[:64]
    except OSError:  # a keyring written before the marker existed: the mtime alone
        marker = b""
    return (mtime, marker)


def _public_key(doc: dict[str, Any], path: Path) -> bytes:
    try:
        key = b64url_decode(doc["x"])
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise OfflineServiceError(Code.KEY_ERROR, f"{path.name}: damaged key file")
    return key


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the first byte (no window where others can read)."""
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), mode=0o600)
