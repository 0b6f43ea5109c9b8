"""The client's state directory: the machine key and ``state.json``, both private and written atomically.

Layout::

    STATE_DIR/                mode 0700
        machine-key           32-byte Ed25519 seed, base64url, mode 0600
        state.json            product, fingerprint, pending requests, stored response, pinned JWKS,
                              the clock high-water mark and the activation and deactivation counts

The mark and the counts have a second copy outside this directory (``witness.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nacl.utils

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service._files import fsync_dir, private_dir, read_limited, write_atomic
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind

__all__ = ["KEY_FILE", "MAX_PENDING", "STATE_FILE", "Pending", "State", "StateDir"]

KEY_FILE = "machine-key"
STATE_FILE = "state.json"
STATE_VERSION = 1
# Requests made but not yet answered. A few, so that making a second request by mistake does not
# invalidate the first; bounded, so the file cannot grow without limit.
MAX_PENDING = 8
_MAX_STATE_BYTES = 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True, slots=True)
class Pending:
    """A request this installation made and has not yet applied the response to."""

    kind: Kind
    nonce: str
    issued_at: int


@dataclass(frozen=True, slots=True)
class State:
    """Everything in ``state.json``. ``response`` is the applied response, a compact JWS."""

    product_id: str | None = None
    fingerprint: str | None = None
    fingerprint_override: bool = False  # True when given by the caller, not derived from the machine id
    pending: tuple[Pending, ...] = ()
    response: str | None = None
    jwks: dict[str, Any] | None = None
    last_seen: int = 0
    # Responses applied and activations dropped by this installation so far; both only grow. A state
    # directory restored from an earlier copy has lower counts than the witness (witness.py).
    activations: int = 0
    deactivations: int = 0

    def with_pending(self, item: Pending) -> State:
        return replace(self, pending=(*self.pending, item)[-MAX_PENDING:])

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "productId": self.product_id,
            "fingerprint": self.fingerprint,
            "fingerprintOverride": self.fingerprint_override,
            "pending": [{"kind": p.kind.value, "nonce": p.nonce, "iat": p.issued_at} for p in self.pending],
            "response": self.response,
            "jwks": self.jwks,
            "lastSeen": self.last_seen,
            "activations": self.activations,
            "deactivations": self.deactivations,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> State:
        """Raises ValueError, KeyError or TypeError when ``doc`` is not a state document."""
        if doc.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported state version {doc.get('v')!r}")
        pending = tuple(
            Pending(kind=Kind(p["kind"]), nonce=_str(p["nonce"]), issued_at=_int(p["iat"]))
            for p in doc["pending"]
        )
        jwks = doc["jwks"]
        if jwks is not None and not isinstance(jwks, dict):
            raise TypeError("jwks must be an object")
        response = _opt_str(doc["response"])
        if response is not None and not response.isascii():
            raise ValueError("response must be a compact JWS")
        override = doc["fingerprintOverride"]
        if not isinstance(override, bool):
            raise TypeError("fingerprintOverride must be a boolean")
        return cls(
            product_id=_opt_str(doc["productId"]),
            fingerprint=_opt_str(doc["fingerprint"]),
            fingerprint_override=override,
            pending=pending,
            response=response,
            jwks=jwks,
            last_seen=_int(doc["lastSeen"]),
            # Absent from state files written before the counts existed: nothing counted yet.
            activations=_int(doc.get("activations", 0)),
            deactivations=_int(doc.get("deactivations", 0)),
        )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("expected a non-negative integer")
    return value


class StateDir:
    """One installation's state directory. Created (mode 0700) on first write, never on read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def key_file(self) -> Path:
        return self.path / KEY_FILE

    def _ensure(self) -> None:
        private_dir(self.path, what="state directory")

    # -- state.json ------------------------------------------------------------------------------

    def load(self) -> State:
        """The stored state; an empty State when there is none yet."""
        if not self.state_file.exists():
            return State()
        try:
            data = read_limited(self.state_file, _MAX_STATE_BYTES, what="state file")
        except OfflineServiceError as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, exc.message) from None
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
            return State.from_json(doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"{self.state_file} is damaged ({exc}); delete it and activate again"
            ) from None

    def save(self, state: State) -> None:
        self._ensure()
        text = json.dumps(state.to_json(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(self.state_file, text.encode("utf-8"), mode=0o600)

    # -- machine-key -----------------------------------------------------------------------------

    def machine_key(self) -> bytes | None:
        """The 32-byte machine key seed, or None when this installation has none yet."""
        path = self.key_file
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OfflineServiceError(Code.KEY_ERROR, f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            # fstat on the open file: the file checked is the file read.
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OfflineServiceError(Code.KEY_ERROR, f"{path} is not a regular file")
            if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise OfflineServiceError(
                    Code.INSECURE_KEY_FILE,
                    f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o});"
                    " run: chmod 600 on it",
                )
            text = f.read(128)
        try:
            seed = b64url_decode(text.strip())
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise OfflineServiceError(
                Code.KEY_ERROR, f"{path} is damaged; it must hold a base64url 32-byte seed"
            )
        return seed

    def ensure_machine_key(self) -> bytes:
        """The machine key seed, made on first use. Never replaces an existing key."""
        found = self.machine_key()
        if found is not None:
            return found
        self._ensure()
        seed = nacl.utils.random(32)
        tmp = self.path / f".{KEY_FILE}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(b64url_encode(seed).encode() + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                # link() publishes the complete file under its name or fails if one exists: a crash
                # leaves no half-written key, and two processes racing agree on the first key.
                os.link(tmp, self.key_file)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(self.path)
        except FileExistsError:
            pass
        except OSError as exc:
            raise OfflineServiceError(
                Code.KEY_ERROR, f"cannot create {self.key_file}: {exc.strerror}"
            ) from None
        found = self.machine_key()
        assert found is not None
        return found
