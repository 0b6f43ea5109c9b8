"""A site for the web tests: the app in-process, and two accounts full of people and licenses.

Account "acme" (product "App" with trials, product "NoTrials" without):
  Org A: admin-a (organization admin), user1 and user2 (users); group "Team A" (member user2)
  Org B: admin-b (organization admin)
  licenses: "user1" (owned by user1), "org_a" (owned by Org A), "group" (owned by Org A, linked to
  Team A), "nobody" (no owner), "org_b" (owned by Org B)
Account "other" (product "Other App"): a user with user1's email, owning license "other".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from offline_service.accounts.models import Account, Role
from offline_service.accounts.passwords import Cost
from offline_service.fileformat.messages import Kind, Response, parse_response
from offline_service.licensing import services as admin
from offline_service.licensing.models import License, Product
from offline_service.next_steps import next_step
from offline_service.settings import Settings
from offline_service.web.app import create_app
from offline_service.web.services import Services
from tests import people
from tests.db import table
from tests.factories import NOW, Machine, database_for
from tests.web.contract import Contract

PASSWORD = "correct horse battery"
ORIGIN = "https://vendor.example"
EMAILS = {
    "admin_a": "admin-a@acme.example",
    "user1": "user1@example.com",
    "user2": "user2@acme.example",
    "admin_b": "admin-b@acme.example",
    "other": "user1@example.com",  # the same email, in account "other"
}
# Who may see which license (by the names above).
VISIBLE = {
    "user1": {"user1"},
    "user2": {"group"},
    "admin_a": {"org_a", "group"},
    "admin_b": {"org_b"},
    "other": {"other"},
}
LICENSES = ("user1", "org_a", "group", "nobody", "org_b", "other")
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options")

# The offline-file endpoints of the JSON API, and every POST route a person may call.
ACTIVATE = "/v1/activations/offline-activate"
DEACTIVATE = "/v1/activations/offline-deactivate"
TRIAL = "/v1/trial-activations/offline-activate"
POSTS = ("/v1/accounts/login", ACTIVATE, DEACTIVATE, TRIAL)


class Clock:
    """The app's clock; tests move it."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


class CheckedClient(TestClient):
    """A test client that checks every answer of the API: an error is exactly ``{code, message}``,
    nothing ever holds a traceback, the security headers are always there, and a JSON answer is
    what the app's own /openapi.json documents for its operation and status (tests/web/contract.py)."""

    _contract: Contract | None = None

    def request(self, method: str, url: Any, **kw: Any) -> httpx.Response:  # type: ignore[override]
        response: httpx.Response = super().request(method, url, **kw)
        check_response(response)
        self.contract().check(response)
        return response

    def contract(self) -> Contract:
        """The app's document as it serves it, fetched once (and not itself checked against it)."""
        if self._contract is None:
            served: httpx.Response = super().request("GET", "/openapi.json")
            assert served.status_code == 200, served.text
            self._contract = _contract(served.content)
        return self._contract


@functools.cache
def _contract(document: bytes) -> Contract:
    """One Contract per distinct document: every site serves the same one, its validators reused."""
    return Contract(json.loads(document))


