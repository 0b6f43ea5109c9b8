"""The witness: a second copy of the clock high-water mark and the deactivation count, kept outside the
state directory, so that copying the state directory aside and restoring it later is detected."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_service import Code, Kind, OfflineServiceError
from offline_service.client import Client
from offline_service.client.cli import main
from offline_service.client.state import StateDir
from offline_service.client.witness import WITNESS_DIRNAME, WitnessStore, default_witness_dir
from offline_service.licensing.models import License
from tests.client.conftest import Installation, MakeClient
from tests.factories import NOW, World, wall_now

DAY = 86_400
OFFSET = 600


def activate(world: World, inst: Installation, jwks: dict[str, Any], lic: License) -> bytes:
    token = inst.client.activation_request(product_id=world.product.id, license_key=lic.key)
    outcome = world.process(token.encode(), now=int(inst.clock.now) + 10)
    assert outcome.ok, outcome
    data = str(outcome.response).encode()
    inst.client.activate(data, jwks=jwks)
    return data


def start_trial(world: World, inst: Installation, jwks: dict[str, Any]) -> int:
    token = inst.client.trial_request(product_id=world.product.id)
    outcome = world.process(token.encode(), now=int(inst.clock.now) + 10)
    assert outcome.ok, outcome
    resp = inst.client.activate(str(outcome.response).encode(), jwks=jwks)
    assert resp.trial_ends_at is not None
    return resp.trial_ends_at


def deactivate_on_service(world: World, inst: Installation, tmp_path: Path) -> None:
    """What a user does to free a seat: write the request, carry it to the service, get the receipt."""
    out = tmp_path / "deactivate.req"
    inst.client.deactivate(out)
    outcome = world.process(out.read_bytes(), now=int(inst.clock.now) + 10)
    assert outcome.ok and outcome.kind is Kind.DEACTIVATION, outcome


def copy_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def restore_after_deactivation(
    world: World, inst: Installation, tmp_path: Path, *, meanwhile: Callable[[], object] | None = None
) -> None:
    """The attack: copy the state directory aside, deactivate (the seat is freed on the service),
    optionally do ``meanwhile``, then put the old copy back."""
    copy_dir(inst.path, tmp_path / "aside")
    deactivate_on_service(world, inst, tmp_path)
    if meanwhile is not None:
        meanwhile()
    copy_dir(tmp_path / "aside", inst.path)


def witness_doc(inst: Installation) -> dict[str, Any]:
    files = sorted(inst.witness.glob("*.json"))
    assert len(files) == 1, files
    doc: dict[str, Any] = json.loads(files[0].read_text())
    return doc


def refused(inst: Installation, code: Code) -> OfflineServiceError:
    with pytest.raises(OfflineServiceError) as info:
        inst.client.check()
    assert info.value.code is code, info.value
    assert inst.client.status()["code"] == code.value
    return info.value


# -- copy, deactivate, restore -------------------------------------------------------------------


def test_state_restored_after_a_deactivation_is_refused(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic = world.license(activations=1)
    activate(world, inst, jwks, lic)

    def seat_is_free() -> None:
        assert world.reload_license(lic.key).used_activations == 0  # freed on the service

    restore_after_deactivation(world, inst, tmp_path, meanwhile=seat_is_free)
    err = refused(inst, Code.NOT_ACTIVATED)
    assert "deactivated" in err.message


def test_restored_state_cannot_apply_its_old_response_again(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    data = activate(world, inst, jwks, world.license(activations=1))
    restore_after_deactivation(world, inst, tmp_path)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activate(data, jwks=jwks)
    assert info.value.code is Code.UNEXPECTED_RESPONSE
    refused(inst, Code.NOT_ACTIVATED)


def test_state_copied_while_a_request_was_open_cannot_apply_its_answer_later(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    token = inst.client.activation_request(product_id=world.product.id, license_key=world.license().key)
    data = str(world.process(token.encode(), now=NOW + 20).response).encode()
    copy_dir(inst.path, tmp_path / "aside")  # the request is still open in the copy
    inst.client.activate(data, jwks=jwks)
    deactivate_on_service(world, inst, tmp_path)
    copy_dir(tmp_path / "aside", inst.path)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.activate(data, jwks=jwks)
    assert info.value.code is Code.UNEXPECTED_RESPONSE
    refused(inst, Code.NOT_ACTIVATED)


def test_restored_state_is_refused_even_after_a_new_activation(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic = world.license(activations=2)
    activate(world, inst, jwks, lic)

    def activate_again() -> None:
        activate(world, inst, jwks, lic)
        inst.client.check()

    restore_after_deactivation(world, inst, tmp_path, meanwhile=activate_again)
    refused(inst, Code.NOT_ACTIVATED)


def test_restored_state_may_activate_again_with_a_new_seat(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic = world.license(activations=1)
    activate(world, inst, jwks, lic)
    restore_after_deactivation(world, inst, tmp_path)
    refused(inst, Code.NOT_ACTIVATED)
    activate(world, inst, jwks, lic)  # an honest new activation: the seat is counted again
    assert inst.client.check().license_id == lic.id
    assert world.reload_license(lic.key).used_activations == 1


def test_deactivation_counts_in_both_copies(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic = world.license(activations=1, deactivations=5)
    for n in (1, 2):
        activate(world, inst, jwks, lic)
        deactivate_on_service(world, inst, tmp_path)
        assert witness_doc(inst)["deactivations"] == n
        assert json.loads((inst.path / "state.json").read_text())["deactivations"] == n


def test_a_deactivation_cut_short_after_the_witness_still_counts(
    world: World,
    make_client: MakeClient,
    jwks: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The witness is written first: a process stopped before the state is written cannot keep the
    activation whose deactivation request it has already written."""
    inst = make_client()
    activate(world, inst, jwks, world.license())

    def fail(self: StateDir, state: object) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "disk full")

    with monkeypatch.context() as m:
        m.setattr(StateDir, "save", fail)
        with pytest.raises(OfflineServiceError):
            inst.client.deactivate(tmp_path / "d.req")
    assert (tmp_path / "d.req").exists()
    refused(inst, Code.NOT_ACTIVATED)


