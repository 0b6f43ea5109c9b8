"""Signing keys on disk: permissions, encryption at rest, rotation and removal."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from offline_service._b64 import b64url_decode, b64url_encode
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind, parse_response
from tests.factories import NOW, World

PRODUCT = "prod_" + "7e57" * 8  # the shape of a product id (offline_service.ids)


PROD_A, PROD_B, PROD_ROT = ("prod_" + c * 32 for c in "abc")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_file(keyring: Keyring, product_id: str, kid: str) -> Path:
    return keyring.directory / product_id / f"{kid}.json"


def test_create_makes_one_active_key(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    signer = keyring.signer(PRODUCT)
    assert signer.kid == kid
    assert len(signer.secret_key) == 64
    assert signer.secret_key.hex() not in repr(signer)
    assert repr(signer.secret_key) not in repr(signer)
    (jwk,) = keyring.jwks(PRODUCT)["keys"]
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(signer.secret_key[32:]),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
        "product": PRODUCT,
        "status": "active",
    }
    assert keyring.public_keys(PRODUCT) == {kid: signer.secret_key[32:]}


def test_create_twice_is_a_conflict(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    keyring.create(PRODUCT, now=NOW)
    with pytest.raises(OfflineServiceError) as info:
        keyring.create(PRODUCT, now=NOW)
    assert info.value.code is Code.CONFLICT


def test_kid_is_the_rfc_7638_thumbprint(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    (jwk,) = keyring.jwks(PRODUCT)["keys"]
    # RFC 7638: the required members only, lexicographic order, no whitespace, SHA-256, base64url.
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
    assert kid == b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert kid == jws.jwk_thumbprint(b64url_decode(jwk["x"]))


def test_key_file_is_0600_and_directories_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a typical, permissive umask must not leak into key files
    try:
        keyring = Keyring(tmp_path / "keys")
        kid = keyring.create(PRODUCT, now=NOW)
        new_kid = keyring.rotate(PRODUCT, now=NOW + 1)
    finally:
        os.umask(old_umask)
    assert _mode(keyring.directory) == 0o700
    assert _mode(keyring.directory / PRODUCT) == 0o700
    assert _mode(_key_file(keyring, PRODUCT, kid)) == 0o600
    assert _mode(_key_file(keyring, PRODUCT, new_kid)) == 0o600
    assert _mode(keyring.directory / PRODUCT / "active") == 0o600
    assert (keyring.directory / PRODUCT / "active").read_text() == f"{new_kid}\n"
    assert sorted(p.name for p in (keyring.directory / PRODUCT).iterdir()) == sorted(
        [f"{kid}.json", f"{new_kid}.json", "active"]
    )  # no temporary files left behind


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_a_key_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    _key_file(keyring, PRODUCT, kid).chmod(mode)
    fresh = Keyring(tmp_path / "keys")
    with pytest.raises(OfflineServiceError) as info:
        fresh.signer(PRODUCT)
    assert info.value.code is Code.INSECURE_KEY_FILE
    with pytest.raises(OfflineServiceError) as info:
        fresh.public_keys(PRODUCT)
    assert info.value.code is Code.INSECURE_KEY_FILE


def test_engine_changes_nothing_when_the_key_file_is_insecure(world: World) -> None:
    lic = world.license()
    (kid,) = world.keyring.public_keys(world.product.id)
    _key_file(world.keyring, world.product.id, kid).chmod(0o644)
    world.engine.keyring = Keyring(world.keyring.directory)  # no cached signer
    before = world.snapshot()
    outcome = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert outcome.code is Code.INSECURE_KEY_FILE
    assert world.snapshot() == before


def test_encrypted_at_rest_with_a_passphrase(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys", passphrase=b"correct horse battery staple")
    kid = keyring.create(PRODUCT, now=NOW)
    seed = keyring.signer(PRODUCT).secret_key[:32]
    content = _key_file(keyring, PRODUCT, kid).read_bytes()
    doc = json.loads(content)
    assert doc["private"]["encryption"] != "none"
    assert "d" not in doc["private"]
    for form in (
        seed,
        seed.hex().encode(),
        b64url_encode(seed).encode(),
        base64.b64encode(seed).rstrip(b"="),
    ):
        assert form not in content

    # A fresh keyring with the passphrase can sign; without it, or with another, it cannot.
    assert Keyring(tmp_path / "keys", passphrase=b"correct horse battery staple").signer(PRODUCT).kid == kid
    for passphrase in (None, b"", b"wrong", b"correct horse battery staplE"):
        with pytest.raises(OfflineServiceError) as info:
            Keyring(tmp_path / "keys", passphrase=passphrase).signer(PRODUCT)
        assert info.value.code is Code.KEY_ERROR
    # Public keys need no passphrase.
    assert Keyring(tmp_path / "keys").public_keys(PRODUCT) == {kid: keyring.signer(PRODUCT).secret_key[32:]}


def test_unencrypted_key_file_holds_the_seed(tmp_path: Path) -> None:
    """The counterpart of the test above, so that it cannot pass by looking in the wrong place."""
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    seed = keyring.signer(PRODUCT).secret_key[:32]
    assert b64url_encode(seed).encode() in _key_file(keyring, PRODUCT, kid).read_bytes()


def test_damaged_key_file(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    path = _key_file(keyring, PRODUCT, kid)
    doc = json.loads(path.read_text())
    doc["private"]["d"] = b64url_encode(b"\x01" * 32)  # a seed that does not match the public key
    path.write_text(json.dumps(doc))
    with pytest.raises(OfflineServiceError) as info:
        Keyring(tmp_path / "keys").signer(PRODUCT)
    assert info.value.code is Code.KEY_ERROR
    path.write_text("{not json")
    with pytest.raises(OfflineServiceError) as info:
        Keyring(tmp_path / "keys").signer(PRODUCT)
    assert info.value.code is Code.KEY_ERROR


def test_signer_for_a_product_without_keys(tmp_path: Path) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Keyring(tmp_path / "keys").signer(PRODUCT)
    assert info.value.code is Code.KEY_ERROR


def test_rotate_keeps_old_responses_verifying(world: World) -> None:
    product = world.product.id
    lic = world.license(activations=5)
    old_kid = world.keyring.signer(product).kid
    old = world.process(world.machine("a").request(Kind.ACTIVATION, product, license_key=lic.key))
    assert old.ok and old.response is not None

    new_kid = world.keyring.rotate(product, now=NOW + 1)

    assert new_kid != old_kid
    assert world.keyring.signer(product).kid == new_kid
    statuses = {k["kid"]: k["status"] for k in world.keyring.jwks(product)["keys"]}
    assert statuses == {old_kid: "retired", new_kid: "active"}
    assert parse_response(old.response.encode(), world.keyring.public_keys()).kid == old_kid

    new = world.process(world.machine("b").request(Kind.ACTIVATION, product, license_key=lic.key))
    assert new.ok and new.response is not None
    response = parse_response(new.response.encode(), world.keyring.public_keys())
    assert response.kid == new_kid
    assert (
        jws.decode(new.response.encode(), typ=jws.RESPONSE_TYP, keys=world.keyring.public_keys()).header[
            "kid"
        ]
        == new_kid
    )
    # The new response really is signed by the new key, not only labelled with its kid.
    with pytest.raises(OfflineServiceError) as info:
        parse_response(new.response.encode(), {new_kid: world.keyring.public_keys()[old_kid]})
    assert info.value.code is Code.BAD_SIGNATURE

    # A fresh keyring (another process) sees the same active key.
    assert Keyring(world.keyring.directory).signer(product).kid == new_kid


def test_remove_a_retired_key(world: World) -> None:
    product = world.product.id
    lic = world.license()
    old_kid = world.keyring.signer(product).kid
    old = world.process(world.machine().request(Kind.ACTIVATION, product, license_key=lic.key))
    assert old.response is not None
    new_kid = world.keyring.rotate(product, now=NOW + 1)

    with pytest.raises(OfflineServiceError) as info:
        world.keyring.remove(product, new_kid)
    assert info.value.code is Code.CONFLICT

    world.keyring.remove(product, old_kid)

    assert list(world.keyring.public_keys(product)) == [new_kid]
    assert [k["kid"] for k in world.keyring.jwks(product)["keys"]] == [new_kid]
    with pytest.raises(OfflineServiceError) as info:
        parse_response(old.response.encode(), world.keyring.public_keys())
    assert info.value.code is Code.UNKNOWN_SIGNING_KEY
    with pytest.raises(OfflineServiceError) as info:
        world.keyring.remove(product, old_kid)
    assert info.value.code is Code.NOT_FOUND


def test_cannot_remove_the_only_active_key(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    with pytest.raises(OfflineServiceError) as info:
        keyring.remove(PRODUCT, kid)
    assert info.value.code is Code.CONFLICT
    assert keyring.signer(PRODUCT).kid == kid


def test_discard_removes_a_products_keys_and_folder_and_nothing_else(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kept = keyring.create(PROD_A, now=NOW)
    keyring.create(PROD_B, now=NOW)
    keyring.rotate(PROD_B, now=NOW + 1)
    keyring.signer(PROD_B)  # cached
    keyring.discard(PROD_B)
    assert not (keyring.directory / PROD_B).exists()
    assert [k["kid"] for k in keyring.jwks()["keys"]] == [kept]
    with pytest.raises(OfflineServiceError) as info:
        keyring.signer(PROD_B)
    assert info.value.code is Code.KEY_ERROR
    keyring.discard(PROD_B)  # nothing left: nothing to do
    keyring.discard(PROD_ROT)  # never had keys
    assert keyring.signer(PROD_A).kid == kept


def test_rotate_a_product_without_keys(tmp_path: Path) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Keyring(tmp_path / "keys").rotate(PRODUCT, now=NOW)
    assert info.value.code is Code.NOT_FOUND


def test_rotate_with_a_passphrase(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys", passphrase=b"pw")
    first = keyring.create(PRODUCT, now=NOW)
    second = keyring.rotate(PRODUCT, now=NOW + 1)
    assert Keyring(tmp_path / "keys", passphrase=b"pw").signer(PRODUCT).kid == second
    assert set(Keyring(tmp_path / "keys").public_keys(PRODUCT)) == {first, second}


def test_jwks_of_all_products(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    a = keyring.create(PROD_A, now=NOW)
    b = keyring.create(PROD_B, now=NOW)
    assert {(k["product"], k["kid"]) for k in keyring.jwks()["keys"]} == {(PROD_A, a), (PROD_B, b)}
    assert [k["kid"] for k in keyring.jwks(PROD_A)["keys"]] == [a]


def test_a_running_engine_signs_with_the_new_key_after_another_process_rotates(tmp_path: Path) -> None:
    server = Keyring(tmp_path / "keys")
    server.create(PROD_ROT, now=1)
    before = server.signer(PROD_ROT).kid
    cli = Keyring(tmp_path / "keys")  # another process: the server's cache is not told
    after = cli.rotate(PROD_ROT, now=2)
    assert after != before
    server._checked.clear()  # as if a second had passed since the server last looked
    assert server.signer(PROD_ROT).kid == after


@pytest.mark.parametrize(
    "product_id", ["../../etc", "..", ".", "/etc", "prod_../x", "", "prod_" + "a" * 33, "PROD_" + "A" * 32]
)
def test_a_product_id_that_is_not_of_the_id_shape_never_becomes_a_path(
    tmp_path: Path, product_id: str
) -> None:
    keys = tmp_path / "keys"
    keyring = Keyring(keys)
    keyring.create(PRODUCT, now=NOW)
    # A group-readable file one level up: what a path probe would have reported as INSECURE_KEY_FILE.
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "x.json").chmod(0o644)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    calls = (
        lambda: keyring.jwks(product_id),
        lambda: keyring.public_keys(product_id),
        lambda: keyring.signer(product_id),
        lambda: keyring.create(product_id, now=NOW),
        lambda: keyring.rotate(product_id, now=NOW),
        lambda: keyring.remove(product_id, "kid"),
    )
    for call in calls:
        with pytest.raises(OfflineServiceError) as raised:
            call()
        assert raised.value.code is Code.INVALID_ARGUMENT
        assert str(tmp_path) not in raised.value.message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_whole_jwks_skips_directories_that_are_not_product_ids(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    kid = keyring.create(PRODUCT, now=NOW)
    stray = tmp_path / "keys" / "not-a-product"
    stray.mkdir()
    (stray / "x.json").write_text("{}")
    (stray / "x.json").chmod(0o644)
    assert [k["kid"] for k in keyring.jwks()["keys"]] == [kid]


def test_a_rotation_is_seen_even_when_the_directory_mtime_did_not_move(tmp_path: Path) -> None:
    # The kernel's file clock is coarse: a server that looked during a rotation may see the same
    # directory mtime after it. The "active" marker, rewritten last, still tells it to reload.
    server = Keyring(tmp_path / "keys")
    server.create(PROD_ROT, now=1)
    directory = tmp_path / "keys" / PROD_ROT
    before = server.signer(PROD_ROT).kid
    stamp = directory.stat()
    after = Keyring(tmp_path / "keys").rotate(PROD_ROT, now=2)
    os.utime(directory, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    server._checked.clear()  # as if a second had passed
    assert server.signer(PROD_ROT).kid == after != before


def test_the_cached_key_is_reused_within_a_second_and_rechecked_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tick = [100.0]
    monkeypatch.setattr("offline_service.fileformat.keyring.time.monotonic", lambda: tick[0])
    server = Keyring(tmp_path / "keys")
    before = server.create(PROD_ROT, now=1)
    assert server.signer(PROD_ROT).kid == before
    after = Keyring(tmp_path / "keys").rotate(PROD_ROT, now=2)
    tick[0] += 0.9
    assert server.signer(PROD_ROT).kid == before  # no look at the disk on the hot path
    tick[0] += 0.2
    assert server.signer(PROD_ROT).kid == after


def test_a_server_that_looks_in_the_middle_of_a_rotation_keeps_signing(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    old = keyring.create(PROD_ROT, now=1)
    new = Keyring(tmp_path / "keys").rotate(PROD_ROT, now=1)  # the same second: created_at ties
    # Back to the rotation's second step: both keys active, the marker still naming the old one.
    path = _key_file(keyring, PROD_ROT, old)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "status": "active"}))
    marker = tmp_path / "keys" / PROD_ROT / "active"
    marker.write_text(f"{old}\n")
    assert Keyring(tmp_path / "keys").signer(PROD_ROT).kid == old
    marker.write_text(f"{new}\n")  # the rotation's last step
    assert Keyring(tmp_path / "keys").signer(PROD_ROT).kid == new
    marker.unlink()  # a keyring from before the marker, interrupted there: the newest signs
    older = json.loads(_key_file(keyring, PROD_ROT, new).read_text())
    _key_file(keyring, PROD_ROT, new).write_text(json.dumps({**older, "createdAt": 2}))
    assert Keyring(tmp_path / "keys").signer(PROD_ROT).kid == new