def check_response(response: httpx.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text
    for name in SECURITY_HEADERS:
        assert name in response.headers, name
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        # a refused webhook URL also says why (a stable reason)
        extra = {"reason"} if body.get("code") == "WEBHOOK_URL_REFUSED" else set()
        assert set(body) == {"code", "message", "nextStep", *extra}, body
        assert isinstance(body["code"], str) and isinstance(body["message"], str)
        assert body["nextStep"] == next_step(body["code"]), body


@dataclass
class Site:
    client: TestClient
    svc: Services
    clock: Clock
    acme: Account
    other: Account
    product: Product  # acme, trials on
    no_trials: Product  # acme, trials off
    other_product: Product  # account "other"
    licenses: dict[str, License]
    tokens: dict[str, str] = field(default_factory=dict)

    def product_of(self, role: str) -> Product:
        return self.other_product if role == "other" else self.product

    def login(self, role: str, password: str = PASSWORD) -> httpx.Response:
        return self.client.post(
            "/v1/accounts/login",
            json={
                "accountAlias": "other" if role == "other" else "acme",
                "email": EMAILS[role],
                "password": password,
            },
        )

    def auth(self, role: str) -> dict[str, str]:
        """Bearer headers of ``role`` (logged in once per site)."""
        if role not in self.tokens:
            response = self.login(role)
            assert response.status_code == 200, response.text
            self.tokens[role] = response.json()["accessToken"]
        return {"authorization": f"Bearer {self.tokens[role]}"}

    def admin_auth(self, *scopes: str, account: str = "acme") -> dict[str, str]:
        """Bearer headers of an admin token of ``account`` with these scopes (every scope if none
        is named), made once per site and set of scopes."""
        from offline_service.admin import tokens
        from offline_service.admin.models import Scope

        names = tuple(sorted(scopes or [s.value for s in Scope]))
        key = f"admin:{account}:{' '.join(names)}"
        if key not in self.tokens:
            owner = self.acme if account == "acme" else self.other
            _, self.tokens[key] = tokens.create_token(
                self.svc.store, owner, scopes=names, now=self.svc.now(), name="tests"
            )
        return {"authorization": f"Bearer {self.tokens[key]}"}

    def license(self, name: str) -> License:
        found = self.licenses[name]
        with self.svc.store.read() as tx:
            fresh = tx.license_by_id(found.account_id, found.id)
        assert fresh is not None
        return fresh

    def activate(
        self, role: str, data: bytes, *, validity: Any = None, url: str = "/v1/activations/offline-activate"
    ) -> httpx.Response:
        body: dict[str, Any] = {"offlineRequest": data.decode()}
        if validity is not None:
            body["responseValidity"] = validity
        return self.client.post(url, json=body, headers=self.auth(role))

    def deactivate(self, role: str, data: bytes) -> httpx.Response:
        return self.activate(role, data, url="/v1/activations/offline-deactivate")

    def trial(self, data: bytes, product_id: str | None = None, **kw: Any) -> httpx.Response:
        return self.client.post(
            "/v1/trial-activations/offline-activate",
            json={"productId": product_id or self.product.id, "offlineRequest": data.decode()},
            **kw,
        )

    def verify(self, token: str, product_id: str | None = None) -> Response:
        """The response file, checked against the product's published keys."""
        return parse_response(token.encode(), self.svc.keyring.public_keys(product_id or self.product.id))

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the license state tables (not the audit log)."""
        return {t: table(self.svc.store, t) for t in ("licenses", "activations", "request_nonces", "trials")}

    def audit(self, account: Account | None = None) -> list[Any]:
        with self.svc.store.read() as tx:
            return list(tx.audit_entries((account or self.acme).id, limit=1000))


def activation_request(
    site: Site, role: str, license: str, machine: Machine | None = None, *, issued_at: int = NOW
) -> bytes:
    """An activation request of ``license``'s key, for the product of ``role``'s account."""
    machine = machine or Machine(fingerprint=f"fp-{role}-{license}")
    return machine.request(
        Kind.ACTIVATION, site.product_of(role).id, license_key=site.licenses[license].key, issued_at=issued_at
    )


def _populate(svc: Services) -> dict[str, Any]:
    store, keyring = svc.store, svc.keyring
    acme, _ = admin.ensure_account(store, "acme", now=NOW)
    other, _ = admin.ensure_account(store, "other", now=NOW)
    product = admin.create_product(store, keyring, acme, name="App", now=NOW, trial_days=14)
    no_trials = admin.create_product(store, keyring, acme, name="NoTrials", now=NOW)
    other_product = admin.create_product(store, keyring, other, name="Other App", now=NOW, trial_days=7)
    for org in ("Org A", "Org B"):
        people.create_organization(store, acme, name=org, now=NOW)

    def user(account: Account, role: str, kind: Role, org: str | None) -> None:
        people.create_user(
            store,
            account,
            email=EMAILS[role],
            role=kind,
            organization=org,
            password=PASSWORD,
            cost=Cost.MINIMUM,
            now=NOW,
        )

    user(acme, "admin_a", Role.ORGANIZATION_ADMIN, "Org A")
    user(acme, "user1", Role.USER, "Org A")
    user(acme, "user2", Role.USER, "Org A")
    user(acme, "admin_b", Role.ORGANIZATION_ADMIN, "Org B")
    user(other, "other", Role.USER, None)

    def lic(account: Account, product_id: str, **owner: str) -> License:
        return admin.create_license(
            store,
            account,
            product_id=product_id,
            allowed_activations=3,
            allowed_deactivations=3,
            now=NOW,
            **owner,
        )

    licenses = {
        "user1": lic(acme, product.id, owner_user_email=EMAILS["user1"]),
        "org_a": lic(acme, product.id, owner_organization="Org A"),
        "group": lic(acme, product.id, owner_organization="Org A"),
        "nobody": lic(acme, product.id),
        "org_b": lic(acme, product.id, owner_organization="Org B"),
        "other": lic(other, other_product.id, owner_user_email=EMAILS["other"]),
    }
    people.create_group(store, acme, organization="Org A", name="Team A", now=NOW)
    people.add_user_to_group(store, acme, group="Team A", email=EMAILS["user2"], now=NOW)
    people.link_group_license(store, acme, group="Team A", license_key=licenses["group"].key, now=NOW)
    return dict(
        acme=acme,
        other=other,
        product=product,
        no_trials=no_trials,
        other_product=other_product,
        licenses=licenses,
    )


def settings_for(root: Path, **overrides: Any) -> Settings:
    base = Settings(
        data_dir=root / "data",
        keys_dir=root / "keys",
        password_cost=Cost.MINIMUM,
        trial_origins=(ORIGIN, "null"),
        public_url="http://testserver",  # links in mails; the test client's own address
        outbox_seconds=0,  # tests send the outbox themselves (svc.deliver_outbox)
        webhook_seconds=0,  # and the webhooks (webhooks.sender.send_due)
    )
    return replace(base, **overrides)


SiteFactory = Callable[..., Site]


@pytest.fixture
def make_site(tmp_path: Path, backend: str) -> Iterator[SiteFactory]:
    """Builds a site on the test's backend; keyword arguments override settings (each call gets its
    own directory and database)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Site:
        clock = Clock()
        root = tmp_path / f"site{len(clients)}"
        overrides.setdefault("database_url", database_for(root, backend))
        app = create_app(settings_for(root, **overrides), clock=clock)
        client = CheckedClient(app)
        client.__enter__()
        clients.append(client)
        svc: Services = app.state.services
        return Site(client=client, svc=svc, clock=clock, **_populate(svc))

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def site(make_site: SiteFactory) -> Site:
    return make_site()


def error(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of an error answer."""
    return response.status_code, json.loads(response.text)["code"]
