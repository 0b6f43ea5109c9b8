"""A vendor embeds only the client: the base install (no extras) into a fresh venv has none of the
server's dependencies, and its ``offline-client`` still activates a machine end to end.

The package and its base dependencies are built as wheels first (the base dependencies at the
versions installed here), then installed with ``--no-index`` from those wheels alone: a server
dependency listed in the base ``dependencies`` would make the install fail, or show up importable.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import offline_service
from tests.factories import World, wall_now

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULES = ("starlette", "uvicorn", "jinja2", "multipart", "python_multipart")


def _run(
    argv: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> str:
    # Run away from the work tree and without PYTHONPATH: `python -c` puts the current folder on
    # sys.path, and the fresh venv must import its installed copy, never this tree.
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{argv}: {done.stderr[-2000:]}"
    return done.stdout


def _base_requirements() -> list[str]:
    """The base ``dependencies`` of pyproject.toml, pinned to the versions installed here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0] for req in project["dependencies"]]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


@pytest.fixture(scope="module")
def client_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding the base install of this source tree."""
    root = tmp_path_factory.mktemp("install")
    # Built from a copy, so that the build's egg-info and build/ land there, not in the work tree.
    src, wheels, venv = root / "src", root / "wheels", root / "venv"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "offline_service", src / "offline_service", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, src], cwd=root)
    _run([*pip, "wheel", "--quiet", "--wheel-dir", wheels, *_base_requirements()], cwd=root)
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    # Only the wheels just built: no index, no configured find-links (PIP_* settings of this machine).
    hermetic = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {
        "PIP_CONFIG_FILE": os.devnull
    }
    _run(
        [*pip, "--python", venv / "bin" / "python", "install", "--quiet", "--no-index",
         "--find-links", wheels, "offline-service"],
        cwd=root,
        env=hermetic,
    )  # fmt: skip
    return venv / "bin"


def test_the_base_install_has_no_server_dependency(client_only: Path) -> None:
    code = (
        "import importlib.util, json, offline_service\n"
        f"print(json.dumps([offline_service.__file__, [m for m in {SERVER_MODULES!r}"
        " if importlib.util.find_spec(m) is not None]]))\n"
    )
    where, found = json.loads(_run([client_only / "python", "-c", code], cwd=client_only))
    assert Path(where).is_relative_to(client_only.parent)  # the installed copy, not this tree
    assert found == []


def test_the_package_names_load_in_the_base_install(client_only: Path) -> None:
    """The lazy names of ``offline_service`` (the engine and the store too) need no server extra."""
    code = "import json, offline_service as o\nprint(json.dumps([n for n in o.__all__ if getattr(o, n)]))\n"
    names = json.loads(_run([client_only / "python", "-c", code], cwd=client_only))
    assert names == offline_service.__all__ and "Engine" in names and "SQLiteStore" in names


def test_the_service_command_asks_for_the_server_extra(client_only: Path) -> None:
    done = subprocess.run(
        [client_only / "offline-service", "--help"],
        capture_output=True,
        text=True,
        cwd=client_only,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "pip install 'offline-service[server]'" in done.stderr and "Traceback" not in done.stderr


def test_the_base_install_activates_end_to_end(client_only: Path, world: World, tmp_path: Path) -> None:
    lic = world.license(activations=1)
    state, req, resp, jwks = (
        tmp_path / n for n in ("state", "activation.req", "activation.resp", "jwks.json")
    )
    jwks.write_text(json.dumps(world.keyring.jwks(world.product.id)))
    client = client_only / "offline-client"

    out = _run(
        [client, "request", "--product", world.product.id, "--key", "-", "--state", state, "--out", req],
        cwd=tmp_path,
        stdin=lic.key + "\n",
    )
    assert out.strip() == f"wrote activation request to {req}"
    # The service side, in this environment (which has the server extra).
    outcome = world.process(req.read_bytes(), now=wall_now())
    assert outcome.ok, outcome
    resp.write_text(f"{outcome.response}\n")

    out = _run([client, "activate", resp, "--state", state, "--jwks", jwks], cwd=tmp_path)
    assert out.startswith(f"activated: license {lic.id}, activation {outcome.activation_id}")
    status = json.loads(_run([client, "status", "--state", state, "--json"], cwd=tmp_path))
    assert status["valid"] is True and status["activationId"] == outcome.activation_id
