from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import World, make_world
from tests.pg import pg_test_databases  # noqa: F401  (drops the PostgreSQL test databases)

# The web tests of every domain share the app fixtures: imported here so that pytest finds them
# wherever the tests live.
from tests.web.portal import portal  # noqa: F401
from tests.web.site import make_site, site  # noqa: F401


@pytest.fixture(autouse=True)
def _config_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client SDK keeps a witness in the user's configuration folder: every test, and every
    process it starts, gets a folder of its own instead of the real one."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("APPDATA", str(folder))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.store.close()
