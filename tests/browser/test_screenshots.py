"""``make screenshots``' records (tests/browser/screenshots.py), without the pictures: the volume
the README's screenshots promise, read back from the store, the same names on a second run, and
the portal it starts answering on its free port with the fixed clock."""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from offline_service.accounts.models import Role
from offline_service.licensing.models import LicenseStatus
from offline_service.settings import Settings
from offline_service.store import open_store
from tests.browser import screenshots
from tests.browser.screenshots import NOW, Seeded, seed


def _seed(root: Path) -> Seeded:
    return seed(Settings(data_dir=root / "data", keys_dir=root / "keys"), scratch=root / "machines")


def _machines(seeded: Seeded) -> list[tuple[str, str, str, bool]]:
    """Every activation as (license owner, hostname, app version, deactivated), in a stable order."""
    store = open_store(seeded.settings)
    try:
        with store.read() as tx:
            rows = [
                (lic.owner or "", a.hostname or "", a.app_version, a.deactivated_at is not None)
                for lic in tx.licenses(seeded.account.id)
                for a in tx.activations(lic.id)
            ]
    finally:
        store.close()
    return sorted(rows)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return _seed(tmp_path_factory.mktemp("seed"))


def test_the_seeding_makes_dozens_of_licenses_and_hundreds_of_machines(seeded: Seeded) -> None:
    assert len(seeded.products) >= 3
    assert len(seeded.organizations) >= 2
    assert len(seeded.licenses) >= 24
    assert len({lic.product_id for lic in seeded.licenses}) >= 3
    assert len({lic.owner_organization_id for lic in seeded.licenses}) >= 2
    machines = _machines(seeded)
    assert len(machines) == seeded.activations >= 200
    deactivated = sum(1 for m in machines if m[3])
    assert deactivated == seeded.deactivations and 10 <= deactivated < len(machines) // 4
    # Believable hostnames: every machine has one, nearly all different, none a placeholder.
    hostnames = [m[1] for m in machines]
    assert all(hostnames) and len(set(hostnames)) >= 0.9 * len(hostnames)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", h) for h in hostnames), hostnames
    # The usage the licenses record agrees with their machines.
    live = Counter(m[0] for m in machines if not m[3])
    assert {lic.owner: lic.used_activations for lic in seeded.licenses if lic.used_activations} == dict(live)


def test_the_admin_s_organization_has_a_suspended_and_an_expired_license_and_people(seeded: Seeded) -> None:
    assert seeded.admin is not None and seeded.admin.role is Role.ORGANIZATION_ADMIN
    theirs = [x for x in seeded.licenses if x.owner_organization_id == seeded.admin.organization_id]
    assert [x.status for x in theirs].count(LicenseStatus.SUSPENDED) == 1
    assert sum(1 for x in theirs if x.expires_at is not None and x.expires_at < NOW) == 1
    assert seeded.showcase in theirs and seeded.showcase.used_activations >= 10
    assert seeded.spare in theirs and seeded.spare.status is LicenseStatus.ACTIVE
    assert len(seeded.groups) >= 4 and len(seeded.users) >= 12
    assert sum(1 for u in seeded.users if u.role is Role.ORGANIZATION_ADMIN) == len(seeded.organizations)
    store = open_store(seeded.settings)
    try:
        with store.read() as tx:
            people = tx.organization_users(seeded.account.id, seeded.admin.organization_id)
    finally:
        store.close()
    assert sum(1 for u in people if u.disabled) == 1
    assert sum(1 for u in people if u.password_hash is None) == 2  # invited, and the one who left


def test_a_second_run_makes_the_same_records(seeded: Seeded, tmp_path: Path) -> None:
    again = _seed(tmp_path)
    assert _machines(again) == _machines(seeded)
    assert [u.email for u in again.users] == [u.email for u in seeded.users]
    assert again.showcase is not None and seeded.showcase is not None
    assert again.showcase.owner == seeded.showcase.owner


def test_the_portal_answers_on_its_port(seeded: Seeded) -> None:
    with screenshots.portal(seeded.settings) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
            assert answer.status == 200 and json.load(answer)["status"] == "ok"
        with urllib.request.urlopen(f"{url}/login", timeout=10) as answer:
            assert answer.status == 200 and b"<form" in answer.read()
