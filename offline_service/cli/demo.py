"""``offline-service demo``: a guided tour of the offline flow using the real commands."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from .. import admin
from ..keyring import Keyring
from ..models import Account, License, Product
from ..settings import Settings
from ..store import SQLiteStore

__all__ = ["run_demo"]

DEMO_PRODUCT = "Demo App"


def _demo_records(settings: Settings, alias: str) -> tuple[Account, Product, License, bool]:
    """The demo account, product and license; created on the first run only."""
    store = SQLiteStore(settings.data_dir)
    keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
    try:
        now = int(time.time())
        account, _ = admin.ensure_account(store, alias, now=now)
        with store.read() as tx:
            product = next((p for p in tx.products(account.id) if p.name == DEMO_PRODUCT), None)
            licenses = tx.licenses(account.id, product.id) if product else []
        if product is not None and licenses:
            return account, product, licenses[0], False
        product = product or admin.create_product(
            store, keyring, account, name=DEMO_PRODUCT, now=now, trial_days=14
        )
        license = admin.create_license(
            store,
            account,
            product_id=product.id,
            allowed_activations=3,
            allowed_deactivations=-1,
            now=now,
            owner="demo@example.com",
        )
        return account, product, license, True
    finally:
        store.close()


def run_demo(settings: Settings, *, account_alias: str) -> int:
    account, product, license, created = _demo_records(settings, account_alias)
    work = settings.data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    state, req, deact, out, jwks = (
        work / "machine",
        work / "activation.req",
        work / "deactivation.req",
        work / "responses",
        work / "jwks.json",
    )
    # Only the options that differ from the defaults, so the commands read as a user would type them.
    where = [
        *(["--data", str(settings.data_dir)] if settings.data_dir != Path("data") else []),
        *(["--keys", str(settings.keys_dir)] if settings.keys_dir != Path("keys") else []),
        *(["--account", account.alias] if account.alias != admin.DEFAULT_ACCOUNT else []),
    ]
    print(f"{'Created' if created else 'Using'} the demo account '{account.alias}', product '{product.name}'")
    print(f"  product id  {product.id}")
    print(f"  license key {license.key}  (3 activations, unlimited deactivations)")
    print(f"  data in {settings.data_dir}, signing keys in {settings.keys_dir}\n")

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
                "--state",
                str(state),
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
                "--jwks",
                str(jwks),
            ],
            None,
        ),
        (
            "It can check its status at any time, offline:",
            ["offline-client", "status", "--state", str(state)],
            None,
        ),
        (
            "To move the seat, the app deactivates and writes a signed deactivation request:",
            ["offline-client", "deactivate", "--state", str(state), "--out", str(deact)],
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
            [sys.executable, "-m", module, *argv[1:]], capture_output=True, text=True, check=False
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
