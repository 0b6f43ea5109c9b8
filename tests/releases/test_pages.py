"""Downloads, in process: who sees which releases, signed links bound to a person and a file,
entitlement checked again at download time, and Range requests. Every role of the site of
tests/web/site.py, plus a person who holds no license."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Role
from offline_service.accounts.passwords import Cost
from offline_service.licensing import services as admin
from offline_service.licensing.models import LicenseStatus
from offline_service.releases import services as releases
from offline_service.releases.links import LinkSigner
from tests import people
from tests.db import execute
from tests.factories import NOW
from tests.web.pages import has_inline_script
from tests.web.site import EMAILS, PASSWORD, Site, error

ROLES = ("user1", "user2", "admin_a", "admin_b", "other", "nolicense")
NOLICENSE = "user3@acme.example"
APP_VERSIONS = ["2.1.0-beta.1", "2.0.0", "1.0.0"]  # App, newest first
# user1's license stops at 1.5: only 1.0.0; everyone else of acme sees every App release.
EXPECTED = {
    "user1": {"App": ["1.0.0"]},
    "user2": {"App": APP_VERSIONS},
    "admin_a": {"App": APP_VERSIONS},
    "admin_b": {"App": APP_VERSIONS},
    "other": {"Other App": ["5.0"]},
    "nolicense": {},
}


@dataclass
class World:
    site: Site
    files: dict[str, bytes]  # by "product version/name"
    published: dict[str, releases.PublishedRelease]  # by "product version"
    clients: dict[str, TestClient]

    def portal(self, role: str) -> TestClient:
        """A browser of ``role``, logged in to the portal (``anonymous``: not logged in)."""
        if role not in self.clients:
            client = TestClient(self.site.client.app, follow_redirects=False)
            if role != "anonymous":
                login(client, role)
            self.clients[role] = client
        return self.clients[role]

    def content(self, file_id: str) -> bytes:
        for key, published in self.published.items():
            for f in published.files:
                if f.id == file_id:
                    return self.files[f"{key}/{f.name}"]
        raise KeyError(file_id)

    def file_id(self, key: str, name: str) -> str:
        return next(f.id for f in self.published[key].files if f.name == name)

    def user_id(self, role: str) -> str:
        account = self.site.other if role == "other" else self.site.acme
        email = NOLICENSE if role == "nolicense" else EMAILS[role]
        with self.site.svc.store.read() as tx:
            user = tx.user_by_email(account.id, email)
        assert user is not None
        return user.id

    def signed(self, role: str, file_id: str, *, exp: int | None = None, api: bool = False) -> str:
        """A link as the service would make it for ``role``."""
        exp = exp if exp is not None else NOW + 600
        sig = LinkSigner.from_data_dir(self.site.svc.settings.data_dir).sign(self.user_id(role), file_id, exp)
        base = "/v1/releases/files" if api else "/downloads/f"
        return f"{base}/{file_id}?exp={exp}&sig={sig}"


def login(client: TestClient, role: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    email = NOLICENSE if role == "nolicense" else EMAILS[role]
    response = client.post(
        "/login",
        data={
            "csrf": csrf.group(1),
            "account": "other" if role == "other" else "acme",
            "email": email,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def world(site: Site, tmp_path: Path) -> World:
    svc = site.svc
    people.create_user(
        svc.store, site.acme, email=NOLICENSE, role=Role.USER, organization="Org A",
        password=PASSWORD, cost=Cost.MINIMUM, now=NOW,
    )  # fmt: skip
    admin.set_license_max_version(svc.store, site.acme, site.licenses["user1"].key, "1.5", now=NOW)
    files: dict[str, bytes] = {}
    published: dict[str, releases.PublishedRelease] = {}

    def publish(account: Any, product: Any, version: str, channel: str = "stable", **contents: bytes) -> None:
        paths = []
        for name, data in contents.items():
            path = tmp_path / "src" / f"{product.name}-{version}" / name.replace("_", ".")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
            files[f"{product.name} {version}/{path.name}"] = data
        published[f"{product.name} {version}"] = releases.publish(
            svc.store, account, root=svc.settings.release_root, product_id=product.id, version=version,
            channel=channel, files=paths, now=NOW, notes=f"Notes of {version} <b>bold</b>\nsecond line",
        )  # fmt: skip

    publish(site.acme, site.product, "1.0.0", app_bin=bytes(range(256)) * 40, readme_txt=b"hello\n")
    publish(site.acme, site.product, "2.0.0", app_bin=b"two" * 1000)
    publish(site.acme, site.product, "2.1.0-beta.1", "beta", app_bin=b"beta" * 10)
    publish(site.acme, site.no_trials, "9.0", tool_bin=b"no license holds this product")
    publish(site.other, site.other_product, "5.0", other_bin=b"other account")
    return World(site=site, files=files, published=published, clients={})


def shown(html: str) -> dict[str, list[str]]:
    """Product -> versions, as the Downloads page lists them."""
    found: dict[str, list[str]] = {}
    for section in re.findall(r"<section aria-labelledby=\"product-\d+\">(.*?)</section>", html, re.DOTALL):
        name = re.search(r"<h2[^>]*>(.*?)</h2>", section)
        assert name
        found[name.group(1)] = re.findall(r"<h3[^>]*>Version (\S+) ", section)
    return found


def links(html: str) -> dict[str, str]:
    """File name -> its link, on a Downloads page (one version of each name is enough here)."""
    found = {}
    for href, name in re.findall(r'<a href="([^"]+)" download>([^<]+)</a>', html):
        found.setdefault(name, href.replace("&amp;", "&"))
    return found


# -- the page --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_downloads_page_lists_exactly_what_the_role_may_download(world: World, role: str) -> None:
    page = world.portal(role).get("/downloads")
    assert page.status_code == 200
    assert shown(page.text) == EXPECTED[role]
    assert '<a href="/downloads" aria-current="page">Downloads</a>' in page.text
    if not EXPECTED[role]:
        assert "There is nothing to download" in page.text
    assert "NoTrials" not in page.text  # nobody holds a license for it


def test_anonymous_is_sent_to_log_in_and_back(world: World) -> None:
    client = world.portal("anonymous")
    response = client.get("/downloads")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdownloads"
    link = world.signed("user1", world.file_id("App 1.0.0", "app.bin"))
    response = client.get(link)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    # The person the link was made for logs in and is sent back to it: the download works.
    login(client, "user1")
    target = parse_qs(urlsplit(response.headers["location"]).query)["next"][0]
    assert client.get(target).content == world.files["App 1.0.0/app.bin"]


def test_the_page_shows_channel_notes_size_and_sha256_escaped(world: World) -> None:
    html = world.portal("admin_a").get("/downloads").text
    beta = world.published["App 2.1.0-beta.1"]
    assert '<span class="channel channel-beta">beta</span>' in html
    assert "Notes of 2.0.0 &lt;b&gt;bold&lt;/b&gt;\nsecond line" in html and "<b>bold" not in html
    for f in world.published["App 1.0.0"].files + beta.files:
        assert f'<code class="sha256">{f.sha256}</code>' in html
        assert f'title="{f.size} bytes"' in html
    assert "10.0 KiB" in html  # app.bin of 1.0.0: 10,240 bytes
    assert not has_inline_script(html) and "style=" not in html


def test_newest_version_first_and_a_license_without_maximum_allows_all(world: World) -> None:
    html = world.portal("user2").get("/downloads").text
    assert shown(html)["App"] == APP_VERSIONS
    # Raising user1's maximum shows more, at once.
    admin.set_license_max_version(
        world.site.svc.store, world.site.acme, world.site.licenses["user1"].key, "2.0", now=NOW
    )
    assert shown(world.portal("user1").get("/downloads").text) == {"App": ["2.0.0", "1.0.0"]}
    admin.set_license_max_version(
        world.site.svc.store, world.site.acme, world.site.licenses["user1"].key, None, now=NOW
    )
    assert shown(world.portal("user1").get("/downloads").text) == {"App": APP_VERSIONS}


def test_the_highest_maximum_among_a_persons_licenses_counts(world: World) -> None:
    site = world.site
    admin.create_license(
        site.svc.store, site.acme, product_id=site.product.id, allowed_activations=1, allowed_deactivations=0,
        now=NOW, owner_user_email=EMAILS["user1"], max_version="2.0.0",
    )  # fmt: skip
    assert shown(world.portal("user1").get("/downloads").text) == {"App": ["2.0.0", "1.0.0"]}


@pytest.mark.parametrize("status", [LicenseStatus.SUSPENDED, LicenseStatus.REVOKED])
def test_a_license_not_in_force_entitles_to_nothing(world: World, status: LicenseStatus) -> None:
    admin.set_license_status(
        world.site.svc.store, world.site.acme, world.site.licenses["user1"].key, status, now=NOW
    )
    assert shown(world.portal("user1").get("/downloads").text) == {}


# -- links and files -------------------------------------------------------------------------------


def test_each_link_downloads_the_file_with_its_headers_and_is_audited(world: World) -> None:
    client = world.portal("admin_b")
    found = links(client.get("/downloads").text)
    assert set(found) == {"app.bin", "readme.txt"}
    for name, href in found.items():
        assert re.fullmatch(r"/downloads/f/file_[0-9a-f]+\?exp=\d+&sig=[A-Za-z0-9_-]{43}", href)
        response = client.get(href)
        assert response.status_code == 200
        body = response.content
        assert body == world.content(urlsplit(href).path.rsplit("/", 1)[1])
        assert response.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
        assert response.headers["content-length"] == str(len(body))
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-type"] == "application/octet-stream"
        assert (
            response.headers["content-disposition"]
            == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "no-store" in response.headers["cache-control"]
    entries = [e for e in world.site.audit() if e.action == "release.download"]
    assert len(entries) == 2 and all(
        e.code == "OK" and e.actor == f"user:{world.user_id('admin_b')}" for e in entries
    )
    assert {e.detail["file"] for e in entries} == {urlsplit(h).path.rsplit("/", 1)[1] for h in found.values()}
    assert all(e.product_id == world.site.product.id for e in entries)


@pytest.mark.parametrize("intruder", ["user2", "admin_a", "admin_b", "other", "nolicense"])
def test_a_link_works_only_for_the_person_it_was_made_for(world: World, intruder: str) -> None:
    href = links(world.portal("user1").get("/downloads").text)["app.bin"]
    response = world.portal(intruder).get(href)
    assert response.status_code == 403
    assert "LINK_INVALID" in response.text and "Back to Downloads" in response.text
    assert world.files["App 1.0.0/app.bin"][:50] not in response.content
    refused = [
        e
        for e in world.site.audit(world.site.other if intruder == "other" else None)
        if e.action == "release.download"
    ]
    assert refused and refused[0].code == "LINK_INVALID"


def test_a_file_above_the_maximum_version_is_refused_even_with_a_genuine_link(world: World) -> None:
    link = world.signed("user1", world.file_id("App 2.0.0", "app.bin"))
    response = world.portal("user1").get(link)
    assert response.status_code == 404 and "NOT_FOUND" in response.text
    assert (
        world.portal("user2").get(world.signed("user2", world.file_id("App 2.0.0", "app.bin"))).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("role", "key", "name"),
    [
        ("nolicense", "App 1.0.0", "app.bin"),
        ("user1", "NoTrials 9.0", "tool.bin"),
        ("user1", "Other App 5.0", "other.bin"),
        ("other", "App 1.0.0", "app.bin"),
    ],
)
def test_a_file_of_a_product_without_a_license_is_not_found(
    world: World, role: str, key: str, name: str
) -> None:
    response = world.portal(role).get(world.signed(role, world.file_id(key, name)))
    assert response.status_code == 404 and "NOT_FOUND" in response.text


def test_an_expired_link_says_so(world: World) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    exp = int(parse_qs(urlsplit(href).query)["exp"][0])
    assert exp == NOW + world.site.svc.settings.download_link_lifetime
    world.site.clock.now = exp
    response = client.get(href)
    assert response.status_code == 403
    assert "LINK_EXPIRED" in response.text and "has expired" in response.text
    world.site.clock.now = NOW
    assert client.get(href).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        lambda p, q: (p, {**q, "sig": q["sig"][:-1] + ("A" if q["sig"][-1] != "A" else "B")}),
        lambda p, q: (p, {**q, "exp": str(int(q["exp"]) + 1)}),
        lambda p, q: (p, {"exp": q["exp"]}),
        lambda p, q: (p, {"sig": q["sig"]}),
        lambda p, q: (p, {**q, "exp": "\uff11\uff12"}),
        lambda p, q: (p, {**q, "sig": "é" * 43}),
        lambda p, q: (p.rsplit("/", 1)[0] + "/file_" + "0" * 24, q),
    ],
)
def test_a_changed_link_is_invalid(
    world: World, change: Callable[[str, dict[str, str]], tuple[str, dict[str, str]]]
) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    parts = urlsplit(href)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path, changed = change(parts.path, query)
    response = client.get(path, params=changed)
    assert response.status_code == 403 and "LINK_INVALID" in response.text


def test_entitlement_is_checked_again_at_download_time(world: World) -> None:
    site = world.site
    client = world.portal("user2")
    href = links(client.get("/downloads").text)["app.bin"]
    assert client.get(href).status_code == 200
    admin.set_license_status(
        site.svc.store, site.acme, site.licenses["group"].key, LicenseStatus.REVOKED, now=NOW
    )
    response = client.get(href)
    assert response.status_code == 404 and "NOT_FOUND" in response.text
    admin.set_license_status(
        site.svc.store, site.acme, site.licenses["group"].key, LicenseStatus.ACTIVE, now=NOW
    )
    assert client.get(href).status_code == 200
    # The license expires: nothing more either.
    execute(
        site.svc.store, "UPDATE licenses SET expires_at = ? WHERE id = ?", NOW + 10, site.licenses["group"].id
    )
    site.clock.now = NOW + 10
    assert client.get(href).status_code == 404


def test_a_logged_out_session_cannot_use_its_links(world: World) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    page = client.get("/downloads")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    assert client.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    assert client.get(href).status_code == 303


def test_a_file_missing_on_disk_is_a_storage_error_not_a_crash(world: World) -> None:
    published = world.published["App 1.0.0"]
    f = next(x for x in published.files if x.name == "app.bin")
    releases.file_path(world.site.svc.settings.release_root, f).unlink()
    response = world.portal("user1").get(world.signed("user1", f.id))
    assert response.status_code == 503 and "STORAGE_ERROR" in response.text


def test_a_recorded_path_outside_the_releases_directory_is_never_served(world: World) -> None:
    f = next(x for x in world.published["App 1.0.0"].files if x.name == "readme.txt")
    secret = world.site.svc.settings.data_dir / "outside.txt"
    secret.write_bytes(b"hello\n")  # the same size as the recorded file
    execute(world.site.svc.store, "UPDATE release_files SET path = ? WHERE id = ?", "../outside.txt", f.id)
    response = world.portal("user1").get(world.signed("user1", f.id))
    assert response.status_code == 503 and b"hello" not in response.content


def test_head_gives_the_headers_without_a_body_and_is_not_audited(world: World) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    response = client.head(href)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(world.files["App 1.0.0/app.bin"]))
    assert not [e for e in world.site.audit() if e.action == "release.download"]


# -- ranges ----------------------------------------------------------------------------------------

DATA_SIZE = 10_240  # app.bin of App 1.0.0


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, DATA_SIZE),
        ("bytes=-5", DATA_SIZE - 5, DATA_SIZE),
        ("bytes=-999999", 0, DATA_SIZE),
        ("bytes=10000-99999", 10000, DATA_SIZE),
        ("BYTES = 7-7", 7, 8),
    ],
)
def test_a_single_range_answers_206(world: World, header: str, start: int, end: int) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    response = client.get(href, headers={"range": header})
    assert response.status_code == 206
    assert response.content == world.files["App 1.0.0/app.bin"][start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{DATA_SIZE}"
    assert response.headers["content-length"] == str(end - start)
    entry = next(e for e in world.site.audit() if e.action == "release.download")
    assert entry.detail["range"] == f"{start}-{end - 1}"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=abc", "bytes=5-2", "items=0-1", "bytes=0x10-", "bytes", "bytes=--1"]
)
def test_several_or_malformed_ranges_get_the_whole_file(world: World, header: str) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    response = client.get(href, headers={"range": header})
    assert response.status_code == 200 and response.content == world.files["App 1.0.0/app.bin"]
    assert "content-range" not in response.headers


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_an_unsatisfiable_range_answers_416(world: World, header: str) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    response = client.get(href, headers={"range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{DATA_SIZE}"
    assert "RANGE_NOT_SATISFIABLE" in response.text


def test_if_range_with_another_etag_gets_the_whole_file(world: World) -> None:
    client = world.portal("user1")
    href = links(client.get("/downloads").text)["app.bin"]
    etag = client.head(href).headers["etag"]
    assert client.get(href, headers={"range": "bytes=0-0", "if-range": etag}).status_code == 206
    stale = client.get(href, headers={"range": "bytes=0-0", "if-range": '"0000"'})
    assert stale.status_code == 200 and len(stale.content) == DATA_SIZE


# -- JSON API --------------------------------------------------------------------------------------


def api_versions(body: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {p["productName"]: [r["version"] for r in p["releases"]] for p in body}


@pytest.mark.parametrize("role", ["user1", "user2", "admin_a", "admin_b", "other"])
def test_api_releases_lists_what_the_role_may_download_with_working_links(world: World, role: str) -> None:
    site = world.site
    response = site.client.get("/v1/releases", headers=site.auth(role))
    assert response.status_code == 200
    body = response.json()
    assert api_versions(body) == EXPECTED[role]
    first = body[0]["releases"][-1]["files"][0]
    assert set(first) == {"id", "name", "size", "sha256", "downloadUrl", "expiresAt"}
    download = site.client.get(first["downloadUrl"], headers=site.auth(role))
    assert download.status_code == 200
    assert (
        hashlib.sha256(download.content).hexdigest() == first["sha256"]
        and len(download.content) == first["size"]
    )
    partial = site.client.get(first["downloadUrl"], headers={**site.auth(role), "range": "bytes=-1"})
    assert partial.status_code == 206 and partial.content == download.content[-1:]


def test_api_links_need_the_same_persons_token(world: World) -> None:
    site = world.site
    url = site.client.get("/v1/releases", headers=site.auth("user1")).json()[0]["releases"][0]["files"][0][
        "downloadUrl"
    ]
    assert error(site.client.get(url)) == (401, "UNAUTHENTICATED")
    assert error(site.client.get(url, headers=site.auth("user2"))) == (403, "LINK_INVALID")
    assert error(site.client.get(url, headers=site.auth("other"))) == (403, "LINK_INVALID")
    site.clock.now = NOW + site.svc.settings.download_link_lifetime
    del site.tokens["user1"]  # the token has expired too: a fresh one, for the same person
    assert error(site.client.get(url, headers=site.auth("user1"))) == (403, "LINK_EXPIRED")


def test_api_refusals_and_ranges_answer_json(world: World) -> None:
    site = world.site
    above = world.signed("user1", world.file_id("App 2.0.0", "app.bin"), api=True)
    assert error(site.client.get(above, headers=site.auth("user1"))) == (404, "NOT_FOUND")
    url = world.signed("user1", world.file_id("App 1.0.0", "app.bin"), api=True)
    response = site.client.get(url, headers={**site.auth("user1"), "range": f"bytes={DATA_SIZE}-"})
    assert error(response) == (416, "RANGE_NOT_SATISFIABLE")
    assert response.headers["content-range"] == f"bytes */{DATA_SIZE}"
    assert error(site.client.get("/v1/releases")) == (401, "UNAUTHENTICATED")


def test_licenses_show_their_maximum_version(world: World) -> None:
    site = world.site
    body = site.client.get(f"/v1/licenses/{site.licenses['user1'].id}", headers=site.auth("user1")).json()
    assert body["maxVersion"] == "1.5"
    body = site.client.get(f"/v1/licenses/{site.licenses['group'].id}", headers=site.auth("user2")).json()
    assert body["maxVersion"] is None


def test_the_link_secret_is_made_once_private_and_never_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    world.portal("user1").get("/downloads")
    key = world.site.svc.settings.data_dir / "download-links.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    before = key.read_bytes()
    world.portal("user2").get("/downloads")
    assert key.read_bytes() == before
    assert before.hex() not in caplog.text and repr(before) not in caplog.text


def test_the_license_page_shows_the_maximum_version(world: World) -> None:
    site = world.site
    capped = world.portal("user1").get(f"/licenses/{site.licenses['user1'].id}").text
    assert "releases up to version 1.5" in capped
    every = world.portal("user2").get(f"/licenses/{site.licenses['group'].id}").text
    assert "every release" in every and '<a href="/downloads">Downloads</a>' in every


def test_api_releases_of_a_person_without_licenses_is_empty(world: World) -> None:
    site = world.site
    token = site.client.post(
        "/v1/accounts/login", json={"accountAlias": "acme", "email": NOLICENSE, "password": PASSWORD}
    ).json()["accessToken"]
    headers = {"authorization": f"Bearer {token}"}
    assert site.client.get("/v1/releases", headers=headers).json() == []
    link = world.signed("nolicense", world.file_id("App 1.0.0", "app.bin"), api=True)
    assert error(site.client.get(link, headers=headers)) == (404, "NOT_FOUND")
