"""Fixtures for the client SDK: installations with a settable clock, and helpers to check "nothing written"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from offline_service.client import Client
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Response
from tests.factories import NOW, World


class Clock:
    """A clock a test can move; ``Client`` calls it for the current time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Installation:
    """One app installation: a Client over its own state directory, on a named machine.

    ``witness`` is the folder of its witness file (the default one, under the test's config folder).
    """

    client: Client
    path: Path
    clock: Clock
    witness: Path


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every configuration folder at ``tmp_path``: no client test, nor a CLI it starts, writes
    to the real home. Returns the XDG configuration folder."""
    config = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    return config


MakeClient = Callable[..., Installation]


@pytest.fixture
def make_client(tmp_path: Path, config_home: Path) -> MakeClient:
    """``make_client(name, machine="m1", now=NOW + 10, **kw)``: a Client in ``tmp_path/name``."""

    def make(
        name: str = "app", *, machine: str = "machine-1", now: float = NOW + 10, **kw: Any
    ) -> Installation:
        clock = Clock(now)
        path = tmp_path / name
        client = Client(path, clock=clock, machine_id=lambda: machine, **kw)
        witness = Path(kw["witness_dir"]) if "witness_dir" in kw else config_home / "offline-service-client"
        return Installation(client=client, path=path, clock=clock, witness=witness)

    return make


@pytest.fixture
def jwks(world: World) -> dict[str, Any]:
    return world.keyring.jwks(world.product.id)


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``path`` with its mode and content, to show that nothing changed."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): (p.stat().st_mode, p.read_bytes())
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def forge(world: World, response: Response, **changes: Any) -> bytes:
    """Re-sign ``response`` with ``changes`` using the product's real key: what a vendor could issue."""
    signer = world.keyring.signer(response.product_id)
    changed = replace(response, kid=signer.kid, **changes)
    header = {"alg": jws.EMITTED_ALG, "typ": jws.RESPONSE_TYP, "kid": signer.kid}
    return jws.encode(header, messages.response_payload(changed), signer.secret_key).encode()
