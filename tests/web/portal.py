"""The portal fixture of the page tests: the app in-process with two accounts, an organization, a
group and licenses owned every way; and helpers to post forms and read pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.fileformat.messages import Kind
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.web.app import create_app
from offline_service.web.services import Services
from tests import people
from tests.db import table
from tests.factories import NOW, Machine, database_for
from tests.web.pages import refused as refused  # the page tests of this fixture follow refusals too

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another staple 42"
PAGES = ("/", "/licenses", "/activate", "/deactivate", "/batch")
SAFE_FILENAME = re.compile(r'\Aattachment; filename="[A-Za-z0-9._-]+"\Z')


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Portal:
    """One app over a fresh data directory, with two accounts of people and licenses.

    Account "acme": organization Globex with alice (organization admin) and bob (user, in group
    Engineering); carol, a user of no organization. Licenses: ``org_linked`` (Globex, linked to
    Engineering), ``org_only`` (Globex), ``bobs`` (bob's own), ``carols`` (carol's own).
    Account "other": another bob@example.com, with his own license ``other_bobs``.
    """

    app: Any
    svc: Services
    clock: Clock
    acme: Account
    other: Account
    product: Product
    org_linked: License
    org_only: License
    bobs: License
    carols: License
    other_bobs: License

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def login(self, email: str, *, account: str = "acme", password: str = PASSWORD) -> TestClient:
        client = self.client()
        response = submit(client, "/login", {"account": account, "email": email, "password": password})
        assert response.status_code == 303, response.text
        return client

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the license state tables, for "changes nothing" checks."""
        return {
            t: table(self.svc.store, t)
            for t in ("licenses", "activations", "request_nonces", "trials", "credentials")
        }


@pytest.fixture
def portal(tmp_path: Path, backend: str) -> Iterator[Portal]:
    settings = Settings(
        data_dir=tmp_path / "data",
        keys_dir=tmp_path / "keys",
        password_cost=Cost.MINIMUM,
        database_url=database_for(tmp_path, backend),
    )
    clock = Clock(NOW)
    app = create_app(settings, clock=clock)
    svc: Services = app.state.services
    store, cost = svc.store, Cost.MINIMUM
    acme, _ = admin.ensure_account(store, "acme", now=NOW)
    other, _ = admin.ensure_account(store, "other", now=NOW)
    product = admin.create_product(store, svc.keyring, acme, name="App", now=NOW, trial_days=14)
    other_product = admin.create_product(store, svc.keyring, other, name="Other app", now=NOW)
    people.create_organization(store, acme, name="Globex", now=NOW)
    for email, role, org in (
        ("alice@example.com", Role.ORGANIZATION_ADMIN, "Globex"),
        ("bob@example.com", Role.USER, "Globex"),
        ("carol@example.com", Role.USER, None),
    ):
        people.create_user(
            store, acme, email=email, role=role, organization=org, password=PASSWORD, now=NOW, cost=cost
        )
    people.create_user(
        store, other, email="bob@example.com", role=Role.USER, password=OTHER_PASSWORD, now=NOW, cost=cost
    )
    people.create_group(store, acme, organization="Globex", name="Engineering", now=NOW)
    people.add_user_to_group(store, acme, group="Engineering", email="bob@example.com", now=NOW)

    def license(account: Account, product_id: str, **owner: str) -> License:
        return admin.create_license(
            store,
            account,
            product_id=product_id,
            allowed_activations=3,
            allowed_deactivations=2,
            now=NOW,
            **owner,
        )

    org_linked = license(acme, product.id, owner_organization="Globex")
    org_only = license(acme, product.id, owner_organization="Globex")
    bobs = license(acme, product.id, owner_user_email="bob@example.com")
    carols = license(acme, product.id, owner_user_email="carol@example.com")
    other_bobs = license(other, other_product.id, owner_user_email="bob@example.com")
    people.link_group_license(store, acme, group="Engineering", license_key=org_linked.key, now=NOW)
    yield Portal(
        app=app,
        svc=svc,
        clock=clock,
        acme=acme,
        other=other,
        product=product,
        org_linked=org_linked,
        org_only=org_only,
        bobs=bobs,
        carols=carols,
        other_bobs=other_bobs,
    )
    svc.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def submit(
    client: TestClient,
    path: str,
    data: dict[str, str],
    *,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    page: str | None = None,
) -> Any:
    """GET the page with the form (for its CSRF token), then POST the form."""
    shown = client.get(page or path)
    assert shown.status_code == 200, shown.text
    return client.post(path, data={"csrf": csrf_of(shown.text), **data}, files=files)


def result_file(client: TestClient, posted: Any) -> Any:
    """An activation, deactivation or batch form's answer followed as a browser would: its
    redirect to the result page, then the file that page offers for download."""
    assert posted.status_code == 303, posted.text
    page = client.get(posted.headers["location"])
    assert page.status_code == 200, page.text
    assert f'href="{posted.headers["location"]}/download"' in page.text
    return client.get(posted.headers["location"] + "/download")


def activation(portal: Portal, license: License, name: str = "m1", **extra: Any) -> bytes:
    return Machine(fingerprint=f"fp-{name}").request(
        Kind.ACTIVATION, portal.product.id, license_key=license.key, issued_at=NOW, **extra
    )


def upload(data: bytes, name: str = "machine.request") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "application/octet-stream")}


def shown_text(html: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
