"""The README's admin API walkthrough, run as written against a real server (``serve --demo``, as
``make run`` starts it) with the CLI on the same data: every line must succeed, and the license it
made must end revoked, with five activations allowed, its life cycle audited as the token; the
webhook endpoint it registers (a receiver of the test's own, loopback allowed for it) gets the
license's events, signed with the secret the walkthrough printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from offline_service.settings import Settings
from offline_service.store import open_store
from tests.servers import serve
from tests.webhooks.receiver import receiver

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
    hooks = {"OFFLINE_SERVICE_WEBHOOK_ALLOW_LOOPBACK": "1", "OFFLINE_SERVICE_WEBHOOK_SECONDS": "1"}
    with serve(tmp_path, "--demo", env={**env, **hooks}) as url, receiver() as r:
        child = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
        child.update(env, URL=url, PATH=f"{Path(sys.executable).parent}{os.pathsep}{child.get('PATH', '')}")
        child["HOOK_URL"] = r.url
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
        secret = re.findall(r"^signing secret: (whsec_\S+)$", done.stderr, re.M)[-1]
        # The receiver cannot verify before the secret is known (it answers 500 meanwhile): its
        # raw deliveries are checked here with standardwebhooks, the reference verifier.
        for _ in range(100):  # the server's next round, a second or so away
            if r.raw:
                break
            time.sleep(0.1)
        bodies = [json.loads(json.dumps(Webhook(secret).verify(b, h))) for b, h in list(r.raw)]
    assert any(b["type"] == "license.created" and b["data"]["id"] == license_id for b in bodies), bodies
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
