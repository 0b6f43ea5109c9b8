"""Webhook signing secrets sealed at rest, as Svix keeps them: a database dump or copy holds no
secret a forger could sign deliveries with.

The sealing key is 32 random bytes in one file of the keys directory (``KEY_FILE``, beside the
products' folders, which the keyring tells apart by their product-id names), mode 0600, made on
first need. With a key passphrase configured it is kept encrypted as the products' keys are
(Argon2id, then XSalsa20-Poly1305), so that the keys directory alone opens nothing either.

A sealed value is ``sealed:v1:`` and the base64url of a random 24-byte nonce and the
XChaCha20-Poly1305 ciphertext; its associated data binds it to its place (an endpoint's account
and id, or a kept idempotent answer's account, token and key): copied elsewhere, it does not open.
A value without the prefix is one written before sealing (a ``whsec_`` secret) and is used as is.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service._files import fsync_dir
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import (
    ARGON2_SECRETBOX,
    lock_with_passphrase,
    open_with_passphrase,
)
from offline_service.settings import Settings

__all__ = ["KEY_FILE", "PREFIX", "Sealer", "SecretUnavailable", "endpoint_place"]

KEY_FILE = "webhook-sealing-key.json"  # not a product id: the keyring and its backups skip no key of theirs
PREFIX = "sealed:v1:"
_KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
_NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_KIND = "webhook-sealing-key"


class SecretUnavailable(OfflineServiceError):
    """A sealed value that cannot be opened here: the sealing key is missing, different, damaged or
    locked by another passphrase, or the value was moved from its place. Never says the value."""

    def __init__(self, message: str, code: Code = Code.KEY_ERROR) -> None:
        super().__init__(code, message)


def endpoint_place(account_id: str, endpoint_id: str) -> tuple[str, ...]:
    """Where an endpoint's secrets belong: the associated data of their sealing."""
    return ("webhook-endpoint", account_id, endpoint_id)


class Sealer:
    """Seals and opens text with the keys directory's sealing key, loaded (or made) once."""

    def __init__(self, directory: str | os.PathLike[str], *, passphrase: bytes | None = None) -> None:
        self.directory = Path(directory)
        self._passphrase = passphrase or None
        self._key: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> Sealer:
        return cls(settings.keys_dir, passphrase=settings.key_passphrase)

    def __repr__(self) -> str:  # never key material
        return f"Sealer(directory={str(self.directory)!r})"

    @property
    def path(self) -> Path:
        return self.directory / KEY_FILE

    def prepare(self) -> None:
        """Load (or make) the key now, outside any transaction: with a passphrase its derivation
        takes a while, which a write transaction should not hold the database for."""
        self._load(create=True)

    def seal(self, text: str, place: tuple[str, ...]) -> str:
        """``text`` sealed for ``place``; the sealing key is made if the keys directory has none."""
        nonce = nacl.utils.random(_NONCE_BYTES)
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            text.encode("utf-8"), _aad(place), nonce, self._load(create=True)
        )
        return PREFIX + b64url_encode(nonce + sealed)

    def open(self, stored: str, place: tuple[str, ...]) -> str:
        """The text of a value ``seal`` made for ``place``; a value written before sealing (no
        prefix) as it is. SecretUnavailable when it cannot be opened here."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            raw = b64url_decode(stored[len(PREFIX) :])
        except ValueError:
            raise SecretUnavailable("a sealed value is damaged") from None
        if len(raw) <= _NONCE_BYTES:
            raise SecretUnavailable("a sealed value is damaged")
        key = self._load(create=False)
        try:
            text = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                raw[_NONCE_BYTES:], _aad(place), raw[:_NONCE_BYTES], key
            )
        except nacl.exceptions.CryptoError:
            raise SecretUnavailable(
                f"a sealed value does not open with the sealing key {self.path}: another key sealed"
                " it (the keys directory of another machine?), or it was moved from its row"
            ) from None
        return text.decode("utf-8")

    # -- the key file --------------------------------------------------------------------------

    def _load(self, *, create: bool) -> bytes:
        with self._lock:  # a server's threads share one sealer: one load, one Argon2id derivation
            if self._key is None:
                if create and not self.path.exists():
                    self._create()
                self._key = self._read()
            return self._key

    def _create(self) -> None:
        """Write a new key unless another process did first: the file is written whole under a
        temporary name and linked into place, which fails if the name exists (an O_EXCL create
        that no reader can see half-written); the loser reads the winner's key."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"cannot create the keys directory {self.directory}: {exc.strerror}"
            ) from None
        doc = {
            "kind": _KIND,
            "createdAt": int(time.time()),
            "private": self._protect(nacl.utils.random(_KEY_BYTES)),
        }
        tmp = self.directory / f".{KEY_FILE}.{nacl.utils.random(6).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write((json.dumps(doc, indent=2) + "\n").encode())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return  # another process made it first: its key is the one
            fsync_dir(self.directory)
        except OSError as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"cannot write the sealing key {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _read(self) -> bytes:
        path = self.path
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SecretUnavailable(
                f"no sealing key {path}: copy the keys directory the secrets were sealed with, or"
                " rotate the endpoint's secret"
            ) from None
        except OSError as exc:
            raise SecretUnavailable(f"cannot read the sealing key {path}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretUnavailable(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o});"
                " run: chmod 600 on it",
                Code.INSECURE_KEY_FILE,
            )
        try:
            doc = json.loads(path.read_bytes())
            if doc["kind"] != _KIND:
                raise ValueError(doc["kind"])
            key = self._unprotect(doc["private"])
        except nacl.exceptions.CryptoError:
            raise SecretUnavailable(f"the sealing key {path} does not open with this passphrase") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise SecretUnavailable(f"the sealing key {path} is damaged") from None
        if len(key) != _KEY_BYTES:
            raise SecretUnavailable(f"the sealing key {path} is damaged")
        return key

    def _protect(self, key: bytes) -> dict[str, Any]:
        if self._passphrase is None:
            return {"encryption": "none", "k": b64url_encode(key)}
        return lock_with_passphrase(key, self._passphrase)

    def _unprotect(self, private: dict[str, Any]) -> bytes:
        if private["encryption"] == "none":
            return b64url_decode(private["k"])
        if private["encryption"] != ARGON2_SECRETBOX:
            raise ValueError("unknown protection")
        if self._passphrase is None:
            raise SecretUnavailable(f"the sealing key {self.path} is encrypted; configure the key passphrase")
        return open_with_passphrase(private, self._passphrase)


def _aad(place: tuple[str, ...]) -> bytes:
    if not place or any("\0" in part for part in place):
        raise ValueError("a place is one or more names without NUL")
    return "\0".join(("offline-service sealed v1", *place)).encode("utf-8")
