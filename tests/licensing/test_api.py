"""The licensing part of the JSON API: offline activation and deactivation, the request queue, and
batches (see the end of the file)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import zipfile
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.errors import Code
from offline_service.fileformat.jws import MAX_FILE_BYTES
from offline_service.fileformat.messages import Kind
from offline_service.licensing import batch
from offline_service.licensing.decisions import Policy
from offline_service.licensing.offline import RequestQueue
from offline_service.licensing.services import DEFAULT_MAX_RESPONSE_VALIDITY
from offline_service.next_steps import next_step
from tests.factories import NOW, Machine
from tests.web.site import (
    ACTIVATE,
    DEACTIVATE,
    POSTS,
    Site,
    SiteFactory,
    activation_request,
    error,
)

# -- offline activation and deactivation ----------------------------------------------------------


def test_offline_activate_json(site: Site) -> None:
    machine = Machine(fingerprint="fp-laptop")
    data = activation_request(site, "user1", "user1", machine)
    response = site.activate("user1", data)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"offlineResponse", "activationId", "licenseId", "reissued"}
    assert body["licenseId"] == site.licenses["user1"].id and body["reissued"] is False
    verified = site.verify(body["offlineResponse"])
    assert verified.kind is Kind.ACTIVATION and verified.fingerprint == "fp-laptop"
    assert verified.activation_id == body["activationId"] and verified.used_activations == 1
    assert verified.apply_before - verified.issued_at == Policy().default_response_validity
    listed = site.client.get(
        f"/v1/licenses/{site.licenses['user1'].id}/activations", headers=site.auth("user1")
    ).json()
    assert [(a["id"], a["fingerprint"], a["deactivatedAt"]) for a in listed] == [
        (body["activationId"], "fp-laptop", None)
    ]
    detail = site.client.get(f"/v1/licenses/{site.licenses['user1'].id}", headers=site.auth("user1"))
    assert detail.json()["usedActivations"] == 1
    # The same machine again: the same activation, no second seat.
    again = site.activate("user1", activation_request(site, "user1", "user1", machine))
    assert again.json()["activationId"] == body["activationId"] and again.json()["reissued"] is True
    assert site.license("user1").used_activations == 1


def test_offline_activate_multipart(site: Site) -> None:
    data = activation_request(site, "user1", "user1")
    armored = b"-----BEGIN OFFLINE REQUEST-----\n" + data + b"\n-----END OFFLINE REQUEST-----\n"
    for upload in (data, armored):
        response = site.client.post(
            ACTIVATE,
            files={"offlineRequest": ("request.req", upload, "application/octet-stream")},
            data={"responseValidity": "600"},
            headers=site.auth("user1"),
        )
        assert response.status_code == 200, response.text
        verified = site.verify(response.json()["offlineResponse"])
        assert verified.apply_before == NOW + 600
    # The request as a plain form field works too.
    response = site.client.post(ACTIVATE, data={"offlineRequest": data.decode()}, headers=site.auth("user1"))
    assert response.status_code == 200


def test_multipart_without_the_request_or_with_extra_files_is_refused(site: Site) -> None:
    data = activation_request(site, "user1", "user1")
    missing = site.client.post(
        ACTIVATE, files={"file": ("a.req", data, "application/octet-stream")}, headers=site.auth("user1")
    )
    assert error(missing) == (400, "INVALID_ARGUMENT")
    # The answer names the fields the call takes, not only the one it did not expect.
    assert "'file'" in missing.json()["message"]
    assert "offlineRequest, responseValidity" in missing.json()["message"]
    two = site.client.post(
        ACTIVATE,
        files=[
            ("offlineRequest", ("a.req", data, "application/octet-stream")),
            ("offlineRequest", ("b.req", data, "application/octet-stream")),
        ],
        headers=site.auth("user1"),
    )
    assert error(two) == (400, "INVALID_ARGUMENT")
    assert site.license("user1").used_activations == 0


@pytest.mark.parametrize(
    ("asked", "granted"), [(1, 1), (3600, 3600), (10**12, DEFAULT_MAX_RESPONSE_VALIDITY)]
)
def test_response_validity_is_honoured_and_capped(site: Site, asked: int, granted: int) -> None:
    response = site.activate("user1", activation_request(site, "user1", "user1"), validity=asked)
    verified = site.verify(response.json()["offlineResponse"])
    assert verified.apply_before - verified.issued_at == granted


@pytest.mark.parametrize("validity", [0, -5, 1.5, "600", True, [600], {"s": 1}])
def test_invalid_response_validity_is_invalid_argument(site: Site, validity: object) -> None:
    response = site.activate("user1", activation_request(site, "user1", "user1"), validity=validity)
    assert error(response) == (400, "INVALID_ARGUMENT")
    assert site.license("user1").used_activations == 0


@pytest.mark.parametrize("validity", ["0", "-1", "1.5", "abc", "1" * 20, "١٢"])
def test_invalid_response_validity_in_a_form_is_invalid_argument(site: Site, validity: str) -> None:
    response = site.client.post(
        ACTIVATE,
        files={"offlineRequest": ("r.req", activation_request(site, "user1", "user1"), "text/plain")},
        data={"responseValidity": validity},
        headers=site.auth("user1"),
    )
    assert error(response) == (400, "INVALID_ARGUMENT")


def test_deactivate_frees_the_seat(site: Site) -> None:
    machine = Machine(fingerprint="fp-desk")
    activation_id = site.activate("user1", activation_request(site, "user1", "user1", machine)).json()[
        "activationId"
    ]
    request = machine.request(Kind.DEACTIVATION, site.product.id, activation_id=activation_id, issued_at=NOW)
    response = site.deactivate("user1", request)
    assert response.status_code == 200
    assert response.json()["activationId"] == activation_id and response.json()["reissued"] is False
    verified = site.verify(response.json()["offlineResponse"])
    assert verified.kind is Kind.DEACTIVATION and verified.deactivated_at == NOW
    lic = site.license("user1")
    assert (lic.used_activations, lic.used_deactivations) == (0, 1)
    # Multipart works too, and sending it again counts nothing more.
    again = site.client.post(
        DEACTIVATE,
        files={"offlineRequest": ("d.req", request, "application/octet-stream")},
        headers=site.auth("user1"),
    )
    assert again.status_code == 200 and again.json()["reissued"] is True
    assert site.license("user1").used_deactivations == 1


def test_a_request_of_the_wrong_kind_is_refused_before_anything_is_recorded(site: Site) -> None:
    machine = Machine(fingerprint="fp-kind")
    trial = machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)
    deactivation = machine.request(Kind.DEACTIVATION, site.product.id, activation_id="act_x", issued_at=NOW)
    activation = activation_request(site, "user1", "user1", machine)
    before = site.state()
    assert error(site.activate("user1", trial)) == (400, "MALFORMED_REQUEST")
    assert error(site.activate("user1", deactivation)) == (400, "MALFORMED_REQUEST")
    assert error(site.deactivate("user1", activation)) == (400, "MALFORMED_REQUEST")
    assert site.state() == before


@pytest.mark.parametrize(("case", "status", "code"), [
    ("tampered", 400, "BAD_SIGNATURE"),
    ("garbage", 400, "MALFORMED_REQUEST"),
    ("old", 422, "REQUEST_EXPIRED"),
    ("future", 422, "REQUEST_FROM_FUTURE"),
    ("unknown product", 404, "PRODUCT_NOT_FOUND"),
    ("other product", 422, "PRODUCT_MISMATCH"),
    ("seats", 409, "ACTIVATION_LIMIT"),
])  # fmt: skip
def test_engine_refusals_map_to_statuses(site: Site, case: str, status: int, code: str) -> None:
    key = site.licenses["user1"].key
    machine = Machine(fingerprint="fp-errors")
    if case == "tampered":
        head, payload, sig = activation_request(site, "user1", "user1").split(b".")
        data = b".".join((head, payload, (b"A" if sig[:1] != b"A" else b"B") + sig[1:]))
    elif case == "garbage":
        data = b"not a request"
    elif case == "old":
        data = machine.request(Kind.ACTIVATION, site.product.id, license_key=key, issued_at=NOW - 40 * 86400)
    elif case == "future":
        data = machine.request(Kind.ACTIVATION, site.product.id, license_key=key, issued_at=NOW + 3600)
    elif case == "unknown product":
        data = machine.request(Kind.ACTIVATION, "prod_nope", license_key=key, issued_at=NOW)
    elif case == "other product":
        data = machine.request(Kind.ACTIVATION, site.no_trials.id, license_key=key, issued_at=NOW)
    else:
        for i in range(3):
            assert site.activate(
                "user1", activation_request(site, "user1", "user1", Machine(f"fp-{i}"))
            ).is_success
        data = activation_request(site, "user1", "user1", machine)
    before = site.state()
    assert error(site.activate("user1", data)) == (status, code)
    assert site.state() == before


def test_a_request_file_over_16_kib_is_too_large(site: Site) -> None:
    data = b" " * (MAX_FILE_BYTES + 1 - 100) + activation_request(site, "user1", "user1")[:100]
    assert len(data) > MAX_FILE_BYTES
    assert error(site.activate("user1", data)) == (413, "REQUEST_TOO_LARGE")
    upload = site.client.post(
        ACTIVATE,
        files={"offlineRequest": ("big.req", data, "application/octet-stream")},
        headers=site.auth("user1"),
    )
    assert error(upload) == (413, "REQUEST_TOO_LARGE")
    assert site.audit()[0].code == "REQUEST_TOO_LARGE"  # refused by the engine, and audited
    body = json.dumps({"offlineRequest": "x" * (4 * MAX_FILE_BYTES)})
    too_big = site.client.post(
        ACTIVATE, content=body, headers={**site.auth("user1"), "content-type": "application/json"}
    )
    assert error(too_big) == (413, "REQUEST_TOO_LARGE")


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "MALFORMED_REQUEST"),
        (b"\xff\xfe", "MALFORMED_REQUEST"),
        (b"", "MALFORMED_REQUEST"),
        (b"[]", "INVALID_ARGUMENT"),
        (b"null", "INVALID_ARGUMENT"),
        (b'"x"', "INVALID_ARGUMENT"),
        (b'{"offlineRequest": 5}', "INVALID_ARGUMENT"),
    ],
)
def test_json_that_cannot_be_parsed_is_malformed_and_the_wrong_json_is_invalid(
    site: Site, path: str, body: bytes, code: str
) -> None:
    headers = {"content-type": "application/json"}
    if path in (ACTIVATE, DEACTIVATE):
        headers.update(site.auth("user1"))
    assert error(site.client.post(path, content=body, headers=headers)) == (400, code)


def test_a_broken_multipart_body_is_invalid_argument(site: Site) -> None:
    response = site.client.post(
        ACTIVATE,
        content=b"--x\r\nnonsense",
        headers={**site.auth("user1"), "content-type": "multipart/form-data; boundary=x"},
    )
    assert error(response)[0] == 400


def test_decisions_are_audited_under_the_caller(site: Site) -> None:
    site.activate("user1", activation_request(site, "user1", "user1"))
    site.activate("user1", activation_request(site, "user1", "org_b"))
    user1 = site.client.get("/v1/me", headers=site.auth("user1")).json()["id"]
    entries = [(e.actor, e.action, e.code) for e in site.audit()[:2]]
    assert entries == [
        (f"user:{user1}", "activation", "LICENSE_NOT_FOUND"),
        (f"user:{user1}", "activation", "OK"),
    ]


# -- the request queue: requests waiting together share one trip and one transaction per caller --


def test_waiting_requests_share_a_trip_and_each_gets_its_own_answer(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = site.svc.engine.decide_many

    def counted(tx: Any, items: Any, **kw: Any) -> Any:
        calls.append(len(items))
        return real(tx, items, **kw)

    monkeypatch.setattr(site.svc.engine, "decide_many", counted)
    user1, user2 = (site.auth(r)["authorization"].split()[1] for r in ("user1", "user2"))
    machine = Machine(fingerprint="fp-kinds")
    jobs = [
        *((user1, activation_request(site, "user1", "user1", Machine(f"fp-q{i}"))) for i in range(4)),
        (user1, activation_request(site, "user1", "org_b")),
        (user2, activation_request(site, "user2", "group")),
        ("not-a-token", activation_request(site, "user1", "user1")),
        (user1, machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)),
    ]
    queue = RequestQueue(site.svc)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(queue.process(t, d, validity=None, kinds=(Kind.ACTIVATION,)) for t, d in jobs),
            return_exceptions=True,
        )

    results = site.client.portal.call(run)  # on the app's event loop (pytest's thread may have one)
    assert sorted(calls) == [1, 6]  # one transaction for user1's six, one for user2's
    codes = [r.code for r in results]
    assert codes == [
        "OK",
        "OK",
        "OK",
        "ACTIVATION_LIMIT",
        "LICENSE_NOT_FOUND",
        "OK",
        "UNAUTHENTICATED",
        "MALFORMED_REQUEST",
    ]
    assert site.license("user1").used_activations == 3 and site.license("group").used_activations == 1


def test_the_queue_holds_the_writers_lock_only_to_decide(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens, verification and signatures run with the writers' lock free, so that other
    processes and instances decide meanwhile; the decisions run with it held."""
    seen: dict[str, bool] = {}
    engine = site.svc.engine

    def lock_free_elsewhere() -> bool:
        # Asked from another thread: this one may hold the lock re-entrantly.
        box: list[bool] = []

        def probe() -> None:
            with site.svc.store.write_lock_if_free() as free:
                box.append(free)

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return box[0]

    def watch(name: str) -> Any:
        real = getattr(engine, name)

        def watched(*args: Any, **kw: Any) -> Any:
            seen[name] = lock_free_elsewhere()
            return real(*args, **kw)

        return watched

    def deciding(tx: Any, items: Any, **kw: Any) -> Any:
        seen["decide_many"] = lock_free_elsewhere()
        return real_decide(tx, items, **kw)

    real_decide = engine.decide_many
    monkeypatch.setattr(engine, "verify_many", watch("verify_many"))
    monkeypatch.setattr(engine, "sign_many", watch("sign_many"))
    monkeypatch.setattr(engine, "decide_many", deciding)
    token = site.auth("user1")["authorization"].split()[1]
    queue = RequestQueue(site.svc)
    data = activation_request(site, "user1", "user1", Machine("fp-lock"))

    async def run() -> Any:
        return await queue.process(token, data, validity=None, kinds=(Kind.ACTIVATION,))

    assert site.client.portal.call(run).ok
    assert seen == {"verify_many": True, "decide_many": False, "sign_many": True}


