"""The shared helpers of every CLI verb (cli/context.py): argument types, output, errors."""

from __future__ import annotations

import argparse
import json

import pytest

from offline_service.cli.context import (
    EXIT_ERROR,
    count,
    duration,
    emit,
    fail,
    iso,
    metadata_pairs,
    timestamp,
    verb,
)
from offline_service.errors import Code, OfflineServiceError
from offline_service.next_steps import NEXT_STEPS


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 43200), ("3d", 259200)])
def test_duration(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0d", "-1", "1w", "", "1.5h"])
def test_duration_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_timestamp_is_utc_without_a_zone() -> None:
    assert timestamp("1970-01-02") == 86400
    assert timestamp("1970-01-01T01:00:00Z") == 3600
    assert timestamp("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(argparse.ArgumentTypeError):
        timestamp("yesterday")


def test_count() -> None:
    assert count("-1") == -1 and count("0") == 0 and count("7") == 7
    for bad in ("-2", "x", "1.0"):
        with pytest.raises(argparse.ArgumentTypeError):
            count(bad)


def test_metadata_pairs() -> None:
    assert metadata_pairs(None) == {}
    assert metadata_pairs(["a=1", "b=", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    for bad in ("novalue", "=1"):
        with pytest.raises(OfflineServiceError) as info:
            metadata_pairs([bad])
        assert info.value.code is Code.INVALID_ARGUMENT


def test_iso() -> None:
    assert iso(None) == "never"
    assert iso(0) == "1970-01-01T00:00:00Z"


def test_emit_and_fail(capsys: pytest.CaptureFixture[str]) -> None:
    emit(argparse.Namespace(json=True), {"a": 1}, "text")
    emit(argparse.Namespace(json=False), {"a": 1}, "text")
    out = capsys.readouterr().out
    assert json.loads(out[: out.index("}") + 1]) == {"a": 1} and out.endswith("text\n")
    code = fail(argparse.Namespace(json=True), OfflineServiceError(Code.NOT_FOUND, "gone"))
    captured = capsys.readouterr()
    assert code == EXIT_ERROR
    step = NEXT_STEPS[Code.NOT_FOUND]
    assert json.loads(captured.out) == {"ok": False, "code": "NOT_FOUND", "message": "gone", "nextStep": step}
    assert captured.err == f"error: NOT_FOUND: gone\nnext: {step}\n"


def test_verb_has_the_common_options() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    p = verb(sub, "thing", lambda ctx: 0, "do a thing")
    p.add_argument("--extra")
    args = parser.parse_args(["thing", "--json", "--account", "acme", "--data", "d", "--keys", "k"])
    assert (args.json, args.account, args.data, args.keys) == (True, "acme", "d", "k")
    assert args.handler(None) == 0
    assert parser.parse_args(["thing"]).account == "default"
