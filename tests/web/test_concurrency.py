"""Tenants racing through the web layer. Two organizations of one account (Org A's and Org B's
admins in "acme") and a second account ("other") upload zips to the API and to the portal's batch
page and send single request files, all at once and in several rounds: in-process on one app, and
through a real uvicorn process. Each tenant's files aim at its own licenses (one of them scarce)
and at the other tenants' licenses. Afterwards every answer is checked against the database."""

from __future__ import annotations

import csv
import io
import re
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Account
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind, parse_response
from offline_service.ids import email_key
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from offline_service.web.services import Services
from tests.db import rows
from tests.factories import Machine, database_for, wall_now
from tests.servers import serve
from tests.web.site import EMAILS, PASSWORD, Site, _populate, settings_for

pytestmark = pytest.mark.slow

ROUNDS = 3
ZIP_FILES = {"own": 16, "scarce": 3, "foreign": 6}  # per zip upload
SINGLES = {"own": 2, "scarce": 1, "foreign": 2}  # single files per round
SCARCE_SEATS = 5  # fewer than the requests that aim at them
JOIN_SECONDS = 60  # a thread that has not finished by then fails the test (a hang, or a dead server)


@dataclass
class Tenant:
    """One uploader and the licenses of the race: ``own`` (plenty of seats) and ``scarce``."""

    role: str
    account: Account
    product: Product
    user_id: str
    own: License
    scarce: License
    visible: frozenset[str] = frozenset()  # every license the uploader may use

    @property
    def alias(self) -> str:
        return self.account.alias


@dataclass
class Grant:
    """An answer that granted a seat: who asked, through what, and what it said it granted."""

    tenant: str
    channel: str
    activation_id: str
    license_id: str


@dataclass
class Tally:
    grants: list[Grant] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant, kind of file, code)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, grants: Sequence[Grant] = (), refused: Sequence[tuple[str, str, str]] = ()) -> None:
        with self.lock:
            self.grants += grants
            self.refused += refused


def _tenants(svc: Services, world: dict[str, Any]) -> dict[str, Tenant]:
    """The tenants of conftest's world, each with two licenses of its own made for the race."""
    store = svc.store
    # Org A's admin and Org B's admin of account "acme", and the user of account "other".
    owners = {
        "admin_a": (world["acme"], world["product"], {"owner_organization": "Org A"}),
        "admin_b": (world["acme"], world["product"], {"owner_organization": "Org B"}),
        "other": (world["other"], world["other_product"], {"owner_user_email": EMAILS["other"]}),
    }
    tenants = {}
    for role, (account, product, owner) in owners.items():

        def lic(
            seats: int, account: Account = account, product: Product = product, owner: Any = owner
        ) -> License:
            return admin.create_license(
                store, account, product_id=product.id, allowed_activations=seats, allowed_deactivations=3,
                now=world["now"], **owner,
            )  # fmt: skip

        with store.read() as tx:
            user = tx.user_by_email(account.id, email_key(EMAILS[role]))
        assert user is not None
        tenant = Tenant(role, account, product, user.id, own=lic(1000), scarce=lic(SCARCE_SEATS))
        with store.read() as tx:
            tenant.visible = tx.visible_license_ids(account.id, user)
        assert {tenant.own.id, tenant.scarce.id} <= tenant.visible
        tenants[role] = tenant
    return tenants


# -- what the uploaders send --------------------------------------------------------------------


def _files(
    tenants: dict[str, Tenant], me: Tenant, tag: str, counts: dict[str, int], now: int
) -> dict[str, bytes]:
    """Request files named by what they aim at: ``own-*``, ``scarce-*``, ``foreign-*`` (a license
    of another tenant, with this tenant's product or with the other tenant's own product)."""
    others = [t for t in tenants.values() if t is not me]
    files = {}
    for what, count in counts.items():
        for i in range(count):
            machine = Machine(fingerprint=f"fp-{me.role}-{tag}-{what}-{i}")
            if what == "foreign":
                victim = others[i % len(others)]
                target = victim.own if i % 2 else victim.scarce
                product = me.product if i % 4 < 2 else victim.product
            else:
                target, product = (me.own if what == "own" else me.scarce), me.product
            files[f"{what}-{i}.req"] = machine.request(
                Kind.ACTIVATION, product.id, license_key=target.key, issued_at=now
            )
    return files