def test_an_unexpected_failure_fails_only_its_own_request(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = activation_request(site, "user1", "user1", Machine("fp-poison"))
    real = site.svc.engine.decide_many

    def flaky(tx: Any, items: Any, **kw: Any) -> Any:
        if any(i.request is not None and i.request.fingerprint == "fp-poison" for i in items):
            raise RuntimeError("boom")
        return real(tx, items, **kw)

    monkeypatch.setattr(site.svc.engine, "decide_many", flaky)
    token = site.auth("user1")["authorization"].split()[1]
    good = activation_request(site, "user1", "user1", Machine("fp-good"))
    queue = RequestQueue(site.svc)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(queue.process(token, d, validity=None, kinds=(Kind.ACTIVATION,)) for d in (poison, good)),
            return_exceptions=True,
        )

    failed, granted = site.client.portal.call(run)
    assert isinstance(failed, RuntimeError) and granted.ok
    assert site.license("user1").used_activations == 1
    # Through HTTP it is a 500 with a stable code, no details, and the security headers (the
    # last-resort handler sits outside every middleware, so it adds them itself).
    client = TestClient(site.client.app, raise_server_exceptions=False)
    response = client.post(ACTIVATE, json={"offlineRequest": poison.decode()}, headers=site.auth("user1"))
    assert response.json() == {
        "code": "INTERNAL_ERROR",
        "message": "internal error",
        "nextStep": next_step(Code.INTERNAL_ERROR),
    }
    assert response.status_code == 500 and "boom" not in response.text and "Traceback" not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- batches --------------------------------------------------------------------------------------


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _report(archive: bytes) -> tuple[list[str], dict[str, dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("report.csv").decode())))
        return z.namelist(), {r["file"]: r for r in rows}


