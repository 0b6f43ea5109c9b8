"""Webhooks, on every backend: events are queued with their change (a rolled-back change queues
nothing), delivered signed to a real receiver that verifies them with ``standardwebhooks``, tried
again with back-off when the receiver fails, never lost when a sender dies mid-delivery, never sent
to another account's endpoint, and an endpoint failing for days is disabled."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.messages import Kind
from offline_service.licensing import services as admin
from offline_service.licensing.models import LicenseStatus
from offline_service.webhooks import events, sender, services
from offline_service.webhooks.models import Endpoint
from offline_service.webhooks.sealing import Sealer
from offline_service.webhooks.sender import SenderConfig, retry_delay, send_due
from offline_service.webhooks.urls import URLPolicy, URLRefused
from tests.factories import World, table
from tests.web.site import SiteFactory
from tests.webhooks.receiver import Receiver, receiver

PUBLIC = {"hooks.example.com": ["93.184.215.14"]}  # no DNS in the tests: a public address by hand


def _resolve(host: str, port: int) -> list[str]:
    return PUBLIC.get(host, [])


STRICT = URLPolicy(resolve=_resolve)
LOOPBACK = URLPolicy(allow_loopback=True)
CONFIG = SenderConfig(sealer=Sealer("unused"), policy=LOOPBACK, timeout=5.0, disable_after=3 * 86400)


def _sealer(world: World) -> Sealer:
    return Sealer(world.keyring.directory)


def _config(world: World, **kw: Any) -> SenderConfig:
    return replace(CONFIG, sealer=_sealer(world), **kw)


def _now() -> int:
    # The receiver's verifier checks the timestamp against its wall clock (5 minutes either side).
    return int(time.time())


def _endpoint(world: World, r: Receiver, *events_: str, account: Any = None) -> Endpoint:
    e = services.add_endpoint(
        world.store, account or world.account, url=r.url, events=events_, policy=LOOPBACK,
        sealer=_sealer(world), now=_now(),
    )  # fmt: skip
    r.secret = e.secret
    return e


def _send(world: World, now: int, **kw: Any) -> sender.Report:
    return send_due(world.store, _config(world), now=now, jitter=lambda: 0.0, **kw)


def test_a_delivery_is_signed_retried_with_back_off_and_logged(world: World) -> None:
    now = _now()
    with receiver(fail_first=2) as r:
        e = _endpoint(world, r, "license.created")
        license = world.license(now=now)
        assert _send(world, now) == sender.Report(sent=0, failed=1, disabled=0)
        assert _send(world, now).failed == 0  # not due yet: the back-off holds it
        first = retry_delay(1, 0.0)
        assert _send(world, now + first) == sender.Report(sent=0, failed=1, disabled=0)
        assert _send(world, now + first + retry_delay(2, 0.0) - 1).failed == 0
        assert _send(world, now + first + retry_delay(2, 0.0)).sent == 1
        assert _send(world, now + 10 * first).sent == 0  # delivered once, never again
    assert len(r.seen) == 3 and len(set(r.ids())) == 1  # one message, three attempts, same webhook-id
    assert len(r.verified) == 3  # every attempt's signature checked by standardwebhooks
    body = r.verified[-1]
    assert body["type"] == "license.created"
    assert body["data"]["id"] == license.id and body["data"]["key"] == license.key
    (log,) = services.deliveries(world.store, world.account, e.id)
    row = services.delivery_json(log)
    assert row["state"] == "delivered" and row["attempts"] == 3 and row["lastStatus"] == 200
    assert row["lastLatencyMs"] is not None and row["lastError"] is None
    assert e.secret not in repr(row) and e.secret not in repr(e)


def test_back_off_doubles_with_jitter_up_to_a_cap() -> None:
    assert [retry_delay(n, 0.999999) for n in (1, 2, 3)] == [29, 59, 119]
    assert [retry_delay(n, 0.0) for n in (1, 2, 3)] == [22, 45, 90]
    assert retry_delay(40, 0.999999) <= sender.MAX_RETRY
    with pytest.raises(ValueError):
        retry_delay(0, 0.0)


def test_the_engine_emits_activation_events_and_the_license_ones(world: World) -> None:
    now = _now()
    with receiver() as r:
        _endpoint(
            world, r, "activation.created", "activation.reissued", "activation.deactivated",
            "license.suspended", "license.revoked", "activation.released", "license.near_limit",
        )  # fmt: skip
        license = world.license(activations=5, now=now)  # license.created: not subscribed
        m = world.machine()
        granted = world.process(
            m.request(Kind.ACTIVATION, world.product.id, issued_at=now, license_key=license.key), now=now
        )
        assert granted.ok
        world.process(
            m.request(Kind.ACTIVATION, world.product.id, issued_at=now, license_key=license.key), now=now
        )
        world.process(
            m.request(
                Kind.DEACTIVATION, world.product.id, issued_at=now, activation_id=granted.activation_id
            ),
            now=now,
        )
        others = [world.machine(f"m{i}") for i in range(2, 6)]
        ids = [
            world.process(o.request(Kind.ACTIVATION, world.product.id, issued_at=now, license_key=license.key), now=now).activation_id
            for o in others
        ]  # fmt: skip
        admin.release_activation(world.store, world.account, ids[0], now=now)
        admin.set_license_status(world.store, world.account, license.key, LicenseStatus.SUSPENDED, now=now)
        admin.set_license_status(world.store, world.account, license.key, LicenseStatus.ACTIVE, now=now)
        admin.set_license_status(world.store, world.account, license.key, LicenseStatus.REVOKED, now=now)
        assert _send(world, now).sent == 11
    types = sorted(b["type"] for b in r.verified)  # deliveries are not ordered (docs/WEBHOOKS.md)
    assert types == sorted(
        [
            "activation.created",
            "activation.reissued",
            "activation.deactivated",
            "activation.created",
            "activation.created",
            "activation.created",
            "license.near_limit",  # the fourth of five activations in use: 80%
            "activation.created",
            "activation.released",
            "license.suspended",  # reinstating is no event
            "license.revoked",
        ]
    ), types
    first = next(b["data"] for b in r.verified if b["data"].get("id") == granted.activation_id)
    assert first["id"] == granted.activation_id and first["licenseId"] == license.id
    assert first["fingerprint"] == m.fingerprint and first["productId"] == world.product.id


def test_an_account_without_endpoints_queues_nothing(world: World) -> None:
    now = _now()
    license = world.license(now=now)
    m = world.machine()
    assert world.process(
        m.request(Kind.ACTIVATION, world.product.id, issued_at=now, license_key=license.key), now=now
    ).ok
    with world.store.read() as tx:
        assert events.subscribers(tx, world.account.id) == {}
    assert _send(world, now).sent == 0


def test_a_rolled_back_change_leaves_no_delivery(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    now = _now()
    with receiver() as r:
        e = _endpoint(world, r, "license.created")
        real = events.emit

        def emit_then_fail(*args: Any, **kw: Any) -> int:
            assert real(*args, **kw) == 1  # the delivery row was written ...
            raise OfflineServiceError(Code.STORAGE_ERROR, "the disk is full")  # ... then the change fails

        monkeypatch.setattr(events, "emit", emit_then_fail)
        with pytest.raises(OfflineServiceError):
            world.license(now=now)
        monkeypatch.undo()
        assert services.deliveries(world.store, world.account, e.id) == []
        assert table(world.store, "licenses") == []
        assert _send(world, now).sent == 0
    assert r.seen == []


def test_no_event_is_lost_when_the_sender_dies_mid_delivery(world: World) -> None:
    now = _now()
    with receiver() as r:
        e = _endpoint(world, r, "license.created")
        world.license(now=now)
        # A sender claims the delivery, then dies before recording anything.
        with world.store.write() as tx:
            (held,) = tx.claim_webhook_deliveries("dead", now=now, until=now + CONFIG.claim_seconds, limit=10)
        assert _send(world, now).sent == 0  # the claim holds: no second sender takes it meanwhile
        assert _send(world, now + CONFIG.claim_seconds).sent == 1  # lapsed: sent again
        # The dead sender's late record is refused: its claim is no longer the row's.
        with world.store.write() as tx:
            assert not tx.record_webhook_attempt(
                held.id, "dead", now=now, delivered=False, status=None, latency_ms=None,
                error="late", next_attempt_at=now, give_up=False,
            )  # fmt: skip
    assert len(r.verified) == 1 and r.verified[0]["type"] == "license.created"
    (log,) = services.deliveries(world.store, world.account, e.id)
    assert log.delivered_at is not None and log.attempts == 2


def test_two_accounts_never_receive_each_others_events(world: World) -> None:
    now = _now()
    other, _ = admin.ensure_account(world.store, "other", now=now)
    product = admin.create_product(world.store, world.keyring, other, name="Other", now=now)
    with receiver(path="/a") as ra, receiver(path="/b") as rb:
        ea = _endpoint(world, ra, "license.created")
        eb = _endpoint(world, rb, "license.created", account=other)
        mine = world.license(now=now)
        theirs = admin.create_license(
            world.store, other, product_id=product.id, allowed_activations=1, allowed_deactivations=1, now=now
        )
        assert _send(world, now).sent == 2
    assert [b["data"]["id"] for b in ra.verified] == [mine.id]
    assert [b["data"]["id"] for b in rb.verified] == [theirs.id]
    # Nothing of one account is reachable with the other's name.
    assert [e.id for e in services.endpoints(world.store, other)] == [eb.id]
    with pytest.raises(OfflineServiceError) as refused:
        services.deliveries(world.store, other, ea.id)
    assert refused.value.code is Code.NOT_FOUND
    (delivery,) = services.deliveries(world.store, world.account, ea.id)
    for call in (
        lambda: services.redeliver(world.store, other, delivery.id, now=now),
        lambda: services.remove_endpoint(world.store, other, ea.id, now=now),
        lambda: services.set_enabled(world.store, other, ea.id, False, now=now),
    ):
        with pytest.raises(OfflineServiceError) as refused:
            call()
        assert refused.value.code is Code.NOT_FOUND


def test_manual_redelivery_sends_again_with_the_same_id(world: World) -> None:
    now = _now()
    with receiver() as r:
        e = _endpoint(world, r, "license.created")
        world.license(now=now)
        assert _send(world, now).sent == 1
        (d,) = services.deliveries(world.store, world.account, e.id)
        services.redeliver(world.store, world.account, d.id, now=now)
        assert _send(world, now).sent == 1
    assert r.ids() == [d.id, d.id]


def test_an_endpoint_failing_for_days_is_disabled_and_waits(world: World) -> None:
    now = _now()
    with receiver() as r:
        e = _endpoint(world, r, "license.created")
    # The receiver is gone: every attempt fails (connection refused).
    world.license(now=now)
    t = now
    while True:
        report = _send(world, t)
        if report.disabled:
            break
        assert report.failed == 1
        (d,) = services.deliveries(world.store, world.account, e.id)
        assert d.last_error
        t = d.next_attempt_at
    assert t - now >= CONFIG.disable_after
    (found,) = services.endpoints(world.store, world.account)
    assert not found.enabled and found.disabled_at == t
    assert _send(world, t + 10**6).failed == 0  # a disabled endpoint gets nothing
    services.set_enabled(world.store, world.account, e.id, True, now=t)
    (found,) = services.endpoints(world.store, world.account)
    assert found.enabled and found.failing_since is None


def test_a_delivery_is_given_up_after_the_last_attempt(world: World) -> None:
    now = _now()
    e = services.add_endpoint(
        world.store, world.account, url="https://hooks.example.com/x", events=["license.created"],
        policy=STRICT, sealer=_sealer(world), now=now,
    )  # fmt: skip
    world.license(now=now)
    config = SenderConfig(sealer=_sealer(world), policy=STRICT, disable_after=10**9)
    t = now
    for _ in range(sender.MAX_ATTEMPTS):
        assert send_due(world.store, config, now=t, send=lambda *a: 503, jitter=lambda: 0.0).failed == 1
        (d,) = services.deliveries(world.store, world.account, e.id)
        t = d.next_attempt_at
    assert d.given_up_at is not None and d.attempts == sender.MAX_ATTEMPTS and d.last_status == 503
    assert send_due(world.store, config, now=t + 10**7, send=lambda *a: 200).sent == 0


def test_registration_refuses_bad_urls_and_events_and_writes_nothing(world: World) -> None:
    for url, reason in (
        ("http://hooks.example.com/x", "scheme"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://10.1.2.3/x", "private"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("ftp://hooks.example.com/", "scheme"),
    ):
        with pytest.raises(URLRefused) as refused:
            services.add_endpoint(
                world.store, world.account, url=url, events=["license.created"], policy=STRICT,
                sealer=_sealer(world), now=1,
            )  # fmt: skip
        assert refused.value.code is Code.WEBHOOK_URL_REFUSED and refused.value.reason == reason, url
    for chosen in ([], ["license.exploded"]):
        with pytest.raises(OfflineServiceError) as bad:
            services.add_endpoint(
                world.store,
                world.account,
                url="https://hooks.example.com/",
                events=chosen,
                policy=STRICT,
                sealer=_sealer(world),
                now=1,
            )
        assert bad.value.code is Code.INVALID_ARGUMENT
    assert services.endpoints(world.store, world.account) == []


def test_the_send_time_check_refuses_an_address_allowed_no_more(world: World) -> None:
    now = _now()
    with receiver() as r:
        e = _endpoint(world, r, "license.created")
        world.license(now=now)
        strict = SenderConfig(sealer=_sealer(world), policy=STRICT)  # loopback no longer allowed
        assert send_due(world.store, strict, now=now).failed == 1
    (d,) = services.deliveries(world.store, world.account, e.id)
    assert "WEBHOOK_URL_REFUSED (loopback)" in d.last_error and r.seen == []


def test_trials_are_events_too(world: World) -> None:
    now = _now()
    with receiver() as r:
        _endpoint(world, r, "trial.created")
        m = world.machine()
        assert world.process(m.request(Kind.TRIAL, world.product.id, issued_at=now), now=now).ok
        assert world.process(m.request(Kind.TRIAL, world.product.id, issued_at=now), now=now).ok  # reissue
        assert _send(world, now).sent == 1
    (body,) = r.verified
    assert body["type"] == "trial.created" and body["data"]["fingerprint"] == m.fingerprint
    assert body["data"]["endsAt"] == now + 14 * 86400


def test_the_server_sends_the_webhooks_by_itself(make_site: SiteFactory) -> None:
    site = make_site(webhook_seconds=1, webhook_allow_loopback=True)
    site.clock.now = time.time()  # the receiver checks the signed timestamp against its clock
    with receiver() as r:
        r.secret = services.add_endpoint(
            site.svc.store, site.acme, url=r.url, events=["license.created"], policy=LOOPBACK,
            sealer=site.svc.sealer, now=_now(),
        ).secret  # fmt: skip
        license = admin.create_license(
            site.svc.store, site.acme, product_id=site.product.id, allowed_activations=1,
            allowed_deactivations=1, now=_now(),
        )  # fmt: skip
        for _ in range(100):  # the server's next round, a second or so away
            if r.verified:
                break
            time.sleep(0.1)
    assert [b["data"]["id"] for b in r.verified] == [license.id]
