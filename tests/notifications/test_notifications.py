"""Notification mails, on every backend: each preference of the profile gets its mails (near the
activation limit once per crossing, expiry reminders once however often they are looked for, new
releases to those entitled), only to people who ticked it and may use the license; mails are queued
with their event and sent after commit, never twice; and once through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from offline_service.accounts import profile
from offline_service.accounts.mail import SmtpMailer
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.licensing.models import NEAR_EXPIRY_SECONDS, LicenseStatus
from offline_service.notifications import events, outbox
from offline_service.notifications.events import crossed_near_limit
from offline_service.releases import services as releases
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.cli.test_cli import Cli
from tests.factories import NOW, Machine, database_for
from tests.smtp_relay import Relay, Server, relay_config
from tests.web.pages import mails, user
from tests.web.site import EMAILS, Site, SiteFactory, activation_request

DAY = 86400


def _opt_in(site: Site, role: str, **preferences: bool) -> None:
    person = user(site, role)
    profile.update_preferences(
        site.svc.store,
        person,
        time_zone="UTC",
        notify_new_activation=preferences.get("near_limit", False),
        notify_license_expiry=preferences.get("expiry", False),
        notify_new_release=preferences.get("release", False),
        now=NOW,
    )


def _license(site: Site, key: str, **kw: object) -> None:
    kw.setdefault("allowed_activations", 5)
    expires_at = kw.get("expires_at")
    # A license that has already expired was created before its expiry (a past one is refused).
    created = min(NOW, expires_at - DAY) if isinstance(expires_at, int) else NOW
    site.licenses[key] = admin.create_license(
        site.svc.store,
        site.acme,
        product_id=site.product.id,
        allowed_deactivations=5,
        now=created,
        **kw,  # type: ignore[arg-type]
    )


def _activate(site: Site, role: str, name: str, n: int) -> None:
    response = site.activate(
        role, activation_request(site, role, name, Machine(fingerprint=f"fp-{name}-{n}"))
    )
    assert response.status_code == 200, response.text


def _sent(site: Site) -> list[tuple[str, str]]:
    """(recipient, subject) of the mails written so far, sorted."""
    return sorted((str(m["To"]), str(m["Subject"])) for _, m in mails(site))


def test_the_near_limit_line_is_crossed_once() -> None:
    assert [crossed_near_limit(5, b, b + 1) for b in range(5)] == [False, False, False, True, False]
    assert crossed_near_limit(3, 2, 3) and not crossed_near_limit(3, 1, 2)
    assert not crossed_near_limit(-1, 100, 101) and not crossed_near_limit(0, 0, 1)


def test_an_activation_that_crosses_80_percent_mails_those_who_asked_and_may_use_it(site: Site) -> None:
    _license(site, "team", owner_organization="Org A")
    for role in ("admin_a", "user1", "admin_b"):
        _opt_in(site, role, near_limit=True)  # user1 may not use an organization license
    _opt_in(site, "user2", expiry=True, release=True)  # may not use it either, and asked otherwise
    for n in range(3):
        _activate(site, "admin_a", "team", n)
    site.svc.deliver_outbox()
    assert mails(site) == []  # 3 of 5: under the line
    _activate(site, "admin_a", "team", 3)  # 4 of 5: 80%
    assert mails(site) == []  # queued, not sent inside the request's transaction
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=1, failed=0)
    [(_, mail)] = mails(site)
    assert mail["To"] == EMAILS["admin_a"] and "80%" in mail["Subject"] and "4 of its 5" in mail.get_content()
    assert site.licenses["team"].key not in mail.get_content()  # the key is not mailed
    _activate(site, "admin_a", "team", 4)  # 5 of 5: past the line, no new crossing
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=0, failed=0)
    assert len(mails(site)) == 1


def test_the_preference_is_honoured_for_a_group_member(site: Site) -> None:
    """A user who may use a license through a group hears of it only when they asked."""
    with site.svc.store.write() as tx:
        tx.update_license_usage(
            site.licenses["group"].id, used_activations=1, used_deactivations=0, expires_at=None
        )
    _activate(site, "user2", "group", 0)  # 2 of 3: under 80%
    _activate(site, "user2", "group", 1)  # 3 of 3, not asked for
    site.svc.deliver_outbox()
    assert mails(site) == []
    _opt_in(site, "user2", near_limit=True)
    with site.svc.store.write() as tx:
        tx.update_license_usage(
            site.licenses["group"].id, used_activations=1, used_deactivations=0, expires_at=None
        )
    _activate(site, "user2", "group", 2)
    _activate(site, "user2", "group", 3)
    site.svc.deliver_outbox()
    assert [to for to, _ in _sent(site)] == [EMAILS["user2"]]


def test_expiry_reminders_go_once_to_those_who_asked(site: Site) -> None:
    _license(site, "soon", owner_user_email=EMAILS["user1"], expires_at=NOW + 10 * DAY, name="Lab PC")
    _license(site, "later", owner_user_email=EMAILS["user1"], expires_at=NOW + NEAR_EXPIRY_SECONDS + DAY)
    _license(site, "gone", owner_user_email=EMAILS["user1"], expires_at=NOW - DAY)
    _license(site, "org", owner_organization="Org A", expires_at=NOW + 5 * DAY)
    _opt_in(site, "user1", expiry=True)
    _opt_in(site, "admin_a", near_limit=True)  # asked for something else
    _opt_in(site, "admin_b", expiry=True)  # another organization
    store = site.svc.store
    assert events.expiry_reminders(store, now=NOW) == 1
    assert events.expiry_reminders(store, now=NOW + 3600) == 0  # again: nothing new
    site.svc.deliver_outbox()
    [(_, mail)] = mails(site)
    assert mail["To"] == EMAILS["user1"] and "Lab PC" in mail.get_content()
    # Two days on, "later" is within 30 days of its expiry too; "soon" is not reminded again.
    assert events.expiry_reminders(store, now=NOW + 2 * DAY) == 1
    site.svc.deliver_outbox()
    assert [m.get_content().count("Lab PC") for _, m in mails(site)] == [1, 0]
    # A new expiry date is a new reminder.
    with store.write() as tx:
        tx.update_license_usage(
            site.licenses["soon"].id, used_activations=0, used_deactivations=0, expires_at=NOW + 20 * DAY
        )
    assert events.expiry_reminders(store, now=NOW + 2 * DAY) == 1


def test_a_new_release_mails_those_entitled_who_asked(site: Site, tmp_path: Path) -> None:
    _license(site, "old", owner_user_email=EMAILS["user2"], max_version="1.9")
    _opt_in(site, "user1", release=True)  # license "user1": every version
    _opt_in(site, "user2", release=True)  # its own license stops at 1.9; the group's does not
    _opt_in(site, "admin_b", release=True)  # Org B's license: every version
    _opt_in(site, "admin_a")  # did not ask
    with site.svc.store.write() as tx:  # Org B's license suspended: it entitles to nothing
        tx.set_license_status(site.licenses["org_b"].id, LicenseStatus.SUSPENDED)
    (tmp_path / "app.zip").write_bytes(b"zip")
    releases.publish(
        site.svc.store,
        site.acme,
        root=tmp_path / "releases",
        product_id=site.product.id,
        version="2.0.0",
        files=[tmp_path / "app.zip"],
        now=NOW,
    )
    site.svc.deliver_outbox()
    assert _sent(site) == [
        (EMAILS["user1"], "App 2.0.0 is available"),
        (EMAILS["user2"], "App 2.0.0 is available"),
    ]


def test_a_mail_that_fails_stays_queued_and_is_sent_once_later(site: Site) -> None:
    _license(site, "soon", owner_user_email=EMAILS["user1"], expires_at=NOW + DAY)
    _opt_in(site, "user1", expiry=True)
    events.expiry_reminders(site.svc.store, now=NOW)

    class Broken:
        def send(self, message: object) -> None:
            raise OfflineServiceError(Code.STORAGE_ERROR, "the relay is away")

    working = site.svc.mailer
    site.svc.mailer = Broken()
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=0, failed=1)
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=0, failed=0)  # claimed: not yet again
    site.svc.mailer = working
    site.clock.now += outbox.CLAIM_SECONDS
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=1, failed=0)
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=0, failed=0)
    assert len(mails(site)) == 1
    with site.svc.store.read() as tx:
        [row] = tx.outbox(site.acme.id)
    assert row.sent_at is not None and row.attempts == 2


def test_notifications_go_through_smtp(site: Site, smtp_server: Server) -> None:
    relay, port = smtp_server(Relay(refuse=1))
    site.svc.mailer = SmtpMailer(replace(relay_config(port), backoff=0))
    _license(site, "team", owner_organization="Org A", allowed_activations=1)
    _opt_in(site, "admin_a", near_limit=True)
    _activate(site, "admin_a", "team", 0)  # 1 of 1
    assert site.svc.deliver_outbox() == outbox.Delivery(sent=1, failed=0)
    [got] = relay.received
    assert got["To"] == EMAILS["admin_a"] and got["From"] == site.svc.settings.mail_from
    assert relay.tried == 2 and mails(site) == []


def test_the_notify_command_queues_reminders_once_and_sends_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("OFFLINE_SERVICE_"):
            monkeypatch.delenv(name)
    # A `serve` test earlier in the process leaves the service's logger writing to a stream pytest
    # has closed since; the mail sender's log line must go to this test's capture instead.
    service_log = logging.getLogger("offline_service")
    monkeypatch.setattr(service_log, "handlers", [])
    monkeypatch.setattr(service_log, "propagate", True)
    cli = Cli(tmp_path, capsys, database_url=database_for(tmp_path, backend))
    cli.ok("init")
    product = cli.ok("product", "create", "--name", "App")["id"]
    cli.ok("user", "create", "--email", "ann@example.com", "--role", "user")
    soon = dt.datetime.fromtimestamp(time.time() + 5 * DAY, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli.ok(
        "license", "create", "--product", product, "--allowed-activations", "2",
        "--allowed-deactivations", "1", "--user", "ann@example.com", "--expires-at", soon,
    )  # fmt: skip
    store = open_store(Settings(data_dir=cli.data, database_url=cli.database_url))
    try:
        with store.write() as tx:
            account = tx.account_by_alias("default")
            assert account is not None
            ann = tx.user_by_email(account.id, "ann@example.com")
            assert ann is not None
            tx.update_user(replace(ann, notify_license_expiry=True))
    finally:
        store.close()
    assert cli.ok("notify") == {"queued": 1, "sent": 1, "failed": 0}
    assert cli.ok("notify") == {"queued": 0, "sent": 0, "failed": 0}
    [mail] = list((cli.data / "mail").glob("*.eml"))
    assert b"To: ann@example.com" in mail.read_bytes()


def test_the_server_sends_the_outbox_by_itself(make_site: SiteFactory) -> None:
    site = make_site(outbox_seconds=1)
    _license(site, "soon", owner_user_email=EMAILS["user1"], expires_at=NOW + DAY)
    _opt_in(site, "user1", expiry=True)
    assert events.expiry_reminders(site.svc.store, now=NOW) == 1
    for _ in range(100):  # the server's next round, a second or so away
        if mails(site):
            break
        time.sleep(0.1)
    assert [m["To"] for _, m in mails(site)] == [EMAILS["user1"]]
