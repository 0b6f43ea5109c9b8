"""Bounded reads and atomic writes, with every OS failure turned into an OfflineServiceError."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from offline_service.errors import Code, OfflineServiceError

__all__ = ["fsync_dir", "private_dir", "read_limited", "write_atomic"]


def read_limited(path: str | os.PathLike[str], limit: int, *, what: str = "file") -> bytes:
    """The bytes of ``path``; refused without reading it whole when it is larger than ``limit``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            if os.fstat(f.fileno()).st_size > limit:
                raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{what} {p} is larger than {limit} bytes")
            # fstat can be wrong for pipes and special files; reading one byte more catches those.
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise OfflineServiceError(Code.NOT_FOUND, f"{what} {p} does not exist") from None
    except OSError as exc:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"cannot read {what} {p}: {exc.strerror}") from None
    if len(data) > limit:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{what} {p} is larger than {limit} bytes")
    return data


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new one, never a mix."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    try:
        # O_EXCL with the final mode: the content is never readable with looser permissions.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(p.parent)
    except OSError as exc:
        raise OfflineServiceError(Code.STORAGE_ERROR, f"cannot write {p}: {exc.strerror or exc}") from None


def private_dir(path: Path, *, what: str) -> None:
    """Create ``path`` (and its parents) readable by its owner only, if missing; it must be a folder."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise OfflineServiceError(
            Code.STORAGE_ERROR, f"cannot create {what} {path}: {exc.strerror}"
        ) from None
    if not path.is_dir():
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{path} is not a directory")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
