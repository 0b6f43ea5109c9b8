"""Fixtures of the accounts tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.accounts.orgs import Org, make_org


@pytest.fixture
def o(tmp_path: Path, backend: str) -> Iterator[Org]:
    org = make_org(tmp_path, backend)
    yield org
    org.w.store.close()
