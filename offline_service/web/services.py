"""What every request handler needs, built once per application: settings, store, keyring, engine,
and the clock (injectable, so tests control time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import Engine
from ..keyring import Keyring
from ..settings import Settings
from ..store import SQLiteStore

__all__ = ["Services"]


@dataclass
class Services:
    settings: Settings
    store: SQLiteStore
    keyring: Keyring
    engine: Engine
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def open(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> Services:
        store = SQLiteStore(settings.data_dir, background_checkpoints=True)
        keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
        engine = Engine(store=store, keyring=keyring, policy=settings.policy)
        return cls(settings=settings, store=store, keyring=keyring, engine=engine, clock=clock)

    def now(self) -> int:
        return int(self.clock())

    def close(self) -> None:
        self.store.close()
