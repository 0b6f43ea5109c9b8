"""``offline-service webhook ...``: add prints the secret once, list and the delivery log never do;
send delivers to a real receiver; redeliver, disable, enable and remove; refused URLs exit with
WEBHOOK_URL_REFUSED and write nothing; another account sees none of it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from offline_service.errors import Code
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.cli.test_cli import Cli, new_license
from tests.db import table
from tests.factories import database_for
from tests.webhooks.receiver import receiver


@pytest.fixture
def cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.setenv("OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK", "1")
    return Cli(tmp_path, capsys, database_url=database_for(tmp_path, backend))


def test_the_webhook_verbs_from_add_to_remove(cli: Cli) -> None:
    cli.ok("init")
    cli.ok("init", "--account", "other")
    product = cli.ok("product", "create", "--name", "App")["id"]
    with receiver() as r:
        added = cli.ok(
            "webhook",
            "add",
            "--url",
            r.url,
            "--event",
            "license.created",
            "--event",
            "license.revoked",
            "--event",
            "license.suspended",
        )
        r.secret = added["secret"]
        assert added["secret"].startswith("whsec_") and added["events"] == [
            "license.created",
            "license.revoked",
            "license.suspended",
        ]
        listed = cli("webhook", "list")
        assert added["id"] in listed.out and r.secret not in listed.out
        assert r.secret not in cli("webhook", "list", "--json").out
        license = new_license(cli, product)
        assert cli.ok("webhook", "send") == {"sent": 1, "failed": 0, "disabled": 0}
        page = cli.ok("webhook", "deliveries", added["id"])
        assert page["nextCursor"] is None
        (log,) = page["deliveries"]
        assert log["state"] == "delivered" and log["event"] == "license.created" and log["lastStatus"] == 200
        assert r.secret not in cli("webhook", "deliveries", added["id"]).out
        assert cli.ok("webhook", "redeliver", log["id"])["state"] == "pending"
        assert cli.ok("webhook", "send")["sent"] == 1
        cli.ok("license", "revoke", license["key"])  # queued ...
        assert cli.ok("webhook", "disable", added["id"])["enabled"] is False
        assert cli.ok("webhook", "send")["sent"] == 0  # ... and waits while the endpoint is disabled
        cli.ok("license", "suspend", license["key"])  # no event queued for a disabled endpoint
        assert cli.ok("webhook", "enable", added["id"])["enabled"] is True
        assert cli.ok("webhook", "send")["sent"] == 1
    assert [b["type"] for b in r.verified] == ["license.created", "license.created", "license.revoked"]
    assert r.verified[0]["data"]["key"] == license["key"]
    # Another account sees nothing of it.
    assert cli.ok("webhook", "list", account="other") == []
    cli.fails(Code.NOT_FOUND, "webhook", "deliveries", added["id"], account="other")
    cli.fails(Code.NOT_FOUND, "webhook", "remove", added["id"], account="other")
    cli.fails(Code.NOT_FOUND, "webhook", "redeliver", log["id"], account="other")
    assert cli.ok("webhook", "remove", added["id"]) == {"removed": added["id"]}
    assert cli.ok("webhook", "list") == []


def test_a_failed_send_exits_non_zero_and_is_tried_again(cli: Cli) -> None:
    cli.ok("init")
    product = cli.ok("product", "create", "--name", "App")["id"]
    with receiver(fail_first=1) as r:
        r.secret = cli.ok("webhook", "add", "--url", r.url, "--event", "license.created")["secret"]
        new_license(cli, product)
        failed = cli("webhook", "send", "--json")
        assert failed.code == 1 and '"failed": 1' in failed.out
    assert len(r.seen) == 1 and time.time() > 0


def test_refused_urls_and_unknown_events_write_nothing(cli: Cli) -> None:
    cli.ok("init")
    for url in ("http://192.0.2.1/x", "https://10.0.0.1/", "https://169.254.169.254/latest/meta-data"):
        cli.fails(Code.WEBHOOK_URL_REFUSED, "webhook", "add", "--url", url, "--event", "license.created")
    bad = cli("webhook", "add", "--url", "https://127.0.0.1/", "--event", "license.exploded")
    assert bad.code == 2 and "invalid choice" in bad.err
    assert cli.ok("webhook", "list") == []


def test_the_delivery_log_pages_by_cursor(cli: Cli) -> None:
    cli.ok("init")
    product = cli.ok("product", "create", "--name", "App")["id"]
    added = cli.ok("webhook", "add", "--url", "http://127.0.0.1:9/hook", "--event", "license.created")
    for _ in range(3):
        new_license(cli, product)
    first = cli.ok("webhook", "deliveries", added["id"], "--limit", "2")
    assert len(first["deliveries"]) == 2 and first["nextCursor"]
    assert (
        f"more: --cursor {first['nextCursor']}"
        in cli("webhook", "deliveries", added["id"], "--limit", "2").out
    )
    new_license(cli, product)  # written between pages: newer than every page read
    second = cli.ok("webhook", "deliveries", added["id"], "--limit", "2", "--cursor", first["nextCursor"])
    assert len(second["deliveries"]) == 1 and second["nextCursor"] is None
    seen = [d["id"] for d in first["deliveries"] + second["deliveries"]]
    assert len(set(seen)) == 3
    everything = [
        d["id"] for d in cli.ok("webhook", "deliveries", added["id"], "--limit", "200")["deliveries"]
    ]
    assert everything[1:] == seen
    cli.fails(Code.INVALID_ARGUMENT, "webhook", "deliveries", added["id"], "--limit", "201")
    cli.fails(Code.INVALID_ARGUMENT, "webhook", "deliveries", added["id"], "--cursor", "bogus")


def test_rotate_secret_prints_the_new_secret_once_and_the_old_one_signs_for_its_grace(cli: Cli) -> None:
    cli.ok("init")
    cli.ok("init", "--account", "other")
    product = cli.ok("product", "create", "--name", "App")["id"]
    with receiver() as r:
        added = cli.ok("webhook", "add", "--url", r.url, "--event", "license.created")
        old = added["secret"]
        rotated = cli.ok("webhook", "rotate-secret", added["id"])
        r.secret = rotated["secret"]
        assert (
            r.secret.startswith("whsec_") and r.secret != old and rotated["previousSecretUntil"] is not None
        )
        assert r.secret not in cli("webhook", "list").out
        new_license(cli, product)
        assert cli.ok("webhook", "send")["sent"] == 1
        body, headers = r.raw[-1]
        Webhook(old).verify(body, headers)  # within its grace, the replaced secret verifies too
        text = cli("webhook", "rotate-secret", added["id"], "--grace", "0")
        assert text.code == 0 and "the previous secret signs no more" in text.out
        r.secret = text.out.split("verify each delivery with it): ")[1].split()[0]
        new_license(cli, product)
        assert cli.ok("webhook", "send")["sent"] == 1
        body, headers = r.raw[-1]
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(rotated["secret"]).verify(body, headers)
    assert len(r.verified) == 2
    cli.fails(Code.NOT_FOUND, "webhook", "rotate-secret", added["id"], account="other")
    cli.fails(Code.INVALID_ARGUMENT, "webhook", "rotate-secret", added["id"], "--grace", "86401")
    store = open_store(Settings(data_dir=cli.data, database_url=cli.database_url))
    try:
        rows = repr(table(store, "webhook_endpoints"))
    finally:
        store.close()
    assert "whsec_" not in rows and r.secret not in rows and old not in rows
