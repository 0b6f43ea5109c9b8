"""The witness: a second copy of an installation's clock high-water mark and its activation and
deactivation counts, kept outside the state directory (by default in the user's configuration folder).

A state directory copied aside and restored after a deactivation still holds the old activation; its
counts are then behind the witness's, which is how the client tells it apart. See FORMAT.md §10 for
what this does and does not protect against.

Layout::

    WITNESS_DIR/              mode 0700; default: <config folder>/offline-service-client
        <32 hex>.json         one per product and machine key, mode 0600
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import nacl.bindings

from offline_service._b64 import b64url_encode
from offline_service._files import private_dir, read_limited, write_atomic
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws

__all__ = ["WITNESS_DIRNAME", "Witness", "WitnessStore", "default_witness_dir"]

WITNESS_DIRNAME = "offline-service-client"
WITNESS_VERSION = 1
_MAX_BYTES = 4096
_NAME_DOMAIN = b"offline-service witness name v1\0"
_MAC_DOMAIN = b"offline-service witness mac v1\0"
_MEMBERS = frozenset(
    {"v", "productId", "machineKeyThumbprint", "lastSeen", "activations", "deactivations", "mac"}
)


@dataclass(frozen=True, slots=True)
class Witness:
    """The second copy. Every member only ever grows."""

    last_seen: int = 0
    activations: int = 0
    deactivations: int = 0


def default_witness_dir(environ: Mapping[str, str], *, platform: str = sys.platform) -> Path:
    """The per-user folder for witness files: under ``%APPDATA%`` on Windows, ``~/Library/Application
    Support`` on macOS, else ``$XDG_CONFIG_HOME`` (if absolute) or ``~/.config``."""
    if platform == "win32":
        base = environ.get("APPDATA", "")
    else:
        home = environ.get("HOME", "")
        if platform == "darwin":
            base = str(Path(home) / "Library" / "Application Support") if home else ""
        else:
            xdg = environ.get("XDG_CONFIG_HOME", "")
            # The XDG spec says a relative value is invalid and must be ignored.
            base = xdg if xdg and PurePath(xdg).is_absolute() else str(Path(home) / ".config") if home else ""
    if not base:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            "no configuration folder to keep the witness in (HOME or APPDATA is not set); pass witness_dir",
        )
    return Path(base) / WITNESS_DIRNAME


def _thumbprint(seed: bytes) -> str:
    return jws.jwk_thumbprint(nacl.bindings.crypto_sign_seed_keypair(seed)[0])


def _mac(seed: bytes, body: Mapping[str, Any]) -> str:
    # Keyed with the machine key: detects a hand edit, not someone who reads the machine key (§10).
    key = hashlib.sha256(_MAC_DOMAIN + seed).digest()
    message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return b64url_encode(hmac.new(key, message, hashlib.sha256).digest())


class WitnessStore:
    """The witness files in one folder, one per product and machine key."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, product_id: str, seed: bytes) -> Path:
        # A hash, not the ids themselves: a product id may hold characters a file name may not.
        name = hashlib.sha256(_NAME_DOMAIN + product_id.encode() + b"\0" + _thumbprint(seed).encode())
        return self.directory / f"{name.hexdigest()[:32]}.json"

    def load(self, product_id: str, seed: bytes) -> Witness | None:
        """The witness of this installation, or None when there is none (yet, or deleted)."""
        path = self.path(product_id, seed)
        if not path.exists():
            return None
        try:
            data = read_limited(path, _MAX_BYTES, what="witness file")
        except OfflineServiceError as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, exc.message) from None
        try:
            doc = json.loads(data)
            return _parse(doc, product_id, seed)
        except (ValueError, TypeError, KeyError) as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"the witness file {path} is damaged or was edited ({exc})"
            ) from None

    def save(self, product_id: str, seed: bytes, witness: Witness) -> None:
        private_dir(self.directory, what="witness folder")
        body: dict[str, Any] = {
            "v": WITNESS_VERSION,
            "productId": product_id,
            "machineKeyThumbprint": _thumbprint(seed),
            "lastSeen": witness.last_seen,
            "activations": witness.activations,
            "deactivations": witness.deactivations,
        }
        doc = {**body, "mac": _mac(seed, body)}
        write_atomic(self.path(product_id, seed), (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)


def _parse(doc: Any, product_id: str, seed: bytes) -> Witness:
    """Raises ValueError or TypeError unless ``doc`` is this installation's witness, unaltered."""
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    if doc.get("v") != WITNESS_VERSION:
        raise ValueError(f"unsupported witness version {doc.get('v')!r}")
    if set(doc) != _MEMBERS:
        raise ValueError("unexpected or missing members")
    body = {k: v for k, v in doc.items() if k != "mac"}
    mac = doc["mac"]
    if not isinstance(mac, str) or not hmac.compare_digest(mac.encode(), _mac(seed, body).encode()):
        raise ValueError("its MAC does not verify")
    if body["productId"] != product_id or body["machineKeyThumbprint"] != _thumbprint(seed):
        raise ValueError("it belongs to another installation")
    counts = [body["lastSeen"], body["activations"], body["deactivations"]]
    if any(type(n) is not int or n < 0 for n in counts):
        raise TypeError("expected non-negative integers")
    return Witness(last_seen=counts[0], activations=counts[1], deactivations=counts[2])
