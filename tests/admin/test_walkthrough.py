"""The README's admin API walkthrough, run as written against a real server (``serve --demo``, as
``make run`` starts it) with the CLI on the same data: every line must succeed, and the license it
made must end revoked, with five activations allowed, its life cycle audited as the token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from offline_service.settings import Settings
from offline_service.store import open_store
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.slow


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### The admin API") :]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "the admin walkthrough's commands"
    return found.group(1)


@pytest.mark.sqlite_only  # a real server on the default database, as make run starts it
def test_the_admin_walkthrough_runs_against_a_real_server(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    env = {"OFFLINE_SERVICE_DATA": str(data), "OFFLINE_SERVICE_KEYS": str(keys)}
    with serve(tmp_path, "--demo", env=env) as url:
        child = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
        child.update(env, URL=url, PATH=f"{Path(sys.executable).parent}{os.pathsep}{child.get('PATH', '')}")
        child["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child.get("PYTHONPATH")]))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _walkthrough() + '\necho; echo "LICENSE=$LICENSE"'],
            cwd=tmp_path,
            env=child,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    license_id = re.findall(r"^LICENSE=(lic_[0-9a-f]+)$", done.stdout, re.M)[-1]
    assert '"status": "revoked"' in done.stdout or '"status":"revoked"' in done.stdout
    store = open_store(Settings.from_env({**env}))
    try:
        with store.read() as tx:
            account = tx.account_by_alias("default")
            assert account is not None
            license = tx.license_by_id(account.id, license_id)
            entries = [e for e in tx.audit_entries(account.id, 100) if e.license_id == license_id]
    finally:
        store.close()
    assert license is not None and (license.status.value, license.allowed_activations) == ("revoked", 5)
    assert {e.action for e in entries} == {
        "license.create",
        "license.suspended",
        "license.active",
        "license.change",
        "license.revoked",
    }
    assert all(e.actor.startswith("admin_token:adt_") for e in entries)
