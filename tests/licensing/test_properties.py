"""Property tests: request round trips, tamper detection, and engine invariants under random use."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_service.errors import OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind
from offline_service.licensing.models import UNLIMITED
from tests.factories import NOW, Machine, World, make_world

FAST = settings(max_examples=60, deadline=None, database=None)

_CONTROL = [chr(c) for c in range(0x20)] + ["\x7f"]
# What the format allows in free-text members: any character but C0 controls, DEL and surrogates.
printable = st.characters(exclude_categories=("Cs",), exclude_characters=_CONTROL)
ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
fingerprints = st.from_regex(r"[A-Za-z0-9+/=_.:-]{1,128}", fullmatch=True)
nonces = st.from_regex(r"[A-Za-z0-9_-]{22,86}", fullmatch=True)
metadata = st.dictionaries(
    st.text(printable, min_size=1, max_size=64),
    st.text(printable, max_size=100),
    max_size=4,
)


@given(
    kind=st.sampled_from(Kind),
    product_id=ids,
    fingerprint=fingerprints,
    issued_at=st.integers(0, messages.MAX_TIME),
    nonce=nonces,
    hostname=st.text(printable, max_size=255),
    os=st.text(printable, max_size=128),
    app_version=st.text(printable, max_size=64),
    meta=metadata,
    license_key=st.text(printable, max_size=128),
    activation_id=ids,
)
@FAST
def test_request_round_trip(
    kind: Kind,
    product_id: str,
    fingerprint: str,
    issued_at: int,
    nonce: str,
    hostname: str,
    os: str,
    app_version: str,
    meta: dict[str, str],
    license_key: str,
    activation_id: str,
) -> None:
    machine = Machine(fingerprint=fingerprint)
    payload = messages.request_payload(
        kind=kind,
        product_id=product_id,
        fingerprint=fingerprint,
        issued_at=issued_at,
        nonce=nonce,
        hostname=hostname,
        os=os,
        app_version=app_version,
        metadata=meta,
        license_key=license_key if kind is Kind.ACTIVATION else None,
        activation_id=activation_id if kind is Kind.DEACTIVATION else None,
    )
    request = messages.parse_request(machine.sign(payload))

    assert request.kind is kind
    assert (request.product_id, request.fingerprint, request.issued_at, request.nonce) == (
        product_id,
        fingerprint,
        issued_at,
        nonce,
    )
    assert (request.hostname, request.os, request.app_version) == (hostname, os, app_version)
    assert dict(request.metadata) == meta
    assert request.machine_key == machine.public_key
    assert request.machine_key_thumbprint == jws.jwk_thumbprint(machine.public_key)
    assert request.license_key == (license_key if kind is Kind.ACTIVATION else None)
    assert request.activation_id == (activation_id if kind is Kind.DEACTIVATION else None)


# -- tamper detection -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tamper_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, bytes, bytes]]:
    """One world for the tamper tests (rejections change nothing, so examples can share it). On
    SQLite only: a tampered file is refused before the store is asked anything."""
    world = make_world(tmp_path_factory.mktemp("tamper"))
    lic = world.license(activations=1)
    request = world.machine().request(
        Kind.ACTIVATION, world.product.id, license_key=lic.key, metadata={"a": "b"}
    )
    outcome = world.process(request)
    assert outcome.ok and outcome.response is not None
    yield world, request, outcome.response.encode()
    world.store.close()


def _flip(data: bytes, draw: Any) -> bytes:
    position = draw(st.integers(0, len(data) - 1), label="position")
    byte = draw(st.integers(0, 255).filter(lambda b: b != data[position]), label="byte")
    return data[:position] + bytes([byte]) + data[position + 1 :]


@given(st.data())
@FAST
def test_any_changed_byte_of_a_request_is_rejected(
    tamper_world: tuple[World, bytes, bytes], data: Any
) -> None:
    world, request, _ = tamper_world
    tampered = _flip(request, data.draw)
    before = world.snapshot()
    outcome = world.process(tampered)
    assert not outcome.ok, outcome
    assert outcome.response is None
    assert world.snapshot() == before


@given(st.data())
@FAST
def test_any_changed_byte_of_a_response_is_rejected(
    tamper_world: tuple[World, bytes, bytes], data: Any
) -> None:
    world, _, response = tamper_world
    keys = world.keyring.public_keys()
    assert messages.parse_response(response, keys).used_activations == 1
    tampered = _flip(response, data.draw)
    with pytest.raises(OfflineServiceError):
        messages.parse_response(tampered, keys)


# -- engine invariants ------------------------------------------------------------------------

MACHINES = 4
# Weighted towards activation and deactivation so limits are actually reached.
OPS = ["activate"] * 4 + ["deactivate"] * 3 + ["deactivate-other", "reinstall", "reprocess", "reprocess"]
operations = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, MACHINES - 1), st.integers(0, 1000)),
    min_size=8,
    max_size=24,
)


def _check_invariants(world: World, key: str, allowed_activations: int, allowed_deactivations: int) -> None:
    license = world.reload_license(key)
    with world.store.read() as tx:
        activations = list(tx.activations(license.id))
    live = [a for a in activations if a.deactivated_at is None]
    assert license.used_activations == len(live)
    assert license.used_deactivations == len(activations) - len(live)
    assert len({a.fingerprint for a in live}) == len(live)  # one live activation per machine
    if allowed_activations != UNLIMITED:
        assert len(live) <= allowed_activations
    if allowed_deactivations != UNLIMITED:
        assert license.used_deactivations <= allowed_deactivations


@given(
    allowed_activations=st.integers(-1, 3),
    allowed_deactivations=st.integers(-1, 2),
    ops=operations,
)
# ``backend`` is only a name: nothing of one example is left for the next (each has its own world).
@settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_engine_invariants_under_random_operations(
    backend: str, allowed_activations: int, allowed_deactivations: int, ops: list[tuple[str, int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = make_world(Path(tmp), backend=backend)
        try:
            lic = world.license(activations=allowed_activations, deactivations=allowed_deactivations)
            machines = [world.machine(str(i)) for i in range(MACHINES)]
            activation_ids: dict[int, str] = {}
            files: list[bytes] = []
            now = NOW
            for op, m, pick in ops:
                now += 60
                if op == "reinstall":
                    machines[m] = Machine(fingerprint=machines[m].fingerprint)
                    continue
                if op == "activate":
                    data = machines[m].request(
                        Kind.ACTIVATION, world.product.id, license_key=lic.key, issued_at=now
                    )
                elif op.startswith("deactivate"):
                    # "deactivate-other": this machine asks to free another machine's seat.
                    target = m if op == "deactivate" else (m + 1) % MACHINES
                    data = machines[m].request(
                        Kind.DEACTIVATION,
                        world.product.id,
                        activation_id=activation_ids.get(target, "act_never_issued"),
                        issued_at=now,
                    )
                else:
                    if not files:
                        continue
                    data = files[pick % len(files)]
                files.append(data)

                before = world.snapshot()
                outcome = world.process(data, now=now)
                if outcome.ok:
                    assert outcome.response is not None
                    if outcome.kind is Kind.ACTIVATION:
                        fingerprint = messages.parse_request(data).fingerprint
                        activation_ids[int(fingerprint.removeprefix("fp-"))] = outcome.activation_id or ""
                else:
                    assert outcome.response is None
                    assert world.snapshot() == before, outcome
                _check_invariants(world, lic.key, allowed_activations, allowed_deactivations)
        finally:
            world.store.close()
