"""The demo records, shared by two commands: ``offline-service demo``, a guided tour of the offline
flow with the real commands, and ``offline-service serve --demo`` (``make run``), the portal with a
demo user who can log in."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from offline_service._files import write_atomic
from offline_service.accounts import membership
from offline_service.accounts.models import Account, Role
from offline_service.accounts.scope import Scope
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.models import License, Product
from offline_service.settings import Settings
from offline_service.store import open_store
from offline_service.store.copy import shown_url

__all__ = ["PortalDemo", "announce_portal", "prepare_portal", "run_demo"]

DEMO_PRODUCT = "Demo App"
DEMO_ORGANIZATION = "Demo Organization"
DEMO_EMAIL = "demo@example.com"
CREDENTIALS_FILE = "demo-credentials.txt"
# The demo's machine is a machine of its own, not this computer: the README's portal walkthrough
# activates the demo license for this computer's fingerprint with another installation key, and a
# demo run on the same fingerprint would then be refused (MACHINE_KEY_MISMATCH).
DEMO_FINGERPRINT = "offline-service-demo-machine"
T = TypeVar("T")


def _absent_as_none(find: Callable[[], T]) -> T | None:
    """What ``find`` finds, or None where it answers NOT_FOUND: the demo creates what is missing."""
    try:
        return find()
    except OfflineServiceError as exc:
        if exc.code is not Code.NOT_FOUND:
            raise
        return None


def _demo_records(settings: Settings, alias: str) -> tuple[Account, Product, License, bool]:
    """The demo account, organization, product and license (owned by the organization, so the
    organization's people see it in the portal); each created on the first run only."""
    store = open_store(settings)
    keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
    try:
        now = int(time.time())
        account, _ = licensing.ensure_account(store, alias, now=now)
        org = _absent_as_none(
            lambda: membership.organization_named(store, Scope.vendor(account), DEMO_ORGANIZATION)
        )
        product = next((p for p in queries.products(store, account) if p.name == DEMO_PRODUCT), None)
        licenses = [
            x
            for x in (queries.licenses(store, account, product.id) if product else [])
            if org is not None and x.owner_organization_id == org.id
        ]
        if product is not None and licenses:
            return account, product, licenses[0], False
        if org is None:
            membership.create_organization(store, Scope.vendor(account), name=DEMO_ORGANIZATION, now=now)
        product = product or licensing.create_product(
            store, keyring, account, name=DEMO_PRODUCT, now=now, trial_days=14
        )
        license = licensing.create_license(
            store,
            account,
            product_id=product.id,
            allowed_activations=3,
            allowed_deactivations=-1,
            now=now,
            owner=DEMO_ORGANIZATION,
            owner_organization=DEMO_ORGANIZATION,
        )
        return account, product, license, True
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class PortalDemo:
    """What a person needs to log in to the demo portal. ``password`` is set on the first run only:
    after that it exists only as an Argon2id hash in the database and in ``credentials_file``."""

    account: Account
    product: Product
    license: License
    email: str
    password: str | None
    credentials_file: Path


def prepare_portal(settings: Settings, *, account_alias: str) -> PortalDemo:
    """The demo records plus a portal user, organization-admin of the demo organization, with a
    random password made on the first run; idempotent."""
    account, product, license, _ = _demo_records(settings, account_alias)
    credentials = settings.data_dir / CREDENTIALS_FILE
    store = open_store(settings)
    try:
        user = _absent_as_none(lambda: membership.user_with_email(store, Scope.vendor(account), DEMO_EMAIL))
        password = None
        if user is None:
            password = secrets.token_urlsafe(18)
            # The file first: if creating the user then fails, the next run makes a new password and
            # replaces the file; the other order could leave a user whose password nobody has.
            write_atomic(
                credentials,
                (
                    "# The demo portal user, made by `make run` (offline-service serve --demo).\n"
                    "# Only an Argon2id hash of the password is in the database; delete this file once\n"
                    "# you have noted the password.\n"
                    f"account: {account.alias}\nemail: {DEMO_EMAIL}\npassword: {password}\n"
                ).encode(),
                mode=0o600,
            )
            vendor = Scope.vendor(account)
            membership.create_user(
                store,
                vendor,
                email=DEMO_EMAIL,
                role=Role.ORGANIZATION_ADMIN,
                now=int(time.time()),
                organization_id=membership.organization_named(store, vendor, DEMO_ORGANIZATION).id,
                password=password,
                first_name="Demo",
                last_name="User",
                cost=settings.password_cost,
            )
    finally:
        store.close()
    return PortalDemo(
        account=account,
        product=product,
        license=license,
        email=DEMO_EMAIL,
        password=password,
        credentials_file=credentials,
    )


def announce_portal(demo: PortalDemo, login_url: str, *, trial_origins: tuple[str, ...] = ()) -> None:
    """Where to log in and with what, the password itself only when it was just made; and which
    pages may ask for trials (``trial_origins``)."""
    print(f"Demo portal: log in at {login_url}")
    print(f"  account   {demo.account.alias}")
    print(f"  email     {demo.email}")
    if demo.password is not None:
        print(f"  password  {demo.password}")
        print(f"  (shown once; also saved, readable only by you, in {demo.credentials_file})")
    elif demo.credentials_file.exists():
        print(f"  password  in {demo.credentials_file} (made on the first run)")
    else:
        print(
            f"  password  shown on the first run and saved in {demo.credentials_file}, which has been"
            " deleted; to start over, stop the server and remove the data and keys directories"
        )
    print(f"  product   {demo.product.name} ({demo.product.id})")
    print(f"  license   {demo.license.key} (owned by {DEMO_ORGANIZATION}; 3 activations)")
    if demo.product.trial_days:
        allowed = ", ".join(trial_origins) or "no page yet (set OFFLINE_SERVICE_TRIAL_ORIGINS)"
        print(f"  trials    {demo.product.trial_days} days; trial form pages allowed from {allowed}")
    print("Make an activation request with `offline-client request` (see the README) and upload it on")
    print("the portal's offline activation page; for a trial, use the trial form (trial_form/README.md).")
    print("Stop the server with Ctrl+C.\n", flush=True)


def run_demo(settings: Settings, *, account_alias: str) -> int:
    account, product, license, created = _demo_records(settings, account_alias)
    work = settings.data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    state, witness, req, deact, out, jwks = (
        work / "machine",
        work / "witness",
        work / "activation.req",
        work / "deactivation.req",
        work / "responses",
        work / "jwks.json",
    )
    # The demo's machine keeps its witness (the client's second copy, normally in the user's
    # configuration folder) in the demo's folder, so a demo leaves nothing outside its data.
    # Only the options that differ from the defaults, so the commands read as a user would type them.
    where = [
        *(["--data", str(settings.data_dir)] if settings.data_dir != Path("data") else []),
        *(["--keys", str(settings.keys_dir)] if settings.keys_dir != Path("keys") else []),
        *(["--account", account.alias] if account.alias != licensing.DEFAULT_ACCOUNT else []),
    ]
    print(f"{'Created' if created else 'Using'} the demo account '{account.alias}', product '{product.name}'")
    print(f"  product id  {product.id}")
    print(f"  license key {license.key}  (3 activations, unlimited deactivations)")
    print(f"  data in {settings.data_dir}, signing keys in {settings.keys_dir}")
    # The database reaches the steps through the environment, not their command lines: a password
    # in the URL stays out of the process list and of what is printed.
    env = None
    if settings.database_url:
        env = {**os.environ, "OFFLINE_SERVICE_DATABASE_URL": settings.database_url}
        print(f"  database {shown_url(settings.database_url)} (OFFLINE_SERVICE_DATABASE_URL of every step)")
    print()

    steps: list[tuple[str, list[str], Path | None]] = [
        (
            "On the offline machine, the app writes an activation request:",
            [
                "offline-client",
                "request",
                "--product",
                product.id,
                "--key",
                license.key,
                "--fingerprint",
                DEMO_FINGERPRINT,
                "--state",
                str(state),
                "--witness-dir",
                str(witness),
                "--out",
                str(req),
            ],
            None,
        ),
        (
            "On a connected machine, the service checks it and signs a response:",
            ["offline-service", "process", str(req), "--out", str(out), *where],
            None,
        ),
        (
            "The app pins the product's public keys (shipped with the app):",
            ["offline-service", "keys", "jwks", "--product", product.id, *where],
            jwks,
        ),
        (
            "Back on the offline machine, the app verifies the response and activates:",
            [
                "offline-client",
                "activate",
                str(out / "activation.response"),
                "--state",
                str(state),
                "--witness-dir",
                str(witness),
                "--jwks",
                str(jwks),
            ],
            None,
        ),
        (
            "It can check its status at any time, offline:",
            ["offline-client", "status", "--state", str(state), "--witness-dir", str(witness)],
            None,
        ),
        (
            "To move the seat, the app deactivates and writes a signed deactivation request:",
            [
                "offline-client",
                "deactivate",
                "--state",
                str(state),
                "--witness-dir",
                str(witness),
                "--out",
                str(deact),
            ],
            None,
        ),
        (
            "The service frees the seat and returns a signed receipt:",
            ["offline-service", "process", str(deact), "--out", str(out), *where],
            None,
        ),
        (
            "The license now shows the freed seat:",
            ["offline-service", "license", "show", license.key, *where],
            None,
        ),
    ]
    for n, (text, argv, capture) in enumerate(steps, 1):
        shown = shlex.join(argv) + (f" > {capture}" if capture else "")
        print(f"{n}. {text}\n   $ {shown}")
        module = "offline_service.client.cli" if argv[0] == "offline-client" else "offline_service.cli"
        result = subprocess.run(
            [sys.executable, "-m", module, *argv[1:]], capture_output=True, text=True, check=False, env=env
        )
        if capture is not None and result.returncode == 0:
            capture.write_text(result.stdout, encoding="utf-8")
            output = f"(wrote {capture})"
        else:
            output = (result.stdout + result.stderr).strip()
        print("   " + output.replace("\n", "\n   ") + "\n")
        if result.returncode != 0:
            print(f"step {n} failed with exit status {result.returncode}", file=sys.stderr)
            return 1
    print("Done. Run `make test` for the whole suite; the README has a walkthrough and docs/ the details.")
    return 0