def test_batch_zip_in_zip_out(site: Site) -> None:
    upload = _zip(
        {
            "a.req": activation_request(site, "user1", "user1", Machine("fp-a")),
            "b.req": activation_request(site, "user1", "user1", Machine("fp-b")),
            "theirs.req": activation_request(site, "user1", "org_b", Machine("fp-c")),
        }
    )
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert (response.headers["x-accepted"], response.headers["x-rejected"]) == ("2", "1")
    names, rows = _report(response.content)
    assert "report.csv" in names
    assert {f: r["code"] for f, r in rows.items()} == {
        "a.req": "OK",
        "b.req": "OK",
        "theirs.req": "LICENSE_NOT_FOUND",
    }
    assert site.license("user1").used_activations == 2 and site.license("org_b").used_activations == 0
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        responses = [n for n in z.namelist() if n != "report.csv"]
        assert len(responses) == 2
        for name in responses:
            site.verify(z.read(name).decode())


def test_a_batch_upload_uses_the_apps_engine_and_opens_no_store_of_its_own(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kw: object) -> None:
        raise AssertionError("a web batch opened a store or keyring of its own")

    monkeypatch.setattr(batch, "open_store", refused)
    monkeypatch.setattr(batch, "Keyring", refused)
    upload = _zip({"a.req": activation_request(site, "user1", "user1")})
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert response.status_code == 200 and response.headers["x-accepted"] == "1"


