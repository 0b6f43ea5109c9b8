"""Fixtures every suite shares.

The store backend: tests that use the ``backend`` fixture (directly, or through ``world``, ``site``,
``make_site``, ``portal``, ``cli``, ...) run once on SQLite and once on PostgreSQL (``[sqlite]`` and
``[postgresql]`` in their ids) when they live in one of ``BOTH_BACKENDS``: the store contract and the
engine, web, CLI and domain suites, where storage is what the code under test goes through.
Elsewhere they run on SQLite only: the browser tests drive the same web layer through Chromium
(what they check is the pages, not where the rows live), the client SDK and file format tests only
need some signed responses to read, and the fuzz targets parse bytes without a store. A test in
``BOTH_BACKENDS`` that is about SQLite itself (its file, WAL, path resolution) opens ``SQLiteStore``
directly, or takes the marker ``sqlite_only`` with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import BACKENDS, World, make_world
from tests.pg import pg_test_databases  # noqa: F401  (the session's PostgreSQL, dropped at its end)
from tests.smtp_relay import certificates, smtp_server  # noqa: F401

# The web tests of every domain share the app fixtures: imported here so that pytest finds them
# wherever the tests live.
from tests.web.portal import portal  # noqa: F401
from tests.web.site import make_site, site  # noqa: F401

BOTH_BACKENDS = (
    "accounts",
    "admin",
    "branding",
    "cli",
    "licensing",
    "notifications",
    "releases",
    "store",
    "web",
    "webhooks",
)
TESTS = Path(__file__).resolve().parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("sqlite_only"):
        return
    where = metafunc.definition.path.resolve().relative_to(TESTS).parts
    if len(where) > 1 and where[0] in BOTH_BACKENDS:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend of the test's fixtures: "sqlite" or "postgresql" (see the module's docstring)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(autouse=True)
def _service_loggers_restored() -> Iterator[None]:
    """``serve`` gives the service's loggers uvicorn's handler on the stream of its moment (in a
    test run in process, pytest's capture of that test, closed after it): put them back after each
    test, so a later test's log line does not go to a closed stream."""
    logger = logging.getLogger("offline_service")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    logger.handlers[:] = handlers
    logger.propagate, logger.level = propagate, level


@pytest.fixture(autouse=True)
def _config_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client SDK keeps a witness in the user's configuration folder: every test, and every
    process it starts, gets a folder of its own instead of the real one."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("APPDATA", str(folder))


@pytest.fixture
def world(tmp_path: Path, backend: str) -> Iterator[World]:
    w = make_world(tmp_path, backend=backend)
    yield w
    w.store.close()