def _zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _read_answer(
    tenant: Tenant, channel: str, response: httpx.Response, keyring: Keyring, tally: Tally
) -> None:
    """The report and response files of a batch answer, into the tally."""
    assert response.status_code == 200, (
        f"{channel} of {tenant.role}: {response.status_code} {response.text[:500]}"
    )
    assert response.headers["content-type"] == "application/zip"
    grants, refused = [], []
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("report.csv").decode("utf-8"))))
        for row in rows:
            if row["code"] == "OK":
                answer = parse_response(z.read(row["response_file"]), keyring.public_keys(tenant.product.id))
                assert answer.activation_id == row["activation_id"], row
                grants.append(Grant(tenant.role, channel, row["activation_id"], answer.license_id or ""))
            else:
                assert row["activation_id"] == "" and row["response_file"] == "", row
                refused.append((tenant.role, row["file"].split("-")[0], row["code"]))
    tally.add(grants=grants, refused=refused)


# -- the race -------------------------------------------------------------------------------------


def _log_in_portal(client: httpx.Client, tenant: Tenant) -> None:
    form = client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found, form.text[:500]
    response = client.post(
        "/login",
        data={
            "csrf": found.group(1),
            "account": tenant.alias,
            "email": EMAILS[tenant.role],
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text[:500]


def _bearer(client: httpx.Client, tenant: Tenant) -> dict[str, str]:
    response = client.post(
        "/v1/accounts/login",
        json={"accountAlias": tenant.alias, "email": EMAILS[tenant.role], "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['accessToken']}"}


def _race(
    new_client: Callable[[], httpx.Client],
    tenants: dict[str, Tenant],
    keyring: Keyring,
    now: Callable[[], int],
) -> Tally:
    """ROUNDS rounds; in each, every tenant uploads a zip to the API and one to the portal and sends
    single files, each from its own thread, all released together."""
    tally = Tally()
    api = {role: new_client() for role in tenants}
    portal = {role: new_client() for role in tenants}
    headers = {role: _bearer(api[role], t) for role, t in tenants.items()}
    for role, tenant in tenants.items():
        _log_in_portal(portal[role], tenant)

    def api_zip(t: Tenant, tag: str) -> None:
        upload = _zipped(_files(tenants, t, tag, ZIP_FILES, now()))
        response = api[t.role].post(
            "/v1/batches", content=upload, headers={**headers[t.role], "content-type": "application/zip"}
        )
        _read_answer(t, "api", response, keyring, tally)

    def portal_zip(t: Tenant, tag: str) -> None:
        upload = _zipped(_files(tenants, t, tag, ZIP_FILES, now()))
        client = portal[t.role]
        shown = client.get("/batch")
        found = re.search(r'name="csrf" value="([^"]+)"', shown.text)
        assert shown.status_code == 200 and found, shown.text[:500]
        posted = client.post(
            "/batch", data={"csrf": found.group(1)}, files={"archive": ("r.zip", upload, "application/zip")}
        )
        # Post/redirect/get: the result page, kept in the database, then the zip it offers.
        assert posted.status_code == 303, f"portal of {t.role}: {posted.status_code} {posted.text[:500]}"
        page = client.get(posted.headers["location"])
        assert page.status_code == 200, page.text[:500]
        response = client.get(posted.headers["location"] + "/download")
        _read_answer(t, "portal", response, keyring, tally)

    def singles(t: Tenant, tag: str) -> None:
        for name, data in _files(tenants, t, tag, SINGLES, now()).items():
            response = api[t.role].post(
                "/v1/activations/offline-activate",
                json={"offlineRequest": data.decode()},
                headers=headers[t.role],
            )
            what = name.split("-")[0]
            if response.status_code == 200:
                body = response.json()
                answer = parse_response(body["offlineResponse"].encode(), keyring.public_keys(t.product.id))
                assert answer.activation_id == body["activationId"] and answer.license_id == body["licenseId"]
                tally.add(grants=[Grant(t.role, "single", body["activationId"], body["licenseId"])])
            else:
                assert response.status_code < 500, response.text
                tally.add(refused=[(t.role, what, response.json()["code"])])

    for round_ in range(ROUNDS):
        jobs = [(job, t) for t in tenants.values() for job in (api_zip, portal_zip, singles)]
        barrier = threading.Barrier(len(jobs))

        def run(job: Callable[[Tenant, str], None], t: Tenant, tag: str, barrier: threading.Barrier) -> None:
            try:
                barrier.wait(timeout=JOIN_SECONDS)
                job(t, tag)
            except BaseException as exc:  # handed to the test, which fails with it
                with tally.lock:
                    tally.failures.append(f"{job.__name__} of {t.role}: {exc!r}")

        threads = [
            threading.Thread(target=run, args=(job, t, f"r{round_}-{job.__name__}", barrier), daemon=True)
            for job, t in jobs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=JOIN_SECONDS)
        assert not any(thread.is_alive() for thread in threads), "a request did not finish"
        assert not tally.failures, "\n".join(tally.failures)
    for client in (*api.values(), *portal.values()):
        client.close()
    return tally


def _check(tally: Tally, tenants: dict[str, Tenant], store: Store) -> None:
    """Every answer against the database, and the database against the answers."""
    granted = [g.activation_id for g in tally.grants]
    assert len(granted) == len(set(granted)), "one activation was handed out twice"
    activations = dict(rows(store, "SELECT id, license_id FROM activations"))
    assert set(activations) == set(granted), "the database and the answers disagree"
    actors = dict(
        rows(
            store,
            "SELECT activation_id, actor FROM audit_log WHERE code = 'OK' AND activation_id IS NOT NULL",
        )
    )
    for grant in tally.grants:
        tenant = tenants[grant.tenant]
        assert activations[grant.activation_id] == grant.license_id, grant
        assert grant.license_id in tenant.visible, f"{grant} is on a license {tenant.role} may not use"
        assert actors[grant.activation_id] == f"user:{tenant.user_id}", grant
    per_license: dict[str, int] = {}
    for license_id in activations.values():
        per_license[license_id] = per_license.get(license_id, 0) + 1
    for tenant in tenants.values():
        with store.read() as tx:
            own = tx.license_by_id(tenant.account.id, tenant.own.id)
            scarce = tx.license_by_id(tenant.account.id, tenant.scarce.id)
        assert own is not None and scarce is not None
        own_asked = ROUNDS * (2 * ZIP_FILES["own"] + SINGLES["own"])
        assert own.used_activations == per_license.get(own.id, 0) == own_asked
        assert scarce.used_activations == per_license.get(scarce.id, 0) == SCARCE_SEATS
    # Every file aimed at another tenant's license was refused as if that license did not exist.
    foreign = {code for _, what, code in tally.refused if what == "foreign"}
    assert foreign <= {"LICENSE_NOT_FOUND", "PRODUCT_NOT_FOUND"}, foreign
    assert sum(1 for _, what, _ in tally.refused if what == "foreign") == len(tenants) * ROUNDS * (
        2 * ZIP_FILES["foreign"] + SINGLES["foreign"]
    )


def test_tenants_racing_on_one_app_in_process(site: Site) -> None:
    world = {
        "acme": site.acme,
        "other": site.other,
        "product": site.product,
        "other_product": site.other_product,
    }
    tenants = _tenants(site.svc, {**world, "now": int(site.clock.now)})

    def new_client() -> TestClient:
        client = TestClient(site.client.app, follow_redirects=False)
        # Every client on the one event loop of the entered site client, as in a server: the app's
        # request queue lives on one loop. Requests still run at once, on the loop's threads.
        client.portal = site.client.portal
        return client

    tally = _race(new_client, tenants, site.svc.keyring, lambda: int(site.clock.now))

    _check(tally, tenants, site.svc.store)
    assert site.client.get("/healthz").status_code == 200


@pytest.fixture
def server_world(tmp_path: Path, backend: str) -> Iterator[tuple[str, dict[str, Tenant], Settings]]:
    """conftest's world on the test's backend, with the race's licenses, served by uvicorn."""
    settings = settings_for(tmp_path, database_url=database_for(tmp_path, backend))
    svc = Services.open(settings)
    try:
        world = _populate(svc)
        tenants = _tenants(svc, {**world, "now": wall_now()})
    finally:
        svc.close()
    env = {"OFFLINE_SERVICE_PASSWORD_COST": "minimum"}
    where = ["--data", str(settings.data_dir), "--keys", str(settings.keys_dir)]
    where += ["--database-url", settings.database_url] if settings.database_url else []
    with serve(tmp_path, *where, env=env) as url:
        yield url, tenants, settings


def test_tenants_racing_through_a_real_server(server_world: tuple[str, dict[str, Tenant], Settings]) -> None:
    url, tenants, settings = server_world

    def new_client() -> httpx.Client:
        return httpx.Client(base_url=url, follow_redirects=False, timeout=JOIN_SECONDS)

    tally = _race(new_client, tenants, Keyring(settings.keys_dir), wall_now)

    store = open_store(settings)
    try:
        _check(tally, tenants, store)
    finally:
        store.close()
    with new_client() as client:
        assert client.get("/healthz").status_code == 200