def test_batch_as_a_form_with_response_validity(site: Site) -> None:
    upload = _zip({"a.req": activation_request(site, "admin_a", "org_a")})
    response = site.client.post(
        "/v1/batches",
        files={"file": ("requests.zip", upload, "application/zip")},
        data={"responseValidity": "120"},
        headers=site.auth("admin_a"),
    )
    assert response.status_code == 200 and response.headers["x-accepted"] == "1"
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        name = next(n for n in z.namelist() if n != "report.csv")
        verified = site.verify(z.read(name).decode())
    assert verified.apply_before == NOW + 120
    missing = site.client.post(
        "/v1/batches",
        files={"zip": ("requests.zip", upload, "application/zip")},
        headers=site.auth("admin_a"),
    )
    assert error(missing) == (400, "INVALID_ARGUMENT")


def test_a_batch_takes_no_trial_requests(site: Site) -> None:
    trial = Machine(fingerprint="fp-zip-trial").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    deactivation = Machine(fingerprint="fp-zip-d").request(
        Kind.DEACTIVATION, site.product.id, activation_id="act_nope", issued_at=NOW
    )
    before = site.state()
    response = site.client.post(
        "/v1/batches",
        content=_zip({"t.req": trial, "d.req": deactivation}),
        headers={**site.auth("user1"), "content-type": "application/zip"},
    )
    assert {f: r["code"] for f, r in _report(response.content)[1].items()} == {
        "t.req": "MALFORMED_REQUEST",
        "d.req": "ACTIVATION_NOT_FOUND",
    }
    assert site.state() == before


