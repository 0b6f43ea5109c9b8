from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from offline_service import Code, OfflineServiceError
from offline_service._b64 import b64url_encode
from offline_service._files import read_limited, write_atomic
from offline_service.client.state import Pending, State, StateDir
from offline_service.fileformat.messages import Kind

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_machine_key_is_private_from_the_first_byte(tmp_path: Path) -> None:
    d = StateDir(tmp_path / "state")
    seed = d.ensure_machine_key()
    assert len(seed) == 32
    assert mode(d.path) == 0o700
    assert mode(d.key_file) == 0o600
    assert d.ensure_machine_key() == seed == d.machine_key()
    assert [p.name for p in d.path.iterdir()] == ["machine-key"]  # no temporary files left


def test_no_machine_key_yet(tmp_path: Path) -> None:
    assert StateDir(tmp_path / "none").machine_key() is None
    assert not (tmp_path / "none").exists()


@posix_only
@pytest.mark.parametrize("bits", [0o640, 0o604, 0o644, 0o660])
def test_machine_key_readable_by_others_is_refused(tmp_path: Path, bits: int) -> None:
    d = StateDir(tmp_path)
    d.ensure_machine_key()
    d.key_file.chmod(bits)
    for call in (d.machine_key, d.ensure_machine_key):
        with pytest.raises(OfflineServiceError) as info:
            call()
        assert info.value.code is Code.INSECURE_KEY_FILE
        assert "chmod 600" in info.value.message


@pytest.mark.parametrize("content", [b"", b"not base64!", b64url_encode(b"short").encode()])
def test_damaged_machine_key(tmp_path: Path, content: bytes) -> None:
    d = StateDir(tmp_path)
    fd = os.open(d.key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(OfflineServiceError) as info:
        d.machine_key()
    assert info.value.code is Code.KEY_ERROR


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "O_NOFOLLOW"), reason="symlinks, O_NOFOLLOW")
def test_machine_key_symlink_is_not_followed(tmp_path: Path) -> None:
    real = StateDir(tmp_path / "real")
    real.ensure_machine_key()
    linked = StateDir(tmp_path / "linked")
    linked.path.mkdir()
    linked.key_file.symlink_to(real.key_file)
    with pytest.raises(OfflineServiceError) as info:
        linked.machine_key()
    assert info.value.code is Code.KEY_ERROR


def test_existing_key_is_never_replaced(tmp_path: Path) -> None:
    d = StateDir(tmp_path)
    first = d.ensure_machine_key()
    d.key_file.unlink()
    second = d.ensure_machine_key()
    assert first != second
    assert d.ensure_machine_key() == second


def test_state_round_trip(tmp_path: Path) -> None:
    d = StateDir(tmp_path / "s")
    assert d.load() == State()
    state = State(
        product_id="prod_1",
        fingerprint="fp",
        fingerprint_override=True,
        pending=(Pending(kind=Kind.TRIAL, nonce="n" * 22, issued_at=5),),
        response="a.b.c",
        jwks={"keys": []},
        last_seen=7,
        activations=2,
        deactivations=1,
    )
    d.save(state)
    assert d.load() == state
    if os.name == "posix":
        assert mode(d.state_file) == 0o600


def test_state_file_from_before_the_counts(tmp_path: Path) -> None:
    """state.json written before issue 9 has no counts: read as nothing counted yet."""
    doc = State(product_id="prod_1", last_seen=9).to_json()
    del doc["activations"], doc["deactivations"]
    (tmp_path / "state.json").write_text(json.dumps(doc))
    assert StateDir(tmp_path).load() == State(product_id="prod_1", last_seen=9)


@pytest.mark.parametrize("count", [-1, "1", 1.0, None])
def test_state_counts_must_be_non_negative_integers(tmp_path: Path, count: object) -> None:
    doc = {**State().to_json(), "deactivations": count}
    (tmp_path / "state.json").write_text(json.dumps(doc))
    with pytest.raises(OfflineServiceError) as info:
        StateDir(tmp_path).load()
    assert info.value.code is Code.STORAGE_ERROR


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v": 2}',
        '{"v": 1}',
        json.dumps(
            {
                "v": 1,
                "productId": 5,
                "fingerprint": None,
                "fingerprintOverride": False,
                "pending": [],
                "response": None,
                "jwks": None,
                "lastSeen": 0,
            }
        ),
        json.dumps(
            {
                "v": 1,
                "productId": None,
                "fingerprint": None,
                "fingerprintOverride": False,
                "pending": [{"kind": "bogus", "nonce": "x", "iat": 1}],
                "response": None,
                "jwks": None,
                "lastSeen": 0,
            }
        ),
        json.dumps(
            {
                "v": 1,
                "productId": None,
                "fingerprint": None,
                "fingerprintOverride": False,
                "pending": [],
                "response": "a.b.\u00e9",
                "jwks": None,
                "lastSeen": 0,
            }
        ),
    ],
)
def test_damaged_state_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(OfflineServiceError) as info:
        StateDir(tmp_path).load()
    assert info.value.code is Code.STORAGE_ERROR


def test_state_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OfflineServiceError) as info:
        StateDir(tmp_path / "file").save(State())
    assert info.value.code in (Code.STORAGE_ERROR, Code.INVALID_ARGUMENT)


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.req"
    write_atomic(target, b"one", mode=0o644)
    write_atomic(target, b"two", mode=0o644)
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["out.req"]


def test_write_atomic_failure_is_our_error(tmp_path: Path) -> None:
    with pytest.raises(OfflineServiceError) as info:
        write_atomic(tmp_path / "no" / "such" / "dir", b"x")
    assert info.value.code is Code.STORAGE_ERROR


def test_read_limited(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x" * 16)
    big.write_bytes(b"x" * 17)
    assert read_limited(small, 16) == b"x" * 16
    with pytest.raises(OfflineServiceError) as info:
        read_limited(big, 16)
    assert info.value.code is Code.INVALID_ARGUMENT and "larger" in info.value.message
    with pytest.raises(OfflineServiceError) as info:
        read_limited(tmp_path / "missing", 16)
    assert info.value.code is Code.NOT_FOUND
    with pytest.raises(OfflineServiceError) as info:
        read_limited(tmp_path, 16)
    assert info.value.code is Code.INVALID_ARGUMENT
