from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offline_service.client.cli import main
from offline_service.errors import Code
from offline_service.next_steps import next_step
from tests.factories import World, wall_now


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offline_service.client.cli", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


@pytest.fixture
def jwks_file(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(world.keyring.jwks(world.product.id)))
    return path


def process(world: World, request: Path, response: Path) -> Any:
    outcome = world.process(request.read_bytes(), now=wall_now())
    assert outcome.ok, outcome
    response.write_text(str(outcome.response) + "\n")
    return outcome


@pytest.mark.slow
def test_end_to_end(world: World, tmp_path: Path, jwks_file: Path) -> None:
    state, req, resp = tmp_path / "state", tmp_path / "activate.req", tmp_path / "activate.resp"
    lic = world.license(activations=1)

    done = run(
        "request", "--product", world.product.id, "--key", "-", "--state", state, "--out", req,
        "--fingerprint", "fp-e2e", "--app-version", "3.0", stdin=lic.key + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote activation request to {req}"
    assert req.read_text().endswith("\n") and req.read_text().count(".") == 2
    process(world, req, resp)

    done = run("activate", resp, "--state", state, "--jwks", jwks_file)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith(f"activated: license {lic.id}, activation act_")
        and "expires never" in done.stdout
    )

    done = run("status", "--state", state, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["valid"] and doc["licenseId"] == lic.id and doc["fingerprint"] == "fp-e2e"
    done = run("status", "--state", state)
    assert done.returncode == 0 and done.stdout.startswith(f"valid: license {lic.id} (active)")

    dreq, receipt = tmp_path / "deactivate.req", tmp_path / "deactivate.resp"
    done = run("deactivate", "--state", state, "--out", dreq)
    assert done.returncode == 0, done.stderr
    assert f"wrote deactivation request to {dreq}" in done.stdout
    outcome = process(world, dreq, receipt)
    assert outcome.activation_id == doc["activationId"]
    assert world.reload_license(lic.key).used_activations == 0

    done = run("receipt", receipt, "--state", state, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["activationId"] == doc["activationId"]

    done = run("status", "--state", state)
    assert done.returncode == 1
    assert done.stdout.startswith("not valid: NOT_ACTIVATED")


@pytest.mark.slow
def test_error_exit(tmp_path: Path, jwks_file: Path) -> None:
    done = run("activate", tmp_path / "missing.resp", "--state", tmp_path / "s", "--jwks", jwks_file)
    assert done.returncode == 1
    assert done.stderr.startswith("error: NOT_FOUND: ")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_usage_error_exits_2(tmp_path: Path) -> None:
    done = run("request", "--state", tmp_path)
    assert done.returncode == 2
    assert "usage: offline-client request" in done.stderr


@pytest.mark.slow
def test_client_imports_no_web_stack() -> None:
    code = (
        "import sys, offline_service.client.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'jinja2', 'uvicorn', 'multipart')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


# -- in-process, for the error paths -------------------------------------------------------------


def test_trial_request_and_activate(
    world: World, tmp_path: Path, jwks_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, req, resp = tmp_path / "s", tmp_path / "t.req", tmp_path / "t.resp"
    assert main(["trial-request", "--product", world.product.id, "--state", str(state), "--out", str(req),
                 "--fingerprint", "fp-trial"]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"wrote trial request to {req}\n"
    process(world, req, resp)
    assert main(["activate", str(resp), "--state", str(state), "--jwks", str(jwks_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] and doc["kind"] == "trial"
    assert main(["deactivate", "--state", str(state), "--out", str(tmp_path / "d.req")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: NOT_ACTIVATED: ") and err.endswith(
        f"\nnext: {next_step(Code.NOT_ACTIVATED)}\n"
    )
    assert not (tmp_path / "d.req").exists()


def test_oversized_response_is_refused(
    tmp_path: Path, jwks_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.resp"
    big.write_bytes(b"x" * (16 * 1024 + 1))
    assert main(["activate", str(big), "--state", str(tmp_path / "s"), "--jwks", str(jwks_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: INVALID_ARGUMENT: ") and "larger than 16384 bytes" in err


def test_bad_jwks_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    resp, jwks = tmp_path / "r", tmp_path / "jwks.json"
    resp.write_text("a.b.c\n")
    jwks.write_text('{"keys": [], "keys": []}')
    assert main(["activate", str(resp), "--state", str(tmp_path / "s"), "--jwks", str(jwks)]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: JWKS file")


def test_response_to_nothing(tmp_path: Path, jwks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    resp = tmp_path / "r"
    resp.write_text("a.b.c\n")
    assert main(["activate", str(resp), "--state", str(tmp_path / "s"), "--jwks", str(jwks_file)]) == 1
    assert capsys.readouterr().err.startswith("error: WRONG_MACHINE: ")


def test_bad_fingerprint_option(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.req"
    args = ["request", "--product", world.product.id, "--key", "K", "--state", str(tmp_path / "s")]
    assert main([*args, "--out", str(out), "--fingerprint", "not ok"]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: fingerprint")
    assert not out.exists()


def test_unwritable_output(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["request", "--product", world.product.id, "--key", "K", "--state", str(tmp_path / "s")]
    assert main([*args, "--fingerprint", "fp", "--out", str(tmp_path / "no-dir" / "r.req")]) == 1
    assert capsys.readouterr().err.startswith("error: STORAGE_ERROR: cannot write")


def test_fingerprint_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from offline_service.client import fingerprint, machine

    monkeypatch.setattr(machine, "machine_id", lambda: "mid")
    assert main(["fingerprint", "--product", "prod_1"]) == 0
    assert capsys.readouterr().out == fingerprint("prod_1", "mid") + "\n"
