"""The project's error survives a trip between processes (a batch worker's error reaches the
coordinator pickled): same type, code, message and a subclass's own fields."""

from __future__ import annotations

import pickle

import pytest

from offline_service.accounts.auth import LoginThrottled
from offline_service.errors import Code, OfflineServiceError
from offline_service.licensing.trial_limits import RateLimited
from offline_service.releases.delivery import RangeNotSatisfiable


@pytest.mark.parametrize(
    "error",
    [
        OfflineServiceError(Code.STORAGE_ERROR, "cannot open database: it is gone"),
        OfflineServiceError(Code.NOT_FOUND),
        LoginThrottled(17),
        RateLimited(3, code=Code.TRIAL_DAILY_LIMIT, what="enough trials"),
        RangeNotSatisfiable(1024),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_pickles_with_its_code_message_and_fields(error: OfflineServiceError) -> None:
    again = pickle.loads(pickle.dumps(error))

    assert type(again) is type(error)
    assert (again.code, again.message, str(again), again.args) == (
        error.code,
        error.message,
        str(error),
        error.args,
    )
    assert vars(again) == vars(error)  # retry_after, size, ...
