"""A portal batch's result page (post/redirect/get): the upload redirects to a page kept in the
database for its uploader alone, which counts and lists every file, serves the zip, expires, and
says nothing to anyone else."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from starlette.testclient import TestClient

from offline_service.errors import Code
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.ids import new_id
from offline_service.licensing import batch_results
from offline_service.licensing.models import BatchFile
from offline_service.licensing.pages import BATCH_PAGE_SIZE
from offline_service.web.app import create_app
from offline_service.web.kit import mask_key
from offline_service.web.words import PLAIN_WORDS
from tests.db import rows
from tests.factories import NOW, Machine
from tests.web.portal import Portal, shown_text, submit

RESULT = re.compile(r"\A/batch/result/(bat_[0-9a-f]{32})\Z")
ZIP_NAME = re.compile(r'\Aattachment; filename="responses-\d{8}T\d{6}Z\.zip"\Z')


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def post_batch(client: TestClient, archive: bytes, validity: str = "7") -> str:
    """Upload ``archive`` on /batch; the path of the result page it redirects to."""
    posted = submit(
        client, "/batch", {"validity": validity}, files={"archive": ("reqs.zip", archive, "application/zip")}
    )
    assert posted.status_code == 303, posted.text
    assert "content-disposition" not in posted.headers and posted.content == b""
    location = posted.headers["location"]
    assert RESULT.match(location), location
    return str(location)


def report(archive: bytes) -> dict[str, dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return {r["file"]: r for r in csv.DictReader(io.StringIO(z.read("report.csv").decode()))}


def stored_results(portal: Portal) -> int:
    return int(rows(portal.svc.store, "SELECT COUNT(*) FROM batch_results")[0][0])


@pytest.fixture
def mixed(portal: Portal) -> tuple[TestClient, str, dict[str, Machine]]:
    """Bob's second batch: one request again (reissued), a new activation, a deactivation, one for a
    license he may not use and two that are no request files. Returns his client and the path."""
    bob = portal.login("bob@example.com")
    machines = {n: Machine(fingerprint=f"fp-{n}-{'0' * 24}") for n in ("desk", "lab", "old", "theirs")}

    def activate(name: str, license_key: str) -> bytes:
        return machines[name].request(
            Kind.ACTIVATION, portal.product.id, license_key=license_key, hostname=f"{name}-host"
        )

    again = activate("desk", portal.bobs.key)
    old = activate("old", portal.bobs.key)
    post_batch(bob, zipped({"desk.request": again, "old.request": old}))
    with portal.svc.store.read() as tx:
        old_id = next(
            a.id for a in tx.activations(portal.bobs.id) if a.fingerprint == machines["old"].fingerprint
        )
    deactivation = machines["old"].request(
        Kind.DEACTIVATION, portal.product.id, activation_id=old_id, hostname="old-host"
    )
    path = post_batch(
        bob,
        zipped(
            {
                "a/desk.request": again,
                "b/lab.request": activate("lab", portal.org_linked.key),
                "c/old-deactivate.request": deactivation,
                "d/theirs.request": activate("theirs", portal.carols.key),
                "e/notes.txt": b"not a request",
                "f/empty.request": b"x",
            }
        ),
    )
    return bob, path, machines


def test_a_batch_redirects_to_a_page_that_counts_every_file_by_what_became_of_it(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    bob, path, _ = mixed
    page = bob.get(path)
    assert page.status_code == 200, page.text
    text = shown_text(page.text)
    assert "6 files processed" in text
    assert "2 accepted, 1 reissued, 3 refused" in text
    assert "2: 1 new activation, 1 deactivation" in text
    assert "Reissued 1: requests granted before" in text
    # Refused ones by code, with the plain words, most frequent first.
    malformed, missing = PLAIN_WORDS[Code.MALFORMED_REQUEST], PLAIN_WORDS[Code.LICENSE_NOT_FOUND]
    assert f"{malformed} MALFORMED_REQUEST 2" in text and f"{missing} LICENSE_NOT_FOUND 1" in text
    assert text.index("MALFORMED_REQUEST 2") < text.index("LICENSE_NOT_FOUND 1")
    assert 'href="' + path + '/download"' in page.text and "Download responses (zip)" in text
    assert "kept for you alone for 24 hours" in text


def test_the_result_page_lists_each_file_with_its_machine_license_and_outcome(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    bob, path, machines = mixed
    html = bob.get(path).text
    cells = {
        m.group(1): shown_text(m.group(2)).strip()
        for m in re.finditer(
            r'<th scope="row"><code class="file-name">([^<]+)</code></th>(.*?)</tr>', html, re.S
        )
    }
    assert list(cells) == [
        "a/desk.request",
        "b/lab.request",
        "c/old-deactivate.request",
        "d/theirs.request",
        "e/notes.txt",
        "f/empty.request",
    ]
    assert cells["a/desk.request"].startswith("Activation desk-host fp-desk-")
    assert cells["a/desk.request"].endswith(f"App, {mask_key(portal.bobs.key)} Reissued")
    assert cells["b/lab.request"].endswith(f"App, {mask_key(portal.org_linked.key)} Accepted")
    assert cells["c/old-deactivate.request"].startswith("Deactivation old-host")
    assert cells["c/old-deactivate.request"].endswith("Accepted")
    assert cells["d/theirs.request"].startswith("Activation theirs-host")
    assert "Not known Refused LICENSE_NOT_FOUND" in cells["d/theirs.request"]
    # A refused file says why in plain words, not in the engine's terms.
    assert cells["d/theirs.request"].endswith(PLAIN_WORDS[Code.LICENSE_NOT_FOUND])
    assert cells["e/notes.txt"].startswith("Unknown Unknown Not known Refused MALFORMED_REQUEST")
    # The license links go where the person may go; the license they may not use stays unnamed.
    assert f'href="/licenses/{portal.bobs.id}"' in html and f'href="/licenses/{portal.org_linked.id}"' in html
    assert portal.carols.id not in html and mask_key(portal.carols.key) not in html
    # The machine macro: hostname first, then the fingerprint shortened (the whole in its title).
    fingerprint = machines["lab"].fingerprint
    assert f'<code class="fingerprint" title="{fingerprint}">{fingerprint[:8]}<span' in html
    assert 'class="state state-reissued">Reissued<' in html and 'class="state state-refused">Refused<' in html


def test_a_reload_of_the_result_page_repeats_nothing(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    bob, path, _ = mixed
    before, kept = portal.snapshot(), stored_results(portal)
    first = bob.get(path).text
    for _ in range(2):
        assert bob.get(path).text == first
        assert bob.get(path + "/download").status_code == 200
    assert portal.snapshot() == before and stored_results(portal) == kept


def test_the_download_is_the_zip_the_batch_made(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    bob, path, _ = mixed
    download = bob.get(path + "/download")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert ZIP_NAME.match(download.headers["content-disposition"]), download.headers["content-disposition"]
    (stored,) = [
        bytes(r[0])
        for r in rows(portal.svc.store, "SELECT archive FROM batch_results")
        if bytes(r[0]) == download.content
    ]
    assert stored == bob.get(path + "/download").content  # the same bytes every time
    found = report(download.content)
    assert {f: r["code"] for f, r in found.items()} == {
        "a/desk.request": "OK",
        "b/lab.request": "OK",
        "c/old-deactivate.request": "OK",
        "d/theirs.request": "LICENSE_NOT_FOUND",
        "e/notes.txt": "MALFORMED_REQUEST",
        "f/empty.request": "MALFORMED_REQUEST",
    }
    with zipfile.ZipFile(io.BytesIO(download.content)) as z:
        answer = parse_response(
            z.read(found["b/lab.request"]["response_file"]), portal.svc.keyring.public_keys()
        )
    assert answer.license_id == portal.org_linked.id


def test_another_person_or_account_finds_nothing_and_the_uploader_finds_it_from_any_session(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    _, path, _ = mixed
    ours = shown_text(portal.login("bob@example.com").get(path).text)  # a new session of bob's
    assert "6 files processed" in ours
    strangers = {
        "alice (his organization's admin)": portal.login("alice@example.com"),
        "carol (same account)": portal.login("carol@example.com"),
        "bob of another account": portal.login(
            "bob@example.com", account="other", password="another staple 42"
        ),
    }
    unknown = f"/batch/result/{new_id('bat')}"
    for who, client in strangers.items():
        for url in (path, path + "/download", path + "?page=2"):
            response = client.get(url)
            assert response.status_code == 404, (who, url)
            assert "NOT_FOUND" in response.text and "processed" not in response.text, (who, url)
            assert response.headers["content-type"].startswith("text/html"), (who, url)
        # The same answer as for a result that does not exist: nothing says that this one does.
        assert client.get(path).text == client.get(unknown).text, who
    anonymous = portal.client().get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_a_result_expires_after_a_day_and_is_deleted_by_a_later_upload(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    _, path, _ = mixed
    assert stored_results(portal) == 2
    portal.clock.now = NOW + batch_results.RESULT_SECONDS - 1
    bob = portal.login("bob@example.com")  # his first session has ended by now
    assert bob.get(path).status_code == 200 and bob.get(path + "/download").status_code == 200
    portal.clock.now = NOW + batch_results.RESULT_SECONDS
    for url in (path, path + "/download"):
        response = bob.get(url)
        assert response.status_code == 404 and "NOT_FOUND" in response.text, url
    assert stored_results(portal) == 2  # not shown, though not deleted yet
    fresh = post_batch(bob, zipped({"x.request": b"x"}))
    assert stored_results(portal) == 1 and bob.get(fresh).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "x",
        "bat_",
        "bat_" + "g" * 32,
        "lic_" + "0" * 32,
        "BAT_" + "0" * 32,
        "bat_" + "0" * 33,
        "%2E%2E",
        "bat_0%00",
    ],
)
def test_a_malformed_or_unknown_id_is_the_same_not_found(portal: Portal, value: str) -> None:
    bob = portal.login("bob@example.com")
    for url in (f"/batch/result/{value}", f"/batch/result/{value}/download"):
        response = bob.get(url)
        assert response.status_code == 404, url
        assert "NOT_FOUND" in response.text and "Traceback" not in response.text


def test_a_large_batch_is_shown_a_page_at_a_time_and_counted_whole(portal: Portal) -> None:
    bob = portal.login("bob@example.com")
    count = BATCH_PAGE_SIZE + 3
    path = post_batch(bob, zipped({f"r{n:04}.request": b"x" for n in range(count)}))
    first = bob.get(path)
    text = shown_text(first.text)
    assert f"{count} files processed" in text and f"Refused {count}" in text
    assert f"MALFORMED_REQUEST {count}" in text
    assert first.text.count('<th scope="row"><code class="file-name">') == BATCH_PAGE_SIZE
    assert "Page 1 of 2" in text and f'href="{path}?page=2"' in first.text
    second = bob.get(path + "?page=2")
    assert second.status_code == 200
    assert second.text.count('<th scope="row"><code class="file-name">') == 3
    assert f"r{count - 1:04}.request" in second.text and "r0000.request" not in second.text
    assert f"{count} files processed" in shown_text(second.text)
    for page in ("3", "0", "-1", "x", "1" * 30):
        response = bob.get(path, params={"page": page})
        assert response.status_code == 400 and "INVALID_ARGUMENT" in response.text, page


def test_summaries_count_accepted_reissued_and_refused_apart() -> None:
    files = [
        BatchFile("a", "activation", "OK"),
        BatchFile("b", "activation", "OK", reissued=True),
        BatchFile("c", "deactivation", "OK"),
        BatchFile("d", "deactivation", "OK", reissued=True),
        BatchFile("e", "activation", "LICENSE_NOT_FOUND"),
        BatchFile("f", "", "MALFORMED_REQUEST"),
        BatchFile("g", "", "MALFORMED_REQUEST"),
    ]
    summary = batch_results.summarize(files)
    assert (summary.activations, summary.deactivations, summary.reissued) == (1, 1, 2)
    assert summary.refused == (("MALFORMED_REQUEST", 2), ("LICENSE_NOT_FOUND", 1))
    assert (summary.accepted, summary.refused_total, summary.total) == (2, 3, 7)
    assert [batch_results.outcome(f) for f in files[:2]] == ["accepted", "reissued"]


def test_storing_a_result_deletes_at_most_a_few_expired_ones_in_its_transaction(portal: Portal) -> None:
    store = portal.svc.store
    with store.read() as tx:
        bob = tx.user_by_email(portal.acme.id, "bob@example.com")
    assert bob is not None
    mine = {"account_id": portal.acme.id, "user_id": bob.id}
    expired = batch_results.PRUNE_BATCH + 4
    for n in range(expired):  # each expired by NOW
        batch_results.save(
            store, **mine, files=(), archive=b"old", now=NOW - batch_results.RESULT_SECONDS - n
        )
    assert stored_results(portal) == expired
    kept = batch_results.save(
        store, **mine, files=(BatchFile("a", "", "MALFORMED_REQUEST"),), archive=b"new", now=NOW
    )
    assert stored_results(portal) == 4 + 1
    found = batch_results.find(store, **mine, result_id=kept.id, now=NOW)
    assert found == kept and found.expires_at == NOW + batch_results.RESULT_SECONDS
    assert batch_results.find_archive(store, **mine, result_id=kept.id, now=NOW) == (NOW, b"new")


def test_another_instance_on_the_same_database_shows_the_result_and_its_zip(
    portal: Portal, mixed: tuple[TestClient, str, dict[str, Machine]]
) -> None:
    bob, path, _ = mixed
    other = create_app(portal.svc.settings, clock=portal.clock)  # another process's worth of state
    try:
        browser = TestClient(other, follow_redirects=False, cookies=dict(bob.cookies))
        page = browser.get(path)
        assert page.status_code == 200 and "6 files processed" in shown_text(page.text)
        assert browser.get(path + "/download").content == bob.get(path + "/download").content
    finally:
        other.state.services.close()
