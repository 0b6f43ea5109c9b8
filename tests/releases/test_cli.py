"""The ``offline-service`` verbs of releases and customization: release publish/list/remove,
license --max-version and set-max-version, account customize/show; failures included."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import pytest

from offline_service.branding import cli as branding_cli
from offline_service.errors import Code
from offline_service.releases import cli as releases_cli
from tests.cli.test_cli import Cli
from tests.factories import database_for
from tests.images import png


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OFFLINE_SERVICE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str) -> Cli:
    c = Cli(tmp_path, capsys, database_url=database_for(tmp_path, backend))
    c.ok("init")
    return c


@pytest.fixture
def product(cli: Cli) -> str:
    created: str = cli.ok("product", "create", "--name", "CAD Pro")["id"]
    return created


def file(cli: Cli, name: str, data: bytes) -> Path:
    path = cli.root / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_publish_list_and_remove(cli: Cli, product: str) -> None:
    app, notes = (
        file(cli, "app.bin", b"\x00app" * 1000),
        file(cli, "notes.txt", "Fixes <all>\nbugs é\n".encode()),
    )
    published = cli.ok(
        "release", "publish", "--product", product, "--version", "2.0.0", "--notes-file", notes, app
    )
    assert published["version"] == "2.0.0" and published["channel"] == "stable"
    assert published["notes"] == "Fixes <all>\nbugs é"
    [f] = published["files"]
    assert (f["name"], f["size"], f["sha256"]) == (
        "app.bin",
        4000,
        hashlib.sha256(b"\x00app" * 1000).hexdigest(),
    )
    stored = cli.data / "releases" / product / published["id"] / f["id"]
    assert stored.read_bytes() == app.read_bytes()
    beta = cli.ok(
        "release", "publish", "--product", product, "--version", "2.1-beta.1", "--channel", "beta",
        "--notes", "Try it", app,
    )  # fmt: skip
    assert [r["version"] for r in cli.ok("release", "list")] == ["2.1-beta.1", "2.0.0"]
    assert [r["id"] for r in cli.ok("release", "list", "--product", product)] == [beta["id"], published["id"]]
    text = cli("release", "list")
    assert text.code == 0 and f["sha256"] in text.out and "3.9 KiB" in text.out and "app.bin" in text.out
    removed = cli.ok("release", "remove", "--product", product, "--version", "2.1.0-beta.1")
    assert removed == {"removed": beta["id"]}
    assert [r["version"] for r in cli.ok("release", "list")] == ["2.0.0"]
    assert not (cli.data / "releases" / product / beta["id"]).exists()


def test_publish_failures(cli: Cli, product: str) -> None:
    app = file(cli, "app.bin", b"app")
    cli.ok("release", "publish", "--product", product, "--version", "1.0", app)
    link = cli.root / "src" / "link.bin"
    link.symlink_to(app)
    cli.fails(Code.CONFLICT, "release", "publish", "--product", product, "--version", "1.0.0", app)
    cli.fails(
        Code.NOT_FOUND, "release", "publish", "--product", product, "--version", "2", cli.root / "nope.bin"
    )
    cli.fails(Code.INVALID_ARGUMENT, "release", "publish", "--product", product, "--version", "2", link)
    cli.fails(
        Code.INVALID_ARGUMENT, "release", "publish", "--product", product, "--version", "2", cli.root / "src"
    )
    cli.fails(Code.INVALID_ARGUMENT, "release", "publish", "--product", product, "--version", "two", app)
    cli.fails(
        Code.INVALID_ARGUMENT,
        "release",
        "publish",
        "--product",
        product,
        "--version",
        "2",
        "--channel",
        "Beta!",
        app,
    )
    cli.fails(
        Code.PRODUCT_NOT_FOUND,
        "release",
        "publish",
        "--product",
        "prod_000000000000000000000000",
        "--version",
        "2",
        app,
    )
    cli.fails(Code.NOT_FOUND, "release", "remove", "--product", product, "--version", "9")
    both = cli(
        "release", "publish", "--product", product, "--version", "2", "--notes", "x", "--notes-file", app
    )
    assert both.code == 2  # usage: one kind of notes
    assert cli("release", "publish", "--product", product, "--version", "2").code == 2  # no file
    assert len(cli.ok("release", "list")) == 1


def test_releases_directory_can_be_configured(
    cli: Cli, product: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = cli.root / "elsewhere"
    monkeypatch.setenv("OFFLINE_SERVICE_RELEASES", str(elsewhere))
    published = cli.ok("release", "publish", "--product", product, "--version", "1", file(cli, "a", b"a"))
    assert (elsewhere / product / published["id"]).is_dir() and not (cli.data / "releases").exists()


def test_license_maximum_version(cli: Cli, product: str) -> None:
    created = cli.ok(
        "license", "create", "--product", product, "--allowed-activations", "1", "--allowed-deactivations", "1",
        "--max-version", "2.4",
    )  # fmt: skip
    assert created["maxVersion"] == "2.4"
    assert cli.ok("license", "show", created["key"])["maxVersion"] == "2.4"
    assert cli.ok("license", "set-max-version", created["key"], "3.0.0-rc.1")["maxVersion"] == "3.0.0-rc.1"
    assert cli.ok("license", "set-max-version", created["key"], "none")["maxVersion"] is None
    assert cli.ok("license", "show", created["key"])["maxVersion"] is None
    cli.fails(Code.INVALID_ARGUMENT, "license", "set-max-version", created["key"], "v3")
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "set-max-version", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "3")
    cli.fails(
        Code.INVALID_ARGUMENT, "license", "create", "--product", product, "--allowed-activations", "1",
        "--allowed-deactivations", "1", "--max-version", "latest",
    )  # fmt: skip


def test_account_customize_and_show(cli: Cli) -> None:
    logo = file(cli, "logo.png", png(30, 10))
    shown = cli.ok(
        "account", "customize", "--portal-name", "CAD Pro Downloads", "--accent-color", "#AA3300",
        "--logo", logo, "--custom-domain", "Downloads.Customer.Example",
    )  # fmt: skip
    assert shown["portalName"] == "CAD Pro Downloads" and shown["accentColor"] == "#aa3300"
    assert shown["customDomain"] == "downloads.customer.example" and shown["logoType"] == "image/png"
    assert (cli.data / "branding" / shown["logo"]).read_bytes() == png(30, 10)
    assert cli.ok("account", "show") == shown
    text = cli("account", "show")
    assert "CAD Pro Downloads" in text.out and "downloads.customer.example" in text.out
    cleared = cli.ok("account", "customize", "--no-logo", "--no-custom-domain")
    assert (
        cleared["logo"] is None
        and cleared["customDomain"] is None
        and cleared["portalName"] == "CAD Pro Downloads"
    )
    assert list((cli.data / "branding").iterdir()) == []


def test_account_customize_failures_change_nothing(cli: Cli) -> None:
    cli.ok("init", account="other")
    cli.ok("account", "customize", "--custom-domain", "taken.example", account="other")
    before = cli.ok("account", "show")
    svg = file(cli, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    fake = file(cli, "logo.png", b"GIF89a not a png")
    cli.fails(Code.BAD_IMAGE, "account", "customize", "--logo", svg, "--portal-name", "New")
    cli.fails(Code.BAD_IMAGE, "account", "customize", "--logo", fake)
    cli.fails(Code.BAD_IMAGE, "account", "customize", "--logo", file(cli, "huge.png", png(3000, 1)))
    cli.fails(Code.NOT_FOUND, "account", "customize", "--logo", cli.root / "nope.png")
    cli.fails(Code.INVALID_ARGUMENT, "account", "customize", "--accent-color", "blue")
    cli.fails(Code.INVALID_ARGUMENT, "account", "customize", "--custom-domain", "127.0.0.1")
    cli.fails(Code.CONFLICT, "account", "customize", "--custom-domain", "TAKEN.example")
    cli.fails(Code.INVALID_ARGUMENT, "account", "customize")
    assert cli("account", "customize", "--logo", svg, "--no-logo").code == 2
    assert cli.ok("account", "show") == before
    assert not (cli.data / "branding").exists() or list((cli.data / "branding").iterdir()) == []


def test_each_domain_registers_its_own_verbs() -> None:
    parser = argparse.ArgumentParser(prog="t")
    verbs = parser.add_subparsers(dest="command", required=True)
    releases_cli.register(verbs)
    branding_cli.register(verbs)
    assert set(verbs.choices) == {"release", "account"}
    publish = parser.parse_args(["release", "publish", "a.bin", "--product", "prod_x", "--version", "1.0"])
    assert (publish.channel, publish.files, publish.json) == ("stable", ["a.bin"], False)
    show = parser.parse_args(["account", "show", "--json"])
    assert show.handler.__module__ == "offline_service.branding.cli" and show.json
