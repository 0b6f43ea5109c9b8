"""Releases: the vendor publishes a product's versions with their files, and a person may download
those of the products they hold a license for, up to the license's maximum version.

Files live under the releases directory (``<data>/releases`` unless configured), one directory per
release: ``<product id>/<release id>/<file id>``. Publishing writes every file into the release's
staging directory first (``<releases>/.staging/<release id>``, each file fsynced: copied from disk by
the CLI, streamed from an upload by the admin API), then, in one write transaction, records the
release and moves the finished directory into place with one rename: a failed publish leaves
nothing behind (``Staging.discard``), neither a file nor a row.

Shared by the CLI and the web layer; nothing here knows about HTTP.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from offline_service import audit
from offline_service._files import fsync_dir
from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.ids import new_id
from offline_service.licensing import queries
from offline_service.licensing.models import License, LicenseStatus, Product
from offline_service.notifications import events
from offline_service.releases.models import Release, ReleaseFile
from offline_service.releases.versions import Version, parse_version
from offline_service.store import Store, Transaction

__all__ = [
    "CHANNEL_PATTERN",
    "DEFAULT_CHANNEL",
    "MAX_FILES",
    "MAX_NAME",
    "MAX_NOTES",
    "STALE_STAGING",
    "Entitlement",
    "Offer",
    "PublishedRelease",
    "StagedFile",
    "Staging",
    "check_channel",
    "check_file_name",
    "check_files",
    "entitled_file",
    "entitlement",
    "file_on_disk",
    "file_path",
    "list_releases",
    "new_release",
    "offer",
    "publish",
    "publish_in",
    "read_chunks",
    "record_download",
    "release",
    "release_page",
    "remove",
    "remove_release",
    "size_text",
    "sweep_staging",
]

DEFAULT_CHANNEL = "stable"
MAX_FILES = 64
MAX_NOTES = 20_000
MAX_NAME = 200
CHUNK = 1024 * 1024
CHANNEL_PATTERN = "^[a-z][a-z0-9-]{0,31}$"
_CHANNEL = re.compile(CHANNEL_PATTERN.strip("^$"))
_STAGING = ".staging"


@dataclass(frozen=True, slots=True)
class PublishedRelease:
    release: Release
    files: tuple[ReleaseFile, ...]

    @property
    def version(self) -> Version:
        return parse_version(self.release.version)


def size_text(n: int) -> str:
    """A file size for people: bytes, KiB, MiB or GiB."""
    if n < 1024:
        return f"{n} bytes"
    scaled, units = n / 1024, ["KiB", "MiB", "GiB"]
    while scaled >= 1024 and len(units) > 1:
        scaled /= 1024
        units.pop(0)
    return f"{scaled:.1f} {units[0]}"


def check_channel(channel: str) -> str:
    if not _CHANNEL.fullmatch(channel):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            "a channel is 1-32 lower-case letters, digits or hyphens, starting with a letter (stable, beta)",
        )
    return channel


def _check_notes(notes: str) -> str:
    notes = notes.replace("\r\n", "\n").strip()
    if len(notes) > MAX_NOTES:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"release notes are at most {MAX_NOTES} characters")
    if any((ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F for c in notes):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, "release notes are plain text without control characters"
        )
    return notes


def check_file_name(name: str, shown: str | None = None) -> str:
    """A published file's name: 1-MAX_NAME printable characters, no path separator (``/`` or
    ``\\``), not starting with ``.`` (so neither ``..`` nor a hidden file). ``shown`` names it in
    the error (the CLI's path)."""
    if (
        not name
        or len(name) > MAX_NAME
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    ):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            f"{(shown or name)[:300]!r}: a file's name must be 1-{MAX_NAME} printable characters,"
            " without '/' or '\\\\', not starting with '.'",
        )
    return name


def check_files(names: Sequence[str]) -> None:
    """A release's file names: 1-MAX_FILES of them, each one a valid name, no two the same."""
    if not 0 < len(names) <= MAX_FILES:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"a release has 1-{MAX_FILES} files")
    if len(set(names)) != len(names):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "two files of a release cannot have the same name")


