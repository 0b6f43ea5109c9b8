"""Password hashing (Argon2id, with a dummy hash of the same cost for unknown people) and strength."""

from __future__ import annotations

import pytest

from offline_service.accounts import passwords
from offline_service.accounts.passwords import Cost, check_strength, hash_password, verify_password
from offline_service.errors import Code, OfflineServiceError

PASSWORD = "correct horse battery"

# -- passwords ---------------------------------------------------------------------------------


def test_argon2id_hash_verifies_and_rejects() -> None:
    encoded = hash_password(PASSWORD, Cost.MINIMUM)
    assert encoded.startswith("$argon2id$")
    assert verify_password(PASSWORD, encoded, Cost.MINIMUM)
    assert not verify_password(PASSWORD + "x", encoded, Cost.MINIMUM)
    assert not verify_password(PASSWORD, None, Cost.MINIMUM)  # unknown person: dummy hash, False
    assert not verify_password(PASSWORD, "not a hash", Cost.MINIMUM)


@pytest.mark.parametrize("cost", list(Cost))
def test_unknown_person_costs_as_much_as_a_wrong_password(cost: Cost) -> None:
    # Each dummy hash is of its cost: the same parameters appear in both encodings.
    real = hash_password(PASSWORD, cost)
    dummy = passwords._DUMMIES[cost]
    assert dummy.split("$")[3] == real.split("$")[3]  # the same m=..,t=..,p=..
    assert not verify_password("x", None, cost)


def test_no_module_state_is_written_by_a_check() -> None:
    # The dummies are constants: a check of an unknown person writes nothing shared.
    with pytest.raises(TypeError):
        passwords._DUMMIES[Cost.MINIMUM] = "x"  # type: ignore[index]


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaaaaaa", "x" * 1025, "ab@example.com"])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        check_strength(password, email="ab@example.com")
    assert info.value.code is Code.INVALID_ARGUMENT