@pytest.mark.parametrize("upload", [b"", b"not a zip", "traversal", "symlink"])
def test_hostile_or_broken_zip_is_bad_archive(site: Site, upload: bytes | str) -> None:
    if upload == "traversal":
        upload = _zip({"../../etc/evil.req": b"x"})
    elif upload == "symlink":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            info = zipfile.ZipInfo("link.req")
            info.external_attr = 0o120777 << 16
            z.writestr(info, "/etc/passwd")
        upload = buffer.getvalue()
    assert isinstance(upload, bytes)
    before = site.state()
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(response) == (400, "BAD_ARCHIVE")
    assert site.state() == before


@pytest.mark.parametrize(
    "names",
    [("a.req", "a.response/b.req"), ("A.req", "a.req"), ("X.req", "x.jws"), ("x" * 250 + ".req",)],
    ids=["file and folder", "case", "responses differ in case", "response name over 255 bytes"],
)
def test_a_zip_whose_responses_cannot_be_written_apart_uses_no_seat(
    site: Site, names: tuple[str, ...]
) -> None:
    upload = _zip(
        {name: activation_request(site, "user1", "user1", Machine(f"fp-{n}")) for n, name in enumerate(names)}
    )
    headers = {**site.auth("user1"), "content-type": "application/zip"}  # logged in before the snapshot
    before, audit = site.state(), site.audit()
    response = site.client.post("/v1/batches", content=upload, headers=headers)
    assert error(response) == (400, "BAD_ARCHIVE")
    assert names[-1][:40] in response.json()["message"]
    assert site.state() == before and site.audit() == audit


def test_batch_over_the_upload_limit_is_refused(make_site: SiteFactory) -> None:
    site = make_site(max_upload_bytes=1000)
    upload = _zip(
        {f"{i}.req": activation_request(site, "user1", "user1", Machine(f"fp-{i}")) for i in range(3)}
    )
    assert len(upload) > 1000
    response = site.client.post(
        "/v1/batches", content=upload, headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(response) == (413, "REQUEST_TOO_LARGE")

    def chunks():  # no Content-Length: counted while streaming
        yield upload[:600]
        yield upload[600:]

    streamed = site.client.post(
        "/v1/batches", content=chunks(), headers={**site.auth("user1"), "content-type": "application/zip"}
    )
    assert error(streamed) == (413, "REQUEST_TOO_LARGE")
    assert site.license("user1").used_activations == 0
