"""Signed, expiring download links, bound to one person and one file.

A link carries ``exp`` (Unix seconds) and ``sig`` = base64url(HMAC-SHA256(secret, person, file,
exp)). The secret is 32 random bytes in ``<data>/download-links.key`` (mode 0600), made once and
never logged. A link proves only that the service made it for that person and file; the download
route also requires that person to be logged in and to be entitled to the file at that moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from offline_service._b64 import b64url_encode
from offline_service._files import fsync_dir
from offline_service.errors import Code, OfflineServiceError

__all__ = ["KEY_FILE", "LinkSigner"]

KEY_FILE = "download-links.key"
_SECRET_BYTES = 32
_EXP = re.compile(r"\A(?:0|[1-9][0-9]{0,11})\Z")  # canonical: one text per time
_CONTEXT = b"offline-service download link v1"


class LinkSigner:
    """Signs and verifies download links with one secret."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes):
            raise TypeError("the secret is bytes")
        if len(secret) != _SECRET_BYTES:
            raise ValueError(f"the secret is {_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "LinkSigner(<secret>)"

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> LinkSigner:
        """The signer of a data directory; its secret is made on first use. STORAGE_ERROR when it
        cannot be read or made, INSECURE_KEY_FILE when others may read it."""
        path = data_dir / KEY_FILE
        try:
            return cls(_read_secret(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot read {path}: {exc.strerror}") from None
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(_SECRET_BYTES))
                    f.flush()
                    os.fsync(f.fileno())
                # link() never replaces: when two processes race, the first secret stays.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(data_dir)
            return cls(_read_secret(path))
        except OSError as exc:
            raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot make {path}: {exc.strerror}") from None

    def _mac(self, person: str, file_id: str, exp: int) -> str:
        message = b"\0".join((_CONTEXT, person.encode(), file_id.encode(), str(exp).encode()))
        return b64url_encode(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign(self, person: str, file_id: str, exp: int) -> str:
        """The ``sig`` of a link to ``file_id`` for ``person`` that works until ``exp``."""
        return self._mac(person, file_id, exp)

    def verify(self, person: str, file_id: str, exp: str, sig: str, *, now: int) -> None:
        """Returns nothing; LINK_INVALID when the link was not made by this service for this person
        and file (no reason given), LINK_EXPIRED when it was but ``exp`` has passed."""
        if not (isinstance(exp, str) and isinstance(sig, str) and _EXP.match(exp) and sig.isascii()):
            raise OfflineServiceError(Code.LINK_INVALID, "this download link is invalid")
        expected = self._mac(person, file_id, int(exp))
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise OfflineServiceError(Code.LINK_INVALID, "this download link is invalid")
        if int(exp) <= now:
            raise OfflineServiceError(Code.LINK_EXPIRED, "this download link has expired")


def _read_secret(path: Path) -> bytes:
    with open(path, "rb") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
            raise OfflineServiceError(Code.INSECURE_KEY_FILE, f"{path} may be read by others; chmod 600 it")
        data = f.read(_SECRET_BYTES + 1)
    if len(data) != _SECRET_BYTES:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"{path} is damaged; remove it to make a new one")
    return data
