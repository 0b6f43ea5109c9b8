"""Releases: publishing is all or nothing, files are recorded with size and SHA-256, versions are
unique per product and channel, and who may download what; and the signed links."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, LicenseStatus, Product
from offline_service.releases import services as releases
from offline_service.releases.links import KEY_FILE, LinkSigner
from offline_service.releases.versions import parse_version
from offline_service.store import Store
from tests import db
from tests.factories import NOW, World


def src(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def root(world: World) -> Path:
    return world.settings().release_root


def publish(world: World, version: str, *files: Path, **kw: Any) -> releases.PublishedRelease:
    return releases.publish(
        world.store, world.account, root=root(world), product_id=world.product.id, version=version,
        files=files, now=NOW, **kw,
    )  # fmt: skip


def rows(store: Store) -> tuple[list[Any], list[Any]]:
    return db.rows(store, "SELECT * FROM releases"), db.rows(store, "SELECT * FROM release_files")


def on_disk(world: World) -> list[str]:
    base = root(world)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


def refused(code: Code, call: Any, *args: Any, **kw: Any) -> OfflineServiceError:
    with pytest.raises(OfflineServiceError) as info:
        call(*args, **kw)
    assert info.value.code is code, info.value
    return info.value


def test_publish_copies_the_files_and_records_size_and_sha256(world: World, tmp_path: Path) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)  # more than one copy chunk
    a, b = src(tmp_path, "app.bin", big), src(tmp_path, "README.txt", b"read me\n")
    published = publish(world, "2.0.0", a, b, notes="First.\r\nSecond line.", channel="beta")
    r = published.release
    assert (r.version, r.channel, r.notes, r.published_at) == ("2.0.0", "beta", "First.\nSecond line.", NOW)
    assert [(f.name, f.size, f.sha256) for f in published.files] == [
        ("app.bin", len(big), hashlib.sha256(big).hexdigest()),
        ("README.txt", 8, hashlib.sha256(b"read me\n").hexdigest()),
    ]
    for f in published.files:
        path = releases.file_path(root(world), f)
        assert path.parent == root(world) / world.product.id / r.id
        assert path.read_bytes() == (big if f.name == "app.bin" else b"read me\n")
        assert path.stat().st_mode & 0o777 == 0o600
    assert (root(world) / world.product.id).stat().st_mode & 0o777 == 0o700
    assert root(world).stat().st_mode & 0o777 == 0o700
    assert [p for p in on_disk(world) if p.startswith(".staging/")] == []
    listed = releases.list_releases(world.store, world.account)
    assert listed == [published] or [(x.release, set(x.files)) for x in listed] == [(r, set(published.files))]
    audit = db.rows(world.store, "SELECT action, detail FROM audit_log WHERE action = 'release.publish'")
    assert len(audit) == 1 and r.id in audit[0][1]


@pytest.mark.parametrize("again", ["2.0.0", "2.0", "2"])
def test_the_same_version_and_channel_twice_is_a_conflict(world: World, tmp_path: Path, again: str) -> None:
    publish(world, "2.0.0", src(tmp_path, "a.bin", b"a"))
    before = rows(world.store), on_disk(world)
    error = refused(Code.CONFLICT, publish, world, again, src(tmp_path, "b.bin", b"b"))
    assert "2.0.0" in error.message
    assert (rows(world.store), on_disk(world)) == before
    publish(world, again, src(tmp_path, "b.bin", b"b"), channel="beta")  # another channel is fine


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"version": "v2"}, Code.INVALID_ARGUMENT),
        ({"version": "2.0.0+build"}, Code.INVALID_ARGUMENT),
        ({"channel": "Beta"}, Code.INVALID_ARGUMENT),
        ({"channel": "a b"}, Code.INVALID_ARGUMENT),
        ({"notes": "bell \x07"}, Code.INVALID_ARGUMENT),
        ({"notes": "x" * (releases.MAX_NOTES + 1)}, Code.INVALID_ARGUMENT),
        ({"product_id": "prod_nope"}, Code.PRODUCT_NOT_FOUND),
    ],
)
def test_bad_arguments_publish_nothing(world: World, tmp_path: Path, kw: dict[str, Any], code: Code) -> None:
    args: dict[str, Any] = {
        "root": root(world), "product_id": world.product.id, "version": "1.0", "now": NOW,
        "files": [src(tmp_path, "a.bin", b"a")], **kw,
    }  # fmt: skip
    refused(code, releases.publish, world.store, world.account, **args)
    assert rows(world.store) == ([], []) and on_disk(world) == []


def test_bad_files_publish_nothing(world: World, tmp_path: Path) -> None:
    good = src(tmp_path, "good.bin", b"good")
    link = tmp_path / "src" / "link.bin"
    link.symlink_to(good)
    dangling = tmp_path / "src" / "dangling.bin"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "src" / "fifo"
    os.mkfifo(fifo)
    cases = [
        ([good, tmp_path / "src" / "missing.bin"], Code.NOT_FOUND, "does not exist"),
        ([good, link], Code.INVALID_ARGUMENT, "symbolic link"),
        ([dangling], Code.INVALID_ARGUMENT, "symbolic link"),
        ([good, tmp_path / "src"], Code.INVALID_ARGUMENT, "directory"),
        ([good, fifo], Code.INVALID_ARGUMENT, "not a regular file"),
        ([good, src(tmp_path, "other/good.bin", b"x")], Code.INVALID_ARGUMENT, "same name"),
        ([src(tmp_path, ".hidden", b"x")], Code.INVALID_ARGUMENT, "name"),
        ([], Code.INVALID_ARGUMENT, "files"),
        ([good] * (releases.MAX_FILES + 1), Code.INVALID_ARGUMENT, "files"),
    ]
    for files, code, words in cases:
        error = refused(code, publish, world, "1.0", *files)
        assert words in error.message, (files, error)
        assert (
            rows(world.store) == ([], [])
            and [p for p in on_disk(world) if not p.startswith(".staging")] == []
        )


def test_a_copy_that_fails_half_way_leaves_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = releases._write_all
    calls: list[int] = []

    def failing(fd: int, data: bytes) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(releases, "_write_all", failing)
    error = refused(
        Code.STORAGE_ERROR, publish, world, "1.0", src(tmp_path, "a", b"a"), src(tmp_path, "b", b"b")
    )
    assert "No space left" in error.message
    assert rows(world.store) == ([], []) and on_disk(world) == [".staging"]


def test_a_database_failure_after_copying_removes_the_copies(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offline_service.store.sql.releases import ReleasesSQL

    def broken(self: Any, release: Any, files: Any) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "disk I/O error")

    monkeypatch.setattr(ReleasesSQL, "insert_release", broken)
    refused(Code.STORAGE_ERROR, publish, world, "1.0", src(tmp_path, "a", b"a"))
    assert rows(world.store) == ([], [])
    # the rows come before the rename, so the files never left the staging directory
    assert [p for p in on_disk(world) if not p.startswith(".staging")] == []


def test_a_publish_sweeps_the_staging_left_by_a_killed_one_and_spares_a_running_one(
    world: World, tmp_path: Path
) -> None:
    base = root(world) / ".staging"
    dead, running, stray = base / "rel_dead", base / "rel_running", base / "stray-file"
    for d in (dead, running):
        d.mkdir(parents=True)
        (d / "part").write_bytes(b"x")
    stray.write_bytes(b"y")
    old = time.time() - releases.STALE_STAGING - 60
    for p in (dead / "part", dead, stray, running):  # the running one's directory is old too,
        os.utime(p, (old, old))  # but its file is being written
    publish(world, "1.0", src(tmp_path, "a", b"a"))
    assert not dead.exists() and not stray.exists()
    assert (running / "part").read_bytes() == b"x"
    assert releases.sweep_staging(root(world), now=time.time()) == 0


def test_list_is_newest_version_first_and_remove_unpublishes(world: World, tmp_path: Path) -> None:
    f = src(tmp_path, "a.bin", b"a")
    for version, channel in (
        ("1.0", "stable"),
        ("2.0.0-rc.1", "beta"),
        ("10.0", "stable"),
        ("2.0.0", "stable"),
    ):
        publish(world, version, f, channel=channel)
    listed = [
        (p.release.version, p.release.channel) for p in releases.list_releases(world.store, world.account)
    ]
    assert listed == [("10.0", "stable"), ("2.0.0", "stable"), ("2.0.0-rc.1", "beta"), ("1.0", "stable")]
    removed = releases.remove(
        world.store, world.account, root=root(world), product_id=world.product.id, version="2.0", now=NOW
    )
    assert removed.version == "2.0.0"
    assert not (root(world) / world.product.id / removed.id).exists()
    assert "2.0.0" not in [p.release.version for p in releases.list_releases(world.store, world.account)]
    refused(
        Code.NOT_FOUND, releases.remove, world.store, world.account, root=root(world),
        product_id=world.product.id, version="3.0", now=NOW,
    )  # fmt: skip


def test_remove_asks_for_the_channel_when_a_version_is_on_several(world: World, tmp_path: Path) -> None:
    f = src(tmp_path, "a.bin", b"a")
    publish(world, "1.0", f)
    publish(world, "1.0", f, channel="beta")
    kw = {"root": root(world), "product_id": world.product.id, "version": "1.0", "now": NOW}
    refused(Code.CONFLICT, releases.remove, world.store, world.account, **kw)
    assert releases.remove(world.store, world.account, channel="beta", **kw).channel == "beta"


def test_size_text() -> None:
    assert [releases.size_text(n) for n in (0, 1023, 1024, 10_240, 5 * 1024**3, 3 * 1024**4)] == [
        "0 bytes", "1023 bytes", "1.0 KiB", "10.0 KiB", "5.0 GiB", "3072.0 GiB",
    ]  # fmt: skip


# -- entitlement -----------------------------------------------------------------------------------


def lic(product: str, max_version: str | None = None, **kw: Any) -> License:
    return License(
        id=f"lic_{product}_{max_version}", account_id="acc", product_id=product, key="K",
        allowed_activations=1, allowed_deactivations=1, status=kw.pop("status", LicenseStatus.ACTIVE),
        created_at=0, max_version=max_version, **kw,
    )  # fmt: skip


def test_entitlement_is_the_highest_maximum_per_product() -> None:
    rights = releases.entitlement(
        [
            lic("a", "1.5"),
            lic("a", "1.10"),
            lic("b", "3.0"),
            lic("b", None),
            lic("c", "9.0", status=LicenseStatus.SUSPENDED),
            lic("d", "9.0", status=LicenseStatus.REVOKED),
            lic("e", None, expires_at=NOW),
            lic("f", None, expires_at=NOW + 1),
        ],
        NOW,
    )
    assert rights == {"a": parse_version("1.10"), "b": None, "f": None}


@given(st.lists(st.sampled_from(["1", "1.5", "2.0.0-beta", "2.0", "10", None]), min_size=1, max_size=5))
def test_a_license_without_maximum_allows_everything(maxima: list[str | None]) -> None:
    rights = releases.entitlement([lic("a", m) for m in maxima], NOW)
    if None in maxima:
        assert rights == {"a": None}
    else:
        assert rights == {"a": max(parse_version(m) for m in maxima if m is not None)}


def test_offer_and_entitled_file(world: World, tmp_path: Path) -> None:
    account: Account = world.account
    other: Product = admin.create_product(world.store, world.keyring, account, name="Other", now=NOW)
    f = src(tmp_path, "a.bin", b"a")
    one, two = publish(world, "1.0", f), publish(world, "2.0", f)
    releases.publish(
        world.store, account, root=root(world), product_id=other.id, version="1", files=[f], now=NOW
    )
    capped = admin.create_license(
        world.store, account, product_id=world.product.id, allowed_activations=1, allowed_deactivations=1,
        now=NOW, max_version="1.9",
    )  # fmt: skip
    offers = releases.offer(world.store, account.id, {capped.id, "lic_nope"}, now=NOW)
    assert [(o.product.id, [p.release.version for p in o.releases]) for o in offers] == [
        (world.product.id, ["1.0"])
    ]
    assert (
        releases.entitled_file(world.store, account.id, {capped.id}, one.files[0].id, now=NOW)[1]
        == one.files[0]
    )
    for file_id in (two.files[0].id, "file_nope"):
        refused(
            Code.NOT_FOUND, releases.entitled_file, world.store, account.id, {capped.id}, file_id, now=NOW
        )
    # Another account's id for the same file finds nothing.
    elsewhere = admin.ensure_account(world.store, "elsewhere", now=NOW)[0]
    refused(
        Code.NOT_FOUND,
        releases.entitled_file,
        world.store,
        elsewhere.id,
        {capped.id},
        one.files[0].id,
        now=NOW,
    )
    assert releases.offer(world.store, account.id, set(), now=NOW) == []


def test_a_file_on_disk_must_have_its_recorded_size(world: World, tmp_path: Path) -> None:
    f = publish(world, "1.0", src(tmp_path, "a.bin", b"abc")).files[0]
    path = releases.file_on_disk(root(world), f)
    assert path.read_bytes() == b"abc"
    path.write_bytes(b"abcd")
    refused(Code.STORAGE_ERROR, releases.file_on_disk, root(world), f)
    path.unlink()
    refused(Code.STORAGE_ERROR, releases.file_on_disk, root(world), f)


def test_record_download_audits_in_the_account_with_its_product(world: World) -> None:
    detail = {"release": "rel_1", "product": world.product.id}
    releases.record_download(
        world.store, actor="user:usr_1", account_id=world.account.id, file_id="file_1", code="OK",
        detail=detail, now=NOW,
    )  # fmt: skip
    assert detail == {"release": "rel_1", "product": world.product.id}  # the caller's dict is kept
    with world.store.read() as tx:
        entry = tx.audit_entries(world.account.id)[0]
    assert (entry.action, entry.code, entry.actor, entry.at) == ("release.download", "OK", "user:usr_1", NOW)
    assert entry.product_id == world.product.id and entry.detail == {"file": "file_1", "release": "rel_1"}


# -- signed links ----------------------------------------------------------------------------------


def test_a_link_verifies_for_its_person_file_and_time(tmp_path: Path) -> None:
    signer = LinkSigner.from_data_dir(tmp_path)
    sig = signer.sign("usr_1", "file_1", NOW + 60)
    signer.verify("usr_1", "file_1", str(NOW + 60), sig, now=NOW)
    for person, file_id, exp, s in (
        ("usr_2", "file_1", str(NOW + 60), sig),
        ("usr_1", "file_2", str(NOW + 60), sig),
        ("usr_1", "file_1", str(NOW + 61), sig),
        ("usr_1", "file_1", f"0{NOW + 60}", sig),
        ("usr_1", "file_1", f"{NOW + 60}.0", sig),
        ("usr_1", "file_1", str(NOW + 60), sig[:-1]),
        ("usr_1", "file_1", str(NOW + 60), ""),
    ):
        refused(Code.LINK_INVALID, signer.verify, person, file_id, exp, s, now=NOW)
    error = refused(Code.LINK_EXPIRED, signer.verify, "usr_1", "file_1", str(NOW + 60), sig, now=NOW + 60)
    assert "expired" in error.message
    # Another service's secret makes other links.
    refused(
        Code.LINK_INVALID, LinkSigner(b"\x01" * 32).verify, "usr_1", "file_1", str(NOW + 60), sig, now=NOW
    )


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=42))
def test_any_changed_signature_is_invalid(junk: bytes, where: int) -> None:
    signer = LinkSigner(b"\x07" * 32)
    sig = signer.sign("usr_1", "file_1", NOW + 60)
    changed = sig[:where] + junk.hex()[: len(junk)] + sig[where + 1 :]
    if changed != sig:
        refused(Code.LINK_INVALID, signer.verify, "usr_1", "file_1", str(NOW + 60), changed, now=NOW)


def test_the_secret_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = LinkSigner.from_data_dir(tmp_path)
    path = tmp_path / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_bytes()) == 32
    again = LinkSigner.from_data_dir(tmp_path)
    assert first.sign("u", "f", 1) == again.sign("u", "f", 1)
    assert path.read_bytes() not in repr(first).encode() and "secret" in repr(first)
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_a_secret_others_may_read_or_a_damaged_one_is_refused(tmp_path: Path) -> None:
    LinkSigner.from_data_dir(tmp_path)
    path = tmp_path / KEY_FILE
    path.chmod(0o644)
    refused(Code.INSECURE_KEY_FILE, LinkSigner.from_data_dir, tmp_path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    refused(Code.STORAGE_ERROR, LinkSigner.from_data_dir, tmp_path)


def test_signer_arguments() -> None:
    with pytest.raises(TypeError):
        LinkSigner("x" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        LinkSigner(b"short")
