"""The portal's licensing pages, in process: the dashboard and licenses scoped to the person, offline
activation and deactivation, and batches."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pytest

from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.decisions import DAY
from offline_service.licensing.models import License
from offline_service.web.kit import mask_key
from tests.factories import NOW, Machine
from tests.web.portal import (
    SAFE_FILENAME,
    Portal,
    activation,
    refused,
    result_file,
    shown_text,
    submit,
    upload,
)

# -- dashboard and licenses ------------------------------------------------------------------


def test_dashboard_shows_only_visible_licenses_and_their_activity(portal: Portal) -> None:
    bob, carol = portal.login("bob@example.com"), portal.login("carol@example.com")
    assert (
        submit(
            carol, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.carols, "carol-pc"))
        ).status_code
        == 303
    )
    assert (
        submit(
            bob, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.bobs, "bob-pc"))
        ).status_code
        == 303
    )
    page = bob.get("/")
    assert page.status_code == 200
    for visible in (portal.bobs, portal.org_linked):
        assert mask_key(visible.key) in page.text
    for hidden in (portal.org_only, portal.carols, portal.other_bobs):
        assert mask_key(hidden.key) not in page.text
    text = shown_text(page.text)
    assert "fp-bob-pc" in text and "fp-carol-pc" not in text
    assert "Offline activation" in text and "you" in text
    assert "1 activation used of 6 allowed" in text
    assert "carol" not in page.text.lower()


def test_dashboard_counts_licenses_by_status(portal: Portal) -> None:
    admin.set_license_status(
        portal.svc.store, portal.acme, portal.org_only.key, admin.LicenseStatus.SUSPENDED, now=NOW
    )
    page = portal.login("alice@example.com").get("/")
    text = shown_text(page.text)
    assert "2 licenses in all" in text and "1 Active" in text and "1 Suspended" in text
    assert "License suspended" in text  # the vendor's action shows in the activity


def test_org_admin_sees_every_license_of_the_organization(portal: Portal) -> None:
    client = portal.login("alice@example.com")
    page = client.get("/licenses").text
    assert mask_key(portal.org_linked.key) in page and mask_key(portal.org_only.key) in page
    assert mask_key(portal.bobs.key) not in page and mask_key(portal.carols.key) not in page
    assert client.get(f"/licenses/{portal.org_only.id}").status_code == 200
    assert client.get(f"/licenses/{portal.bobs.id}").status_code == 404


def test_user_sees_own_and_group_licenses_only(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    page = client.get("/licenses").text
    assert mask_key(portal.bobs.key) in page and mask_key(portal.org_linked.key) in page
    assert mask_key(portal.org_only.key) not in page and mask_key(portal.carols.key) not in page
    assert client.get(f"/licenses/{portal.org_linked.id}").status_code == 200


@pytest.mark.parametrize("guess", ["carols", "org_only", "other_bobs"])
def test_guessing_another_license_id_is_not_found(portal: Portal, guess: str) -> None:
    client = portal.login("bob@example.com")
    license: License = getattr(portal, guess)
    for path in (f"/licenses/{license.id}", f"/licenses/{license.id}?reveal=1"):
        response = client.get(path)
        assert response.status_code == 404
        assert "LICENSE_NOT_FOUND" in response.text and "Not found" in response.text
        assert license.key not in response.text and mask_key(license.key) not in response.text
    assert client.get("/licenses/lic_000000000000000000000000").status_code == 404


def test_license_key_is_masked_unless_revealed(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    for path in ("/", "/licenses", f"/licenses/{portal.bobs.id}"):
        assert portal.bobs.key not in client.get(path).text
    detail = client.get(f"/licenses/{portal.bobs.id}").text
    assert mask_key(portal.bobs.key) in detail and f'href="/licenses/{portal.bobs.id}?reveal=1"' in detail
    revealed = client.get(f"/licenses/{portal.bobs.id}?reveal=1")
    assert portal.bobs.key in revealed.text and "Hide key" in revealed.text


def test_mask_key_keeps_only_the_last_group() -> None:
    assert mask_key("ABCDE-FGHJK-MNPQR-STVWX-YZ012") == "•••••-•••••-•••••-•••••-YZ012"
    assert mask_key("abc") == "•••"


def test_license_detail_shows_usage_and_activations(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    data = activation(
        portal, portal.bobs, "laptop", hostname="laptop-7", os="Windows 11", app_version="2.4.1"
    )
    assert submit(client, "/activate", {"validity": "7"}, files=upload(data)).status_code == 303
    text = shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    for expected in (
        "laptop-7",
        "fp-laptop",
        "Windows 11",
        "2.4.1",
        "1 of 3 used",
        "0 of 2 used",
        "App",
        "Active",
    ):
        assert expected in text, expected


# -- offline activation ----------------------------------------------------------------------


def test_activation_by_upload_downloads_a_verifiable_response(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    response = result_file(
        client, submit(client, "/activate", {"validity": "1"}, files=upload(activation(portal, portal.bobs)))
    )
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert SAFE_FILENAME.match(disposition), disposition
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.kind is Kind.ACTIVATION and parsed.license_id == portal.bobs.id
    assert parsed.apply_before - parsed.issued_at == DAY
    assert disposition == f'attachment; filename="host-fp-m1-{parsed.activation_id}.response"'
    assert response.headers["cache-control"] == "no-store"


def test_activation_by_pasted_text(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    text = activation(portal, portal.org_linked).decode("ascii")
    response = result_file(client, submit(client, "/activate", {"validity": "30", "text": f"\n  {text}\n"}))
    assert response.status_code == 200
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.license_id == portal.org_linked.id
    assert parsed.apply_before - parsed.issued_at == 30 * DAY


def test_response_validity_is_capped_by_the_product(portal: Portal) -> None:
    store = portal.svc.store
    short = admin.create_product(
        store, portal.svc.keyring, portal.acme, name="Short", now=NOW, max_response_validity=2 * DAY
    )
    lic = admin.create_license(
        store,
        portal.acme,
        product_id=short.id,
        allowed_activations=1,
        allowed_deactivations=0,
        now=NOW,
        owner_user_email="carol@example.com",
    )
    data = Machine(fingerprint="fp-short").request(
        Kind.ACTIVATION, short.id, license_key=lic.key, issued_at=NOW
    )
    carol = portal.login("carol@example.com")
    response = result_file(carol, submit(carol, "/activate", {"validity": "30"}, files=upload(data)))
    parsed = parse_response(response.content, portal.svc.keyring.public_keys())
    assert parsed.apply_before - parsed.issued_at == 2 * DAY


def test_activation_for_a_license_the_user_cannot_see_records_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    posted = submit(client, "/activate", {"validity": "7"}, files=upload(activation(portal, portal.carols)))
    response = refused(client, posted, "LICENSE_NOT_FOUND")
    assert "you may not use it" in response.text
    assert "content-disposition" not in posted.headers and "content-disposition" not in response.headers
    assert portal.snapshot() == before


def test_trial_request_on_the_activation_page_is_refused_and_records_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    trial = Machine(fingerprint="fp-trial").request(Kind.TRIAL, portal.product.id, issued_at=NOW)
    response = refused(client, submit(client, "/activate", {"validity": "7"}, files=upload(trial)))
    assert "Code: MALFORMED_REQUEST" in response.text
    assert "This is a trial request, and trials are not started in the portal." in shown_text(response.text)
    assert portal.snapshot() == before


@pytest.mark.parametrize(
    ("form", "files", "code"),
    [
        ({}, None, "INVALID_ARGUMENT"),
        ({"text": "   "}, None, "INVALID_ARGUMENT"),
        ({"text": "not a request"}, None, "MALFORMED_REQUEST"),
        ({"text": "x" * (MAX_FILE_BYTES + 1)}, None, "REQUEST_TOO_LARGE"),
        ({}, upload(b"x" * (MAX_FILE_BYTES + 1)), "REQUEST_TOO_LARGE"),
        ({"validity": "9999"}, "valid", "INVALID_ARGUMENT"),
        ({"validity": "-1"}, "valid", "INVALID_ARGUMENT"),
    ],
)
def test_bad_activation_forms_are_explained(
    portal: Portal, form: dict[str, str], files: Any, code: str
) -> None:
    client = portal.login("bob@example.com")
    if files == "valid":
        files = upload(activation(portal, portal.bobs))
    before = portal.snapshot()
    response = refused(client, submit(client, "/activate", form, files=files), code)
    assert "<form" in response.text  # the form is shown again
    assert portal.snapshot() == before


def test_activation_limit_is_explained_in_plain_words(portal: Portal) -> None:
    client = portal.login("carol@example.com")
    for n in range(3):
        assert (
            submit(
                client, "/activate", {}, files=upload(activation(portal, portal.carols, f"c{n}"))
            ).status_code
            == 303
        )
    posted = submit(client, "/activate", {}, files=upload(activation(portal, portal.carols, "c4")))
    response = refused(client, posted, "ACTIVATION_LIMIT")
    assert "This license has no activations left. Deactivate a machine you no longer use" in response.text


def test_the_same_request_twice_reissues_without_counting_twice(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    data = activation(portal, portal.bobs)
    first = submit(client, "/activate", {}, files=upload(data))
    first_page = shown_text(client.get(first.headers["location"]).text)
    first_file = client.get(first.headers["location"] + "/download")
    second = submit(client, "/activate", {}, files=upload(data))
    second_page = shown_text(client.get(second.headers["location"]).text)
    second_file = client.get(second.headers["location"] + "/download")
    assert "is activated" in first_page and "1 of 3 used, 2 left" in first_page
    assert "was already activated: here is the same response again" in second_page
    assert "No seat was used this time." in second_page and "1 of 3 used, 2 left" in second_page
    assert first_file.headers["content-disposition"] == second_file.headers["content-disposition"]
    assert "1 of 3 used" in shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    # The dashboard does not show the second upload as a second seat.
    activity = shown_text(client.get("/").text)
    assert activity.count("Offline activation: the same response again, nothing counted") == 1


# -- offline deactivation --------------------------------------------------------------------


def test_deactivation_downloads_a_signed_receipt(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-old-pc")
    data = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=NOW)
    activated = parse_response(
        result_file(client, submit(client, "/activate", {}, files=upload(data))).content,
        portal.svc.keyring.public_keys(),
    )
    request = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    response = result_file(client, submit(client, "/deactivate", {}, files=upload(request)))
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert SAFE_FILENAME.match(disposition)
    assert disposition.endswith(f'-{activated.activation_id}-deactivation-receipt.response"')
    receipt = parse_response(response.content, portal.svc.keyring.public_keys())
    assert receipt.kind is Kind.DEACTIVATION and receipt.deactivated_at == NOW
    text = shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    assert "0 of 3 used" in text and "1 of 2 used" in text and "Deactivated" in text


def test_a_request_on_the_wrong_page_names_the_right_page_and_changes_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-wrong-page")
    activate = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=NOW)
    on_deactivate = refused(
        client, submit(client, "/deactivate", {}, files=upload(activate)), "MALFORMED_REQUEST"
    )
    text = shown_text(on_deactivate.text)
    assert (
        "This is an activation request, which this page does not take. Upload it on Activate offline" in text
    )
    assert '<a href="/activate">Activate offline</a>' in on_deactivate.text
    # The engine's words are for the logs, not for the person.
    assert "only deactivation requests are taken here" not in text
    assert "0 of 3 used" in shown_text(client.get(f"/licenses/{portal.bobs.id}").text)
    # And the other way round: a deactivation request on the Activate page.
    activated = parse_response(
        result_file(client, submit(client, "/activate", {}, files=upload(activate))).content,
        portal.svc.keyring.public_keys(),
    )
    deactivate = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    on_activate = refused(
        client, submit(client, "/activate", {}, files=upload(deactivate)), "MALFORMED_REQUEST"
    )
    assert (
        "This is a deactivation request, which this page does not take. Upload it on Deactivate offline"
        in shown_text(on_activate.text)
    )
    assert '<a href="/deactivate">Deactivate offline</a>' in on_activate.text
    assert "1 of 3 used" in shown_text(client.get(f"/licenses/{portal.bobs.id}").text)


RESPONSE_WORDS = (
    "This is a response file, not a request. Apply it on the machine with the app; it is not uploaded here."
)


@pytest.mark.parametrize("page", ["/activate", "/deactivate"])
def test_a_file_that_belongs_elsewhere_is_recognised_and_changes_nothing(portal: Portal, page: str) -> None:
    client = portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-elsewhere")
    request = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=NOW)
    response = result_file(client, submit(client, "/activate", {}, files=upload(request))).content
    receipt_request = machine.request(
        Kind.DEACTIVATION,
        portal.product.id,
        activation_id=parse_response(response, portal.svc.keyring.public_keys()).activation_id,
        issued_at=NOW,
    )
    trial = Machine(fingerprint="fp-trial-elsewhere").request(Kind.TRIAL, portal.product.id, issued_at=NOW)
    before = portal.snapshot()
    wrong_kind = receipt_request if page == "/activate" else request
    right_page = "Deactivate offline" if page == "/activate" else "Activate offline"
    for data, as_text, says in (
        (response, False, RESPONSE_WORDS),
        (response, True, RESPONSE_WORDS),  # pasted: the same file
        (trial, False, "This is a trial request, and trials are not started in the portal."),
        (wrong_kind, False, f"which this page does not take. Upload it on {right_page}"),
    ):
        form, files = ({"text": data.decode()}, None) if as_text else ({}, upload(data, "machine.response"))
        shown = refused(client, submit(client, page, form, files=files), "MALFORMED_REQUEST")
        assert says in shown_text(shown.text), (page, says)
    assert portal.snapshot() == before


def test_deactivation_of_another_persons_activation_is_refused(portal: Portal) -> None:
    carol, bob = portal.login("carol@example.com"), portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-carol")
    data = machine.request(Kind.ACTIVATION, portal.product.id, license_key=portal.carols.key, issued_at=NOW)
    activated = parse_response(
        result_file(carol, submit(carol, "/activate", {}, files=upload(data))).content,
        portal.svc.keyring.public_keys(),
    )
    request = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    before = portal.snapshot()
    response = refused(bob, submit(bob, "/deactivate", {"text": request.decode()}), "ACTIVATION_NOT_FOUND")
    assert request.decode() in response.text  # the pasted text is there again
    assert portal.snapshot() == before


def test_an_activation_request_on_the_deactivation_page_is_refused(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    posted = submit(client, "/deactivate", {}, files=upload(activation(portal, portal.bobs)))
    refused(client, posted, "MALFORMED_REQUEST")
    assert portal.snapshot() == before


# -- batch -----------------------------------------------------------------------------------


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_batch_zip_returns_responses_and_a_report(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    now = NOW  # the portal's batches run at the app's clock
    mine = Machine(fingerprint="fp-batch-1").request(
        Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=now
    )
    theirs = Machine(fingerprint="fp-batch-2").request(
        Kind.ACTIVATION, portal.product.id, license_key=portal.carols.key, issued_at=now
    )
    archive = zipped({"a.request": mine, "b.request": theirs})
    posted = submit(
        client, "/batch", {"validity": "3"}, files={"archive": ("reqs.zip", archive, "application/zip")}
    )
    response = result_file(client, posted)  # the result page, then the zip it offers
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert SAFE_FILENAME.match(response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        assert sorted(z.namelist()) == ["a.response", "report.csv"]
        rows = {r["file"]: r for r in csv.DictReader(io.StringIO(z.read("report.csv").decode()))}
        parsed = parse_response(z.read("a.response"), portal.svc.keyring.public_keys())
    assert rows["a.request"]["code"] == "OK" and rows["b.request"]["code"] == "LICENSE_NOT_FOUND"
    assert parsed.license_id == portal.bobs.id and parsed.apply_before - parsed.issued_at == 3 * DAY
    with portal.svc.store.read() as tx:
        assert tx.activations(portal.carols.id) == []


def test_batch_refuses_trial_requests(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    trial = Machine(fingerprint="fp-trial").request(Kind.TRIAL, portal.product.id, issued_at=NOW)
    archive = zipped({"t.request": trial})
    posted = submit(client, "/batch", {}, files={"archive": ("x.zip", archive, "application/zip")})
    response = result_file(client, posted)
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("report.csv").decode())))
    assert rows[0]["code"] != "OK"
    assert portal.snapshot()["trials"] == []


@pytest.mark.parametrize(
    "archive",
    [
        b"this is not a zip",
        b"",
        zipped({"../escape.request": b"x"}),
        zipped({"big.request": b"\0" * (2 * 1024 * 1024)}),  # compressed far more than 100:1
    ],
)
def test_hostile_zip_is_refused_with_bad_archive(portal: Portal, archive: bytes) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    posted = submit(
        client, "/batch", {"validity": "3"}, files={"archive": ("x.zip", archive, "application/zip")}
    )
    response = refused(client, posted, "BAD_ARCHIVE")
    assert "This zip file cannot be processed." in response.text
    assert '<option value="3" selected>' in response.text  # the choice made is kept
    assert portal.snapshot() == before


def test_batch_whose_responses_clash_is_refused_before_any_seat_is_used(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    archive = zipped(
        {
            "a.request": activation(portal, portal.bobs, "a"),
            "a.response/b.request": activation(portal, portal.bobs, "b"),
        }
    )
    before = portal.snapshot()
    posted = submit(client, "/batch", {}, files={"archive": ("x.zip", archive, "application/zip")})
    response = refused(client, posted, "BAD_ARCHIVE")
    assert "a.response/b.request" in response.text  # the details name the entry
    assert portal.snapshot() == before


# -- result pages ----------------------------------------------------------------------------


def test_the_result_page_shows_the_machine_and_the_seats_and_a_reload_repeats_nothing(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    data = activation(portal, portal.bobs, "desk", hostname="desk-12", os="Linux", app_version="3.1")
    posted = submit(client, "/activate", {"validity": "7"}, files=upload(data))
    assert posted.status_code == 303 and posted.headers["location"] == "/activate/result"
    assert "content-disposition" not in posted.headers  # the file comes from the result page
    before = portal.snapshot()
    for _ in range(2):  # a reload shows the same and records nothing
        page = client.get("/activate/result")
        text = shown_text(page.text)
        assert page.status_code == 200 and "desk-12 is activated" in text
        for expected in (
            "Linux",
            "version 3.1",
            "fp-desk",
            "1 of 3 used, 2 left",
            "Apply by",
            "Download the response file",
        ):
            assert expected in text, expected
        assert f'href="/licenses/{portal.bobs.id}"' in page.text
        assert client.get("/activate/result/download").status_code == 200
    assert portal.snapshot() == before


def test_a_result_is_shown_only_to_its_person_and_only_when_signed(portal: Portal) -> None:
    carol, bob = portal.login("carol@example.com"), portal.login("bob@example.com")
    submit(carol, "/activate", {}, files=upload(activation(portal, portal.carols, "carol-pc")))
    stolen = carol.cookies.get("ofs_result")
    assert stolen
    # Nothing to show without the cookie, for another person's result, or for a forged one.
    assert bob.get("/activate/result").status_code == 404
    assert "No result to show" in bob.get("/activate/result").text
    bob.cookies.set("ofs_result", stolen, path="/activate/result")
    assert bob.get("/activate/result").status_code == 404
    assert bob.get("/activate/result/download").status_code == 404
    flag, _, jws = stolen.strip('"').partition(":")
    head, payload, signature = jws.split(".")
    forger = portal.login("carol@example.com")  # a browser with only the forged cookie
    # One character in the middle of the signature changed: six of its bits (the last character's
    # padding bits would not count).
    bad = signature[:10] + ("B" if signature[10] == "A" else "A") + signature[11:]
    forger.cookies.set("ofs_result", f"{flag}:{head}.{payload}.{bad}", path="/activate/result")
    assert forger.get("/activate/result").status_code == 404
    # A deactivation page does not show an activation's result.
    other = portal.login("carol@example.com")
    other.cookies.set("ofs_result", stolen, path="/deactivate/result")
    assert other.get("/deactivate/result").status_code == 404
    assert carol.get("/activate/result").status_code == 200  # its own browser still sees it


def test_the_deactivation_result_says_the_seat_is_free(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    machine = Machine(fingerprint="fp-gone")
    data = machine.request(
        Kind.ACTIVATION, portal.product.id, license_key=portal.bobs.key, issued_at=NOW, hostname="gone-pc"
    )
    activated = parse_response(
        result_file(client, submit(client, "/activate", {}, files=upload(data))).content,
        portal.svc.keyring.public_keys(),
    )
    request = machine.request(
        Kind.DEACTIVATION, portal.product.id, activation_id=activated.activation_id, issued_at=NOW
    )
    posted = submit(client, "/deactivate", {}, files=upload(request))
    assert posted.status_code == 303 and posted.headers["location"] == "/deactivate/result"
    text = shown_text(client.get("/deactivate/result").text)
    assert "gone-pc is deactivated" in text and "Its seat is free again." in text
    assert "0 of 3 used, 3 left" in text and "Download the receipt" in text
