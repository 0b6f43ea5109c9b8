"""What every verb of ``offline-service`` shares: the lazily opened context, the exit codes, and how
results are printed. Imported by ``cli/_main.py`` and by the domain packages' CLI modules
(``accounts/cli.py``), which register their verbs on the same parser."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from offline_service.accounts.models import Account
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as admin
from offline_service.licensing.engine import Engine
from offline_service.settings import Settings
from offline_service.store import SQLiteStore

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "Context", "emit", "iso", "now"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


class Context:
    """Settings, store, keyring and account, opened on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings.from_env(data_dir=args.data, keys_dir=args.keys)
        self._store: SQLiteStore | None = None
        self._keyring: Keyring | None = None

    @property
    def store(self) -> SQLiteStore:
        if self._store is None:
            self._store = SQLiteStore(self.settings.data_dir)
        return self._store

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(self.settings.keys_dir, passphrase=self.settings.key_passphrase)
        return self._keyring

    def account(self) -> Account:
        return admin.account(self.store, self.args.account)

    def engine(self) -> Engine:
        return Engine(store=self.store, keyring=self.keyring, policy=self.settings.policy)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def now() -> int:
    return int(time.time())


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2) if args.json else text)


def iso(ts: int | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
