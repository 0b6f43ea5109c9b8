"""The admin API's release routes in-process, on both backends: each route with its scope (403
without it, 401 without an admin token), another account's token (404, nothing changed, neither
rows nor files), uploads over the limit and hostile forms (refused, nothing left behind: no row, no
file, no staged copy), retried publishes with one Idempotency-Key (one release), a failure after the
files were moved into place (nothing left), and a published file downloaded through the person's
API with the SHA-256 the publish answered."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from offline_service.admin.api._upload import MAX_PARTS
from offline_service.admin.models import Scope
from offline_service.releases import services as releases
from offline_service.releases.services import MAX_FILES, MAX_NAME
from offline_service.store.sql.admin import AdminSQL
from tests.db import table
from tests.web.site import Site, error

BOUNDARY = "release-test-boundary"
Call = Callable[[Site, str], tuple[str, str, dict[str, Any]]]


def _form(site: Site, version: str = "1.0.0", product: str | None = None, **fields: str) -> dict[str, str]:
    return {"product": product or site.product.id, "version": version, **fields}


def _files(*files: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, data, "application/octet-stream")) for name, data in files]


def _publish(
    site: Site,
    headers: dict[str, str],
    form: dict[str, str] | None = None,
    files: tuple[tuple[str, bytes], ...] = (("app.zip", b"PK\x03\x04 the app"),),
) -> httpx.Response:
    return site.client.post(
        "/v1/admin/releases", data=form or _form(site), files=_files(*files), headers=headers
    )


def _release(site: Site, account: str = "acme", version: str = "0.9.0") -> str:
    """A release of ``account`` published with the service (as the CLI does)."""
    source = site.svc.settings.data_dir / f"source-{account}.bin"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(f"{account} {version}".encode())
    owner, product = (site.acme, site.product) if account == "acme" else (site.other, site.other_product)
    published = releases.publish(
        site.svc.store,
        owner,
        root=site.svc.settings.release_root,
        product_id=product.id,
        version=version,
        files=[source],
        now=site.svc.now(),
    )
    return published.release.id


def _tree(site: Site) -> list[str]:
    """Every file and directory under the releases directory (the empty staging folder aside)."""
    root = site.svc.settings.release_root
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".staging")


def _staged(site: Site) -> list[Path]:
    """What is left in the staging folder."""
    staging = site.svc.settings.release_root / ".staging"
    return sorted(staging.rglob("*")) if staging.exists() else []


def _rows(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    return {t: table(site.svc.store, t) for t in ("releases", "release_files", "admin_idempotency")}


# Every release route: (method, path, request arguments) given a release id, and its scope.
ROUTES: dict[str, tuple[Scope, Call]] = {
    "list": (Scope.RELEASES_READ, lambda site, r: ("GET", "/v1/admin/releases", {})),
    "publish": (
        Scope.RELEASES_WRITE,
        lambda site, r: (
            "POST",
            "/v1/admin/releases",
            {"data": _form(site), "files": _files(("app.zip", b"the app"))},
        ),
    ),
    "show": (Scope.RELEASES_READ, lambda site, r: ("GET", f"/v1/admin/releases/{r}", {})),
    "remove": (Scope.RELEASES_WRITE, lambda site, r: ("DELETE", f"/v1/admin/releases/{r}", {})),
}


def _send(site: Site, name: str, headers: dict[str, str], release: str) -> httpx.Response:
    method, path, kw = ROUTES[name][1](site, release)
    return site.client.request(method, path, headers=headers, **kw)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_release_route_answers_its_scope_and_refuses_others(site: Site, name: str) -> None:
    release = _release(site)
    scope = ROUTES[name][0]
    others = [s.value for s in Scope if s is not scope]
    before, files = _rows(site), _tree(site)
    assert error(_send(site, name, site.admin_auth(*others), release)) == (403, "FORBIDDEN")
    assert _rows(site) == before and _tree(site) == files
    allowed = _send(site, name, site.admin_auth(scope.value), release)
    assert allowed.status_code == (201 if name == "publish" else 200), allowed.text


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_release_route_refuses_no_token_a_persons_and_a_made_up_one(site: Site, name: str) -> None:
    release = _release(site)
    before, files = _rows(site), _tree(site)
    for headers in ({}, site.auth("admin_a"), {"authorization": "Bearer ofs_admin_" + "A" * 43}):
        assert error(_send(site, name, headers, release)) == (401, "UNAUTHENTICATED"), headers
    assert _rows(site) == before and _tree(site) == files


def test_another_accounts_token_finds_none_of_this_accounts_releases(site: Site) -> None:
    mine = _release(site)
    theirs = _release(site, "other")
    headers = site.admin_auth(account="other")
    before, files, state = _rows(site), _tree(site), site.state()
    answer = site.client.delete(f"/v1/admin/releases/{mine}", headers=headers)
    assert error(answer) == (404, "NOT_FOUND")
    answer = site.client.get(f"/v1/admin/releases/{mine}", headers=headers)
    assert error(answer) == (404, "NOT_FOUND")  # as a missing one: only the id asked for is named
    assert site.product.id not in answer.text and "0.9.0" not in answer.text
    answer = _publish(site, headers)  # to this account's product
    assert error(answer) == (404, "PRODUCT_NOT_FOUND")
    answer = site.client.get(f"/v1/admin/releases?product={site.product.id}", headers=headers)
    assert error(answer) == (404, "PRODUCT_NOT_FOUND") and mine not in answer.text
    listed = site.client.get("/v1/admin/releases", headers=headers).json()
    assert [r["id"] for r in listed["releases"]] == [theirs] and listed["nextCursor"] is None
    answer = site.client.get(f"/v1/admin/releases?cursor={mine.partition('_')[2]}", headers=headers)
    assert _ids(answer) == [theirs] and mine not in answer.text  # this account's id as a cursor
    assert _rows(site) == before and _tree(site) == files and site.state() == state


def test_a_published_release_is_answered_listed_downloaded_and_removed(site: Site) -> None:
    headers = site.admin_auth(Scope.RELEASES_READ.value, Scope.RELEASES_WRITE.value)
    data = bytes(range(256)) * 4000  # ~1 MiB: several chunks on the way in
    published = _publish(
        site,
        headers,
        _form(site, "2.1.0", channel="beta", notes="Faster.\nSmaller."),
        files=(("app-2.1.0.zip", data), ("README.txt", b"read me")),
    )
    assert published.status_code == 201, published.text
    body = published.json()
    assert (body["version"], body["channel"], body["notes"]) == ("2.1.0", "beta", "Faster.\nSmaller.")
    assert [(f["name"], f["size"], f["sha256"]) for f in body["files"]] == [
        ("app-2.1.0.zip", len(data), hashlib.sha256(data).hexdigest()),
        ("README.txt", 7, hashlib.sha256(b"read me").hexdigest()),
    ]
    listed = site.client.get(f"/v1/admin/releases?product={site.product.id}", headers=headers).json()
    (shown,) = listed["releases"]
    assert {**shown, "files": None} == {**body, "files": None}
    assert sorted(shown["files"], key=str) == sorted(body["files"], key=str)
    one = site.client.get(f"/v1/admin/releases/{body['id']}", headers=headers)
    assert one.status_code == 200 and one.json() == shown
    assert ("release.publish", "OK") in [(e.action, e.code) for e in site.audit()]
    assert {e.actor for e in site.audit() if e.action == "release.publish"} == {
        f"admin_token:{_token_id(site, Scope.RELEASES_WRITE)}"
    }

    # the person's API offers it, and the file downloads with the SHA-256 the publish answered
    offered = site.client.get("/v1/releases", headers=site.auth("user1")).json()
    (product,) = [p for p in offered if p["productId"] == site.product.id]
    (release,) = [r for r in product["releases"] if r["id"] == body["id"]]
    link = next(f for f in release["files"] if f["name"] == "app-2.1.0.zip")["downloadUrl"]
    download = site.client.get(link, headers=site.auth("user1"))
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == body["files"][0]["sha256"]

    removed = site.client.delete(f"/v1/admin/releases/{body['id']}", headers=headers)
    assert removed.json() == {"removed": body["id"]}
    assert table(site.svc.store, "releases") == [] and _tree(site) == [site.product.id]
    assert error(site.client.delete(f"/v1/admin/releases/{body['id']}", headers=headers)) == (
        404,
        "NOT_FOUND",
    )


def _ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["releases"]]


def test_releases_page_by_id_and_those_published_meanwhile_come_later(site: Site) -> None:
    headers = site.admin_auth(Scope.RELEASES_READ.value)
    older = [_release(site, version=f"1.{n}.0") for n in range(5)]
    assert older == sorted(older)  # ids grow with time
    seen: list[str] = []
    newer: list[str] = []
    url = "/v1/admin/releases?limit=2"
    while True:
        answer = site.client.get(url, headers=headers)
        seen += _ids(answer)
        cursor = answer.json()["nextCursor"]
        if len(newer) < 3:  # a release published between two pages, the newest version or an old one
            newer.append(_release(site, version=f"{9 - len(newer)}.0.0" if len(newer) != 1 else "0.1.0"))
        if cursor is None:
            break
        assert len(_ids(answer)) == 2
        url = f"/v1/admin/releases?limit=2&cursor={cursor}"
    assert len(seen) == len(set(seen))  # no release twice
    assert seen[:5] == older  # none of those there before the first page skipped, oldest first
    assert seen == older + newer  # and those published meanwhile on later pages, whatever their version
    everything = _ids(site.client.get("/v1/admin/releases?limit=200", headers=headers))
    assert everything == sorted(older + newer)


def test_a_release_staged_before_a_page_and_recorded_after_comes_on_a_later_page(site: Site) -> None:
    """An upload streams for as long as it takes: the release is recorded under an id made when it
    is recorded, not under the one its staging began with, so no page read meanwhile skips it."""
    headers = site.admin_auth(Scope.RELEASES_READ.value)
    root = site.svc.settings.release_root
    slow = releases.new_release(site.acme, product_id=site.product.id, version="5.0.0", now=site.svc.now())
    staging = releases.Staging(root, slow.id)
    source = site.svc.settings.data_dir / "slow.bin"
    source.write_bytes(b"slow upload")
    with source.open("rb") as f:
        staged = [staging.copy(f.fileno(), "slow.bin")]
    time.sleep(0.002)  # ids are to the millisecond: the next one is later
    first = _release(site, version="1.0.0")
    page = site.client.get("/v1/admin/releases?limit=1", headers=headers)
    assert _ids(page) == [first] and page.json()["nextCursor"] is None
    time.sleep(0.002)
    with site.svc.store.write() as tx:
        recorded = releases.publish_in(tx, staging, slow, staged, actor="cli").release
    assert recorded.id > first > slow.id
    later = site.client.get(f"/v1/admin/releases?cursor={first.partition('_')[2]}", headers=headers)
    assert _ids(later) == [recorded.id]
    assert _tree(site) == sorted(
        [site.product.id, *(f"{site.product.id}/{r}" for r in (first, recorded.id))]
        + [f"{site.product.id}/{r}/{f['id']}" for r in (first, recorded.id) for f in _files_of(site, r)]
    )


def _files_of(site: Site, release: str) -> list[dict[str, Any]]:
    answer = site.client.get(
        f"/v1/admin/releases/{release}", headers=site.admin_auth(Scope.RELEASES_READ.value)
    )
    files: list[dict[str, Any]] = answer.json()["files"]
    return files


def test_releases_filter_by_product_and_channel(site: Site) -> None:
    headers = site.admin_auth(Scope.RELEASES_READ.value, Scope.RELEASES_WRITE.value)
    stable = _release(site, version="1.0.0")
    beta = _publish(site, headers, _form(site, "1.1.0", channel="beta")).json()["id"]
    listed = lambda query: _ids(site.client.get(f"/v1/admin/releases?{query}", headers=headers))  # noqa: E731
    assert listed("") == listed("channel=&product=") == [stable, beta]
    assert listed("channel=beta") == [beta]
    assert listed(f"channel=stable&product={site.product.id}") == [stable]
    assert listed("channel=nightly") == []
    assert listed(f"channel=beta&limit=1&cursor={beta.partition('_')[2]}") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "limit=",
        "cursor=",
        "cursor=rel_0123456789abcdef01234567",
        "cursor=xyz",
        "cursor=" + "0" * 33,
        "channel=Beta",
        "channel=" + "a" * 33,
        "product=nope",
    ],
)
def test_a_bad_cursor_limit_or_filter_is_refused(site: Site, query: str) -> None:
    _release(site)
    answer = site.client.get(
        f"/v1/admin/releases?{query}", headers=site.admin_auth(Scope.RELEASES_READ.value)
    )
    assert error(answer) == (400, "INVALID_ARGUMENT")


def test_a_release_shown_by_id_is_this_accounts_with_its_files(site: Site) -> None:
    headers = site.admin_auth(Scope.RELEASES_READ.value)
    release = _release(site, version="3.0.0")
    shown = site.client.get(f"/v1/admin/releases/{release}", headers=headers)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    data = b"acme 3.0.0"
    assert (body["id"], body["productId"], body["version"], body["channel"]) == (
        release,
        site.product.id,
        "3.0.0",
        "stable",
    )
    assert [(f["name"], f["size"], f["sha256"]) for f in body["files"]] == [
        ("source-acme.bin", len(data), hashlib.sha256(data).hexdigest())
    ]
    missing = "rel_" + "0" * 32
    assert error(site.client.get(f"/v1/admin/releases/{missing}", headers=headers)) == (404, "NOT_FOUND")
    assert error(site.client.get("/v1/admin/releases/nope", headers=headers))[0] == 400


def _token_id(site: Site, scope: Scope) -> str:
    from offline_service.admin import tokens

    return next(t.id for t in tokens.list_tokens(site.svc.store, site.acme) if scope in t.scopes)


def test_a_retried_publish_answers_the_first_answer_and_publishes_once(site: Site) -> None:
    headers = {**site.admin_auth(Scope.RELEASES_WRITE.value), "idempotency-key": "rel-1"}
    first = _publish(site, headers)
    files = _tree(site)
    again = _publish(site, headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(table(site.svc.store, "releases")) == 1 and _tree(site) == files
    assert _staged(site) == []
    other = _publish(site, headers, files=(("app.zip", b"another build"),))
    assert error(other) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len(table(site.svc.store, "releases")) == 1 and _tree(site) == files
    # without the key, the same upload is a second publish of the same version: refused
    before = _rows(site)
    assert error(_publish(site, site.admin_auth(Scope.RELEASES_WRITE.value))) == (409, "CONFLICT")
    assert _rows(site) == before and _tree(site) == files


def _body(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart body of (name, file name or None, data) parts."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _raw(site: Site, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return site.client.post(
        "/v1/admin/releases",
        content=content,
        headers={
            **site.admin_auth(Scope.RELEASES_WRITE.value),
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            **headers,
        },
    )


def _fields(site: Site, **extra: str) -> list[tuple[str, str | None, bytes]]:
    return [(k, None, v.encode()) for k, v in {"product": site.product.id, "version": "1.0", **extra}.items()]


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(make_site: Callable[..., Site]) -> None:
    site = make_site(release_max_bytes=64 * 1024)
    big = b"x" * (65 * 1024)
    before = _rows(site)
    # said up front by its Content-Length
    answer = _publish(site, site.admin_auth(Scope.RELEASES_WRITE.value), files=(("big.bin", big),))
    assert error(answer) == (413, "REQUEST_TOO_LARGE")
    # and counted as it streams, without one: the first parts were staged, then removed

    def chunks() -> Iterator[bytes]:
        body = _body([*_fields(site), ("file", "small.bin", b"s"), ("file", "big.bin", big)])
        for at in range(0, len(body), 8192):
            yield body[at : at + 8192]

    answer = _raw(site, chunks())
    assert error(answer) == (413, "REQUEST_TOO_LARGE")
    assert _rows(site) == before and _tree(site) == [] and _staged(site) == []


HOSTILE: dict[str, Callable[[Site], list[tuple[str, str | None, bytes]]]] = {
    "a path in the name": lambda site: [*_fields(site), ("file", "../../etc/passwd", b"x")],
    "a directory in the name": lambda site: [*_fields(site), ("file", "bin/app", b"x")],
    "a backslash in the name": lambda site: [*_fields(site), ("file", "bin\\app", b"x")],
    "a hidden name": lambda site: [*_fields(site), ("file", ".htaccess", b"x")],
    "a dot-dot name": lambda site: [*_fields(site), ("file", "..", b"x")],
    "a control character": lambda site: [*_fields(site), ("file", "app\x1b[31m.zip", b"x")],
    "an empty name": lambda site: [*_fields(site), ("file", "", b"x")],
    "a long name": lambda site: [*_fields(site), ("file", "a" * (MAX_NAME + 1), b"x")],
    "a name twice": lambda site: [*_fields(site), ("file", "a", b"1"), ("file", "a", b"2")],
    "no product": lambda site: [("version", None, b"1.0"), ("file", "a", b"x")],
    "no version": lambda site: [("product", None, site.product.id.encode()), ("file", "a", b"x")],
    "no file": lambda site: _fields(site),
    "a bad version": lambda site: [*_fields(site, version="one"), ("file", "a", b"x")],
    "a bad channel": lambda site: [*_fields(site, channel="Stable!"), ("file", "a", b"x")],
    "a bad product id": lambda site: [*_fields(site, product="../x"), ("file", "a", b"x")],
    "control characters in the notes": lambda site: [*_fields(site, notes="a\x00b"), ("file", "a", b"x")],
    "notes not UTF-8": lambda site: [*_fields(site), ("notes", None, b"\xff\xfe"), ("file", "a", b"x")],
    "an unknown field": lambda site: [*_fields(site, secret="x"), ("file", "a", b"x")],
    "a field twice": lambda site: [*_fields(site), ("version", None, b"2.0"), ("file", "a", b"x")],
    "a field after a file": lambda site: [*_fields(site), ("file", "a", b"x"), ("notes", None, b"late")],
    "a file in another part": lambda site: [*_fields(site), ("upload", "a", b"x")],
    "a file without its name": lambda site: [*_fields(site), ("file", None, b"x")],
    "too many files": lambda site: [*_fields(site)] + [("file", f"f{i}", b"x") for i in range(MAX_FILES + 1)],
    "too many parts": lambda site: (
        [*_fields(site, channel="beta", notes="n")] + [("file", f"f{i}", b"x") for i in range(MAX_PARTS)]
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_form_is_refused_and_changes_nothing(site: Site, name: str) -> None:
    before, state = _rows(site), site.state()
    answer = _raw(site, _body(HOSTILE[name](site)), **{"idempotency-key": "k"})
    assert error(answer) == (400, "INVALID_ARGUMENT"), answer.text
    assert _rows(site) == before and site.state() == state and _tree(site) == [] and _staged(site) == []


@pytest.mark.parametrize(
    "content,content_type",
    [
        (b'{"product": "x"}', "application/json"),
        (
            b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.0',
            "multipart/form-data; boundary=b",
        ),
        (b"no boundary here", "multipart/form-data; boundary=b"),
        (b"", "multipart/form-data"),
    ],
)
def test_a_body_that_is_not_a_whole_multipart_form_is_refused(
    site: Site, content: bytes, content_type: str
) -> None:
    before = _rows(site)
    answer = _raw(site, content, **{"content-type": content_type})
    assert error(answer) == (400, "INVALID_ARGUMENT"), answer.text
    assert _rows(site) == before and _tree(site) == []


def test_a_failure_after_the_files_were_moved_in_leaves_nothing(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kept answer of an Idempotency-Key is written after the release's rows and the rename:
    # when it fails, the transaction rolls back and the moved files are removed.
    def broken(self: Any, result: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(AdminSQL, "insert_idempotent_result", broken)
    headers = {**site.admin_auth(Scope.RELEASES_WRITE.value), "idempotency-key": "k"}
    before = _rows(site)
    with pytest.raises(OSError):
        _publish(site, headers)
    assert _rows(site) == before
    assert [p for p in _tree(site) if p != site.product.id] == []


def test_the_fingerprint_names_each_file_by_name_size_and_sha256(site: Site, tmp_path: Path) -> None:
    headers = {**site.admin_auth(Scope.RELEASES_WRITE.value), "idempotency-key": "same"}
    assert _publish(site, headers, files=(("a.bin", b"one"),)).status_code == 201
    renamed = _publish(site, headers, files=(("b.bin", b"one"),))
    assert error(renamed) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len(table(site.svc.store, "release_files")) == 1


def _stream(site: Site, chunks: list[bytes], *, disconnect: bool = False) -> tuple[int, bytes]:
    """POST the chunks to the app as separate ASGI messages, without a Content-Length, as a client
    streaming a large upload does (the test client would send them as one); ``disconnect``: the
    client goes away after the last chunk instead of ending the body. (status, body) of the answer."""
    headers = {
        **site.admin_auth(Scope.RELEASES_WRITE.value),
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/admin/releases",
        "raw_path": b"/v1/admin/releases",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()] + [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": disconnect or i + 1 < len(chunks)}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # never: the app has stopped reading by then
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        with contextlib.suppress(Exception):  # a disconnected client gets no answer
            await site.client.app(scope, receive, send)

    asyncio.run(run())
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), 0)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _chunked(body: bytes, size: int = 8192) -> list[bytes]:
    return [body[at : at + size] for at in range(0, len(body), size)]


def test_an_upload_passing_the_limit_as_it_streams_is_refused_and_its_staged_files_removed(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(release_max_bytes=64 * 1024)
    before = _rows(site)
    # a first file staged whole, a second one begun, when the count passes the limit
    body = _body([*_fields(site), ("file", "small.bin", b"s" * 20_000), ("file", "big.bin", b"x" * 80_000)])
    status, answer = _stream(site, _chunked(body))
    assert status == 413 and b"REQUEST_TOO_LARGE" in answer
    assert _rows(site) == before and _tree(site) == [] and _staged(site) == []
    # the same body in chunks under the limit, to show the files were indeed being staged
    small = _body([*_fields(site), ("file", "small.bin", b"s" * 20_000)])
    status, answer = _stream(site, _chunked(small))
    assert status == 201, answer
    assert len(table(site.svc.store, "release_files")) == 1 and _staged(site) == []


def test_a_client_gone_mid_upload_leaves_nothing(site: Site) -> None:
    before = _rows(site)
    body = _body([*_fields(site), ("file", "a.bin", b"a" * 50_000), ("file", "b.bin", b"b" * 50_000)])
    status, _ = _stream(site, _chunked(body)[:-3], disconnect=True)
    assert status == 400  # to no one: a refusal, not a server error
    assert _rows(site) == before and _tree(site) == [] and _staged(site) == []