def _open_source(path: Path) -> int:
    """An open descriptor of a regular file; symbolic links, directories and devices are refused."""
    try:
        # O_NOFOLLOW: a link is refused, not followed; O_NONBLOCK: a FIFO cannot hang the command.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OfflineServiceError(Code.NOT_FOUND, f"file {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OfflineServiceError(
                Code.INVALID_ARGUMENT, f"{path} is a symbolic link; publish the file it points to"
            ) from None
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{path} is {what}; publish regular files only")
    return fd


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file written into a release's staging directory, with what it was checked to be."""

    id: str
    name: str
    size: int
    sha256: str  # hex


class StagedWriter:
    """One file of a release being written in its staging directory, chunk by chunk, hashed as it
    goes; ``finish`` fsyncs it. Blocking I/O: call it in a thread from async code."""

    def __init__(self, staging: Staging, name: str) -> None:
        self.name = name
        self.id = new_id("file")
        self.size = 0
        self._digest = hashlib.sha256()
        self._fd = staging.create(self.id)

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        try:
            _write_all(self._fd, chunk)
        except OSError as exc:
            raise _storage(exc) from None

    def finish(self) -> StagedFile:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _storage(exc) from None
        finally:
            self.close()
        return StagedFile(id=self.id, name=self.name, size=self.size, sha256=self._digest.hexdigest())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _storage(exc: OSError) -> OfflineServiceError:
    return OfflineServiceError(
        Code.STORAGE_ERROR, f"cannot write the release into the releases directory: {exc.strerror or exc}"
    )


STALE_STAGING = 24 * 3600  # a staging directory untouched this long is a publish that died