def test_an_activation_cut_short_before_the_witness_is_repaired(
    world: World, make_client: MakeClient, jwks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state is written first when applying: a witness left behind is raised by the next check."""
    inst = make_client()
    lic = world.license()

    def fail(self: WitnessStore, *args: object) -> None:
        raise OfflineServiceError(Code.STORAGE_ERROR, "disk full")

    with monkeypatch.context() as m:
        m.setattr(WitnessStore, "save", fail)
        with pytest.raises(OfflineServiceError):
            activate(world, inst, jwks, lic)
    assert not inst.witness.exists()
    assert inst.client.check().license_id == lic.id
    assert witness_doc(inst)["activations"] == 1


# -- the clock high-water mark -------------------------------------------------------------------


@pytest.mark.parametrize(("back", "code"), [(DAY, Code.CLOCK_ROLLBACK), (100, Code.TRIAL_EXPIRED)])
def test_expired_trial_stays_expired_when_the_clock_is_set_back(
    world: World, make_client: MakeClient, jwks: dict[str, Any], back: int, code: Code
) -> None:
    inst = make_client()
    ends = start_trial(world, inst, jwks)
    inst.clock.now = ends + 10
    refused(inst, Code.TRIAL_EXPIRED)
    inst.clock.now = ends - back
    refused(inst, code)


@pytest.mark.parametrize(("back", "code"), [(2000, Code.CLOCK_ROLLBACK), (100, Code.LICENSE_EXPIRED)])
def test_expired_license_stays_expired_when_the_clock_is_set_back(
    world: World, make_client: MakeClient, jwks: dict[str, Any], back: int, code: Code
) -> None:
    inst = make_client()
    activate(world, inst, jwks, world.license(expires_at=NOW + DAY))
    inst.clock.now = NOW + DAY + 5
    refused(inst, Code.LICENSE_EXPIRED)
    inst.clock.now = NOW + DAY - back
    refused(inst, code)


def test_a_failed_check_raises_both_marks(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    ends = start_trial(world, inst, jwks)
    inst.clock.now = ends + 1234
    with pytest.raises(OfflineServiceError):
        inst.client.check()
    assert StateDir(inst.path).load().last_seen == ends + 1234
    assert witness_doc(inst)["lastSeen"] == ends + 1234
    inst.clock.now = ends + 2000
    assert inst.client.status()["lastSeen"] == ends + 2000
    assert StateDir(inst.path).load().last_seen == witness_doc(inst)["lastSeen"] == ends + 2000


@pytest.mark.parametrize("rolled_back", ["state", "witness"])
def test_the_larger_mark_wins_whichever_copy_is_rolled_back(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path, rolled_back: str
) -> None:
    inst = make_client()
    activate(world, inst, jwks, world.license())
    inst.client.check()
    early_state, early_witness = tmp_path / "early-state", tmp_path / "early-witness"
    copy_dir(inst.path, early_state)
    copy_dir(inst.witness, early_witness)
    inst.clock.now = NOW + 10 * DAY
    inst.client.check()
    if rolled_back == "state":
        copy_dir(early_state, inst.path)
    else:
        copy_dir(early_witness, inst.witness)
    inst.clock.now = NOW + DAY
    refused(inst, Code.CLOCK_ROLLBACK)
    # Both copies are back at the larger mark, whichever one had been rolled back.
    assert StateDir(inst.path).load().last_seen == witness_doc(inst)["lastSeen"] == NOW + 10 * DAY
    inst.clock.now = NOW + 10 * DAY - OFFSET
    inst.client.check()


# hypothesis examples share the fixtures' world and state directory; each one sets both marks itself.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state_mark=st.integers(NOW + 100, NOW + 30 * DAY),
    witness_mark=st.integers(NOW + 100, NOW + 30 * DAY),
    now=st.integers(NOW + 100, NOW + 31 * DAY),
)
def test_clock_check_trusts_the_larger_mark(
    world: World,
    make_client: MakeClient,
    jwks: dict[str, Any],
    state_mark: int,
    witness_mark: int,
    now: int,
) -> None:
    inst = make_client("prop")
    if not (inst.path / "state.json").exists():
        activate(world, inst, jwks, world.license())
        inst.client.check()
    state_file = inst.path / "state.json"
    doc = json.loads(state_file.read_text())
    doc["lastSeen"] = state_mark
    state_file.write_text(json.dumps(doc))
    _set_witness_mark(inst, witness_mark)
    inst.clock.now = now
    mark = max(state_mark, witness_mark)
    if now < mark - OFFSET:
        with pytest.raises(OfflineServiceError) as info:
            inst.client.check()
        assert info.value.code is Code.CLOCK_ROLLBACK
    else:
        inst.client.check()
    assert StateDir(inst.path).load().last_seen == witness_doc(inst)["lastSeen"] == max(mark, now)


def _set_witness_mark(inst: Installation, mark: int) -> None:
    """Rewrite the witness through its own store, so it stays authentic (not a hand edit)."""
    state = StateDir(inst.path).load()
    seed = StateDir(inst.path).machine_key()
    assert state.product_id is not None and seed is not None
    store = WitnessStore(inst.witness)
    found = store.load(state.product_id, seed)
    assert found is not None
    store.save(state.product_id, seed, replace(found, last_seen=mark))


# -- a fresh machine, a lost witness, an edited witness -----------------------------------------


def test_a_fresh_machine_works_and_gets_a_witness(
    world: World, make_client: MakeClient, jwks: dict[str, Any]
) -> None:
    inst = make_client()
    assert not inst.witness.exists()
    lic = world.license()
    activate(world, inst, jwks, lic)
    assert inst.client.check().license_id == lic.id
    doc = witness_doc(inst)
    assert doc["deactivations"] == 0 and doc["lastSeen"] == StateDir(inst.path).load().last_seen
    assert doc["productId"] == world.product.id


def test_a_missing_witness_is_made_again_from_the_state(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    inst = make_client()
    lic = world.license(activations=2)
    activate(world, inst, jwks, lic)
    deactivate_on_service(world, inst, tmp_path)
    activate(world, inst, jwks, lic)
    inst.clock.now = NOW + 3 * DAY
    inst.client.check()
    shutil.rmtree(inst.witness)
    inst.clock.now = NOW + 4 * DAY
    inst.client.check()
    doc = witness_doc(inst)
    assert (doc["deactivations"], doc["lastSeen"]) == (1, NOW + 4 * DAY)


def test_deleting_the_witness_as_well_is_the_documented_limit(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    """Restoring the state directory AND deleting the witness looks like a fresh machine: offline, this
    cannot be told apart from a full-disk restore (docs/FORMAT.md §10). Pinned so the docs stay true."""
    inst = make_client()
    activate(world, inst, jwks, world.license(activations=1))
    copy_dir(inst.path, tmp_path / "aside")
    deactivate_on_service(world, inst, tmp_path)
    copy_dir(tmp_path / "aside", inst.path)
    shutil.rmtree(inst.witness)
    inst.client.check()


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc.update(deactivations=0),
        lambda doc: doc.update(lastSeen=doc["lastSeen"] - DAY),
        lambda doc: doc.update(mac="A" * 43),
        lambda doc: doc.pop("mac"),
    ],
)
def test_an_edited_witness_is_detected(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path, edit: Any
) -> None:
    inst = make_client()
    activate(world, inst, jwks, world.license(activations=1))
    deactivate_on_service(world, inst, tmp_path)
    (path,) = inst.witness.glob("*.json")
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(OfflineServiceError) as info:
        inst.client.status()
    assert info.value.code is Code.STORAGE_ERROR and "witness" in info.value.message


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"v": 2}'])
def test_a_damaged_witness_is_a_storage_error(
    world: World, make_client: MakeClient, jwks: dict[str, Any], text: str
) -> None:
    inst = make_client()
    activate(world, inst, jwks, world.license())
    (path,) = inst.witness.glob("*.json")
    path.write_text(text)
    with pytest.raises(OfflineServiceError) as info:
        inst.client.check()
    assert info.value.code is Code.STORAGE_ERROR


def test_the_witness_of_another_installation_does_not_count(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path
) -> None:
    a, b = make_client("a"), make_client("b", machine="machine-2")
    activate(world, a, jwks, world.license())
    deactivate_on_service(world, a, tmp_path)
    activate(world, b, jwks, world.license())
    b.client.check()
    assert len(list(a.witness.glob("*.json"))) == 2  # one file per product and installation


# -- where the witness lives ---------------------------------------------------------------------


def test_witness_dir_defaults_under_the_config_folder(
    world: World, tmp_path: Path, config_home: Path, jwks: dict[str, Any]
) -> None:
    client = Client(tmp_path / "app", clock=lambda: NOW + 10, machine_id=lambda: "m")
    assert client.witness_dir == config_home / WITNESS_DIRNAME
    token = client.activation_request(product_id=world.product.id, license_key=world.license().key)
    client.activate(str(world.process(token.encode(), now=NOW + 20).response).encode(), jwks=jwks)
    assert len(list((config_home / WITNESS_DIRNAME).glob("*.json"))) == 1


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}, "linux", "/x/cfg"),
        ({"XDG_CONFIG_HOME": "", "HOME": "/h"}, "linux", "/h/.config"),
        ({"XDG_CONFIG_HOME": "relative/cfg", "HOME": "/h"}, "linux", "/h/.config"),  # XDG: ignore relative
        ({"HOME": "/h"}, "freebsd14", "/h/.config"),
        ({"HOME": "/h"}, "darwin", "/h/Library/Application Support"),
        ({"APPDATA": "C:/Users/u/AppData/Roaming", "HOME": "/h"}, "win32", "C:/Users/u/AppData/Roaming"),
    ],
)
def test_default_witness_dir_by_platform(environ: dict[str, str], platform: str, expected: str) -> None:
    assert default_witness_dir(environ, platform=platform) == Path(expected) / WITNESS_DIRNAME


def test_default_witness_dir_without_a_home_is_refused() -> None:
    with pytest.raises(OfflineServiceError) as info:
        default_witness_dir({}, platform="linux")
    assert info.value.code is Code.INVALID_ARGUMENT and "witness" in info.value.message


def test_witness_dir_given_to_the_client(
    world: World, make_client: MakeClient, jwks: dict[str, Any], tmp_path: Path, config_home: Path
) -> None:
    inst = make_client(witness_dir=tmp_path / "vendor-witness")
    activate(world, inst, jwks, world.license())
    assert inst.client.witness_dir == tmp_path / "vendor-witness"
    assert len(list((tmp_path / "vendor-witness").glob("*.json"))) == 1
    assert not config_home.exists()


# -- the command line ----------------------------------------------------------------------------


def test_cli_witness_dir_detects_a_restored_state(
    world: World, tmp_path: Path, jwks: dict[str, Any], capsys: pytest.CaptureFixture[str], config_home: Path
) -> None:
    state, witness = tmp_path / "state", tmp_path / "witness"
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    lic = world.license(activations=1)
    common = ["--state", str(state), "--witness-dir", str(witness)]
    req, resp = tmp_path / "a.req", tmp_path / "a.resp"
    assert main(["request", "--product", world.product.id, "--key", lic.key, "--out", str(req), *common]) == 0
    resp.write_text(str(world.process(req.read_bytes(), now=wall_now()).response))
    assert main(["activate", str(resp), "--jwks", str(jwks_file), *common]) == 0
    copy_dir(state, tmp_path / "aside")
    assert main(["deactivate", "--out", str(tmp_path / "d.req"), *common]) == 0
    assert world.process((tmp_path / "d.req").read_bytes(), now=wall_now()).ok
    copy_dir(tmp_path / "aside", state)
    capsys.readouterr()
    assert main(["status", *common]) == 1
    assert capsys.readouterr().out.startswith("not valid: NOT_ACTIVATED")
    assert len(list(witness.glob("*.json"))) == 1
    assert not config_home.exists()
