"""Webhook secrets sealed at rest (``webhooks.sealing``), on both backends: the rows and a backup
hold no secret in clear; a sealed value moved onto another endpoint does not open; a row written
before sealing still signs and is sealed when rotated; a missing or different sealing key fails
that endpoint's deliveries only, logged without the secret; processes racing to make the key end
with one; rotation keeps the replaced secret signing for its grace only, checked by the reference
verifier at a real receiver."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from offline_service.errors import Code
from offline_service.settings import Settings
from offline_service.store import open_store
from offline_service.store.backup import backup, restore
from offline_service.webhooks import sealing, services
from offline_service.webhooks.models import Endpoint
from offline_service.webhooks.sealing import KEY_FILE, Sealer, SecretUnavailable, endpoint_place
from offline_service.webhooks.sender import SenderConfig, send_due
from offline_service.webhooks.signing import new_secret
from offline_service.webhooks.urls import URLPolicy
from tests.db import execute, table
from tests.factories import World
from tests.webhooks.receiver import Receiver, receiver

LOOPBACK = URLPolicy(allow_loopback=True)
REPOSITORY = Path(__file__).resolve().parents[2]


def _now() -> int:
    return int(time.time())  # the receiver's verifier checks the timestamp against its clock


def _sealer(world: World) -> Sealer:
    return Sealer(world.keyring.directory)


def _send(world: World, sealer: Sealer | None = None) -> Any:
    config = SenderConfig(sealer=sealer or _sealer(world), policy=LOOPBACK, timeout=5.0)
    return send_due(world.store, config, now=_now(), jitter=lambda: 0.0)


def _add(world: World, r: Receiver, sealer: Sealer | None = None) -> Endpoint:
    e = services.add_endpoint(
        world.store, world.account, url=r.url, events=["license.created"], policy=LOOPBACK,
        sealer=sealer or _sealer(world), now=_now(),
    )  # fmt: skip
    r.secret = e.secret
    return e


def _stored(world: World, endpoint_id: str) -> tuple[str, str, int | None]:
    ((secret, previous, until),) = world.store.debug_query(
        "SELECT secret, previous_secret, previous_until FROM webhook_endpoints WHERE id = ?", endpoint_id
    )
    return secret, previous, until


def test_the_row_holds_the_secret_sealed_and_deliveries_are_signed_with_it(world: World) -> None:
    with receiver() as r:
        e = _add(world, r)
        world.license(now=_now())
        assert _send(world).sent == 1
    assert len(r.verified) == 1 and e.secret.startswith("whsec_")
    rows = repr(table(world.store, "webhook_endpoints"))
    assert e.secret not in rows and "whsec_" not in rows
    assert _stored(world, e.id)[0].startswith("sealed:v1:")
    # The key: 32 random bytes, private; the folder too; the keyring reads it as no product's.
    key = world.keyring.directory / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(world.keyring.directory.stat().st_mode) == 0o700
    assert [k.product_id for k in world.keyring.published()] == [world.product.id]
    assert world.keyring.signer(world.product.id).product_id == world.product.id
    assert e.secret not in repr(_sealer(world)) and e.secret not in key.read_text()


def test_a_sealed_secret_moved_onto_another_endpoint_does_not_open(world: World) -> None:
    with receiver(path="/a") as ra, receiver(path="/b") as rb:
        a, b = _add(world, ra), _add(world, rb)
        moved = _stored(world, a.id)[0]
        execute(world.store, "UPDATE webhook_endpoints SET secret = ? WHERE id = ?", moved, b.id)
        with pytest.raises(SecretUnavailable) as refused:
            _sealer(world).open(moved, endpoint_place(world.account.id, b.id))
        assert refused.value.code is Code.KEY_ERROR and a.secret not in str(refused.value)
        world.license(now=_now())
        report = _send(world)
    assert (report.sent, report.failed) == (1, 1)
    assert len(ra.verified) == 1 and rb.seen == []
    (failed,) = services.deliveries(world.store, world.account, b.id)
    assert failed.last_error.startswith("KEY_ERROR: its secret cannot be opened")


def test_a_row_written_before_sealing_still_signs_and_is_sealed_when_rotated(world: World) -> None:
    plain = new_secret()
    with receiver() as r:
        e = _add(world, r)
        execute(world.store, "UPDATE webhook_endpoints SET secret = ? WHERE id = ?", plain, e.id)
        r.secret = plain
        world.license(now=_now())
        assert _send(world).sent == 1
        assert len(r.verified) == 1
        now = _now()
        rotated = services.rotate_secret(world.store, world.account, e.id, sealer=_sealer(world), now=now)
        rows = repr(table(world.store, "webhook_endpoints"))
        assert plain not in rows and rotated.secret not in rows and "whsec_" not in rows
        secret, previous, until = _stored(world, e.id)
        place = endpoint_place(world.account.id, e.id)
        assert _sealer(world).open(previous, place) == plain and until == now + services.ROTATION_GRACE
        assert _sealer(world).open(secret, place) == rotated.secret


def test_a_missing_or_other_sealing_key_fails_that_endpoints_deliveries_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    key = world.keyring.directory / KEY_FILE
    with receiver(path="/a") as ra, receiver(path="/b") as rb:
        a = _add(world, ra)
        key.rename(key.with_name("elsewhere"))  # a database restored without its keys directory
        world.license(now=_now())
        with caplog.at_level(logging.ERROR, logger="offline_service.webhooks.sender"):
            assert _send(world).failed == 1
        # Another key, made for a new endpoint: the old one's secret does not open with it.
        b = _add(world, rb)
        world.license(now=_now())
        with caplog.at_level(logging.ERROR, logger="offline_service.webhooks.sender"):
            report = _send(world)
        assert (report.sent, report.failed) == (1, 1)
        assert len(rb.verified) == 1 and ra.seen == []
        logged = caplog.text
        assert "no sealing key" in logged and "does not open with the sealing key" in logged
        assert a.secret not in logged and b.secret not in logged and a.id in logged
        # Recovery: a rotation gives it a secret sealed with the key there is (the lost one cannot
        # sign beside it: nothing opens it).
        rotated = services.rotate_secret(world.store, world.account, a.id, sealer=_sealer(world), now=_now())
        assert rotated.previous_until is None and _stored(world, a.id)[1] == ""
        ra.secret = rotated.secret
        world.license(now=_now())
        assert _send(world).sent == 2
    assert [v["type"] for v in ra.verified] == ["license.created"]


def test_threads_racing_to_make_the_sealing_key_end_with_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    racers = 4
    everyone_wrote = threading.Barrier(racers)
    link = os.link

    def late_link(src: Any, dst: Any) -> None:  # each has its own key written before any links
        everyone_wrote.wait(10)
        link(src, dst)

    monkeypatch.setattr(sealing.os, "link", late_link)
    sealers = [Sealer(tmp_path / "keys") for _ in range(racers)]
    sealed: list[str] = [""] * racers

    def run(i: int) -> None:
        sealed[i] = sealers[i].seal("whsec_x", ("race",))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(sealed)
    for s in [*sealers, Sealer(tmp_path / "keys")]:
        assert [s.open(v, ("race",)) for v in sealed] == ["whsec_x"] * racers
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [KEY_FILE]  # no temporary left


def test_processes_racing_to_make_the_sealing_key_end_with_one(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    script = (
        "import sys\nfrom offline_service.webhooks.sealing import Sealer\n"
        "print(Sealer(sys.argv[1]).seal('whsec_x', ('race',)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(keys)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(6)
    ]
    sealed = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [Sealer(keys).open(v, ("race",)) for v in sealed] == ["whsec_x"] * 6


def test_with_a_key_passphrase_the_sealing_key_is_kept_encrypted(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    sealed = Sealer(keys, passphrase=b"correct horse").seal("whsec_x", ("p",))
    doc = json.loads((keys / KEY_FILE).read_text())
    assert doc["private"]["encryption"] == "argon2id+xsalsa20poly1305" and "k" not in doc["private"]
    assert Sealer(keys, passphrase=b"correct horse").open(sealed, ("p",)) == "whsec_x"
    for passphrase in (None, b"wrong"):
        with pytest.raises(SecretUnavailable) as refused:
            Sealer(keys, passphrase=passphrase).open(sealed, ("p",))
        assert refused.value.code is Code.KEY_ERROR
    os.chmod(keys / KEY_FILE, 0o644)
    with pytest.raises(SecretUnavailable) as insecure:
        Sealer(keys, passphrase=b"correct horse").open(sealed, ("p",))
    assert insecure.value.code is Code.INSECURE_KEY_FILE


def test_a_damaged_sealed_value_or_key_is_refused_plainly(tmp_path: Path) -> None:
    s = Sealer(tmp_path / "keys")
    sealed = s.seal("whsec_x", ("d",))
    for bad in ("sealed:v1:", "sealed:v1:%%%", sealed[:-4], sealed + "AAAA"):
        with pytest.raises(SecretUnavailable):
            s.open(bad, ("d",))
    with pytest.raises(SecretUnavailable):
        s.open(sealed, ("d", "elsewhere"))
    (tmp_path / "keys" / KEY_FILE).write_text("{}")
    with pytest.raises(SecretUnavailable) as damaged:
        Sealer(tmp_path / "keys").open(sealed, ("d",))
    assert "damaged" in damaged.value.message
    with pytest.raises(ValueError):
        s.seal("x", ("a\0b",))


def test_the_replaced_secret_signs_beside_the_new_one_for_its_grace_only(world: World) -> None:
    with receiver() as r:
        e = _add(world, r)
        old = e.secret
        # Rotated now, with a minute of grace: both sign; each verifies alone.
        rotated = services.rotate_secret(
            world.store, world.account, e.id, sealer=_sealer(world), now=_now(), grace=60
        )
        r.secret = rotated.secret
        world.license(now=_now())
        assert _send(world).sent == 1
        body, headers = r.raw[-1]
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(body, headers)
        Webhook(rotated.secret).verify(body, headers)
        # Rotated again two minutes ago with a minute's grace: the grace is over, one signature.
        again = services.rotate_secret(
            world.store, world.account, e.id, sealer=_sealer(world), now=_now() - 120, grace=60
        )
        r.secret = again.secret
        world.license(now=_now())
        assert _send(world).sent == 1
        body, headers = r.raw[-1]
        assert len(headers["webhook-signature"].split(" ")) == 1
        Webhook(again.secret).verify(body, headers)
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(rotated.secret).verify(body, headers)
    assert len(r.verified) == 2


@pytest.mark.sqlite_only  # backup and restore are SQLite's (PostgreSQL: pg_dump)
def test_a_backup_holds_the_sealing_key_and_no_secret_and_restores_working(
    world: World, tmp_path: Path
) -> None:
    with receiver() as r:
        e = _add(world, r)
    dest = tmp_path / "backup"
    manifest = backup(world.settings(), dest, now=_now())
    assert f"keys/{KEY_FILE}" in manifest["files"]
    for path in dest.rglob("*"):
        if path.is_file():
            assert e.secret.encode() not in path.read_bytes() and b"whsec_" not in path.read_bytes(), path
    elsewhere = Settings(data_dir=tmp_path / "restored" / "data", keys_dir=tmp_path / "restored" / "keys")
    restore(elsewhere, dest, now=_now())
    key = elsewhere.keys_dir / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    store = open_store(elsewhere)
    try:
        with store.read() as tx:
            (found,) = tx.webhook_endpoints(world.account.id)
    finally:
        store.close()
    assert Sealer(elsewhere.keys_dir).open(found.secret, endpoint_place(world.account.id, e.id)) == e.secret