def sweep_staging(root: Path, *, now: float) -> int:
    """Remove the staging directories of publishes that ended without cleaning up (the process was
    killed mid-upload): those in which nothing was written for STALE_STAGING seconds, measured on
    the directory and its files, so that a long upload by another process or instance, still
    writing, is left alone. How many were removed. Each publish sweeps before it stages."""
    removed = 0
    try:
        entries = list(os.scandir(root / _STAGING))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            newest = entry.stat(follow_symlinks=False).st_mtime
            if entry.is_dir(follow_symlinks=False):
                for inner in os.scandir(entry.path):
                    newest = max(newest, inner.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:  # removed meanwhile: its publish ended
            continue
        if now - newest >= STALE_STAGING:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            removed += 1
    return removed


class Staging:
    """A release's files while they are written: ``<root>/.staging/<release id>``, private to the
    service. ``publish_in`` moves it into place; ``discard`` removes it (and what was moved, when
    the transaction that recorded it failed)."""

    def __init__(self, root: Path, release_id: str, *, now: float | None = None) -> None:
        self.root = root
        self.path = root / _STAGING / release_id
        self.target: Path | None = None  # where move_into_place moved it, once it has
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.parent.mkdir(exist_ok=True, mode=0o700)
            sweep_staging(root, now=time.time() if now is None else now)
            self.path.mkdir(mode=0o700)
        except OSError as exc:
            raise _storage(exc) from None

    def create(self, file_id: str) -> int:
        """A new, empty, private file of the staging directory, open for writing."""
        try:
            return os.open(self.path / file_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _storage(exc) from None

    def copy(self, source: int, name: str) -> StagedFile:
        """Copy an open file into the staging directory, in chunks."""
        writer = StagedWriter(self, name)
        try:
            while chunk := os.read(source, CHUNK):
                writer.write(chunk)
            return writer.finish()
        except BaseException:
            writer.close()
            raise

    def move_into_place(self, product_id: str, release_id: str) -> None:
        """One rename, to the directory of the release as recorded (``release_id``): it appears
        whole, or not at all."""
        target = self.root / product_id / release_id
        try:
            fsync_dir(self.path)
            target.parent.mkdir(exist_ok=True, mode=0o700)
            os.rename(self.path, target)
            self.target = target
            fsync_dir(target.parent)
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise _storage(exc) from None

    def discard(self) -> None:
        """Remove what was staged, and the moved directory too when ``publish_in`` moved it (call
        this only when its transaction did not commit)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self.target is not None:
            shutil.rmtree(self.target, ignore_errors=True)


def _same(releases: Iterable[Release], version: Version, channel: str) -> list[Release]:
    return [r for r in releases if r.channel == channel and parse_version(r.version) == version]


def _refuse_duplicate(releases: Iterable[Release], version: Version, channel: str) -> None:
    for r in _same(releases, version, channel):
        same = "" if r.version == version.text else f" (the same version as {version.text})"
        raise OfflineServiceError(
            Code.CONFLICT, f"{r.product_id} already has version {r.version}{same} on the {channel} channel"
        )


def new_release(
    account: Account,
    *,
    product_id: str,
    version: str,
    now: int,
    channel: str = DEFAULT_CHANNEL,
    notes: str = "",
) -> Release:
    """A release to publish, its version, channel and notes checked (not yet recorded; ``publish_in``
    records it under an id made in its transaction)."""
    parse_version(version)
    check_channel(channel)
    return Release(
        id=new_id("rel"),
        account_id=account.id,
        product_id=product_id,
        version=version,
        channel=channel,
        notes=_check_notes(notes),
        published_at=now,
    )


def publish_in(
    tx: Transaction, staging: Staging, release: Release, files: Sequence[StagedFile], *, actor: str
) -> PublishedRelease:
    """Record ``release`` with its staged ``files`` and move them into place, in the write
    transaction ``tx``: PRODUCT_NOT_FOUND, or CONFLICT if the product already has this version on
    this channel. The rename is the last step; if the transaction then fails to commit, the caller
    calls ``staging.discard()``.

    The release is recorded under an id made here, in the write transaction, not under the one its
    staging began with (an upload may stream for minutes): ids then follow the order releases are
    recorded in, so a list paged by id (``release_page``) never skips one published meanwhile."""
    release = replace(release, id=new_id("rel"))
    if tx.product(release.account_id, release.product_id) is None:
        raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, f"no product {release.product_id} in this account")
    check_files([f.name for f in files])
    _refuse_duplicate(
        tx.releases(release.account_id, release.product_id), parse_version(release.version), release.channel
    )
    recorded = tuple(
        ReleaseFile(
            id=f.id,
            release_id=release.id,
            name=f.name,
            size=f.size,
            sha256=f.sha256,
            path=f"{release.product_id}/{release.id}/{f.id}",
        )
        for f in files
    )
    tx.insert_release(release, recorded)
    # Mailed after commit (notifications.outbox); queued here so a mail is never lost.
    events.new_release(
        tx,
        account_id=release.account_id,
        product_id=release.product_id,
        release_id=release.id,
        version=release.version,
        now=release.published_at,
    )
    audit.record(
        tx,
        account_id=release.account_id,
        actor=actor,
        action="release.publish",
        now=release.published_at,
        product_id=release.product_id,
        **{"release": release.id, "version": release.version, "channel": release.channel},
    )
    staging.move_into_place(release.product_id, release.id)
    return PublishedRelease(release=release, files=recorded)


def publish(
    store: Store,
    account: Account,
    *,
    root: Path,
    product_id: str,
    version: str,
    files: Sequence[str | os.PathLike[str]],
    now: int,
    channel: str = DEFAULT_CHANNEL,
    notes: str = "",
    actor: str = "cli",
) -> PublishedRelease:
    """Copy ``files`` into the releases directory and record the release. All or nothing: CONFLICT if
    the product already has this version on this channel; nothing is kept when any file fails."""
    release = new_release(
        account, product_id=product_id, version=version, channel=channel, notes=notes, now=now
    )
    paths = [Path(f) for f in files]
    check_files([p.name for p in paths])
    names = [check_file_name(p.name, str(p)) for p in paths]
    queries.check_product(store, account, product_id)
    with store.read() as tx:
        _refuse_duplicate(tx.releases(account.id, product_id), parse_version(version), channel)
    sources: list[int] = []
    try:
        for path in paths:  # every file is checked before anything is copied
            sources.append(_open_source(path))
        staging = Staging(root, release.id)
        try:
            staged = [staging.copy(fd, name) for fd, name in zip(sources, names, strict=True)]
            with store.write() as tx:
                return publish_in(tx, staging, release, staged, actor=actor)
        except BaseException:
            staging.discard()
            raise
    finally:
        for fd in sources:
            os.close(fd)


def _newest_first(found: Iterable[PublishedRelease]) -> list[PublishedRelease]:
    """Newest version first; one version on several channels in channel order."""
    by_channel = sorted(found, key=lambda p: (p.release.channel, -p.release.published_at))
    return sorted(by_channel, key=lambda p: p.version, reverse=True)


def _with_files(releases: Sequence[Release], files: Sequence[ReleaseFile]) -> list[PublishedRelease]:
    by_release: dict[str, list[ReleaseFile]] = {}
    for f in files:
        by_release.setdefault(f.release_id, []).append(f)
    return _newest_first(PublishedRelease(r, tuple(by_release.get(r.id, ()))) for r in releases)


def list_releases(store: Store, account: Account, product_id: str | None = None) -> list[PublishedRelease]:
    """The account's releases (of one product), newest version first."""
    if product_id is not None:
        queries.check_product(store, account, product_id)
    with store.read() as tx:
        releases = tx.releases(account.id, product_id)
        files = tx.release_files([r.id for r in releases])
    return _with_files(releases, files)


def release_page(
    store: Store,
    account: Account,
    *,
    product_id: str | None = None,
    channel: str | None = None,
    after: str | None = None,
    limit: int,
) -> tuple[list[PublishedRelease], str | None]:
    """One page of the account's releases (of one product, on one channel) by id, oldest published
    first, after the release ``after``, and the id to ask the next page after (None on the last
    page). Ids grow with time (``ids.new_id``): releases published meanwhile come on later pages
    and shift no page. PRODUCT_NOT_FOUND for a product not of this account."""
    if product_id is not None:
        queries.check_product(store, account, product_id)
    with store.read() as tx:
        found = list(
            tx.releases_page(account.id, product_id=product_id, channel=channel, after=after, limit=limit + 1)
        )
        page = found[:limit]
        files = tx.release_files([r.id for r in page])
    by_release: dict[str, list[ReleaseFile]] = {}
    for f in files:
        by_release.setdefault(f.release_id, []).append(f)
    listed = [PublishedRelease(r, tuple(by_release.get(r.id, ()))) for r in page]
    return listed, page[-1].id if len(found) > limit else None


def release(store: Store, account: Account, release_id: str) -> PublishedRelease:
    """The account's release with this id and its files; another account's id is NOT_FOUND, as a
    missing one."""
    with store.read() as tx:
        found = tx.release(account.id, release_id)
        files = tx.release_files([release_id]) if found is not None else ()
    if found is None:
        raise OfflineServiceError(Code.NOT_FOUND, f"no release {release_id} in this account")
    return PublishedRelease(found, tuple(files))


def _unpublish(
    store: Store,
    account: Account,
    root: Path,
    pick: Callable[[Transaction], Release],
    *,
    now: int,
    actor: str,
) -> Release:
    """Unpublish the release ``pick`` finds in the write transaction: its rows go first (no link can
    reach it), then its files."""
    with store.write() as tx:
        release = pick(tx)
        tx.delete_release(release.id)
        audit.record(
            tx,
            account_id=account.id,
            actor=actor,
            action="release.remove",
            now=now,
            product_id=release.product_id,
            **{"release": release.id, "version": release.version, "channel": release.channel},
        )
    shutil.rmtree(root / release.product_id / release.id, ignore_errors=True)
    return release


def remove(
    store: Store,
    account: Account,
    *,
    root: Path,
    product_id: str,
    version: str,
    now: int,
    channel: str | None = None,
    actor: str = "cli",
) -> Release:
    """Unpublish a product's release by its version (and channel, when it is on several)."""
    parsed = parse_version(version)
    queries.check_product(store, account, product_id)

    def pick(tx: Transaction) -> Release:
        found = [
            r
            for r in tx.releases(account.id, product_id)
            if parse_version(r.version) == parsed and (channel is None or r.channel == channel)
        ]
        if not found:
            raise OfflineServiceError(Code.NOT_FOUND, f"{product_id} has no release {version}")
        if len(found) > 1:
            channels = ", ".join(sorted(r.channel for r in found))
            raise OfflineServiceError(
                Code.CONFLICT, f"version {version} is on several channels ({channels}); give --channel"
            )
        return found[0]

    return _unpublish(store, account, root, pick, now=now, actor=actor)


def remove_release(
    store: Store, account: Account, *, root: Path, release_id: str, now: int, actor: str = "cli"
) -> Release:
    """Unpublish a release by its id; another account's id is NOT_FOUND, as a missing one."""

    def pick(tx: Transaction) -> Release:
        found = tx.release(account.id, release_id)
        if found is None:
            raise OfflineServiceError(Code.NOT_FOUND, f"no release {release_id} in this account")
        return found

    return _unpublish(store, account, root, pick, now=now, actor=actor)


# -- who may download what -----------------------------------------------------------------------

# Per product: the highest maximum version a person's licenses allow, or None for every version.
Entitlement = dict[str, Version | None]


def _entitles(license: License, now: int) -> bool:
    """Only a license in force entitles to downloads: not suspended, revoked or expired."""
    return license.status is LicenseStatus.ACTIVE and (license.expires_at is None or license.expires_at > now)


def entitlement(licenses: Iterable[License], now: int) -> Entitlement:
    """What ``licenses`` (those a person may see) entitle to, per product."""
    found: Entitlement = {}
    for lic in licenses:
        if not _entitles(lic, now):
            continue
        limit = parse_version(lic.max_version) if lic.max_version is not None else None
        if lic.product_id not in found:
            found[lic.product_id] = limit
        else:
            current = found[lic.product_id]
            found[lic.product_id] = None if current is None or limit is None else max(current, limit)
    return found


def _allowed(release: Release, rights: Entitlement) -> bool:
    if release.product_id not in rights:
        return False
    limit = rights[release.product_id]
    return limit is None or parse_version(release.version) <= limit


@dataclass(frozen=True, slots=True)
class Offer:
    """The releases one product offers a person, newest first."""

    product: Product
    releases: list[PublishedRelease]


def _licenses(store: Store, account_id: str, license_ids: Iterable[str]) -> list[License]:
    with store.read() as tx:
        found = [tx.license_by_id(account_id, i) for i in sorted(license_ids)]
    return [x for x in found if x is not None and x.account_id == account_id]


def offer(store: Store, account_id: str, license_ids: Iterable[str], *, now: int) -> list[Offer]:
    """What a person whose visible licenses are ``license_ids`` may download, by product name."""
    rights = entitlement(_licenses(store, account_id, license_ids), now)
    if not rights:
        return []
    with store.read() as tx:
        products = {p.id: p for p in tx.products(account_id) if p.id in rights}
        releases = [r for r in tx.releases(account_id) if r.product_id in products and _allowed(r, rights)]
        files = tx.release_files([r.id for r in releases])
    grouped: dict[str, list[PublishedRelease]] = {}
    for published in _with_files(releases, files):
        grouped.setdefault(published.release.product_id, []).append(published)
    return [
        Offer(product=products[pid], releases=grouped[pid])
        for pid in sorted(grouped, key=lambda pid: (products[pid].name.casefold(), pid))
    ]


def entitled_file(
    store: Store, account_id: str, license_ids: Iterable[str], file_id: str, *, now: int
) -> tuple[Release, ReleaseFile]:
    """A file the person may download now, or NOT_FOUND (whether it exists is not confirmed)."""
    with store.read() as tx:
        found = tx.release_file(account_id, file_id)
    if found is None or not _allowed(found[0], entitlement(_licenses(store, account_id, license_ids), now)):
        raise OfflineServiceError(Code.NOT_FOUND, "no such file, or your licenses do not include it")
    return found


def file_on_disk(root: Path, f: ReleaseFile) -> Path:
    """Where a recorded file is, once it is there with its recorded size; STORAGE_ERROR if not."""
    path = file_path(root, f)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1
    if size != f.size:
        raise OfflineServiceError(Code.STORAGE_ERROR, "the release file is missing or damaged on the server")
    return path


def record_download(
    store: Store, *, actor: str, account_id: str, file_id: str, code: str, detail: dict[str, str], now: int
) -> None:
    """Audit one download (``code`` OK) or refused download; ``detail["product"]`` names the product."""
    detail = dict(detail)
    with store.write() as tx:
        audit.record(
            tx,
            account_id=account_id,
            actor=actor,
            action="release.download",
            now=now,
            code=code,
            product_id=detail.pop("product", None),
            file=file_id[:64],
            **detail,
        )


def file_path(root: Path, f: ReleaseFile) -> Path:
    """Where a recorded file is. Paths come from the database only; one that would leave the
    releases directory (a damaged row) is refused."""
    base = root.resolve()
    path = (base / f.path).resolve()
    if not path.is_relative_to(base) or path == base:
        raise OfflineServiceError(
            Code.STORAGE_ERROR, "a release file's recorded path is outside the releases directory"
        )
    return path


def read_chunks(path: Path, start: int, length: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``start``, ``chunk`` at a time (bounded memory)."""
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(chunk, length))
            if not data:
                raise OfflineServiceError(Code.STORAGE_ERROR, f"{path} is shorter than recorded")
            length -= len(data)
            yield data
