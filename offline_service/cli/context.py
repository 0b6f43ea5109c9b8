"""What every verb of ``offline-service`` shares: the opened context, output, argument types, exit codes.

Each domain's ``cli.py`` registers its verbs with :func:`verb` and formats its output with :func:`emit`,
so the options, the ``--json`` switch and the exit codes are the same for every verb.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from offline_service.accounts.models import Account
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as licensing
from offline_service.licensing.engine import Engine
from offline_service.next_steps import next_step
from offline_service.settings import Settings
from offline_service.store import Store, database_location, open_store

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "Context",
    "Handler",
    "count",
    "duration",
    "emit",
    "fail",
    "iso",
    "metadata_pairs",
    "now",
    "timestamp",
    "verb",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


class Context:
    """Settings, store, keyring and account, opened on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings.from_env(
            data_dir=args.data, keys_dir=args.keys, database_url=args.database_url
        )
        self._store: Store | None = None
        self._keyring: Keyring | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self.open_store()
        return self._store

    def open_store(self, *, migrate: bool = True) -> Store:
        """The database the settings name. Only a verb that sets ``creates`` (``init``, ``db upgrade``) may create
        it; for every other one a missing database is ``NOT_FOUND`` naming where it was looked for,
        and nothing is created (no directory, no empty file, no schema)."""
        try:
            return open_store(self.settings, migrate=migrate, create=getattr(self.args, "creates", False))
        except OfflineServiceError as exc:
            if exc.code is not Code.NOT_FOUND:
                raise
            backend, _ = database_location(self.settings)
            create = "give it one" if backend == "postgresql" else "create it"
            raise OfflineServiceError(
                Code.NOT_FOUND,
                f"{exc.message}; run `offline-service init` to {create}, or {self._elsewhere()}",
            ) from None

    def _elsewhere(self) -> str:
        """How to point the command at another database."""
        backend, _ = database_location(self.settings)
        if backend == "postgresql":
            return "point at another database with --database-url URL or OFFLINE_SERVICE_DATABASE_URL"
        return (
            "point at another data directory with --data DIR or OFFLINE_SERVICE_DATA"
            " (a database elsewhere: --database-url URL or OFFLINE_SERVICE_DATABASE_URL)"
        )

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(self.settings.keys_dir, passphrase=self.settings.key_passphrase)
        return self._keyring

    def account(self) -> Account:
        store = self.store  # a missing database is its own error, not a missing account
        try:
            return licensing.account(store, self.args.account)
        except OfflineServiceError as exc:
            if exc.code is not Code.NOT_FOUND:
                raise
            backend, location = database_location(self.settings)
            where = f"the SQLite database {location}" if backend == "sqlite" else location
            init = (
                "init"
                if self.args.account == licensing.DEFAULT_ACCOUNT
                else f"init --account {self.args.account}"
            )
            raise OfflineServiceError(
                Code.NOT_FOUND,
                f"no account {self.args.account!r} in {where}; run `offline-service {init}` first,"
                f" or {self._elsewhere()}",
            ) from None

    def engine(self) -> Engine:
        return Engine(store=self.store, keyring=self.keyring, policy=self.settings.policy)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


Handler = Callable[[Context], int]


def now() -> int:
    """The current time in whole seconds, as every service call takes it."""
    return int(time.time())


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """``data`` as JSON with ``--json``, otherwise the human ``text``."""
    print(json.dumps(data, indent=2) if args.json else text)


def fail(args: argparse.Namespace, exc: OfflineServiceError) -> int:
    """Report an error once, at the top: JSON on stdout with ``--json``, always the code, the message
    and the next step (``next_steps.py``) on stderr."""
    step = next_step(exc.code)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "code": exc.code.value, "message": exc.message, "nextStep": step}))
    print(f"error: {exc.code.value}: {exc.message}\nnext: {step}", file=sys.stderr)
    return EXIT_ERROR


def iso(ts: int | None) -> str:
    """A timestamp as ISO 8601 UTC, or ``never``."""
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION = re.compile(r"\A(\d+)([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """``3600``, ``90m``, ``12h`` or ``3d`` as seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 90m, 12h or 3d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def timestamp(text: str) -> int:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def count(text: str) -> int:
    """A count of 0 or more, or -1 for unlimited."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < -1:
        raise argparse.ArgumentTypeError("use -1 for unlimited, or a count of 0 or more")
    return value


def metadata_pairs(pairs: Sequence[str] | None) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict; the value may be empty, the key may not."""
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OfflineServiceError(Code.INVALID_ARGUMENT, f"metadata {pair!r} must be KEY=VALUE")
        result[key] = value
    return result


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data", metavar="DIR", help="data directory (default ./data or $OFFLINE_SERVICE_DATA)"
    )
    common.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite://DIR or postgresql://user@host:port/dbname"
        " (default: SQLite in the data directory, or $OFFLINE_SERVICE_DATABASE_URL)",
    )
    common.add_argument(
        "--keys", metavar="DIR", help="keyring directory (default ./keys or $OFFLINE_SERVICE_KEYS)"
    )
    common.add_argument(
        "--account",
        metavar="ALIAS",
        default=licensing.DEFAULT_ACCOUNT,
        help="account alias (default: default)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


# argparse copies a parent's options into each child, so one parent serves every verb.
_COMMON = _common_options()


def verb(parent: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    """Add verb ``name`` to ``parent`` (a subparsers object) with the common options."""
    p: argparse.ArgumentParser = parent.add_parser(
        name, parents=[_COMMON], help=help_text, description=help_text
    )
    p.set_defaults(handler=handler)
    return p
