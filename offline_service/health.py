"""Whether the service may start and whether it can serve: the schema check ``serve`` makes before
it binds, ``offline-service db status``, and ``/readyz``.

Upgrading the schema is an operator's step (``offline-service db upgrade``), never a side effect of
starting a server: with N instances on one database, none of them must migrate under the others'
feet. The one exception is a database with no schema at all (a fresh data directory): creating it is
not an upgrade, so the server creates it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.store import Store

__all__ = [
    "UPGRADE_COMMAND",
    "Readiness",
    "SchemaStatus",
    "prepare_schema",
    "readiness",
    "require_current_schema",
    "schema_status",
]

UPGRADE_COMMAND = "offline-service db upgrade"


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema is, and where this release needs it."""

    version: int
    latest: int
    pending: list[int]

    @property
    def current(self) -> bool:
        return not self.pending

    def behind_message(self) -> str:
        return (
            f"the database schema is at version {self.version}, this release needs {self.latest}:"
            f" run `{UPGRADE_COMMAND}`"
        )


def schema_status(store: Store) -> SchemaStatus:
    """Two cheap reads: the newest applied migration and those not applied yet."""
    version = store.schema_version
    pending = store.pending_migrations()
    return SchemaStatus(version=version, latest=max([version, *pending]), pending=pending)


def require_current_schema(store: Store) -> SchemaStatus:
    """Raise ``STORAGE_ERROR`` naming the upgrade command when migrations are pending."""
    status = schema_status(store)
    if not status.current:
        raise OfflineServiceError(Code.STORAGE_ERROR, status.behind_message())
    return status


def prepare_schema(store: Store) -> SchemaStatus:
    """For a server opening its store without migrating: create the schema of an empty database
    (version 0), refuse one that is behind (``require_current_schema``)."""
    if store.schema_version == 0 and store.pending_migrations():
        store.upgrade()
    return require_current_schema(store)


@dataclass(frozen=True)
class Readiness:
    """The answer of ``/readyz``: ready, or the first failing ``code`` and every reason."""

    schema_version: int | None
    code: Code | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.reasons


def readiness(store: Store, keyring: Keyring) -> Readiness:
    """Whether this instance can serve now: the database answers, its schema is current, the
    keyring directory is readable and every product's active key loads. Nothing is cached here
    (each call reads again), and the cost is O(products): the keyring's key files are read and
    checked fresh, and each active key is decrypted once per change of its directory by the
    keyring's signer cache, which is what a signed answer would use."""
    codes: list[Code] = []
    reasons: list[str] = []
    version: int | None = None
    try:
        status = schema_status(store)
        version = status.version
        if not status.current:
            codes.append(Code.STORAGE_ERROR)
            reasons.append(status.behind_message())
    except OfflineServiceError as exc:
        codes.append(exc.code)
        reasons.append(f"database: {exc.message}")
    except Exception as exc:  # any driver error means "not ready"; reported, not swallowed
        codes.append(Code.STORAGE_ERROR)
        reasons.append(f"database: {type(exc).__name__}: {exc}")
    reasons_before = len(reasons)
    directory = keyring.directory
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
        codes.append(Code.KEY_ERROR)
        reasons.append("keyring: the keyring directory is missing or not readable")
    if len(reasons) == reasons_before:
        try:
            products = sorted({key["product"] for key in keyring.jwks()["keys"]})
            for product in products:
                keyring.signer(product)
        except OfflineServiceError as exc:
            codes.append(exc.code)
            reasons.append(f"keyring: {exc.message}")
        except OSError as exc:
            codes.append(Code.KEY_ERROR)
            reasons.append(f"keyring: cannot read {exc.filename or directory}: {exc.strerror or exc}")
    return Readiness(schema_version=version, code=codes[0] if codes else None, reasons=reasons)
