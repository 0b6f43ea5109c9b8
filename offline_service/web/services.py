"""What every request handler needs, built once per application: settings, store, keyring, engine,
the mail sender, the metrics, and the clock (injectable, so tests control time)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from offline_service.accounts.mail import Mailer, open_mailer
from offline_service.fileformat.keyring import Keyring
from offline_service.health import prepare_schema
from offline_service.licensing.engine import Engine
from offline_service.notifications import outbox
from offline_service.notifications.outbox import Delivery
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from offline_service.web.metrics import Metrics
from offline_service.webhooks import sender
from offline_service.webhooks.sealing import Sealer
from offline_service.webhooks.sender import Report

__all__ = ["Services"]


@dataclass
class Services:
    settings: Settings
    store: Store
    keyring: Keyring
    engine: Engine
    mailer: Mailer
    metrics: Metrics
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Callable[[], float] = time.time, mailer: Mailer | None = None
    ) -> Services:
        """``mailer``: how the portal sends mail; by default the configured SMTP relay, or else a
        file per mail in <data>/mail."""
        # Never migrates (see offline_service.health): an old schema stops the server here, before
        # it binds; an empty database is created.
        store = open_store(settings, migrate=False, background_checkpoints=True)
        try:
            prepare_schema(store)
        except BaseException:
            store.close()
            raise
        keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
        metrics = Metrics(multiprocess_dir=settings.metrics_dir)
        engine = Engine(store=store, keyring=keyring, policy=settings.policy, observer=metrics)
        mailer = mailer or open_mailer(smtp=settings.smtp, data_dir=settings.data_dir, clock=clock)
        return cls(
            settings=settings,
            store=store,
            keyring=keyring,
            engine=engine,
            mailer=mailer,
            metrics=metrics,
            clock=clock,
        )

    def send(self, message: EmailMessage) -> None:
        """Send a mail with the configured sender (blocking)."""
        self.mailer.send(message)

    def deliver_outbox(self) -> Delivery:
        """Send the queued notification mails (blocking: call it in a thread)."""
        return outbox.deliver(self.store, self.mailer, sender=self.settings.mail_from, now=self.now())

    def send_webhooks(self) -> Report | None:
        """Send the due webhook deliveries (blocking: call it in a thread); None when the database
        was away (logged; the next round tries again)."""
        return sender.send_logged(
            self.store, sender.SenderConfig.from_settings(self.settings, sealer=self.sealer), now=self.now()
        )

    @functools.cached_property
    def sealer(self) -> Sealer:
        """Seals and opens the webhook secrets: one per process, its key loaded once."""
        return Sealer.for_settings(self.settings)

    def now(self) -> int:
        return int(self.clock())

    def close(self) -> None:
        self.store.close()
