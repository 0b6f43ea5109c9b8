"""``offline-service token``: a token is printed once and works on the admin API, ``list`` shows no
secret, ``revoke`` stops it; bad scopes, lifetimes and other accounts' tokens are refused."""

from __future__ import annotations

from offline_service.admin import tokens
from offline_service.errors import Code
from tests.cli.test_cli import Cli, _no_service_environment, cli

__all__ = ["_no_service_environment", "cli"]  # the CLI suite's fixtures, found through this module


def test_create_list_and_revoke(cli: Cli) -> None:
    cli.ok("init")
    made = cli.ok(
        "token", "create", "--scope", "licenses:read", "--scope", "licenses:write", "--name", "shop"
    )
    assert made["token"].startswith(tokens.PREFIX)
    assert (made["scopes"], made["name"], made["live"]) == (["licenses:read", "licenses:write"], "shop", True)
    assert made["expiresAt"] - made["createdAt"] == tokens.DEFAULT_DAYS * 86400
    listed = cli.ok("token", "list")
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    text = cli("token", "list")
    assert made["token"] not in text.out and made["id"] in text.out
    assert cli.ok("token", "revoke", made["id"]) == {"revoked": made["id"]}
    assert cli.ok("token", "list")[0]["revokedAt"] is not None
    cli.fails(Code.CONFLICT, "token", "revoke", made["id"])


def test_the_secret_is_printed_once_on_its_own_line(cli: Cli) -> None:
    cli.ok("init")
    run = cli("token", "create", "--scope", "audit:read", "--expires-in-days", "7")
    assert run.code == 0
    secret = run.out.splitlines()[0]
    assert secret.startswith(tokens.PREFIX) and "only time" in run.out
    assert secret not in cli("token", "list").out


def test_refusals(cli: Cli) -> None:
    cli.ok("init")
    cli.ok("init", account="other")
    other = cli.ok("token", "create", "--scope", "licenses:read", account="other")
    cli.fails(Code.NOT_FOUND, "token", "revoke", other["id"])  # of another account
    cli.fails(Code.INVALID_ARGUMENT, "token", "revoke", "lic_0123456789abcdef01234567")
    for bad in (["--scope", "everything"], ["--scope", "licenses:read", "--expires-in-days", "367"], []):
        assert cli("token", "create", *bad).code == 2, bad  # usage errors


def test_license_change_is_the_admin_apis_change(cli: Cli) -> None:
    cli.ok("init")
    product = cli.ok("product", "create", "--name", "App")["id"]
    lic = cli.ok(
        "license", "create", "--product", product, "--allowed-activations", "2",
        "--allowed-deactivations", "1", "--validity-days", "30",
    )  # fmt: skip
    changed = cli.ok(
        "license", "change", lic["key"], "--allowed-activations", "-1", "--expires-at", "2099-01-01"
    )
    assert (changed["allowedActivations"], changed["allowedDeactivations"]) == (-1, 1)
    assert (changed["expiresAt"], changed["validityDays"]) == (4070908800, None)
    assert cli.ok("license", "change", lic["key"], "--no-expiry")["expiresAt"] is None
    cli.fails(Code.INVALID_ARGUMENT, "license", "change", lic["key"])  # nothing to change
    cli.fails(Code.INVALID_ARGUMENT, "license", "change", lic["key"], "--expires-at", "2001-01-01")
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "change", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "--no-expiry")
    assert [e["action"] for e in cli.ok("audit")][:2] == ["license.change", "license.change"]
