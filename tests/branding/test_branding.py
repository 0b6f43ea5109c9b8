"""Customization per account: checks of colours, names, domains and logos, readable colours, and
that a refused change changes nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.accounts.models import Account
from offline_service.branding import services as branding
from offline_service.branding.services import (
    MAX_LOGO_BYTES,
    check_color,
    check_domain,
    check_portal_name,
    contrast,
    image_info,
    theme,
    theme_css,
)
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from tests import db
from tests.factories import NOW, database_for
from tests.images import jpeg_header, png, webp_header


def refused(code: Code, call: object, *args: object, **kw: object) -> OfflineServiceError:
    with pytest.raises(OfflineServiceError) as info:
        call(*args, **kw)  # type: ignore[operator]
    assert info.value.code is code, info.value
    return info.value


@pytest.mark.parametrize(("given", "expected"), [("#0B5CAD", "#0b5cad"), (" #ffffff ", "#ffffff")])
def test_colours_are_hex(given: str, expected: str) -> None:
    assert check_color(given) == expected


@pytest.mark.parametrize("bad", ["red", "#fff", "0b5cad", "#0b5cadff", "#gggggg", "", "#0b5cad;}"])
def test_other_colours_are_refused(bad: str) -> None:
    refused(Code.INVALID_ARGUMENT, check_color, bad)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("portal.customer.example", "portal.customer.example"),
        ("Portal.Customer.Example.", "portal.customer.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
    ],
)
def test_domains_are_ascii_lower_case(given: str, expected: str) -> None:
    assert check_domain(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["localhost", "127.0.0.1", "portal.example:443", "https://portal.example", "portal.example/x",
     "-a.example", "a-.example", "a_b.example", "a..example", "", ".", ("a" * 64) + ".example",
     ".".join(["abcdefghi"] * 30), "portal example.com"],
)  # fmt: skip
def test_other_domains_are_refused(bad: str) -> None:
    refused(Code.INVALID_ARGUMENT, check_domain, bad)


def test_portal_names() -> None:
    assert check_portal_name("  Acme   Downloads ") == "Acme Downloads"
    for bad in ("", "   ", "x" * 81, "a\x00b"):
        refused(Code.INVALID_ARGUMENT, check_portal_name, bad)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(40, 20), ("image/png", 40, 20)),
        (jpeg_header(640, 480), ("image/jpeg", 640, 480)),
        (webp_header(300, 100), ("image/webp", 300, 100)),
        (webp_header(300, 100, b"VP8L"), ("image/webp", 300, 100)),
        (webp_header(300, 100, b"VP8 "), ("image/webp", 300, 100)),
        (png(2048, 1), ("image/png", 2048, 1)),
    ],
)
def test_logo_types_are_told_by_their_first_bytes(data: bytes, expected: tuple[str, int, int]) -> None:
    assert image_info(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"GIF89a\x01\x00\x01\x00",
        b"",
        b"\x89PNG\r\n\x1a\n",  # cut short
        png(2049, 1),
        png(1, 4000),
        png(0, 1),
        jpeg_header(5000, 10),
        b"\xff\xd8\xff\xd9",  # a JPEG without a frame
        webp_header(1, 1)[:20],
        b"RIFF\x00\x00\x00\x00WEBPVP9 ",
        png(10, 10) + b"\x00" * MAX_LOGO_BYTES,
    ],
)
def test_other_images_and_files_are_refused(data: bytes) -> None:
    refused(Code.BAD_IMAGE, image_info, data)


@given(st.from_regex(r"\A#[0-9a-f]{6}\Z"))
def test_the_theme_is_readable_whatever_the_colour(color: str) -> None:
    t = theme(color)
    assert t.brand == color
    assert contrast(t.accent, "#ffffff") >= 4.5  # links on the white page
    assert contrast(t.accent, t.accent_ink) >= 4.5  # button text
    css = theme_css(color)
    assert "{" in css and "<" not in css and "url(" not in css


def test_a_dark_enough_colour_is_kept_as_it_is() -> None:
    t = theme("#0b5cad")
    assert (t.brand, t.accent, t.accent_ink) == ("#0b5cad", "#0b5cad", "#ffffff")
    assert theme("#ffcc00").accent_ink == "#ffffff" and theme("#ffcc00").accent != "#ffcc00"
    assert theme("#000000").accent_ink == "#ffffff" and theme("#ffffff").accent_ink == "#ffffff"


# -- customize -------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, backend: str) -> Iterator[Store]:
    opened = open_store(Settings(data_dir=tmp_path / "data", database_url=database_for(tmp_path, backend)))
    yield opened
    opened.close()


@pytest.fixture
def account(store: Store) -> Account:
    return admin.ensure_account(store, "acme", now=NOW)[0]


def state(store: Store, data: Path) -> tuple[object, list[str]]:
    rows = db.rows(store, "SELECT * FROM account_branding ORDER BY account_id")
    files = sorted(os.listdir(data / "branding")) if (data / "branding").is_dir() else []
    return rows, files


def test_customize_sets_keeps_and_removes(store: Store, account: Account, tmp_path: Path) -> None:
    data, logo = tmp_path / "data", tmp_path / "logo.png"
    logo.write_bytes(png())
    first = branding.customize(store, account, data_dir=data, now=NOW, portal_name="Acme", logo=logo)
    assert (first.portal_name, first.accent_color, first.logo_type) == ("Acme", None, "image/png")
    path = branding.logo_path(data, first)
    assert path is not None and path.read_bytes() == png() and path.stat().st_mode & 0o777 == 0o600
    second = branding.customize(store, account, data_dir=data, now=NOW + 1, accent_color="#123456")
    assert (second.portal_name, second.accent_color, second.logo_file) == ("Acme", "#123456", first.logo_file)
    # A new logo replaces the file; the old one is deleted.
    logo.write_bytes(png(8, 8))
    third = branding.customize(store, account, data_dir=data, now=NOW + 2, logo=logo, portal_name=None)
    assert third.portal_name is None and third.logo_file != first.logo_file and not path.exists()
    assert state(store, data)[1] == [third.logo_file]
    entries = [e for e in store_audit(store, account) if e.action == "account.customize"]
    assert len(entries) == 3 and entries[0].detail == {
        "portalName": "changed",
        "accentColor": "kept",
        "logo": "changed",
        "customDomain": "kept",
    }


def store_audit(store: Store, account: Account) -> list[object]:
    with store.read() as tx:
        return list(tx.audit_entries(account.id))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"logo": "svg"}, Code.BAD_IMAGE),
        ({"logo": "big"}, Code.BAD_IMAGE),
        ({"logo": "dir"}, Code.BAD_IMAGE),
        ({"logo": "missing"}, Code.NOT_FOUND),
        ({"accent_color": "blue"}, Code.INVALID_ARGUMENT),
        ({"custom_domain": "10.0.0.1"}, Code.INVALID_ARGUMENT),
        ({"custom_domain": "taken.example"}, Code.CONFLICT),
        ({"portal_name": ""}, Code.INVALID_ARGUMENT),
    ],
)
def test_a_refused_change_changes_nothing(
    store: Store, account: Account, tmp_path: Path, change: dict[str, str], code: Code
) -> None:
    data = tmp_path / "data"
    good = tmp_path / "good.png"
    good.write_bytes(png())
    other = admin.ensure_account(store, "other", now=NOW)[0]
    branding.customize(store, other, data_dir=data, now=NOW, custom_domain="taken.example")
    branding.customize(
        store, account, data_dir=data, now=NOW, logo=good, portal_name="Acme", accent_color="#123456"
    )
    (tmp_path / "svg").write_bytes(b"<svg/>")
    (tmp_path / "big").write_bytes(png() + b"\x00" * MAX_LOGO_BYTES)
    (tmp_path / "dir").mkdir()
    before = state(store, data)
    args = {
        k: (tmp_path / v if k == "logo" else v)  # type: ignore[operator]
        for k, v in change.items()
    }
    refused(code, branding.customize, store, account, data_dir=data, now=NOW + 5, **args)
    assert state(store, data) == before


def test_the_same_domain_again_is_fine_for_the_same_account(
    store: Store, account: Account, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    branding.customize(store, account, data_dir=data, now=NOW, custom_domain="portal.acme.example")
    again = branding.customize(store, account, data_dir=data, now=NOW, custom_domain="PORTAL.acme.example")
    assert again.custom_domain == "portal.acme.example"
    with store.read() as tx:
        found = tx.branding_by_domain("portal.acme.example")
    assert found is not None and found.account_id == account.id


def test_a_logo_path_is_never_taken_from_a_damaged_row(tmp_path: Path) -> None:
    from offline_service.branding.models import Branding

    for name in ("../../etc/passwd", "x.png", "acc_1-" + "0" * 64 + ".svg"):
        assert (
            branding.logo_path(tmp_path, Branding(account_id="acc_1", updated_at=0, logo_file=name)) is None
        )


def test_the_page_account_is_the_session_s_then_the_host_s_then_the_named_one(
    store: Store, account: Account, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    other = admin.ensure_account(store, "other", now=NOW)[0]
    branding.customize(store, other, data_dir=data, now=NOW, custom_domain="portal.other.example")

    def found(**kw: str | None) -> tuple[str, str] | None:
        args: dict[str, str | None] = {"account_id": None, "host": None, "alias": None, **kw}
        page = branding.page_account(store, **args)
        return None if page is None else (page[0].alias, page[2])

    assert found(account_id=account.id, host="portal.other.example") == ("acme", "session")
    assert found(host="portal.other.example", alias="acme") == ("other", "host")
    assert found(host="unknown.example", alias="acme") == ("acme", "query")
    assert found(host="unknown.example", alias="nobody") is None
    assert found() is None
    page = branding.page_account(store, account_id=None, host="portal.other.example", alias=None)
    assert page is not None and page[1] == branding.branding_of(store, other.id)
    assert branding.branding_of(store, account.id) is None


def test_the_logo_version_is_its_hash(store: Store, account: Account, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    found = branding.customize(store, account, data_dir=tmp_path / "data", now=NOW, logo=logo)
    assert branding.logo_version(found) == hashlib.sha256(png()).hexdigest()[:16]
